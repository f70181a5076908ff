"""Ed25519 keys for everything piguard signs or authenticates: dataset passports, revocation lists,
rights receipts and consortium members.

Files follow ssh-keygen's habit: ``NAME.key`` (PKCS#8 PEM, mode 0600, optionally encrypted with a passphrase)
and ``NAME.pub`` (one OpenSSH line, ``ssh-ed25519 AAAA... owner``), so ``ssh-keygen -lf NAME.pub`` prints the
same fingerprint piguard uses as the key id (``SHA256:...``). All key arithmetic is ``cryptography``'s.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from piguard._fs import create_secret_file, is_private, read_regular_bytes

PASSPHRASE_ENV = "PIGUARD_PASSPHRASE"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"
_MAX_KEY_FILE = 64 * 1024

__all__ = [
    "PASSPHRASE_ENV",
    "KeyFileError",
    "PublicKey",
    "SigningKey",
    "TrustStore",
    "generate",
    "load_public_key",
    "load_signing_key",
    "load_trust",
]


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and never holds key material."""


@dataclass(frozen=True)
class PublicKey:
    key: Ed25519PublicKey
    owner: str | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def raw(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        """The OpenSSH SHA-256 fingerprint of the key (what ``ssh-keygen -lf`` prints)."""
        blob = base64.b64decode(self._openssh().split()[1])
        return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")

    def _openssh(self) -> str:
        fmt = serialization.PublicFormat.OpenSSH
        return self.key.public_bytes(serialization.Encoding.OpenSSH, fmt).decode("ascii")

    def to_line(self) -> str:
        """The ``.pub`` file's line."""
        return self._openssh() + (f" {self.owner}" if self.owner else "")

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def from_raw(cls, raw: bytes, owner: str | None = None) -> PublicKey:
        try:
            return cls(Ed25519PublicKey.from_public_bytes(raw), owner)
        except ValueError as exc:
            raise KeyFileError("not a 32-byte Ed25519 public key") from exc

    @classmethod
    def from_line(cls, line: str, *, source: str = "public key") -> PublicKey:
        parts = line.strip().split(None, 2)
        if len(parts) < 2 or parts[0] != "ssh-ed25519":
            raise KeyFileError(f"{source}: not an 'ssh-ed25519 ...' public key line")
        try:
            key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode("ascii"))
        except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
            raise KeyFileError(f"{source}: the public key does not decode") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{source}: not an Ed25519 key")
        owner = parts[2].strip() if len(parts) > 2 and parts[2].strip() else None
        return cls(key, owner)


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey = field(repr=False)
    public: PublicKey

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    def __repr__(self) -> str:  # never show key material, even in a debugger or a log line
        return f"SigningKey(key_id={self.key_id!r}, owner={self.public.owner!r})"


def _paths(base: str | Path) -> tuple[Path, Path]:
    p = Path(base)
    if p.suffix in (PRIVATE_SUFFIX, PUBLIC_SUFFIX):
        p = p.with_suffix("")
    return p.with_name(p.name + PRIVATE_SUFFIX), p.with_name(p.name + PUBLIC_SUFFIX)


def generate(out: str | Path, *, owner: str | None = None, passphrase: bytes | None = None) -> SigningKey:
    """Write a new key pair as ``OUT.key`` (mode 0600) and ``OUT.pub``; refuse to overwrite either."""
    priv_path, pub_path = _paths(out)
    if not priv_path.parent.is_dir():
        raise KeyFileError(f"directory {priv_path.parent} does not exist")
    if owner is not None and (not owner.strip() or any(c in owner for c in "\r\n")):
        raise KeyFileError("the owner name must be one non-empty line")
    for p in (priv_path, pub_path):
        if p.exists():
            raise KeyFileError(f"{p} already exists; remove it or choose another name")
    private = Ed25519PrivateKey.generate()
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    if not create_secret_file(priv_path, pem):
        raise KeyFileError(f"{priv_path} already exists; remove it or choose another name")
    public = PublicKey(private.public_key(), owner.strip() if owner else None, pub_path)
    if not create_secret_file(pub_path, (public.to_line() + "\n").encode("utf-8")):
        raise KeyFileError(f"{pub_path} already exists; remove it or choose another name")
    os.chmod(pub_path, 0o644)  # public keys are meant to be handed out
    return SigningKey(private, public)


def _read_capped(path: Path, what: str) -> bytes:
    try:
        data = read_regular_bytes(path, _MAX_KEY_FILE)
    except FileNotFoundError as exc:
        raise KeyFileError(f"{what} {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise KeyFileError(f"{what} {path} is a directory") from exc
    except OSError as exc:
        raise KeyFileError(f"{what} {path} cannot be read ({exc.strerror})") from exc
    if len(data) > _MAX_KEY_FILE:
        raise KeyFileError(f"{what} {path} is too large to be a key")
    return data


PassphraseSource = bytes | Callable[[], bytes] | None


def load_signing_key(path: str | Path, passphrase: PassphraseSource = None) -> SigningKey:
    """Read a private key. Refuses a file that group or others can read (as ssh does). An encrypted key
    takes its passphrase from the argument (bytes, or a function that asks), else ``$PIGUARD_PASSPHRASE``."""
    p = Path(path)
    if p.suffix == PUBLIC_SUFFIX:
        raise KeyFileError(f"{p} is a public key; pass the private key file ({PRIVATE_SUFFIX})")
    data = _read_capped(p, "private key")
    if not is_private(p):
        raise KeyFileError(f"private key {p} is readable by others; run: chmod 600 {p}")
    encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
    secret: bytes | None = None
    if encrypted:
        if callable(passphrase):
            secret = passphrase()
        elif passphrase is not None:
            secret = passphrase
        elif os.environ.get(PASSPHRASE_ENV):
            secret = os.environ[PASSPHRASE_ENV].encode("utf-8")
        else:
            raise KeyFileError(f"private key {p} is encrypted: set ${PASSPHRASE_ENV} or enter the passphrase")
    try:
        key = serialization.load_pem_private_key(data, password=secret)
    except TypeError as exc:
        raise KeyFileError(f"private key {p}: passphrase given but the key is not encrypted") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        reason = "wrong passphrase or damaged file" if encrypted else "not a PEM private key"
        raise KeyFileError(f"private key {p}: {reason}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"private key {p} is not an Ed25519 key")
    owner = None
    _, pub_path = _paths(p)
    if pub_path.is_file():
        try:
            owner = load_public_key(pub_path).owner
        except KeyFileError:
            owner = None
    return SigningKey(key, PublicKey(key.public_key(), owner, pub_path if pub_path.is_file() else None))


def load_public_key(path: str | Path) -> PublicKey:
    p = Path(path)
    data = _read_capped(p, "public key")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"public key {p} is not text") from exc
    if "PRIVATE KEY" in text:
        raise KeyFileError(f"{p} holds a private key; pass the .pub file")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) != 1:
        raise KeyFileError(f"public key {p} must hold exactly one key line")
    pk = PublicKey.from_line(lines[0], source=f"public key {p}")
    return PublicKey(pk.key, pk.owner, p)


class TrustStore:
    """The public keys a verifier trusts, by key id."""

    def __init__(self, keys: Iterable[PublicKey] = ()) -> None:
        self._keys: dict[str, PublicKey] = {}
        for k in keys:
            self._keys[k.key_id] = k

    def get(self, key_id: str) -> PublicKey | None:
        return self._keys.get(key_id)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __iter__(self) -> Iterator[PublicKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)


def load_trust(sources: str | Path | Iterable[str | Path]) -> TrustStore:
    """Public keys from ``.pub`` files and from directories of them (a directory's ``*.pub`` files only)."""
    items = [sources] if isinstance(sources, str | Path) else list(sources)
    keys: list[PublicKey] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix == PUBLIC_SUFFIX and q.is_file())
            if not found:
                raise KeyFileError(f"trust directory {p} holds no .pub files")
            keys.extend(load_public_key(q) for q in found)
        else:
            keys.append(load_public_key(p))
    return TrustStore(keys)

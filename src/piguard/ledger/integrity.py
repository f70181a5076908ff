"""What makes the ledger prove what it holds: the ledger key, the audit MACs derived from it, and signed
checkpoints of the chain head.

Threat model (docs/ledger.md): whoever can write the database (its host, a DBA, anyone holding the SQLite
file) can change any row and recompute any plain hash. They cannot compute an HMAC without the ledger key,
which lives outside the database (an environment variable, a key file, a secret store), so every audit entry
carries ``HMAC-SHA256(integrity key, entry hash)``. What an HMAC cannot show is that entries were removed
from the end of the log (the shorter log still authenticates); a checkpoint -- the chain head signed with
the controller's Ed25519 key and kept elsewhere -- shows that, and lets someone without the ledger key check
the log up to it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from piguard._fs import create_secret_file
from piguard.ledger.errors import LedgerError

KEY_ENV = "PIGUARD_LEDGER_KEY"
KEY_FILE_ENV = "PIGUARD_LEDGER_KEY_FILE"
CHECKPOINT_FORMAT = "piguard-ledger-checkpoint/1"
_MAX_KEY_FILE = 4096
_MAX_CHECKPOINT_FILE = 64 * 1024
_AUDIT_INFO = b"piguard ledger audit chain v1"


class LedgerKeyError(LedgerError):
    """The ledger key cannot be found or read (the message names the file, never the key)."""


@dataclass(frozen=True, slots=True)
class KeySource:
    """A ledger key and where it came from; ``created`` when this call wrote the key file."""

    key: bytes
    origin: str
    path: Path | None = None
    created: bool = False

    def __repr__(self) -> str:  # never show key material
        return f"KeySource(origin={self.origin!r}, path={self.path!r}, created={self.created!r})"


def default_key_path(url: str) -> Path | None:
    """A SQLite ledger keeps its key beside it by default (``LEDGER.db.key``); a server database has none."""
    try:
        u = make_url(url)
    except ArgumentError:
        return None
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return Path(u.database).expanduser().with_name(Path(u.database).name + ".key")
    return None


def _read_key_file(path: Path) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise LedgerKeyError(f"ledger key file {path} does not exist") from None
    except OSError as exc:
        raise LedgerKeyError(f"ledger key file {path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise LedgerKeyError(f"ledger key file {path} is not a regular file")
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise LedgerKeyError(f"ledger key file {path} cannot be read ({exc.strerror})") from None
    if len(data) > _MAX_KEY_FILE:
        raise LedgerKeyError(f"ledger key file {path} is too large to be a key")
    key = data.strip()
    if not key:
        raise LedgerKeyError(f"ledger key file {path} is empty")
    return key


def find_key(url: str, key_file: str | Path | None = None, *, create: bool = False) -> KeySource | None:
    """The ledger key: ``$PIGUARD_LEDGER_KEY`` (hex or text), then ``key_file``, then
    ``$PIGUARD_LEDGER_KEY_FILE``, then for a SQLite ledger ``LEDGER.db.key`` beside it. With ``create`` a
    missing default key file is created (mode 0600, race-free: concurrent starters all read the winner's key).
    None when there is no key and none may be created."""
    env = os.environ.get(KEY_ENV)
    if env:
        try:
            return KeySource(bytes.fromhex(env), f"${KEY_ENV}")
        except ValueError:
            return KeySource(env.encode("utf-8"), f"${KEY_ENV}")
    explicit = key_file or os.environ.get(KEY_FILE_ENV) or None
    if explicit:
        path = Path(explicit).expanduser()
        return KeySource(_read_key_file(path), str(path), path)
    path = default_key_path(url)
    if path is None:
        return None
    if path.exists() or path.is_symlink():
        return KeySource(_read_key_file(path), str(path), path)
    if not create:
        return None
    if not path.parent.is_dir():
        raise LedgerKeyError(f"cannot create ledger key file {path}: directory {path.parent} does not exist")
    try:
        created = create_secret_file(path, secrets.token_hex(32).encode("ascii"))
    except OSError as exc:
        raise LedgerKeyError(f"cannot create ledger key file {path} ({exc.strerror})") from None
    return KeySource(_read_key_file(path), str(path), path, created)


def load_key(url: str, key_file: str | None = None, *, create: bool = False) -> bytes:
    """The ledger key as bytes (see ``find_key``); LedgerKeyError when there is none."""
    src = find_key(url, key_file, create=create)
    if src is None:
        path = default_key_path(url)
        if path is not None:
            raise LedgerKeyError(f"ledger key file {path} does not exist")
        raise LedgerKeyError(
            f"no ledger key: set ${KEY_ENV}, ${KEY_FILE_ENV} or pass --key-file "
            "(it pseudonymises subjects and authenticates the audit log)"
        )
    return src.key


class IntegrityKey:
    """The key that authenticates audit entries: HKDF-SHA256 of the ledger key with its own label, so the
    audit MACs and the subject pseudonyms (HMAC under the ledger key itself) never share a key."""

    __slots__ = ("_key", "key_id")

    def __init__(self, ledger_key: bytes) -> None:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_AUDIT_INFO)
        self._key = hkdf.derive(ledger_key)
        # A public name for the key, so a verifier can tell "another key" from "altered".
        self.key_id = hmac.new(self._key, b"piguard ledger key id", hashlib.sha256).hexdigest()[:16]

    def mac(self, entry_hash: str) -> str:
        return hmac.new(self._key, entry_hash.encode("ascii"), hashlib.sha256).hexdigest()

    def check(self, entry_hash: str, mac: str) -> bool:
        return hmac.compare_digest(self.mac(entry_hash), mac)

    def __repr__(self) -> str:
        return f"IntegrityKey(key_id={self.key_id!r})"


# ---- checkpoints ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that the ledger's audit log had ``seq`` entries ending in ``hash``."""

    seq: int
    hash: str
    signer: str
    created_at: str
    ledger: str
    source: str = "checkpoint"


def _canon(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def make_checkpoint(seq: int, head_hash: str, ledger: str, signing_key: Any) -> dict[str, Any]:
    """The checkpoint document for head (seq, hash), signed with ``signing_key`` (a ``piguard.keys``
    SigningKey). The signature covers the canonical JSON of every other field."""
    body = {
        "format": CHECKPOINT_FORMAT,
        "ledger": ledger,
        "seq": seq,
        "hash": head_hash,
        "created_at": datetime.now(UTC).isoformat(),
        "signer": signing_key.key_id,
    }
    sig = signing_key.sign(_canon(body))
    return {**body, "signature": base64.b64encode(sig).decode("ascii")}


def read_checkpoint(path: str | Path, trust: Any) -> Checkpoint:
    """Read a checkpoint file and check its signature against ``trust`` (a ``piguard.keys.TrustStore``).
    LedgerKeyError names the file and what is wrong; nothing from the file is echoed."""
    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise LedgerKeyError(f"checkpoint {p} is not a regular file")
        with p.open("rb") as fh:
            data = fh.read(_MAX_CHECKPOINT_FILE + 1)
    except FileNotFoundError:
        raise LedgerKeyError(f"checkpoint {p} does not exist") from None
    except OSError as exc:
        raise LedgerKeyError(f"checkpoint {p} cannot be read ({exc.strerror})") from None
    if len(data) > _MAX_CHECKPOINT_FILE:
        raise LedgerKeyError(f"checkpoint {p} is too large")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise LedgerKeyError(f"checkpoint {p} is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise LedgerKeyError(f"checkpoint {p} is not a {CHECKPOINT_FORMAT} document")
    seq, head, signer, sig = doc.get("seq"), doc.get("hash"), doc.get("signer"), doc.get("signature")
    if (
        not isinstance(seq, int) or isinstance(seq, bool) or seq < 0
        or not isinstance(head, str) or len(head) != 64
        or not isinstance(signer, str) or not isinstance(sig, str)
        or not isinstance(doc.get("created_at"), str) or not isinstance(doc.get("ledger"), str)
    ):  # fmt: skip
        raise LedgerKeyError(f"checkpoint {p} lacks seq, hash, signer, created_at, ledger or signature")
    key = trust.get(signer)
    if key is None:
        raise LedgerKeyError(f"checkpoint {p} is signed by {signer[:60]!r}, a key not in the trusted keys")
    try:
        raw_sig = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        raise LedgerKeyError(f"checkpoint {p}: the signature is not base64") from None
    body = {k: v for k, v in doc.items() if k != "signature"}
    if not key.verify(raw_sig, _canon(body)):
        raise LedgerKeyError(f"checkpoint {p}: the signature does not verify (altered or forged)")
    return Checkpoint(seq, head, signer, doc["created_at"], doc["ledger"], str(p))

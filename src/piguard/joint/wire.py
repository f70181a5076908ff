"""Messages between members and the authenticated session they travel in.

A message is ``b"PGJ" + version byte + u32 header length + header (canonical JSON) + payload + tag``.

Sessions follow the SIGMA pattern (the signed Diffie-Hellman of TLS 1.3 and IKEv2): the client's ``hello``
and the server's ``welcome`` each carry a fresh X25519 public key and a random nonce and are signed with the
member's Ed25519 key (``piguard.keys``); the welcome also signs the hash of the hello it answers. Each side
checks the other's key against its trust store. HKDF over the X25519 secret and the transcript gives one MAC
key per direction; every later message carries the session id and a sequence number that may be used once,
under HMAC-SHA256. So a member is authenticated, a message cannot be altered, replayed into another session
or replayed in this one, and a recorded hello is refused outside a 5-minute window or when its nonce was
seen. Payloads are not encrypted: what the protocols send is already blinded (see ``psi``), and the
traffic test checks that; run behind TLS as well where the sizes themselves are confidential.

All primitives are ``cryptography``'s (X25519, Ed25519, HKDF, HMAC); only the framing is written here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from piguard.joint.errors import (
    AuthenticationError,
    MalformedMessageError,
    ProtocolVersionError,
    ReplayError,
)
from piguard.keys import PublicKey, SigningKey, TrustStore

MAGIC = b"PGJ"
VERSION = 1
MAX_HEADER = 64 * 1024
CLOCK_WINDOW = 300  # seconds a hello may be early or late
_SIG = 64
_MAC = 32


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise MalformedMessageError(f"{what}: expected base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise MalformedMessageError(f"{what}: not valid base64") from None


def _canon(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def pack(header: dict[str, Any], payload: bytes = b"") -> bytes:
    """The message without its tag."""
    h = _canon(header)
    return MAGIC + bytes([VERSION]) + struct.pack(">I", len(h)) + h + payload


@dataclass(frozen=True, slots=True)
class Message:
    header: dict[str, Any]
    payload: bytes
    signed: bytes  # the bytes the tag covers
    tag: bytes


def unpack(data: bytes, tag_len: int | None = None) -> Message:
    """Split a message; ``tag_len`` None reads it from the header (``auth``: ``sig`` or ``mac``)."""
    if len(data) < 8 or data[:3] != MAGIC:
        raise MalformedMessageError("not a piguard joint message")
    if data[3] != VERSION:
        raise ProtocolVersionError(
            f"protocol version {data[3]} is not supported; this piguard speaks {VERSION}"
        )
    (hlen,) = struct.unpack(">I", data[4:8])
    if hlen > MAX_HEADER or 8 + hlen > len(data):
        raise MalformedMessageError("message header length is out of range")
    try:
        header = json.loads(data[8 : 8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessageError("message header is not JSON") from None
    if not isinstance(header, dict):
        raise MalformedMessageError("message header is not an object")
    if header.get("v") != VERSION:
        raise ProtocolVersionError(
            f"protocol version {header.get('v')!r} is not supported; this piguard speaks {VERSION}"
        )
    if tag_len is None:
        tag_len = {"sig": _SIG, "mac": _MAC}.get(header.get("auth"), -1)
        if tag_len < 0:
            raise MalformedMessageError("message header has no valid 'auth'")
    if len(data) < 8 + hlen + tag_len:
        raise MalformedMessageError("message is truncated")
    end = len(data) - tag_len
    return Message(header, data[8 + hlen : end], data[:end], data[end:])


def _require(header: dict[str, Any], key: str, typ: type | tuple[type, ...], what: str) -> Any:
    v = header.get(key)
    if not isinstance(v, typ) or (isinstance(v, bool) and typ is int):
        raise MalformedMessageError(f"{what}: field {key!r} is missing or has the wrong type")
    return v


def field_int(header: dict[str, Any], key: str, what: str, lo: int = 0, hi: int = 2**62) -> int:
    v = _require(header, key, int, what)
    if not lo <= v <= hi:
        raise MalformedMessageError(f"{what}: field {key!r} is out of range")
    return int(v)


def field_str(header: dict[str, Any], key: str, what: str, maxlen: int = 300) -> str:
    v = _require(header, key, str, what)
    if len(v) > maxlen:
        raise MalformedMessageError(f"{what}: field {key!r} is too long")
    return str(v)


# --- handshake ----------------------------------------------------------------------------------------------
@dataclass
class Keys:
    send: bytes
    recv: bytes


def _derive(secret: bytes, transcript: bytes, client: bool) -> Keys:
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=transcript, info=b"piguard-joint-v1").derive(secret)
    c2s, s2c = okm[:32], okm[32:]
    return Keys(send=c2s, recv=s2c) if client else Keys(send=s2c, recv=c2s)


def _eph_raw(priv: X25519PrivateKey) -> bytes:
    return priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _peer_eph(header: dict[str, Any], what: str) -> X25519PublicKey:
    raw = unb64(header.get("eph"), f"{what} eph")
    if len(raw) != 32:
        raise MalformedMessageError(f"{what}: ephemeral key must be 32 bytes")
    return X25519PublicKey.from_public_bytes(raw)


def _shared(priv: X25519PrivateKey, peer: X25519PublicKey, what: str) -> bytes:
    try:
        return priv.exchange(peer)
    except ValueError:  # a small-order point: an attack or garbage
        raise MalformedMessageError(f"{what}: ephemeral key is not usable") from None


def verify_signed(msg: Message, trust: TrustStore, what: str) -> PublicKey:
    key_id = field_str(msg.header, "from", what)
    peer = trust.get(key_id)
    if peer is None:
        raise AuthenticationError(f"{what}: key {key_id} is not in the trust store")
    if not peer.verify(msg.tag, msg.signed):
        raise AuthenticationError(f"{what}: signature of {key_id} does not verify")
    return peer


class NonceCache:
    """Hello nonces seen within the clock window (a replayed hello is refused)."""

    def __init__(self) -> None:
        self._seen: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def check(self, nonce: bytes, now: float) -> None:
        with self._lock:
            for k in [k for k, t in self._seen.items() if t < now - 2 * CLOCK_WINDOW]:
                del self._seen[k]
            if nonce in self._seen:
                raise ReplayError("hello was replayed (its nonce was seen before)")
            self._seen[nonce] = now


@dataclass
class Session:
    """One side of an authenticated session."""

    id: str
    peer: PublicKey
    keys: Keys
    client: bool
    hello: dict[str, Any]
    welcome: dict[str, Any]
    _next_send: int = 0
    _seen: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)

    def seal(self, header: dict[str, Any], payload: bytes = b"", *, reply_to: int | None = None) -> bytes:
        """A MAC'd message. Requests get a fresh sequence number; replies name the request's."""
        with self._lock:
            if reply_to is None:
                seq = self._next_send
                self._next_send += 1
            else:
                seq = reply_to
        h = {
            **header,
            "v": VERSION,
            "auth": "mac",
            "session": self.id,
            "seq": seq,
            "reply": reply_to is not None,
        }
        body = pack(h, payload)
        return body + hmac.new(self.keys.send, body, hashlib.sha256).digest()

    def open(self, data: bytes, what: str, *, expect_reply_to: int | None = None) -> Message:
        msg = unpack(data, _MAC)
        if msg.header.get("auth") != "mac" or msg.header.get("session") != self.id:
            raise AuthenticationError(f"{what}: message is not of this session")
        want = hmac.new(self.keys.recv, msg.signed, hashlib.sha256).digest()
        if not hmac.compare_digest(want, msg.tag):
            raise AuthenticationError(f"{what}: message tag does not verify (altered or forged)")
        seq = field_int(msg.header, "seq", what)
        is_reply = msg.header.get("reply") is True
        if expect_reply_to is not None:
            if not is_reply or seq != expect_reply_to:
                raise ReplayError(f"{what}: reply does not answer this request (replayed or reordered)")
        else:
            with self._lock:
                if is_reply or seq in self._seen:
                    raise ReplayError(f"{what}: message sequence number {seq} was used before")
                self._seen.add(seq)
        self.last_used = time.monotonic()
        return msg


def client_hello(me: SigningKey, proto: str, params: dict[str, Any]) -> tuple[bytes, X25519PrivateKey]:
    eph = X25519PrivateKey.generate()
    header = {
        **params,
        "type": "hello",
        "v": VERSION,
        "auth": "sig",
        "proto": proto,
        "from": me.key_id,
        "eph": b64(_eph_raw(eph)),
        "nonce": b64(os.urandom(16)),
        "time": int(time.time()),
    }
    body = pack(header)
    return body + me.sign(body), eph


def server_accept(
    data: bytes, me: SigningKey, trust: TrustStore, nonces: NonceCache, proto: str
) -> tuple[Message, PublicKey]:
    """Verify a hello: signature by a trusted key, protocol, clock window, fresh nonce."""
    msg = unpack(data, _SIG)
    if msg.header.get("type") != "hello" or msg.header.get("auth") != "sig":
        raise MalformedMessageError("expected a signed hello")
    peer = verify_signed(msg, trust, "hello")
    if msg.header.get("proto") != proto:
        raise ProtocolVersionError(
            f"hello asks for protocol {msg.header.get('proto')!r}; this server runs {proto!r}"
        )
    now = time.time()
    t = field_int(msg.header, "time", "hello")
    if abs(now - t) > CLOCK_WINDOW:
        raise ReplayError("hello is outside the 5-minute clock window (replayed, or a clock is wrong)")
    nonces.check(unb64(msg.header.get("nonce"), "hello nonce"), now)
    return msg, peer


def server_welcome(
    hello: Message, peer: PublicKey, me: SigningKey, session_id: str, params: dict[str, Any]
) -> tuple[bytes, Session]:
    eph = X25519PrivateKey.generate()
    shared = _shared(eph, _peer_eph(hello.header, "hello"), "hello")
    header = {
        **params,
        "type": "welcome",
        "v": VERSION,
        "auth": "sig",
        "from": me.key_id,
        "session": session_id,
        "eph": b64(_eph_raw(eph)),
        "nonce": b64(os.urandom(16)),
        "hello": hashlib.sha256(hello.signed + hello.tag).hexdigest(),
    }
    body = pack(header)
    welcome = body + me.sign(body)
    transcript = hashlib.sha256(hello.signed + hello.tag + welcome).digest()
    sess = Session(session_id, peer, _derive(shared, transcript, client=False), False, hello.header, header)
    return welcome, sess


def client_finish(hello: bytes, eph: X25519PrivateKey, data: bytes, trust: TrustStore) -> Session:
    msg = unpack(data, _SIG)
    if msg.header.get("type") != "welcome" or msg.header.get("auth") != "sig":
        raise MalformedMessageError("expected a signed welcome")
    peer = verify_signed(msg, trust, "welcome")
    if msg.header.get("hello") != hashlib.sha256(hello).hexdigest():
        raise ReplayError("welcome does not answer this hello (replayed)")
    sid = field_str(msg.header, "session", "welcome", 80)
    shared = _shared(eph, _peer_eph(msg.header, "welcome"), "welcome")
    transcript = hashlib.sha256(hello + data).digest()
    hello_header = unpack(hello, _SIG).header
    return Session(sid, peer, _derive(shared, transcript, client=True), True, hello_header, msg.header)

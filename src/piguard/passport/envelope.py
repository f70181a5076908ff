"""DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1) signed with Ed25519, and the
in-toto Statement v1 they carry (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md).

The signature covers PAE(payloadType, payload) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, with
lengths as ASCII decimal. A verifier checks the signature over the exact payload bytes before it parses
them, so nothing unauthenticated is ever interpreted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from piguard.keys import PublicKey, SigningKey, TrustStore

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024


class EnvelopeError(ValueError):
    """An envelope that cannot be read at all (not JSON, not DSSE, bad base64); ``code`` names the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def canonical_json(obj: Any) -> bytes:
    """The payload serialisation: sorted keys, no insignificant space, UTF-8. (Verifiers never re-serialise:
    the signature is over these bytes.)"""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def digest_id(payload: bytes) -> str:
    """A passport's (or list's) id: the SHA-256 of its signed payload."""
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def sign(payload: bytes, payload_type: str, key: SigningKey) -> dict[str, Any]:
    sig = key.sign(pae(payload_type, payload))
    return {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": payload_type,
        "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(sig).decode("ascii")}],
    }


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise EnvelopeError("malformed", f"{what} is not a base64 string")
    # DSSE accepts standard and URL-safe base64, padded or not.
    s = text.strip().replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("malformed", f"{what} is not valid base64") from None


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[tuple[str | None, bytes], ...]  # (keyid hint, signature)

    @property
    def id(self) -> str:
        return digest_id(self.payload)


def parse_envelope(data: bytes, source: str) -> Envelope:
    """Read a DSSE envelope's structure (not its signature); EnvelopeError names what is wrong."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError("malformed", f"{source} is larger than {MAX_ENVELOPE_BYTES // 2**20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError("malformed", f"{source} is not UTF-8 text") from None
    if not text.strip():
        raise EnvelopeError("malformed", f"{source} is empty")
    try:
        doc = json.loads(text)
    except RecursionError:
        raise EnvelopeError("malformed", f"{source}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        cut = " (it ends early: truncated?)" if exc.pos >= len(text.rstrip()) else ""
        raise EnvelopeError("malformed", f"{source} is not valid JSON{cut}") from None
    except ValueError:  # an integer past Python's 4,300-digit limit
        raise EnvelopeError("malformed", f"{source} holds a number too long to read") from None
    if not isinstance(doc, dict) or not {"payload", "payloadType", "signatures"} <= doc.keys():
        raise EnvelopeError(
            "malformed", f"{source} is not a DSSE envelope (payload, payloadType, signatures)"
        )
    if not isinstance(doc["payloadType"], str):
        raise EnvelopeError("malformed", f"{source}: payloadType is not a string")
    sigs = doc["signatures"]
    if not isinstance(sigs, list) or not sigs:
        raise EnvelopeError("malformed", f"{source} carries no signatures")
    parsed: list[tuple[str | None, bytes]] = []
    for i, s in enumerate(sigs):
        if not isinstance(s, dict) or "sig" not in s:
            raise EnvelopeError("malformed", f"{source}: signature {i + 1} has no 'sig'")
        keyid = s.get("keyid")
        parsed.append(
            (keyid if isinstance(keyid, str) and keyid else None, _b64(s["sig"], f"{source} signature"))
        )
    return Envelope(_b64(doc["payload"], f"{source} payload"), doc["payloadType"], tuple(parsed))


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    key: PublicKey | None  # the trusted key that verified it
    code: str  # "ok" | "untrusted-key" | "signature"
    message: str


def check_signature(env: Envelope, trust: TrustStore) -> SignatureCheck:
    """Accept when any signature verifies under a trusted key (the keyid is a hint, as DSSE says)."""
    message = pae(env.payload_type, env.payload)
    hinted_trusted = False
    for keyid, sig in env.signatures:
        candidates = [trust.get(keyid)] if keyid and keyid in trust else list(trust)
        hinted_trusted = hinted_trusted or bool(keyid and keyid in trust)
        for key in candidates:
            if key is not None and key.verify(sig, message):
                return SignatureCheck(True, key, "ok", f"signed by trusted key {key.key_id}{_owner(key)}")
    if hinted_trusted:
        return SignatureCheck(
            False, None, "signature", "the signature does not verify: the signed payload was altered"
        )
    hints = sorted({k for k, _ in env.signatures if k})
    named = f" ({', '.join(hints)})" if hints else ""
    return SignatureCheck(False, None, "untrusted-key", f"signed by a key that is not trusted{named}")


def _owner(key: PublicKey) -> str:
    return f" ({key.owner})" if key.owner else ""


def parse_statement(payload: bytes) -> dict[str, Any]:
    """The in-toto Statement v1 in an authenticated payload; EnvelopeError for anything else."""
    try:
        st = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EnvelopeError("malformed", "the signed payload is not JSON") from None
    if not isinstance(st, dict) or st.get("_type") != STATEMENT_TYPE:
        raise EnvelopeError(
            "malformed", f"the signed payload is not an in-toto Statement v1 ({STATEMENT_TYPE})"
        )
    subjects = st.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise EnvelopeError("malformed", "the statement has no subject")
    for s in subjects:
        if (
            not isinstance(s, dict)
            or not isinstance(s.get("name"), str)
            or not isinstance(s.get("digest"), dict)
            or not isinstance(s["digest"].get("sha256"), str)
        ):
            raise EnvelopeError("malformed", "a statement subject lacks a name or a sha256 digest")
    if not isinstance(st.get("predicateType"), str) or not isinstance(st.get("predicate"), dict):
        raise EnvelopeError("malformed", "the statement has no predicateType or predicate")
    return st

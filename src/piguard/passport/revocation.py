"""Signed revocation lists: a DSSE envelope (payloadType ``application/vnd.piguard.revocations+json``) whose
payload lists revoked passports by id. A list revokes only passports signed by the same key, so one
issuer can never revoke another's passports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from piguard._fs import atomic_write_text, read_regular_bytes
from piguard.keys import SigningKey, TrustStore
from piguard.passport import envelope
from piguard.passport.predicate import format_time

REVOCATIONS_PAYLOAD_TYPE = "application/vnd.piguard.revocations+json"
REVOCATIONS_TYPE = "https://piguard.dev/attestations/revocations/v1"


class RevocationError(ValueError):
    """A revocation list that cannot be used (unreadable, not signed by a trusted key, malformed)."""


@dataclass(frozen=True)
class Revoked:
    passport: str  # sha256:...
    key_id: str  # the key that signed the list (and must have signed the passport)
    at: str
    reason: str


class Revocations:
    def __init__(self, items: list[Revoked] | None = None) -> None:
        self._by_id: dict[str, list[Revoked]] = {}
        for r in items or []:
            self._by_id.setdefault(r.passport, []).append(r)

    def find(self, passport_id: str, signer_key_id: str) -> Revoked | None:
        return next((r for r in self._by_id.get(passport_id, []) if r.key_id == signer_key_id), None)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_id.values())


def _read_list(data: bytes, source: str) -> envelope.Envelope:
    try:
        env = envelope.parse_envelope(data, source)
    except envelope.EnvelopeError as exc:
        raise RevocationError(str(exc)) from None
    if env.payload_type != REVOCATIONS_PAYLOAD_TYPE:
        raise RevocationError(f"{source} is not a revocation list (payloadType {env.payload_type!r})")
    return env


def _parse_payload(env: envelope.Envelope, source: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(env.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RevocationError(f"{source}: the signed payload is not JSON") from None
    if (
        not isinstance(doc, dict)
        or doc.get("_type") != REVOCATIONS_TYPE
        or not isinstance(doc.get("revoked"), list)
    ):
        raise RevocationError(f"{source}: not a piguard revocation list v1")
    out = []
    for item in doc["revoked"]:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("passport"), str)
            or not item["passport"].startswith("sha256:")
            or len(item["passport"]) != 71
        ):
            raise RevocationError(f"{source}: an entry has no passport id (sha256:...)")
        out.append({"passport": item["passport"], "revokedAt": str(item.get("revokedAt", "")),
                    "reason": str(item.get("reason", ""))[:300]})  # fmt: skip
    return out


def load(paths: list[str], trust: TrustStore) -> Revocations:
    """Read and authenticate revocation lists; any list not signed by a trusted key is an error."""
    items: list[Revoked] = []
    for p in paths:
        source = f"revocation list {p}"
        try:
            data = read_regular_bytes(p)
        except OSError as exc:
            raise RevocationError(f"{source}: cannot read ({exc.strerror})") from None
        env = _read_list(data, source)
        sig = envelope.check_signature(env, trust)
        if not sig.ok or sig.key is None:
            raise RevocationError(f"{source}: {sig.message}")
        for item in _parse_payload(env, source):
            items.append(Revoked(item["passport"], sig.key.key_id, item["revokedAt"], item["reason"]))
    return Revocations(items)


def revoke(
    list_path: str, passport_ids: list[str], key: SigningKey, reason: str = "", now: datetime | None = None
) -> int:
    """Add passports to the list at ``list_path`` (created if absent, re-signed, written atomically); an
    existing list must be one this key signed. Returns how many entries the list holds."""
    p = Path(list_path)
    entries: list[dict[str, Any]] = []
    if p.exists():
        source = f"revocation list {p}"
        try:
            data = read_regular_bytes(p)
        except OSError as exc:
            raise RevocationError(f"{source}: cannot read ({exc.strerror})") from None
        env = _read_list(data, source)
        sig = envelope.check_signature(env, TrustStore([key.public]))
        if not sig.ok:
            raise RevocationError(f"{source} was not signed by this key ({key.key_id}); use a new list file")
        entries = _parse_payload(env, source)
    when = format_time(now or datetime.now(UTC))
    have = {e["passport"] for e in entries}
    for pid in passport_ids:
        if pid not in have:
            entries.append({"passport": pid, "revokedAt": when, "reason": reason})
            have.add(pid)
    payload = envelope.canonical_json(
        {"_type": REVOCATIONS_TYPE, "issuer": {"keyId": key.key_id}, "issuedAt": when, "revoked": entries}
    )
    atomic_write_text(p, json.dumps(envelope.sign(payload, REVOCATIONS_PAYLOAD_TYPE, key), indent=2) + "\n")
    return len(entries)

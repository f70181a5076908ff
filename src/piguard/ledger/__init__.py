"""Record: the ledger of subjects (pseudonymous), consents, purposes, provenance, processing activities and
a hash-chained, append-only audit log. SQLite by default, PostgreSQL by URL; migrations run on open."""

from __future__ import annotations

from piguard.ledger.store import (
    Ledger,
    LedgerError,
    VerifyResult,
    entry_hash,
    load_key,
    normalize_identifier,
    normalize_url,
    pseudonym,
)

__all__ = [
    "Ledger",
    "LedgerError",
    "VerifyResult",
    "entry_hash",
    "load_key",
    "normalize_identifier",
    "normalize_url",
    "pseudonym",
]

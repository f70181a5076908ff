"""Record: the ledger of subjects (pseudonymous), consents, purposes, provenance, processing activities and
an append-only audit log, hash-chained and authenticated with the ledger key (HMAC), with signed checkpoints
of its head. ``Ledger.verify`` replays the log against the tables. SQLite by default, PostgreSQL by URL;
migrations run on open."""

from __future__ import annotations

from piguard.ledger.errors import LedgerError
from piguard.ledger.integrity import (
    KEY_ENV,
    KEY_FILE_ENV,
    Checkpoint,
    KeySource,
    LedgerKeyError,
    find_key,
    load_key,
    read_checkpoint,
)
from piguard.ledger.store import (
    Ledger,
    VerifyResult,
    entry_hash,
    is_pseudonym,
    normalize_identifier,
    normalize_url,
    pseudonym,
)

__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "Checkpoint",
    "KeySource",
    "Ledger",
    "LedgerError",
    "LedgerKeyError",
    "VerifyResult",
    "entry_hash",
    "find_key",
    "is_pseudonym",
    "load_key",
    "normalize_identifier",
    "normalize_url",
    "pseudonym",
    "read_checkpoint",
]

"""The ledger's one exception type, in a module of its own so every ledger module can raise it."""

from __future__ import annotations


class LedgerError(RuntimeError):
    """A ledger problem a user can act on (message is one line, names the input, never holds secrets)."""

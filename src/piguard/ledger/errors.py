"""The ledger's one exception type, in a module of its own so every ledger module can raise it."""

from __future__ import annotations

from piguard.detect.messages import mask_message


class LedgerError(RuntimeError):
    """A ledger problem a user can act on (message is one line, names the input, never holds secrets).
    The message is masked on the way in: an id quoted from input never comes back as a raw identifier."""

    def __init__(self, message: str = "") -> None:
        super().__init__(mask_message(message))

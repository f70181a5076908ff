"""Dataset passports for ``piguard check``: a flow's ``passport:`` verified for the rule engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from piguard.keys import KeyFileError, load_trust
from piguard.passport import revocation
from piguard.passport.verify import VerifyOptions, verify, verify_envelope
from piguard.rules.engine import PassportView


class PassportChecker:
    """Implements the engine's PassportSource. With data, the full verification (sampled re-scan);
    without, the checks that need only the passport (signature, validity, revocation)."""

    def __init__(self, opts: VerifyOptions) -> None:
        self.opts = opts

    def passport(self, path: str, data: tuple[str, ...]) -> PassportView:
        v = verify(path, list(data), self.opts) if data else verify_envelope(path, self.opts)
        problems = tuple(f"{r.code}: {r.message}" for r in v.reasons)
        pred = v.predicate
        if pred is None:
            return PassportView(problems, None, None)
        return PassportView(problems, frozenset(pred.purposes), frozenset(pred.recipients), pred.state)


class PassportSetupError(ValueError):
    """Trusted keys or revocation lists that cannot be used (the message names the file)."""


def checker(trust: Sequence[str | Path], revocations: Sequence[str | Path] = ()) -> PassportChecker:
    try:
        store = load_trust([str(t) for t in trust])
        revs = revocation.load([str(r) for r in revocations], store)
    except (KeyFileError, revocation.RevocationError) as exc:
        raise PassportSetupError(str(exc)) from None
    return PassportChecker(VerifyOptions(trust=store, revocations=revs))

"""Lawful by construction: a joint computation declares its purpose and legal basis, passes the rule engine,
and is written to the ledger's audit log with its set sizes, never its identifiers.

The flows checked (PIPL, through ``piguard.rules``, the same packs as ``piguard check``):

* every party **provides** the identifiers it puts in (blinded, so pseudonymised, not anonymised: the
  sender can link them back) to the partner, a third party: with ``legal_basis: consent`` that needs
  separate consent (Art. 23);
* a querier that learns the intersection **collects** personal information from the partner (which of its
  own customers the partner also holds), source ``supplier``; a cardinality or count result is a number
  about a group and is not personal information, so no collect flow is added for it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from piguard.joint.errors import InputError, NotLawfulError
from piguard.rules import Decision, Engine, Flow, FlowsDoc, FlowsError
from piguard.rules import purposes as pack_purposes
from piguard.rules.flows import CONSENT_KINDS, LEGAL_BASES


@dataclass
class Declaration:
    purpose: str
    legal_basis: str
    controller: str = "piguard joint member"
    consent: str | None = None  # the consent kind held for the subjects (none, explicit, separate, ...)
    consent_ref: str | None = None  # a consent id in the ledger covering the flow
    warnings: list[str] = field(default_factory=list)


def declare(
    purpose: str | None,
    legal_basis: str | None,
    *,
    consent: str | None = None,
    consent_ref: str | None = None,
    ledger: Any = None,
) -> Declaration:
    """Refuse a run without a purpose and legal basis, or with ones the packs (and ledger) do not know."""
    if not purpose or not legal_basis:
        raise NotLawfulError(
            "a joint computation needs a declared purpose and legal basis (--purpose, --legal-basis): "
            "PIPL Art. 6 and 13"
        )
    if legal_basis not in LEGAL_BASES:
        raise NotLawfulError(f"legal basis {legal_basis!r} is not valid; valid: {', '.join(LEGAL_BASES)}")
    known = set(pack_purposes())
    if ledger is not None:
        known |= set(ledger.declared_purposes())
    if purpose not in known:
        raise NotLawfulError(f"purpose {purpose!r} is not declared; valid: {', '.join(sorted(known))}")
    if consent is not None and consent not in CONSENT_KINDS:
        raise InputError(f"consent kind {consent!r} is not valid; valid: {', '.join(CONSENT_KINDS)}")
    return Declaration(purpose, legal_basis, consent=consent, consent_ref=consent_ref)


def _flow(fid: str, activity: str, data: Iterable[str], decl: Declaration, partner: str, **kw: Any) -> Flow:
    f = Flow(
        id=fid, activity=activity, data=tuple(data), purposes=(decl.purpose,), legal_basis=decl.legal_basis
    )
    f.consent_kind = decl.consent
    f.consent_ref = decl.consent_ref
    f.recipient_kind = "third_party" if activity == "provide" else "self"
    f.recipient_name = partner if activity == "provide" else None
    for k, v in kw.items():
        setattr(f, k, v)
    return f


def check(
    decl: Declaration,
    *,
    entities: Iterable[str],
    partner: str,
    learns_members: bool,
    ledger: Any = None,
) -> list[Decision]:
    """Run the rule engine over the run's flows; raise NotLawfulError on a deny, keep warnings."""
    data = sorted(set(entities))
    if not data:
        return []
    flows = [_flow("joint-provide", "provide", data, decl, partner, pseudonymized=True)]
    if learns_members:
        flows.append(_flow("joint-result", "collect", data, decl, partner, source_kind="supplier"))
    extra = ledger.declared_purposes() if ledger is not None else {}
    doc = FlowsDoc(
        controller=decl.controller,
        app_type=None,
        app={},
        flows=flows,
        path="<joint run>",
        extra_purposes=extra,
    )
    try:
        decisions = Engine(ledger).evaluate(doc)
    except FlowsError as exc:  # e.g. --consent-ref without --ledger, or a consent the ledger lacks
        raise InputError("; ".join(e.removeprefix("<joint run>:0: ") for e in exc.errors)) from None
    denied = [(d, r) for d in decisions for r in d.reasons if r.severity == "deny"]
    if denied:
        why = "; ".join(f"{d.id}: {r.source} Art. {r.article} ({r.rule}) {r.message_en}" for d, r in denied)
        raise NotLawfulError(f"the rule engine denies this joint computation: {why}")
    decl.warnings = [f"{d.id}: {r.rule} {r.message_en}" for d in decisions for r in d.reasons]
    return decisions


def audit(
    ledger: Any,
    kind: str,
    decl: Declaration,
    sizes: dict[str, Any],
    entities: Iterable[str],
    partner: str,
    *,
    actor: str = "piguard joint",
) -> str:
    """Write the run to the ledger: a processing activity (PIPL Art. 55-56) and an audit event holding the set
    sizes, both in the ledger's authenticated log. Sizes only: the ledger never sees an identifier."""
    run_id = f"joint-{kind}-{secrets.token_hex(6)}"
    ledger.record_activity(
        run_id,
        name=f"joint {kind} with {partner}"[:300],
        activity="provide",
        purpose_id=decl.purpose,
        categories=sorted(set(entities)) or ["PERSON"],
        legal_basis=decl.legal_basis,
        recipient=partner[:300],
        actor=actor,
    )
    ledger.record_event(
        actor,
        "joint.run",
        "joint_run",
        run_id,
        {"kind": kind, "partner": partner[:300], "activity": run_id, "sizes": sizes},
    )
    return run_id

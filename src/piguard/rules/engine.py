"""The engine: turns declared flows (and the ledger's consents) into allow / warn / deny decisions.

Facts are computed once per flow; rules are pre-indexed by activity so a flow is only tested against rules
that can apply to it. Ledger look-ups are batched for the whole file (one query per 500 references).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple, Protocol

from piguard import taxonomy
from piguard.rules import packs
from piguard.rules.flows import ACTIVITIES, Flow, FlowsDoc, FlowsError

KIND_STRENGTH = {"none": 0, "bundled": 1, "explicit": 2, "separate": 3, "guardian": 3}
_VALID_KINDS = frozenset(("explicit", "separate", "guardian"))
_IA_RECIPIENTS = frozenset(("processor", "third_party", "public", "abroad"))


class ConsentView(NamedTuple):
    """A consent as the engine needs it (the ledger returns these)."""

    id: str
    subject: str
    kind: str
    purposes: frozenset[str]
    recipients: frozenset[str]
    categories: frozenset[str]
    withdrawn: bool


class ConsentSource(Protocol):
    """What the engine reads from a ledger."""

    def consents_by_id(self, ids: Sequence[str]) -> dict[str, ConsentView]: ...

    def consents_by_subject(self, subjects: Sequence[str]) -> dict[str, list[ConsentView]]: ...

    def datasets_exist(self, ids: Sequence[str]) -> set[str]: ...


class PassportView(NamedTuple):
    """A flow's dataset passport as the engine needs it. ``purposes``/``recipients`` are None when the
    passport could not be read from an authenticated payload."""

    problems: tuple[str, ...]
    purposes: frozenset[str] | None
    recipients: frozenset[str] | None
    state: str | None = None  # raw | pseudonymized | anonymized, as the passport declares it


class PassportSource(Protocol):
    """Verifies dataset passports (``piguard.passport`` provides one; the engine does not import it)."""

    def passport(self, path: str, data: tuple[str, ...]) -> PassportView: ...


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    source: str
    article: str
    severity: str
    message_en: str
    message_zh: str

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule, "source": self.source, "article": self.article, "severity": self.severity,
            "message_en": self.message_en, "message_zh": self.message_zh,
        }  # fmt: skip


@dataclass(slots=True)
class Decision:
    id: str
    verdict: str
    reasons: list[Reason] = field(default_factory=list)
    line: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "verdict": self.verdict, "reasons": [r.as_dict() for r in self.reasons]}


@cache
def _rules_by_activity() -> dict[str, tuple[packs.Rule, ...]]:
    out: dict[str, list[packs.Rule]] = {a: [] for a in ACTIVITIES}
    for rule in packs.decidable_rules():
        for a in ACTIVITIES:
            conds = [c for c in rule.when if c["fact"] == "activity"]
            probe = {"activity": a}
            if all(packs._compile_condition(c, rule.id)(probe) for c in conds):
                out[a].append(rule)
    return {a: tuple(rs) for a, rs in out.items()}


@cache
def _matchers() -> dict[str, Any]:
    return {a: packs.compile_matcher(rs) for a, rs in _rules_by_activity().items()}


@cache
def _passport_matcher() -> Any:
    """Passport rules alone, for flows that carry no personal information by their declaration."""
    return packs.compile_matcher(tuple(r for r in packs.decidable_rules() if r.pack == "passport.yaml"))


def _passport_facts(doc: FlowsDoc, flow: Flow, view: PassportView) -> dict[str, Any]:
    facts: dict[str, Any] = {"passport_problems": list(view.problems)}
    if view.purposes is not None and view.recipients is not None:
        facts["passport_purpose_not_permitted"] = [p for p in flow.purposes if p not in view.purposes]
        # Who receives the data: the named recipient when it is passed on, else the controller itself.
        who = (flow.recipient_name or "(unnamed)") if flow.recipient_kind != "self" else doc.controller
        if "*" not in view.recipients and who not in view.recipients:
            facts["passport_recipient_not_permitted"] = [who]
    if flow.anonymized and view.state is not None and view.state != "anonymized":
        # The flow treats the data as outside the PIPL; its own passport says it is not anonymized.
        facts["passport_state_not_anonymized"] = [view.state]
    return facts


@cache
def _personal() -> frozenset[str]:
    return frozenset(e.id for e in taxonomy.entities().values() if e.personal)


@cache
def _sensitive() -> frozenset[str]:
    return frozenset(e.id for e in taxonomy.entities().values() if e.sensitive)


def _scope_gaps(cv: ConsentView, flow: Flow, data: Iterable[str]) -> list[str]:
    gaps = [f"purpose:{p}" for p in flow.purposes if p not in cv.purposes]
    gaps += [f"data:{e}" for e in data if e not in cv.categories]
    if flow.recipient_kind in ("third_party", "abroad", "public"):
        name = flow.recipient_name or "(unnamed)"
        if name not in cv.recipients and "*" not in cv.recipients:
            gaps.append(f"recipient:{name}")
    return gaps


def _pick(
    cands: list[ConsentView], flow: Flow, data: tuple[str, ...]
) -> tuple[ConsentView | None, list[str]]:
    """The subject's consent that best covers the flow: active first, fewest gaps, strongest kind."""
    best: tuple[tuple[int, int, int], ConsentView, list[str]] | None = None
    for cv in cands:
        gaps = _scope_gaps(cv, flow, data)
        key = (0 if cv.withdrawn else 1, -len(gaps), KIND_STRENGTH.get(cv.kind, 0))
        if best is None or key > best[0]:
            best = (key, cv, gaps)
    return (best[1], best[2]) if best else (None, [])


class Engine:
    """Evaluates flows documents. Reuse one engine for many documents; it holds no per-document state."""

    def __init__(self, ledger: ConsentSource | None = None, passports: PassportSource | None = None) -> None:
        self.ledger = ledger
        self.passports = passports
        self.by_activity = _rules_by_activity()
        self.matchers = _matchers()
        self._cache: dict[Any, Any] = {}
        self._extra: dict[str, packs.Purpose] | None = None
        self._reasons: dict[Any, Reason] = {}
        self.app_types = packs.app_types()
        self.purposes = packs.purposes()
        self.personal = _personal()
        self.sensitive = _sensitive()

    def _resolve(
        self, doc: FlowsDoc
    ) -> tuple[dict[str, ConsentView], dict[str, list[ConsentView]], set[str]]:
        refs = [f.consent_ref for f in doc.flows if f.consent_ref]
        subs = [f.consent_subject for f in doc.flows if f.consent_subject]
        provs = [f.source_provenance for f in doc.flows if f.source_provenance]
        if not (refs or subs or provs) or self.ledger is None:
            if refs or subs:
                f = next(f for f in doc.flows if f.consent_ref or f.consent_subject)
                raise FlowsError(
                    [f"{doc.path}:{f.line}: flow {f.id!r} needs ledger consents: pass --ledger URL"]
                )
            return {}, {}, set()
        by_id = self.ledger.consents_by_id(list(dict.fromkeys(refs))) if refs else {}
        by_sub = self.ledger.consents_by_subject(list(dict.fromkeys(subs))) if subs else {}
        datasets = self.ledger.datasets_exist(list(dict.fromkeys(provs))) if provs else set()
        errors = []
        for f in doc.flows:
            if f.consent_ref and f.consent_ref not in by_id:
                errors.append(
                    f"{doc.path}:{f.line}: flow {f.id!r}: consent {f.consent_ref!r} is not in the ledger"
                )
            if f.consent_subject and f.consent_subject not in by_sub:
                errors.append(
                    f"{doc.path}:{f.line}: flow {f.id!r}: subject {f.consent_subject!r} is not in the ledger "
                    "(give the subject's pseudonymous id, see 'piguard consent show')"
                )
            if f.source_provenance and f.source_provenance not in datasets:
                errors.append(
                    f"{doc.path}:{f.line}: flow {f.id!r}: provenance record {f.source_provenance!r} "
                    "is not in the ledger"
                )
        if errors:
            raise FlowsError(errors)
        return by_id, by_sub, datasets

    def _data_facts(
        self,
        data_in: tuple[str, ...],
        purpose_ids: tuple[str, ...],
        app_type: int | None,
        minors: bool,
        doc: FlowsDoc,
    ) -> tuple[tuple[str, ...], list[str], list[str], list[str], bool, bool]:
        """Facts that depend only on the data, purposes and app type: cached, since flows repeat them."""
        key = (data_in, purpose_ids, app_type, minors)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        data = tuple(e for e in data_in if e in self.personal)
        sensitive = [e for e in data if e in self.sensitive]
        if minors and "MINOR_INFO" not in sensitive:
            sensitive.append("MINOR_INFO")  # PIPL Art. 28: all personal information of children under 14
        purposes = [doc.extra_purposes.get(p) or self.purposes[p] for p in purpose_ids]
        beyond_purpose: list[str] = []
        if purposes and all(p.needs is not None for p in purposes):
            needs = frozenset().union(*(p.needs for p in purposes if p.needs is not None))
            beyond_purpose = [e for e in data if e not in needs]
        beyond_necessary: list[str] = []
        if app_type is not None:
            necessary = self.app_types[app_type].necessary
            beyond_necessary = [e for e in data if e not in necessary]
        push = any(p.push for p in purposes)
        alone = bool(purposes) and all(p.alone_insufficient for p in purposes)
        out = (data, sensitive, beyond_purpose, beyond_necessary, push, alone)
        if len(self._cache) < 100_000:
            self._cache[key] = out
        return out

    def _opted_out(self, doc: FlowsDoc, by_id: dict[str, ConsentView]) -> frozenset[str]:
        """Subjects of automated push flows who turned personalised recommendation or targeted push off by
        a rights request (``piguard serve``: PIPL Art. 24; stored beside the ledger). Only push flows ask."""
        read = getattr(self.ledger, "push_opt_outs", None)
        if read is None:
            return frozenset()
        subjects: set[str] = set()
        for f in doc.flows:
            if f.activity != "automated_decision" or not (f.consent_subject or f.consent_ref):
                continue
            if f.consent_subject:
                subjects.add(f.consent_subject)
            elif f.consent_ref in by_id:
                subjects.add(by_id[f.consent_ref].subject)
        return frozenset(read(sorted(subjects))) if subjects else frozenset()

    def facts(
        self,
        doc: FlowsDoc,
        flow: Flow,
        by_id: dict[str, ConsentView],
        by_sub: dict[str, list[ConsentView]],
        opted_out: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        data, sensitive, beyond_purpose, beyond_necessary, push, alone = self._data_facts(
            flow.data,
            flow.purposes,
            doc.app_type if flow.activity == "collect" else None,
            flow.minors_under_14,
            doc,
        )
        kind = flow.consent_kind or "none"
        withdrawn = False
        gaps: list[str] = []
        cv: ConsentView | None = None
        if flow.consent_ref:
            cv = by_id[flow.consent_ref]
            gaps = _scope_gaps(cv, flow, data)
        elif flow.consent_subject:
            cv, gaps = _pick(by_sub[flow.consent_subject], flow, data)
        if flow.consent_ref or flow.consent_subject:
            kind = cv.kind if cv else "none"
            withdrawn = bool(cv and cv.withdrawn)
        rk = flow.recipient_kind
        abroad = flow.activity == "transfer_abroad" or rk == "abroad"
        public = flow.activity == "publish" or rk == "public"
        facts: dict[str, Any] = {
            "activity": flow.activity,
            "legal_basis": flow.legal_basis or "none",
            "consent_kind": kind,
            "consent_withdrawn": withdrawn,
            "consent_out_of_scope": gaps,
            "valid_consent": kind in _VALID_KINDS and not withdrawn and not gaps,
            "sensitive": sensitive,
            "minors_under_14": flow.minors_under_14,
            "recipient_kind": rk,
            "activity_or_recipient_public": public,
            "abroad": abroad,
            "transfer_mechanism": flow.transfer_mechanism,
            "entrustment_contract": flow.entrustment_contract,
            "opt_out": flow.opt_out,
            # The person behind the flow's consent turned personalised push off (a rights request).
            "subject_opted_out": bool(cv is not None and cv.subject in opted_out)
            or (flow.consent_subject is not None and flow.consent_subject in opted_out),
            "significant_impact": flow.significant_impact,
            "purpose_is_push": push,
            "purpose_alone_insufficient": alone,
            "beyond_purpose": beyond_purpose,
            "beyond_necessary": beyond_necessary,
            "optional": flow.optional,
            "retention_declared": flow.retention_days is not None or flow.retention_until is not None,
            "retention_expired": flow.retention_expired,
            "needs_impact_assessment": bool(sensitive)
            or flow.activity == "automated_decision"
            or rk in _IA_RECIPIENTS
            or public
            or abroad,
            "impact_assessment": flow.impact_assessment,
            "source_kind": flow.source_kind,
            "provenance_known": flow.source_provenance is not None,
            "subject_refused": flow.subject_refused,
            "disclosed": flow.disclosed,
            "purpose_shown_at_request": flow.purpose_shown_at_request,
            "channel": flow.channel,
            "app_type": doc.app_type,
        }
        for k, v in doc.app.items():
            facts[f"app.{k}"] = v
        return facts

    @staticmethod
    def _reason(rule: packs.Rule, detail: tuple[str, ...], app_type: int | None) -> Reason:
        en, zh = rule.en, rule.zh
        if rule.detail:
            en = f"{en}: {', '.join(detail)}"
            zh = f"{zh}：{'、'.join(detail)}"
        article = rule.article.format(app_type=app_type) if "{" in rule.article else rule.article
        return Reason(rule.id, rule.source, article, rule.severity, en, zh)

    def _passport_views(self, doc: FlowsDoc) -> dict[tuple[str, tuple[str, ...]], PassportView]:
        wanted = list(dict.fromkeys((f.passport, f.passport_data) for f in doc.flows if f.passport))
        if wanted and self.passports is None:
            f = next(f for f in doc.flows if f.passport)
            raise FlowsError(
                [f"{doc.path}:{f.line}: flow {f.id!r} names a dataset passport: pass --trust KEYS"]
            )
        source = self.passports
        return {w: source.passport(*w) for w in wanted} if source is not None else {}

    def decide(
        self, doc: FlowsDoc, flow: Flow, facts: dict[str, Any] | None, matcher: Any = None
    ) -> Decision:
        if facts is None:
            return Decision(flow.id, "allow", [], flow.line)
        reasons: list[Reason] = []
        worst = 0
        for rule in (matcher or self.matchers[flow.activity])(facts):
            detail = tuple(facts[rule.detail]) if rule.detail else ()
            key = (rule.id, detail, facts["app_type"])
            reason = self._reasons.get(key)
            if reason is None:
                reason = self._reason(rule, detail, facts["app_type"])
                if len(self._reasons) < 100_000:
                    self._reasons[key] = reason
            reasons.append(reason)
            if worst < 2:
                worst = 2 if rule.severity == "deny" else 1
        verdict = ("allow", "warn", "deny")[worst]
        return Decision(flow.id, verdict, reasons, flow.line)

    def evaluate(self, doc: FlowsDoc) -> list[Decision]:
        """One decision per flow, in file order; FlowsError for references the ledger cannot resolve."""
        by_id, by_sub, _ = self._resolve(doc)
        opted_out = self._opted_out(doc, by_id)
        views = self._passport_views(doc)
        if doc.extra_purposes is not self._extra:
            # Cached facts depend on the purposes a ledger declares; a document with others starts afresh.
            self._cache.clear()
            self._extra = doc.extra_purposes
        out = []
        for flow in doc.flows:
            # Anonymized data, or data with nothing personal in it, is not personal information (Art. 4, 73).
            personal = not flow.anonymized and any(e in self.personal for e in flow.data)
            facts = self.facts(doc, flow, by_id, by_sub, opted_out) if personal else None
            if flow.passport:
                pf = _passport_facts(doc, flow, views[(flow.passport, flow.passport_data)])
                if facts is None:  # the passport's rules still apply: an unproven anonymization is not one
                    out.append(self.decide(doc, flow, {"activity": flow.activity, "app_type": None, **pf},
                                           _passport_matcher()))  # fmt: skip
                    continue
                facts.update(pf)
            out.append(self.decide(doc, flow, facts))
        return out


def check(doc: FlowsDoc, ledger: ConsentSource | None = None) -> list[Decision]:
    return Engine(ledger).evaluate(doc)


def summary(decisions: list[Decision]) -> dict[str, int]:
    out = {"allow": 0, "warn": 0, "deny": 0}
    for d in decisions:
        out[d.verdict] += 1
    return out

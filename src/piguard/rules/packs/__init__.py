"""Rule packs: the legal rules piguard enforces, loaded from the YAML files in ``packs/``.

Each rule names its source and article, carries zh/en text and a ``when`` list of conditions over a flow's
facts. Conditions are compiled once into plain Python predicates so a check costs microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from piguard import taxonomy

Facts = dict[str, Any]
Predicate = Callable[[Facts], bool]

# Every fact a condition may name, with its meaning (docs/rules.md repeats this list).
FACTS: dict[str, str] = {
    "activity": "collect | use | provide | publish | transfer_abroad | retain | automated_decision",
    "legal_basis": "PIPL Art. 13 basis, or 'none' when not declared",
    "consent_kind": "none | bundled | explicit | separate | guardian (from the flow or the ledger)",
    "consent_withdrawn": "the ledger consent the flow relies on was withdrawn",
    "consent_out_of_scope": "purposes, data or recipients the ledger consent does not cover",
    "valid_consent": "explicit, separate or guardian consent, not withdrawn, covering the flow",
    "sensitive": "sensitive entity ids in the flow (PIPL Art. 28; children's data counts)",
    "minors_under_14": "subjects may be children under 14",
    "recipient_kind": "self | processor | third_party | public | abroad",
    "activity_or_recipient_public": "the flow publishes the data",
    "abroad": "the data leaves the PRC",
    "transfer_mechanism": "security_assessment | certification | standard_contract | none",
    "entrustment_contract": "a contract binds the entrusted processor (Art. 21)",
    "opt_out": "automated decisions: the individual can refuse / a non-personalised option exists",
    "subject_opted_out": "the person behind the flow's consent turned personalised push off (rights request)",
    "significant_impact": "automated decision with significant impact on the individual",
    "purpose_is_push": "a purpose is information push or marketing",
    "purpose_alone_insufficient": "every purpose is one that cannot justify collection alone (C4.5)",
    "beyond_purpose": "entity ids the declared purposes do not need",
    "beyond_necessary": "entity ids outside the app type's necessary scope (2021)",
    "optional": "the user can refuse this collection and still use the basic function",
    "retention_declared": "a retention period is declared",
    "retention_expired": "the declared retention has expired or the purpose is achieved",
    "needs_impact_assessment": "Art. 55: sensitive, automated decision, entrusted, provided, public, abroad",
    "impact_assessment": "a PI protection impact assessment was done",
    "source_kind": "subject | public | supplier | derived",
    "provenance_known": "the source has a provenance record (ledger dataset or declared reference)",
    "subject_refused": "the individual explicitly refused processing of their public information",
    "disclosed": "the privacy policy lists this flow's purpose, method and scope",
    "purpose_shown_at_request": "the purpose is shown when the data or permission is requested",
    "channel": "how data reaches a recipient: server | sdk | third_party_app",
    "app_type": "the 2021 app type number, or None",
    "app.privacy_policy": "the app has a privacy policy with collection rules",
    "app.policy_prompt_on_first_run": "the policy is prompted on first run",
    "app.clicks_to_policy": "taps from the main screen to the policy",
    "app.policy_in_simplified_chinese": "a simplified-Chinese policy exists",
    "app.collects_before_consent": "collection or permissions start before consent",
    "app.consent_preticked": "consent is a pre-ticked box",
    "app.withdraw_channel": "a way to withdraw consent exists",
    "app.permissions_all_at_once": "several permissions must be granted at once to use the app",
    "app.deletion_and_cancellation": "correction, deletion and account cancellation functions exist",
    "app.request_response_days": "working days to handle correction/deletion/cancellation requests",
    "app.complaint_channel": "a complaint and report channel is published",
    "passport_problems": "why the flow's dataset passport fails verification (empty when it verifies)",
    "passport_purpose_not_permitted": "the flow's purposes that its dataset passport does not permit",
    "passport_recipient_not_permitted": "who receives the data (the recipient, or the controller itself) "
    "when the passport does not permit it",
    "passport_state_not_anonymized": "the state the flow's passport declares (raw or pseudonymized) when the "
    "flow treats the data as anonymized",
    "app.change_notice_declared": "the policy says how users are told of changes to it (app audit)",
    "app.deletion_conditions_unreasonable": "the policy sets needless conditions on deletion or cancellation",
}

_PACK_FILES = ("pipl.yaml", "app_2019.yaml", "necessary_2021.yaml", "passport.yaml")
SEVERITIES = ("deny", "warn")
SEVERITY_RANK = {"allow": 0, "warn": 1, "deny": 2}


class PackError(ValueError):
    """A rule pack is malformed (a bug in the package data, caught by tests)."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    source: str
    article: str
    severity: str
    en: str
    zh: str
    decidable: bool
    needs: str | None
    when: tuple[dict[str, Any], ...]
    detail: str | None
    pack: str
    predicate: Predicate = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AppType:
    no: int
    zh: str
    en: str
    necessary: frozenset[str]
    necessary_zh: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Purpose:
    id: str
    zh: str
    en: str
    needs: frozenset[str] | None  # None: unknown needs (a ledger purpose without categories)
    alone_insufficient: bool = False
    push: bool = False


def _compile_condition(cond: dict[str, Any], where: str) -> Predicate:
    if "fact" not in cond or len(cond) != 2:
        raise PackError(f"{where}: a condition is {{fact: NAME, OP: VALUE}}, got {cond!r}")
    name = cond["fact"]
    if name not in FACTS:
        raise PackError(f"{where}: unknown fact {name!r}")
    ((op, val),) = ((k, v) for k, v in cond.items() if k != "fact")
    if op == "eq":
        return lambda f: f.get(name) == val
    if op == "ne":
        return lambda f: f.get(name) != val
    if op == "in":
        s = frozenset(val)
        return lambda f: f.get(name) in s
    if op == "not_in":
        s = frozenset(val)
        return lambda f: f.get(name) not in s
    if op == "is":
        if not isinstance(val, bool):
            raise PackError(f"{where}: 'is' takes true or false")
        # Strict: an undeclared fact (None) never matches 'is: false'.
        return (lambda f: f.get(name) is True) if val else (lambda f: f.get(name) is False)
    if op == "gt":
        return lambda f: (v := f.get(name)) is not None and v > val
    if op == "nonempty":
        return (lambda f: bool(f.get(name))) if val else (lambda f: not f.get(name))
    raise PackError(f"{where}: unknown operator {op!r} (eq, ne, in, not_in, is, gt, nonempty)")


def condition_source(cond: dict[str, Any], consts: dict[str, Any]) -> str:
    """The condition as a Python expression over ``g`` (the facts' ``get``); constants go into ``consts``.
    Only validated fact names and operators reach here (``_compile_condition`` runs first)."""
    name = repr(cond["fact"])
    ((op, val),) = ((k, v) for k, v in cond.items() if k != "fact")
    c = f"_c{len(consts)}"
    consts[c] = frozenset(val) if op in ("in", "not_in") else val
    return {
        "eq": f"g({name}) == {c}",
        "ne": f"g({name}) != {c}",
        "in": f"g({name}) in {c}",
        "not_in": f"g({name}) not in {c}",
        "is": f"g({name}) is {bool(val)}",
        "gt": f"((_v := g({name})) is not None and _v > {c})",
        "nonempty": f"bool(g({name}))" if val else f"not g({name})",
    }[op]


def compile_matcher(rule_list: tuple[Rule, ...]) -> Callable[[Facts], list[Rule]]:
    """One generated function testing every rule in turn, with short-circuit conditions: several times
    faster than calling a closure per condition, which matters at tens of thousands of checks a second."""
    consts: dict[str, Any] = {}
    lines = ["def _match(f):", "    g = f.get", "    out = []"]
    for i, rule in enumerate(rule_list):
        consts[f"_r{i}"] = rule
        expr = " and ".join(f"({condition_source(c, consts)})" for c in rule.when) or "True"
        lines.append(f"    if {expr}: out.append(_r{i})")
    lines.append("    return out")
    namespace: dict[str, Any] = dict(consts)
    exec(compile("\n".join(lines), "<piguard rule matcher>", "exec"), namespace)
    return namespace["_match"]  # type: ignore[no-any-return]


def _compile(conds: list[Predicate]) -> Predicate:
    if not conds:
        return lambda f: True
    if len(conds) == 1:
        return conds[0]
    return lambda f: all(c(f) for c in conds)


def _read(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(name).read_text("utf-8")
    return yaml.safe_load(text)


@cache
def rules() -> tuple[Rule, ...]:
    """All rules of all packs, in pack order."""
    out: list[Rule] = []
    seen: set[str] = set()
    for fname in _PACK_FILES:
        doc = _read(fname)
        for raw in doc.get("rules", []):
            rid = raw.get("id")
            where = f"packs/{fname} rule {rid}"
            if not rid or rid in seen:
                raise PackError(f"{where}: missing or duplicate id")
            seen.add(rid)
            for key in ("article", "severity", "en", "zh"):
                if not raw.get(key):
                    raise PackError(f"{where}: missing {key}")
            if raw["severity"] not in SEVERITIES:
                raise PackError(f"{where}: severity must be one of {SEVERITIES}")
            decidable = raw.get("decidable", True)
            when = tuple(raw.get("when") or ())
            if decidable and not when:
                raise PackError(f"{where}: a decidable rule needs a 'when'")
            if not decidable and raw.get("needs") not in ("app_audit", "runtime_evidence"):
                raise PackError(f"{where}: a rule that is not decidable says what it needs")
            preds = [_compile_condition(c, where) for c in when]
            out.append(
                Rule(
                    id=rid, source=raw.get("source", doc["source"]), article=str(raw["article"]),
                    severity=raw["severity"], en=" ".join(raw["en"].split()), zh=raw["zh"].strip(),
                    decidable=decidable, needs=raw.get("needs"), when=when, detail=raw.get("detail"),
                    pack=fname, predicate=_compile(preds),
                )
            )  # fmt: skip
    return tuple(out)


def decidable_rules() -> tuple[Rule, ...]:
    return tuple(r for r in rules() if r.decidable)


@cache
def app_types() -> dict[int, AppType]:
    doc = _read("necessary_2021.yaml")
    known = taxonomy.entities()
    out: dict[int, AppType] = {}
    for t in doc["app_types"]:
        bad = [e for e in t["necessary"] if e not in known]
        if bad:
            raise PackError(f"packs/necessary_2021.yaml type {t['number']}: unknown entity ids {bad}")
        out[int(t["number"])] = AppType(
            no=int(t["number"]), zh=t["zh"], en=t["en"], necessary=frozenset(t["necessary"]),
            necessary_zh=tuple(t["necessary_zh"]),
        )  # fmt: skip
    return out


@cache
def app_type_names() -> dict[str, int]:
    """Chinese and English names (and the number as text) to the type number."""
    out: dict[str, int] = {}
    for t in app_types().values():
        out[t.zh] = t.no
        out[t.zh.removesuffix("类")] = t.no
        out[t.en] = t.no
        out[str(t.no)] = t.no
    return out


@cache
def purposes() -> dict[str, Purpose]:
    doc = _read("purposes.yaml")
    known = taxonomy.entities()
    out: dict[str, Purpose] = {}
    for p in doc["purposes"]:
        # needs: null is a purpose whose needs nobody declared (an app audit's "purpose not stated").
        bad = [e for e in p["needs"] or () if e not in known]
        if bad:
            raise PackError(f"packs/purposes.yaml purpose {p['id']}: unknown entity ids {bad}")
        out[p["id"]] = Purpose(
            id=p["id"], zh=p["zh"], en=p["en"],
            needs=frozenset(p["needs"]) if p["needs"] is not None else None,
            alone_insufficient=bool(p.get("alone_insufficient")), push=bool(p.get("push")),
        )  # fmt: skip
    return out

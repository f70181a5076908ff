"""The app audit: APK and policy facts become a flows document (the ``app:`` block, ``collect`` flows for
what the app reads, ``provide`` flows for what its SDKs take), the rule engine decides it, and every item of
the 2019 method and the 2021 scope comes back with a verdict, its evidence and its citation.

A verdict is ``violation`` when the engine's rule fires, ``ok`` when the facts the rule needs were all
established and it did not fire, and ``undecidable`` otherwise, with what evidence would decide it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from piguard.apps.apk import ApkFacts, AppInputError, read_apk, read_bundled
from piguard.apps.policy import PolicyError, PolicyFacts, analyse, policy_text, read_policy
from piguard.rules import Engine, packs, parse_flows

# Facts the flow structure fixes (which flows exist), as opposed to facts the audit must establish.
_STRUCTURAL = frozenset(("activity", "recipient_kind", "channel", "sensitive", "app_type"))
_RUNTIME = "needs observing the app run (runtime evidence): "
UNDECIDABLE_WHY: dict[str, str] = {
    "APP2019-C1.2": _RUNTIME + "whether a pop-up prompts the policy on first run",
    "APP2019-C1.3": _RUNTIME + "the number of taps from the main screen to the policy",
    "APP2019-C2.3": _RUNTIME + "whether the purpose is shown when each permission is requested",
    "APP2019-C2.4": "readability is a reviewer's judgement; the evidence gives the policy's length and "
    "sentence lengths to support it",
    "APP2019-C3.1": "no static call path from app start to a sensitive API was found; dynamic loading, "
    "reflection or native code can still collect (runtime evidence decides)",
    "APP2019-C3.3": "needs the consents users actually gave (a ledger) to compare with what is collected",
    "APP2019-C3.4": _RUNTIME + "whether the consent box is pre-ticked",
    "APP2019-C3.6": "needs the app's recommendation settings (a non-targeted option)",
    "APP2019-C3.7": _RUNTIME + "the consent screens' wording and design",
    "APP2019-C4.3": "needs the previous version and its consent scope",
    "APP2019-C4.6": _RUNTIME + "whether permissions are requested together at start (target SDK >= 23 "
    "asks at run time)",
    "APP2019-C5.2": "needs the operator's back-end transfers (server-side evidence)",
    "APP2019-C5.3": "needs the app's integrations with other apps and what they receive",
}
POLICY_ITEMS = (
    "APP2019-C1.4",
    "APP2019-C2.1",
    "APP2019-C2.2",
    "APP2019-C3.8",
    "APP2019-C4.1",
    "APP2019-C4.5",
    "APP2019-C5.1",
    "APP2019-C6.1",
    "APP2019-C6.2",
    "APP2019-C6.3",
    "APP2019-C6.5",
    "NEC2021-BEYOND-NECESSARY",
    "APP2019-C4.2",
)


@dataclass
class AuditResult:
    app: ApkFacts
    policy: PolicyFacts | None
    policy_error: str | None
    app_type: int | None
    flows_doc: dict[str, Any]
    items: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        summary = {"violation": 0, "ok": 0, "undecidable": 0}
        for it in self.items:
            summary[it["verdict"]] += 1
        pol: dict[str, Any]
        if self.policy is not None:
            pol = self.policy.as_dict()
        else:
            pol = {
                "source": None,
                "sentences": 0,
                "declared_entities": [],
                "channels": {},
                "error": self.policy_error,
            }
        return {
            "app": self.app.as_dict(),
            "policy": pol,
            "app_type": self.app_type,
            "summary": summary,
            "items": self.items,
            "notes": self.notes,
        }

    def flows_yaml(self) -> str:
        head = (
            f"# Flows found by `piguard app audit` in {Path(self.app.path).name} ({self.app.package}).\n"
            "# Facts the audit could not establish are left out; add them (legal_basis, consent) and run\n"
            "# `piguard check` on this file.\n"
        )
        return head + yaml.safe_dump(self.flows_doc, allow_unicode=True, sort_keys=False, width=100)


def _entities_of(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _declared(entities: list[str], pf: PolicyFacts | None) -> bool | None:
    if pf is None:
        return None
    return any(e in pf.declared_entities for e in entities)


def _purposes(entities: list[str], pf: PolicyFacts | None) -> list[str]:
    out: list[str] = []
    if pf is not None:
        for e in entities:
            out.extend(p for p in pf.entity_purposes.get(e, ()) if p not in out)
    return out or ["not_stated"]


def _optional(entities: list[str], pf: PolicyFacts | None) -> bool | None:
    if pf is None:
        return None
    vals = [pf.entity_optional[e] for e in entities if e in pf.entity_optional]
    if any(vals):
        return True
    return False if vals else None


def _load_policy(app: ApkFacts, policy: str | Path | None) -> tuple[PolicyFacts | None, str | None, str]:
    """(facts, error, where the policy came from)."""
    try:
        if policy is not None:
            return analyse(read_policy(policy), str(policy)), None, str(policy)
        if app.bundled_policies:
            name = app.bundled_policies[0]
            src = f"{Path(app.path).name}!{name}"
            return analyse(policy_text(read_bundled(app.path, name), src), src), None, src
    except PolicyError as exc:
        return None, str(exc), str(policy or "")
    return None, None, ""


def build_flows(
    app: ApkFacts, pf: PolicyFacts | None, policy_error: str | None, app_type: int | None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], set[str]]:
    """The flows document, evidence per flow id, and the app-level facts the audit established."""
    evidence: dict[str, dict[str, Any]] = {}
    flows: list[dict[str, Any]] = []
    appf: dict[str, Any] = {}
    known: set[str] = set()
    packed = app.packer is not None

    # C1.1 / C1.4 and the policy's own declarations.
    if pf is not None:
        appf["privacy_policy"] = pf.has_collection_rules
        appf["policy_in_simplified_chinese"] = pf.script == "simplified"
        ch = pf.channels
        appf["withdraw_channel"] = bool(ch.get("withdraw"))
        appf["deletion_and_cancellation"] = all(ch.get(k) for k in ("deletion", "correction", "cancellation"))
        appf["complaint_channel"] = bool(ch.get("complaint"))
        appf["change_notice_declared"] = bool(pf.change_notice)
        appf["deletion_conditions_unreasonable"] = bool(pf.unreasonable_conditions)
        wd = pf.max_response_working_days
        if wd is not None:
            appf["request_response_days"] = math.ceil(wd)
    elif policy_error is None and app.policy_strings == 0:
        # No policy given, none bundled, and the code never names one: static evidence of no policy.
        appf["privacy_policy"] = False
    # C3.1: a sensitive API reachable from code that runs before any screen.
    early = [s for s in app.sensitive_apis if (s.get("reachable") or {}).get("from") == "application"]
    if early:
        appf["collects_before_consent"] = True
    # C4.6: below target SDK 23 Android grants every dangerous permission at install, all at once.
    dangerous = [p for p in app.permissions if p["dangerous"]]
    if app.target_sdk is not None and app.target_sdk < 23 and len(dangerous) >= 2:
        appf["permissions_all_at_once"] = True
    known.update(f"app.{k}" for k in appf)

    def add(fid: str, activity: str, data: list[str], ev: dict[str, Any], **extra: Any) -> None:
        data = _entities_of(data)
        if not data:
            return
        flow: dict[str, Any] = {"id": fid, "activity": activity, "data": data, "purpose": _purposes(data, pf)}
        flow_known = set()
        disclosed = _declared(data, pf) if "disclosed" not in extra else extra.pop("disclosed")
        if disclosed is not None:
            flow["disclosed"] = disclosed
            flow_known.add("disclosed")
        opt = _optional(data, pf)
        if opt is not None:
            flow["optional"] = opt
            flow_known.add("optional")
        if flow["purpose"] != ["not_stated"]:
            flow_known.update(("beyond_purpose", "purpose_alone_insufficient"))
        if app_type is not None and activity == "collect":
            flow_known.add("beyond_necessary")
        flow.update(extra)
        if "consent" in extra:
            flow_known.add("valid_consent")
        flows.append(flow)
        evidence[fid] = {"evidence": ev, "known": flow_known}

    # Permissions, one flow per permission group.
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in app.permissions:
        if p["entities"]:
            groups.setdefault(p["group"] or p["name"].rsplit(".", 1)[-1], []).append(p)
    for g, perms in groups.items():
        ents = [e for p in perms for e in p["entities"]]
        declared = None
        if pf is not None:
            declared = g in pf.declared_groups or any(e in pf.declared_entities for e in ents)
        add(
            f"permission-{g.lower()}",
            "collect",
            ents,
            {
                "kind": "permission",
                "permissions": [p["name"] for p in perms],
                "pi_zh": perms[0]["pi_zh"],
                "cite": perms[0]["cite"],
            },
            disclosed=declared,
        )
    # Sensitive API uses, one flow per kind.
    for s in app.sensitive_apis:
        declared = None
        if pf is not None:
            declared = s["kind"] in pf.declared_api_kinds or any(
                e in pf.declared_entities for e in s["entities"]
            )
            if s["kind"] in pf.denied_api_kinds and s["kind"] not in pf.declared_api_kinds:
                declared = False
        ev = {
            "kind": "sensitive_api",
            "api_kind": s["kind"],
            "apis": s["apis"][:5],
            "callers": s["callers"][:5],
            "reachable": s.get("reachable"),
        }
        add(f"api-{s['kind']}", "collect", s["entities"], ev, disclosed=declared)
    # Third-party SDKs: what each SDK's own policy says it collects goes to its vendor (C5.1).
    for sdk in app.sdks:
        named = None if pf is None else sdk["id"] in pf.sdks_named
        consent = None if named is None else ("explicit" if named else "none")
        extra: dict[str, Any] = {
            "recipient": {"kind": "third_party", "name": sdk["vendor"], "channel": "sdk"},
            "disclosed": named,
        }
        if consent is not None:
            extra["consent"] = {"kind": consent}
        add(
            f"sdk-{sdk['id']}",
            "provide",
            sdk["entities"],
            {
                "kind": "sdk",
                "sdk": sdk["name"],
                "vendor": sdk["vendor"],
                "policy": sdk["policy"],
                "example_class": sdk["example_class"],
            },
            **extra,
        )
    # What the policy itself says is collected (forms, uploads: invisible in code) counts for the 2021 scope.
    # One flow per type, so each carries its own purposes and whether the user may refuse it.
    if pf is not None:
        seen = {e for f in flows for e in f["data"]}
        for e, idx in pf.declared_entities.items():
            stated = [i for i in idx if set(pf.labels[i]) & {"collection", "permission"}]
            if e not in seen and stated:
                add(
                    f"policy-{e.lower()}",
                    "collect",
                    [e],
                    {"kind": "policy", "sentence": pf.quote(stated[0])},
                    disclosed=True,
                )
    if packed:
        known.discard("app.collects_before_consent")
    doc: dict[str, Any] = {"controller": app.package or Path(app.path).name}
    if app_type is not None:
        doc["app_type"] = app_type
    if appf:
        doc["app"] = appf
    doc["flows"] = flows
    return doc, evidence, known


def _rule_evaluable(rule: packs.Rule, facts: dict[str, Any], known: set[str]) -> bool:
    for cond in rule.when:
        name = cond["fact"]
        if name in _STRUCTURAL:
            continue
        if name not in known:
            return False
    return True


def decide(
    doc: dict[str, Any],
    evidence: dict[str, dict[str, Any]],
    known_app: set[str],
    app: ApkFacts,
    pf: PolicyFacts | None,
    policy_error: str | None,
) -> list[dict[str, Any]]:
    """Run the engine on the flows document and turn its reasons into one verdict per item."""
    parsed = parse_flows(yaml.safe_dump(doc, allow_unicode=True), "<app audit>")
    engine = Engine()
    decisions = {d.id: d for d in engine.evaluate(parsed)}
    items = []
    for rule in packs.rules():
        if rule.source not in ("APP-2019", "NECESSARY-2021"):
            continue
        fired: list[dict[str, Any]] = []
        evaluable = False
        applicable = False
        for flow in parsed.flows:
            facts = engine.facts(parsed, flow, {}, {})
            if not all(
                packs._compile_condition(c, rule.id)(facts)
                for c in rule.when
                if c["fact"] in ("activity", "recipient_kind", "channel")
            ):
                continue
            applicable = True
            known = known_app | evidence.get(flow.id, {}).get("known", set())
            if rule.decidable and _rule_evaluable(rule, facts, known):
                evaluable = True
            reasons = [r for r in decisions[flow.id].reasons if r.rule == rule.id]
            for r in reasons:
                ev = {"flow": flow.id, "message_en": r.message_en, "message_zh": r.message_zh}
                ev.update(evidence.get(flow.id, {}).get("evidence", {}))
                fired.append(ev)
        item: dict[str, Any] = {
            "source": rule.source,
            "item": rule.article if rule.source == "APP-2019" else _scope_item(parsed.app_type),
            "rule": rule.id,
            "verdict": "undecidable",
            "evidence": [],
            "message_en": rule.en,
            "message_zh": rule.zh,
        }
        if fired:
            item["verdict"] = "violation"
            item["evidence"] = _dedupe_app_level(fired, rule)
        elif rule.decidable and evaluable:
            item["verdict"] = "ok"
        elif rule.id == "APP2019-C5.1" and not app.sdks and app.packer is None and not applicable:
            item["verdict"] = "ok"
            item["evidence"] = [
                {"kind": "sdk", "note": "no third-party SDK from the catalogue found in the code"}
            ]
        else:
            item["reason"] = _why(rule, app, pf, policy_error, applicable, parsed.app_type is not None)
        _add_context(item, rule, app, pf)
        items.append(item)
    return items


def _dedupe_app_level(fired: list[dict[str, Any]], rule: packs.Rule) -> list[dict[str, Any]]:
    """App-level items fire on every collect flow; one piece of evidence says it once."""
    if any(c["fact"].startswith("app.") for c in rule.when):
        f = dict(fired[0])
        for k in (
            "flow",
            "kind",
            "permissions",
            "pi_zh",
            "cite",
            "api_kind",
            "apis",
            "callers",
            "reachable",
            "sentences",
        ):
            f.pop(k, None)
        return [f]
    return fired


def _why(
    rule: packs.Rule,
    app: ApkFacts,
    pf: PolicyFacts | None,
    policy_error: str | None,
    applicable: bool,
    typed: bool = False,
) -> str:
    if rule.id in UNDECIDABLE_WHY:
        why = UNDECIDABLE_WHY[rule.id]
    elif rule.needs == "runtime_evidence":
        why = "needs observing the app run (runtime evidence)"
    elif not applicable:
        why = "no flow of this kind found in the APK or the policy"
    elif rule.id == "NEC2021-BEYOND-NECESSARY" or rule.id == "APP2019-C4.2":
        # Ask only for what is missing: a user who gave --type was told to give it again.
        needs = [] if typed else ["the app type (--type N)"]
        needs.append(
            "whether the user may refuse" if pf is not None else "the privacy policy (--policy FILE)"
        )
        why = "needs " + " and ".join(needs)
    elif rule.id in ("APP2019-C4.1", "APP2019-C4.5"):
        why = (
            "the policy states no purpose for this collection (see C2.1)"
            if pf
            else "needs the privacy policy"
        )
    else:
        why = "needs the privacy policy (--policy FILE)"
    if policy_error and rule.id in POLICY_ITEMS:
        why = f"policy unreadable: {policy_error}"
    if app.packer and rule.id in ("APP2019-C2.1", "APP2019-C3.1", "APP2019-C5.1"):
        why += f"; the app is packed ({app.packer}), so its code was not all visible"
    return why


def _add_context(item: dict[str, Any], rule: packs.Rule, app: ApkFacts, pf: PolicyFacts | None) -> None:
    """Evidence for verdicts the engine reached on app-level facts, so an 'ok' shows what it rests on."""
    ev = item["evidence"]
    if rule.id == "APP2019-C3.1":
        for s in app.sensitive_apis:
            r = s.get("reachable")
            if r:
                ev.append(
                    {
                        "kind": "sensitive_api",
                        "api_kind": s["kind"],
                        "from": r["from"],
                        "confidence": r["confidence"],
                        "path": r["path"],
                        "note": r["note"],
                    }
                )
        if item["verdict"] == "violation":
            item["confidence"] = "medium"
    elif rule.id == "APP2019-C4.6" and item["verdict"] == "violation":
        ev.append(
            {
                "kind": "manifest",
                "target_sdk": app.target_sdk,
                "dangerous_permissions": [p["name"] for p in app.permissions if p["dangerous"]],
                "note": "apps targeting SDK < 23 get every dangerous permission granted at install",
            }
        )
    elif pf is not None and rule.id == "APP2019-C6.3":
        ev.extend({"kind": "policy", **d} for d in pf.response_days[:3])
    elif pf is not None and rule.id == "APP2019-C6.2":
        ev.extend({"kind": "policy", **d} for d in pf.unreasonable_conditions[:3])
    elif pf is not None and rule.id in ("APP2019-C6.1", "APP2019-C6.5", "APP2019-C3.8"):
        keys = {
            "APP2019-C6.1": ("deletion", "correction", "cancellation"),
            "APP2019-C6.5": ("complaint",),
            "APP2019-C3.8": ("withdraw",),
        }[rule.id]
        for k in keys:
            idx = pf.channels.get(k)
            ev.append(
                {
                    "kind": "policy",
                    "channel": k,
                    "found": bool(idx),
                    "sentence": pf.quote(idx[0]) if idx else None,
                }
            )
    elif pf is not None and rule.id == "APP2019-C2.2":
        ev.append(
            {
                "kind": "policy",
                "found": bool(pf.change_notice),
                "sentence": pf.quote(pf.change_notice[0]) if pf.change_notice else None,
                "cite": "App违法违规收集使用个人信息自评估指南 (2020) 评估点18",
            }
        )
    elif pf is not None and rule.id == "APP2019-C2.4":
        lens = sorted(len(s) for s in pf.sentences)
        ev.append(
            {
                "kind": "policy",
                "sentences": len(lens),
                "characters": sum(lens),
                "median_sentence_chars": lens[len(lens) // 2],
            }
        )
    elif pf is not None and rule.id == "APP2019-C4.5" and pf.bundled_consent:
        ev.append(
            {"kind": "policy", "bundled_consent_wording": [pf.quote(i) for i in pf.bundled_consent[:3]]}
        )
    elif rule.id == "APP2019-C1.1" and pf is None:
        ev.append(
            {
                "kind": "apk",
                "bundled_policies": app.bundled_policies,
                "code_strings_naming_a_policy": app.policy_strings,
            }
        )


def audit(
    apk_path: str | Path,
    *,
    policy: str | Path | None = None,
    app_type: int | str | None = None,
    workers: int = 1,
) -> AuditResult:
    """Audit one APK (and its policy); ``AppInputError`` for a file that is not a readable APK."""
    t = _app_type(app_type)
    app = read_apk(apk_path, workers=workers)
    pf, perr, _ = _load_policy(app, policy)
    doc, evidence, known = build_flows(app, pf, perr, t)
    notes = list(app.notes)
    if perr:
        notes.append(perr)
    if not doc["flows"]:
        notes.append(
            "no personal information found in the APK or the policy: app-level items are undecidable"
        )
        items = _all_undecidable(app, pf, perr)
    else:
        items = decide(doc, evidence, known, app, pf, perr)
    return AuditResult(
        app=app, policy=pf, policy_error=perr, app_type=t, flows_doc=doc, items=items, notes=notes
    )


def _all_undecidable(app: ApkFacts, pf: PolicyFacts | None, perr: str | None) -> list[dict[str, Any]]:
    out = []
    for rule in packs.rules():
        if rule.source in ("APP-2019", "NECESSARY-2021"):
            out.append(
                {
                    "source": rule.source,
                    "item": rule.article if rule.source == "APP-2019" else _scope_item(None),
                    "rule": rule.id,
                    "verdict": "undecidable",
                    "evidence": [],
                    "message_en": rule.en,
                    "message_zh": rule.zh,
                    "reason": "no personal information collection found (statically) to check",
                }
            )
    return out


def _scope_item(app_type: int | None) -> str:
    """The 2021 scope's item is the app type number (Art. 5), when the audit was told it."""
    return str(app_type) if app_type is not None else "app type not given"


def _app_type(value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    t = packs.app_type_names().get(str(value).strip())
    if t is None:
        raise AppInputError(
            f"--type {value!r} is not one of the 39 app types (1-39 or a name like 网络借贷类)"
        )
    return t

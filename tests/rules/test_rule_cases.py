"""Every decidable rule in the packs fires on one flow and stays quiet on a minimally different one.

``BASE_FLOW`` is a lawful collection flow; for each rule, CASES patches it once to make the rule fire and
once, minimally differently, to keep it quiet. Cases with ``ledger`` use consents recorded in a real
SQLite ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from piguard.ledger import Ledger
from piguard.rules import Engine, packs, parse_flows

BASE_FLOW: dict[str, Any] = {
    "id": "f",
    "activity": "collect",
    "data": ["PHONE_NUMBER"],
    "purpose": "account_registration",
    "legal_basis": "consent",
    "consent": {"kind": "separate"},
    "retention": {"days": 30},
    "impact_assessment": True,
    "disclosed": True,
    "purpose_shown_at_request": True,
}

PAY = {"data": ["BANK_CARD"], "purpose": "payment"}
PROVIDE = {"activity": "provide", "recipient": {"kind": "third_party", "name": "R"}}
AD = {"activity": "automated_decision", "retention": None}

# rule id -> (fire patch, quiet patch); a patch may hold "flow" (merged into BASE_FLOW; None deletes a key),
# "app" (the app block), "app_type", and "ledger" ("scope_other" | "scope_ok" | "withdrawn" | "active").
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "PIPL-13-NO-BASIS": (
        {"flow": {"legal_basis": None, "consent": None}},
        {"flow": {"legal_basis": "contract"}},
    ),
    "PIPL-14-NO-CONSENT": (
        {"flow": {"consent": {"kind": "none"}}},
        {"flow": {"consent": {"kind": "explicit"}}},
    ),
    "PIPL-14-BUNDLED": (
        {"flow": {"consent": {"kind": "bundled"}}},
        {"flow": {"consent": {"kind": "explicit"}}},
    ),
    "PIPL-14-SCOPE": ({"ledger": "scope_other"}, {"ledger": "scope_ok"}),
    "PIPL-15-WITHDRAWN": ({"ledger": "withdrawn"}, {"ledger": "active"}),
    "PIPL-47-DELETE-AFTER-WITHDRAWAL": (
        {"ledger": "withdrawn", "flow": {"activity": "retain"}},
        {"ledger": "active", "flow": {"activity": "retain"}},
    ),
    "PIPL-47-RETENTION-EXPIRED": (
        {"flow": {"activity": "retain", "retention": {"days": 30, "expired": True}}},
        {"flow": {"activity": "retain", "retention": {"days": 30, "expired": False}}},
    ),
    "PIPL-19-NO-RETENTION": (
        {"flow": {"retention": None}},
        {"flow": {"retention": {"until": "account_closed"}}},
    ),
    "PIPL-6-MINIMUM": ({"flow": {"data": ["PHONE_NUMBER", "INCOME"]}}, {"flow": {"data": ["PHONE_NUMBER"]}}),
    "PIPL-28-SPECIFIC-PURPOSE": (
        {"flow": {"data": ["FACE_IMAGE"], "purpose": "improve_user_experience", "optional": True}},
        {"flow": {"data": ["FACE_IMAGE"], "purpose": "identity_verification"}},
    ),
    "PIPL-29-SEPARATE-SENSITIVE": (
        {"flow": {**PAY, "consent": {"kind": "explicit"}}},
        {"flow": {**PAY, "consent": {"kind": "separate"}}},
    ),
    "PIPL-31-MINORS": (
        {"flow": {"subjects": {"minors_under_14": True}}},
        {"flow": {"subjects": {"minors_under_14": True}, "consent": {"kind": "guardian"}}},
    ),
    "PIPL-21-ENTRUSTMENT": (
        {"flow": {"activity": "use", "recipient": {"kind": "processor"}}},
        {"flow": {"activity": "use", "recipient": {"kind": "processor"}, "entrustment_contract": True}},
    ),
    "PIPL-23-SEPARATE-PROVISION": (
        {"flow": {**PROVIDE, "consent": {"kind": "explicit"}}},
        {"flow": {**PROVIDE}},
    ),
    "PIPL-25-SEPARATE-PUBLIC": (
        {"flow": {"activity": "publish", "consent": {"kind": "explicit"}}},
        {"flow": {"activity": "publish"}},
    ),
    "PIPL-38-TRANSFER-MECHANISM": (
        {"flow": {"activity": "transfer_abroad"}},
        {"flow": {"activity": "transfer_abroad", "transfer_mechanism": "standard_contract"}},
    ),
    "PIPL-39-SEPARATE-ABROAD": (
        {
            "flow": {
                "activity": "transfer_abroad",
                "consent": {"kind": "explicit"},
                "transfer_mechanism": "certification",
            }
        },
        {"flow": {"activity": "transfer_abroad", "transfer_mechanism": "certification"}},
    ),
    "PIPL-24-PUSH-OPT-OUT": (
        {"flow": {**AD, "purpose": "marketing", "opt_out": False}},
        {"flow": {**AD, "purpose": "marketing", "opt_out": True}},
    ),
    "PIPL-24-SUBJECT-OPTED-OUT": (
        {"ledger": "push_off", "flow": {**AD, "purpose": "marketing", "opt_out": True}},
        {"ledger": "push_on", "flow": {**AD, "purpose": "marketing", "opt_out": True}},
    ),
    "PIPL-24-SIGNIFICANT-DECISION": (
        {"flow": {**AD, "significant_impact": True, "opt_out": False}},
        {"flow": {**AD, "significant_impact": True, "opt_out": True}},
    ),
    "PIPL-55-IMPACT-ASSESSMENT": ({"flow": {**PAY, "impact_assessment": False}}, {"flow": {**PAY}}),
    "PIPL-10-UNVERIFIED-SOURCE": (
        {"flow": {"source": {"kind": "supplier"}}},
        {"flow": {"source": {"kind": "supplier", "provenance": "ds-1"}}},
    ),
    "PIPL-27-PUBLIC-REFUSED": (
        {"flow": {"legal_basis": "public_disclosed", "source": {"kind": "public", "subject_refused": True}}},
        {"flow": {"legal_basis": "public_disclosed", "source": {"kind": "public", "subject_refused": False}}},
    ),
    "APP2019-C1.1": ({"app": {"privacy_policy": False}}, {"app": {"privacy_policy": True}}),
    "APP2019-C1.2": (
        {"app": {"policy_prompt_on_first_run": False}},
        {"app": {"policy_prompt_on_first_run": True}},
    ),
    "APP2019-C1.3": ({"app": {"clicks_to_policy": 5}}, {"app": {"clicks_to_policy": 4}}),
    "APP2019-C1.4": (
        {"app": {"policy_in_simplified_chinese": False}},
        {"app": {"policy_in_simplified_chinese": True}},
    ),
    "APP2019-C2.1": ({"flow": {"disclosed": False}}, {"flow": {"disclosed": True}}),
    "APP2019-C2.3": (
        {"flow": {**PAY, "purpose_shown_at_request": False}},
        {"flow": {**PAY, "purpose_shown_at_request": True}},
    ),
    "APP2019-C3.1": ({"app": {"collects_before_consent": True}}, {"app": {"collects_before_consent": False}}),
    "APP2019-C3.3": ({"ledger": "scope_other"}, {"ledger": "scope_ok"}),
    "APP2019-C3.4": ({"app": {"consent_preticked": True}}, {"app": {"consent_preticked": False}}),
    "APP2019-C3.6": (
        {"flow": {**AD, "purpose": "personalized_recommendation", "data": ["DEVICE_ID"], "opt_out": False}},
        {"flow": {**AD, "purpose": "personalized_recommendation", "data": ["DEVICE_ID"], "opt_out": True}},
    ),
    "APP2019-C3.8": ({"app": {"withdraw_channel": False}}, {"app": {"withdraw_channel": True}}),
    "APP2019-C4.1": ({"flow": {"data": ["PHONE_NUMBER", "CALL_LOG"]}}, {"flow": {"data": ["PHONE_NUMBER"]}}),
    "APP2019-C4.2": (
        {"app_type": 12, "flow": {"data": ["PHONE_NUMBER", "CONTACT_LIST"], "optional": False}},
        {"app_type": 12, "flow": {"data": ["PHONE_NUMBER", "CONTACT_LIST"], "optional": True}},
    ),
    "APP2019-C4.5": (
        {"flow": {"data": ["DEVICE_ID"], "purpose": "research_development"}},
        {"flow": {"data": ["DEVICE_ID"], "purpose": "research_development", "optional": True}},
    ),
    "APP2019-C4.6": ({"app": {"permissions_all_at_once": True}}, {"app": {"permissions_all_at_once": False}}),
    "APP2019-C5.1": (
        {
            "flow": {
                **PROVIDE,
                "recipient": {"kind": "third_party", "name": "R", "channel": "sdk"},
                "consent": {"kind": "bundled"},
            }
        },
        {"flow": {**PROVIDE, "recipient": {"kind": "third_party", "name": "R", "channel": "sdk"}}},
    ),
    "APP2019-C5.2": ({"flow": {**PROVIDE, "consent": {"kind": "none"}}}, {"flow": {**PROVIDE}}),
    "APP2019-C5.3": (
        {
            "flow": {
                **PROVIDE,
                "recipient": {"kind": "third_party", "channel": "third_party_app"},
                "legal_basis": "contract",
                "consent": None,
            }
        },
        {"flow": {**PROVIDE, "recipient": {"kind": "third_party", "channel": "third_party_app"}}},
    ),
    "APP2019-C6.1": (
        {"app": {"deletion_and_cancellation": False}},
        {"app": {"deletion_and_cancellation": True}},
    ),
    "APP2019-C6.3": ({"app": {"request_response_days": 16}}, {"app": {"request_response_days": 15}}),
    "APP2019-C6.5": ({"app": {"complaint_channel": False}}, {"app": {"complaint_channel": True}}),
    "APP2019-C2.2": ({"app": {"change_notice_declared": False}}, {"app": {"change_notice_declared": True}}),
    "APP2019-C6.2": (
        {"app": {"deletion_conditions_unreasonable": True}},
        {"app": {"deletion_conditions_unreasonable": False}},
    ),
    "NEC2021-BEYOND-NECESSARY": (
        {
            "app_type": "网络借贷类",
            "flow": {
                "data": ["PHONE_NUMBER", "PRECISE_LOCATION"],
                "purpose": ["loan_application", "navigation"],
            },
        },
        {
            "app_type": "网络借贷类",
            "flow": {
                "data": ["PHONE_NUMBER", "PRECISE_LOCATION"],
                "purpose": ["loan_application", "navigation"],
                "optional": True,
            },
        },
    ),
    # Dataset passports (piguard passport), real ones: see the ``passports`` fixture.
    "PASSPORT-10-UNVERIFIED": ({"passport": "forged"}, {"passport": "valid"}),
    "PASSPORT-14-PURPOSE": (
        {"passport": "valid", "flow": {"activity": "use", "purpose": "marketing"}},
        {"passport": "valid", "flow": {"activity": "use"}},
    ),
    "PASSPORT-23-RECIPIENT": (
        {"passport": "valid", "flow": {**PROVIDE, "recipient": {"kind": "third_party", "name": "Other"}}},
        {"passport": "valid", "flow": PROVIDE},
    ),
    # The valid passport declares its data raw; calling that data anonymized is what the rule denies.
    "PASSPORT-73-NOT-ANONYMIZED": (
        {"passport": "valid", "flow": {"activity": "use", "anonymized": True}},
        {"passport": "valid", "flow": {"activity": "use", "anonymized": False}},
    ),
}


def build(patch: dict[str, Any]) -> dict[str, Any]:
    flow = dict(BASE_FLOW)
    for k, v in patch.get("flow", {}).items():
        if v is None:
            flow.pop(k, None)
        else:
            flow[k] = v
    doc: dict[str, Any] = {"controller": "测试公司", "flows": [flow]}
    if "app" in patch:
        doc["app"] = patch["app"]
    if "app_type" in patch:
        doc["app_type"] = patch["app_type"]
    return doc


LEDGER_REFS = {
    "scope_ok": "consent-ok",
    "scope_other": "consent-other",
    "withdrawn": "consent-w",
    "active": "consent-ok",
    "push_off": "consent-push-off",
    "push_on": "consent-push-on",
}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    led = Ledger.open(str(Path(tmp_path_factory.mktemp("ledger")) / "l.db"))
    subject = led.pseudonymise("13812345678", create=True)
    common = {"subject_id": subject, "kind": "separate", "categories": ["PHONE_NUMBER"]}
    led.record_consent(consent_id="consent-ok", purposes=["account_registration"], **common)
    led.record_consent(consent_id="consent-other", purposes=["marketing"], **common)
    led.record_consent(consent_id="consent-w", purposes=["account_registration"], **common)
    led.withdraw_consent("consent-w")
    # Two people who agreed to marketing; one later turned personalised push off through a rights request
    # (piguard serve keeps that in rights_preferences beside the ledger).
    off = led.pseudonymise("13900000000", create=True)
    on = led.pseudonymise("13700000000", create=True)
    push = {"kind": "separate", "categories": ["PHONE_NUMBER"], "purposes": ["marketing"]}
    led.record_consent(consent_id="consent-push-off", subject_id=off, **push)
    led.record_consent(consent_id="consent-push-on", subject_id=on, **push)
    with led.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rights_preferences (subject, personalization, targeted_push, updated_at) "
                "VALUES (:s, :p, 1, CURRENT_TIMESTAMP)"
            ),
            [{"s": off, "p": False}, {"s": on, "p": True}],
        )
    return led


@pytest.fixture(scope="module")
def passports(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Any]:
    """A passport permitting account_registration for recipient R, and the same statement signed by a key
    the checker does not trust."""
    from piguard.keys import generate
    from piguard.passport import IssueRequest, issue
    from piguard.passport.check import checker

    root = Path(tmp_path_factory.mktemp("passports"))
    (root / "data.csv").write_text("城市,金额\n北京市,1\n", "utf-8")
    paths = {}
    for name in ("valid", "forged"):
        key = generate(root / name, owner=name)
        paths[name] = str(root / f"{name}.json")
        req = IssueRequest(data=[str(root / "data.csv")], key=key, out=paths[name],
                           purposes=["account_registration"], recipients=["R", "测试公司"])  # fmt: skip
        issue(req)
    return paths, checker([root / "valid.pub"])


def _decide(patch: dict[str, Any], ledger: Ledger, passports: tuple[dict[str, str], Any]) -> list[str]:
    doc = build(patch)
    if "ledger" in patch:
        doc["flows"][0]["consent"] = {"ref": LEDGER_REFS[patch["ledger"]]}
    if "passport" in patch:
        doc["flows"][0]["passport"] = passports[0][patch["passport"]]
    parsed = parse_flows(yaml.safe_dump(doc, allow_unicode=True), "case.yaml")
    engine = Engine(ledger if "ledger" in patch else None, passports[1] if "passport" in patch else None)
    (decision,) = engine.evaluate(parsed)
    return [r.rule for r in decision.reasons]


def test_base_flow_is_allowed() -> None:
    doc = parse_flows(yaml.safe_dump({"controller": "c", "flows": [BASE_FLOW]}), "base.yaml")
    assert [d.verdict for d in Engine().evaluate(doc)] == ["allow"]


def test_every_decidable_rule_has_a_case() -> None:
    ids = {r.id for r in packs.decidable_rules()}
    assert ids == set(CASES), f"missing cases: {ids - set(CASES)}; stale cases: {set(CASES) - ids}"


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires(rule_id: str, ledger: Ledger, passports: tuple[dict[str, str], Any]) -> None:
    assert rule_id in _decide(CASES[rule_id][0], ledger, passports)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_stays_quiet(rule_id: str, ledger: Ledger, passports: tuple[dict[str, str], Any]) -> None:
    assert rule_id not in _decide(CASES[rule_id][1], ledger, passports)

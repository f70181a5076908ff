"""Every decidable rule in the packs fires on one flow and stays quiet on a minimally different one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rule_cases_data import BASE_FLOW, CASES, build

from piguard.ledger import Ledger
from piguard.rules import Engine, packs, parse_flows

LEDGER_REFS = {
    "scope_ok": "consent-ok",
    "scope_other": "consent-other",
    "withdrawn": "consent-w",
    "active": "consent-ok",
}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    led = Ledger.open(str(Path(tmp_path_factory.mktemp("ledger")) / "l.db"))
    common = {"subject_id": "s_case", "kind": "separate", "categories": ["PHONE_NUMBER"]}
    led.record_consent(consent_id="consent-ok", purposes=["account_registration"], **common)
    led.record_consent(consent_id="consent-other", purposes=["marketing"], **common)
    led.record_consent(consent_id="consent-w", purposes=["account_registration"], **common)
    led.withdraw_consent("consent-w")
    return led


def _decide(patch: dict[str, Any], ledger: Ledger) -> list[str]:
    doc = build(patch)
    if "ledger" in patch:
        doc["flows"][0]["consent"] = {"ref": LEDGER_REFS[patch["ledger"]]}
    parsed = parse_flows(yaml.safe_dump(doc, allow_unicode=True), "case.yaml")
    (decision,) = Engine(ledger if "ledger" in patch else None).evaluate(parsed)
    return [r.rule for r in decision.reasons]


def test_base_flow_is_allowed() -> None:
    doc = parse_flows(yaml.safe_dump({"controller": "c", "flows": [BASE_FLOW]}), "base.yaml")
    assert [d.verdict for d in Engine().evaluate(doc)] == ["allow"]


def test_every_decidable_rule_has_a_case() -> None:
    ids = {r.id for r in packs.decidable_rules()}
    assert ids == set(CASES), f"missing cases: {ids - set(CASES)}; stale cases: {set(CASES) - ids}"


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires(rule_id: str, ledger: Ledger) -> None:
    assert rule_id in _decide(CASES[rule_id][0], ledger)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_stays_quiet(rule_id: str, ledger: Ledger) -> None:
    assert rule_id not in _decide(CASES[rule_id][1], ledger)

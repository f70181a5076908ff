"""Flows files: contract spellings accepted; bad input gets file:line messages with the valid values."""

from __future__ import annotations

from pathlib import Path

import pytest

from piguard.rules import Engine, FlowsError, load_flows, packs, parse_flows

GOOD = """\
controller: 测试公司
app_type: 12
flows:
  - id: a
    activity: collect
    data: [PHONE_NUMBER]
    purpose: loan_application
    legal_basis: consent
    consent: {kind: separate}
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(FlowsError) as info:
        parse_flows(text, "f.yaml")
    return info.value.errors


def test_pack_shape() -> None:
    items = [r for r in packs.rules() if r.source == "APP-2019"]
    assert len(items) == 31
    assert {r.article for r in items} == {
        f"C{c}.{i}" for c, n in ((1, 4), (2, 4), (3, 9), (4, 6), (5, 3), (6, 5)) for i in range(1, n + 1)
    }
    for r in items:
        assert r.decidable or r.needs in ("app_audit", "runtime_evidence")
    assert sorted(packs.app_types()) == list(range(1, 40))
    assert packs.app_types()[12].necessary >= {
        "PHONE_NUMBER",
        "PERSON",
        "ID_TYPE",
        "ID_VALIDITY",
        "BANK_CARD",
    }
    assert "CONTACT_LIST" not in packs.app_types()[12].necessary
    # 13 types need no personal information for their basic function.
    assert sum(1 for t in packs.app_types().values() if not t.necessary) == 13
    assert {p for p, v in packs.purposes().items() if v.alone_insufficient} == {
        "improve_service_quality",
        "improve_user_experience",
        "targeted_push",
        "research_development",
    }
    for r in packs.rules():
        assert r.source in ("PIPL", "APP-2019", "NECESSARY-2021") and r.article and r.en and r.zh


@pytest.mark.parametrize("spelling", ["12", "网络借贷类", "网络借贷", "online lending"])
def test_app_type_by_number_or_name(spelling: str) -> None:
    doc = parse_flows(GOOD.replace("app_type: 12", f"app_type: {spelling}"), "f.yaml")
    assert doc.app_type == 12


def test_unknown_app_type_lists_valid_types() -> None:
    (err,) = _errors(GOOD.replace("app_type: 12", "app_type: 网贷"))
    assert err.startswith("f.yaml:2: app_type: '网贷'") and "12 网络借贷类" in err and "39 演出票务类" in err


def test_bad_values_name_line_and_valid_choices() -> None:
    text = GOOD.replace("activity: collect", "activity: harvest").replace(
        "{kind: separate}", "{kind: implied}"
    )
    errs = _errors(text)
    assert any(e.startswith("f.yaml:5:") and "'harvest'" in e and "transfer_abroad" in e for e in errs)
    assert any(
        e.startswith("f.yaml:9:") and "'implied'" in e and "none, bundled, explicit, separate, guardian" in e
        for e in errs
    )


def test_unknown_entity_and_purpose() -> None:
    text = GOOD.replace("[PHONE_NUMBER]", "\n      - PHONE_NUMBER\n      - SOUL").replace(
        "loan_application", "fun"
    )
    errs = _errors(text)
    assert any(e.startswith("f.yaml:8:") and "'SOUL'" in e and "CONTACT_LIST" in e for e in errs)
    assert any(e.startswith("f.yaml:9:") and "'fun'" in e and "loan_application" in e for e in errs)


def test_recipient_kind_and_minors_flag() -> None:
    text = GOOD + "    recipient: {kind: partner}\n    subjects: {minors_under_14: maybe}\n"
    errs = _errors(text)
    assert any(
        e.startswith("f.yaml:10:") and "self, processor, third_party, public, abroad" in e for e in errs
    )
    assert any(e.startswith("f.yaml:11:") and "minors_under_14" in e and "true, false" in e for e in errs)


def test_opt_out_only_on_automated_decisions() -> None:
    (err,) = _errors(GOOD + "    opt_out: true\n")
    assert err.startswith("f.yaml:10:") and "automated_decision" in err


def test_malformed_yaml_and_duplicates() -> None:
    (err,) = _errors(GOOD + "  - id: b\n    data: [x\n")
    assert err.startswith("f.yaml:") and "malformed YAML" in err
    (err,) = _errors(
        GOOD.replace("    legal_basis: consent\n", "    legal_basis: consent\n    legal_basis: contract\n")
    )
    assert "duplicate key 'legal_basis'" in err and err.startswith("f.yaml:9:")
    errs = _errors(GOOD + GOOD.split("flows:\n")[1])
    assert any("duplicate flow id 'a' (first at line 4)" in e for e in errs)


def test_unknown_keys_and_missing_fields() -> None:
    errs = _errors("controller: c\nflows:\n  - id: a\n    colour: red\n")
    assert any("unknown key 'colour'" in e and "legal_basis" in e for e in errs)
    assert any("missing 'activity'" in e for e in errs)
    assert any("missing 'data'" in e for e in errs)
    assert any("missing 'purpose'" in e for e in errs)
    assert _errors("- just a list\n") == ["f.yaml:1: expected a mapping with controller, app_type, flows"]


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "gbk.yaml"
    p.write_bytes("controller: 公司\n".encode("gbk"))
    with pytest.raises(FlowsError, match="not UTF-8"):
        load_flows(p)
    with pytest.raises(FlowsError, match="cannot read"):
        load_flows(tmp_path / "missing.yaml")


def test_classes_expand_and_anonymized_is_not_personal() -> None:
    doc = parse_flows(GOOD.replace("[PHONE_NUMBER]", "[communication]"), "f.yaml")
    assert {"CONTACT_LIST", "CALL_LOG", "SMS"} <= set(doc.flows[0].data)
    (d,) = Engine().evaluate(doc)
    assert d.verdict == "deny"
    (d,) = Engine().evaluate(
        parse_flows(GOOD.replace("[PHONE_NUMBER]", "[communication]") + "    anonymized: true\n", "f.yaml")
    )
    assert d.verdict == "allow" and d.reasons == []


def test_children_data_is_sensitive() -> None:
    text = GOOD.replace("app_type: 12\n", "") + "    subjects: {minors_under_14: true}\n"
    text = text.replace("{kind: separate}", "{kind: explicit}")
    (d,) = Engine().evaluate(parse_flows(text, "f.yaml"))
    assert {"PIPL-31-MINORS", "PIPL-29-SEPARATE-SENSITIVE"} <= {r.rule for r in d.reasons}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &x [*x]\n", "recursive"),
        ("a: !!python/object:os.system x\n", "could not determine a constructor"),
        ("? [1]\n: 2\n", "a mapping key must be a scalar"),
        ("x: " + "[" * 5000 + "]" * 5000 + "\n", "malformed YAML"),
    ],
)
def test_hostile_yaml_gets_a_message_not_a_traceback(text: str, message: str) -> None:
    (err,) = _errors(text)
    assert err.startswith("f.yaml") and message in err

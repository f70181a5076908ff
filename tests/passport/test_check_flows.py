"""``piguard check`` with ``passport:`` on flows: a use or provision the passport does not permit, or whose
passport fails verification, is denied with the article."""

from __future__ import annotations

import base64
import json
import shutil

from passport_data import BANK
from typer.testing import CliRunner

from piguard.cli import app
from piguard.passport import envelope

runner = CliRunner()

FLOWS = """\
controller: {controller}
flows:
  - id: bank-scores-applicants
    activity: use
    data: [CREDIT_RECORD, INCOME]
    purpose: credit_assessment
    anonymized: true
    passport: {{file: passport.json, data: [delivery]}}
  - id: bank-scores-lawfully
    activity: use
    data: [CREDIT_RECORD, INCOME]
    purpose: credit_assessment
    legal_basis: consent
    consent: separate
    impact_assessment: true
    passport: {{file: passport.json, data: [delivery]}}
  - id: bank-markets-to-applicants
    activity: use
    data: [CREDIT_RECORD, INCOME]
    purpose: marketing
    anonymized: true
    passport: passport.json
  - id: bank-sells-on
    activity: provide
    data: [CREDIT_RECORD, INCOME]
    purpose: credit_assessment
    anonymized: true
    recipient: {{kind: third_party, name: 某催收公司}}
    passport: passport.json
  - id: bought-with-forged-passport
    activity: use
    data: [CREDIT_RECORD, INCOME]
    purpose: credit_assessment
    anonymized: true
    passport: forged.json
  - id: tampered-delivery
    activity: use
    data: [CREDIT_RECORD, INCOME]
    purpose: credit_assessment
    anonymized: true
    passport: {{file: passport.json, data: [tampered]}}
"""


def _decisions(out: str) -> dict[str, dict]:
    return {d["id"]: d for d in json.loads(out)["flows"]}


def test_check_denies_what_the_passport_does_not_permit(supply, tmp_path):
    shutil.copy(supply.passport, tmp_path / "passport.json")
    shutil.copytree(supply.delivery, tmp_path / "delivery")
    shutil.copytree(supply.delivery, tmp_path / "tampered")
    f = tmp_path / "tampered" / "loan.deid.csv"
    f.write_bytes(f.read_bytes().replace(b"35000", b"35001", 1))
    doc = json.loads(supply.passport.read_text())
    forged = envelope.sign(base64.b64decode(doc["payload"]), envelope.IN_TOTO_PAYLOAD_TYPE, supply.intruder)
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS.format(controller=BANK), "utf-8")

    res = runner.invoke(app, ["check", str(flows), "--format", "json", "--trust", str(supply.trust_path)])
    assert res.exit_code == 1, res.output
    d = _decisions(res.output)
    rules = {k: {(r["rule"], r["article"]) for r in v["reasons"]} for k, v in d.items()}
    # The delivery is pseudonymized (its passport says so): calling it anonymized is denied, and the same
    # use with a legal basis and an impact assessment is allowed.
    assert rules["bank-scores-applicants"] == {("PASSPORT-73-NOT-ANONYMIZED", "4, 73")}
    assert "pseudonymized" in d["bank-scores-applicants"]["reasons"][0]["message_en"]
    assert d["bank-scores-lawfully"]["verdict"] == "allow", d["bank-scores-lawfully"]
    assert rules["bank-markets-to-applicants"] == {
        ("PASSPORT-14-PURPOSE", "14, 23"),
        ("PASSPORT-73-NOT-ANONYMIZED", "4, 73"),
    }
    assert "marketing" in d["bank-markets-to-applicants"]["reasons"][0]["message_en"]
    assert rules["bank-sells-on"] == {
        ("PASSPORT-23-RECIPIENT", "23"),
        ("PASSPORT-73-NOT-ANONYMIZED", "4, 73"),
    }
    assert "某催收公司" in d["bank-sells-on"]["reasons"][0]["message_en"]
    assert rules["bought-with-forged-passport"] == {("PASSPORT-10-UNVERIFIED", "10")}
    assert "untrusted-key" in d["bought-with-forged-passport"]["reasons"][0]["message_en"]
    assert ("PASSPORT-10-UNVERIFIED", "10") in rules["tampered-delivery"]
    assert "digest" in d["tampered-delivery"]["reasons"][0]["message_en"]

    # Another controller is not a recipient the passport names.
    flows.write_text(FLOWS.format(controller="某小贷公司"), "utf-8")
    res = runner.invoke(app, ["check", str(flows), "--format", "json", "--trust", str(supply.trust_path)])
    d = _decisions(res.output)
    assert {r["rule"] for r in d["bank-scores-lawfully"]["reasons"]} == {"PASSPORT-23-RECIPIENT"}


def test_passport_rules_join_the_personal_data_rules(supply, tmp_path):
    shutil.copy(supply.passport, tmp_path / "passport.json")
    (tmp_path / "flows.yaml").write_text(
        f"controller: {BANK}\nflows:\n  - id: raw-use\n    activity: use\n    data: [PERSON, CREDIT_RECORD]\n"
        "    purpose: marketing\n    legal_basis: consent\n    consent: separate\n"
        "    passport: passport.json\n",
        "utf-8",
    )
    res = runner.invoke(
        app, ["check", str(tmp_path / "flows.yaml"), "--format", "json", "--trust", str(supply.trust_path)]
    )
    rules = {r["rule"] for r in _decisions(res.output)["raw-use"]["reasons"]}
    assert "PASSPORT-14-PURPOSE" in rules and "PIPL-6-MINIMUM" in rules


def test_check_needs_trusted_keys_for_a_passport(supply, tmp_path):
    shutil.copy(supply.passport, tmp_path / "passport.json")
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS.format(controller=BANK), "utf-8")
    res = runner.invoke(app, ["check", str(flows)])
    assert res.exit_code == 2 and "names a dataset passport: pass --trust KEYS" in res.output
    res = runner.invoke(app, ["check", str(flows), "--trust", str(tmp_path / "missing.pub")])
    assert res.exit_code == 2 and "missing.pub does not exist" in res.output
    flows.write_text("controller: x\nflows:\n  - {id: a, activity: use, data: [PERSON], purpose: marketing, "
                     "passport: {data: [d]}}\n", "utf-8")  # fmt: skip
    res = runner.invoke(app, ["check", str(flows), "--trust", str(supply.trust_path)])
    assert res.exit_code == 2 and "passport: missing 'file'" in res.output

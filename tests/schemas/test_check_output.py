"""`piguard check FLOWS --format json` on the example flows (one of them against a SQLite ledger holding the
consents it names), checked against check-report.schema.json; broken copies checked to fail."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from piguard.cli import app
from schema_check import assert_valid, schema_errors, strict_json

Reports = dict[str, tuple[int, dict[str, Any]]]  # name -> (exit code, report)
FLOWS = Path(__file__).resolve().parents[2] / "examples" / "flows"
runner = CliRunner()


def _run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    res = runner.invoke(app, list(args), input=stdin, env={"PIGUARD_LEDGER_KEY": "", "PIGUARD_LEDGER": ""})
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stdout


def _ledger_for_the_bank_example(db: str) -> None:
    """The consents and provenance examples/flows/data_provider_to_bank.yaml refers to (docs/ledger.md)."""
    assert _run("ledger", "init", "--ledger", db)[0] == 0
    code, _ = _run(
        "ledger", "provenance", "dataset-credit-2026q3", "--dataset", "credit.parquet",
        "--method", "collected_from_subject", "--legal-basis", "consent", "--source", "app", "--ledger", db,
    )  # fmt: skip
    assert code == 0
    data = ["--data", "PERSON", "--data", "CN_RESIDENT_ID", "--data", "CREDIT_RECORD", "--data", "INCOME"]
    for cid, raw in (("consent-bank-001", "110101199003074578"), ("consent-bank-002", "110101199003079999")):
        code, _ = _run(
            "consent", "record", "--subject-id", "-", "--kind", "separate", "--id", cid,
            "--purpose", "data_supply", *data, "--recipient", "某商业银行股份有限公司", "--ledger", db,
            stdin=raw + "\n",
        )  # fmt: skip
        assert code == 0


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    tmp = tmp_path_factory.mktemp("check")
    out: Reports = {}
    for name in ("lending_app_lawful", "lending_app_unlawful"):
        code, text = _run("check", str(FLOWS / f"{name}.yaml"), "--format", "json")
        out[name] = (code, strict_json(text))
    # The lawful app with its retention period and one impact assessment left out: two warnings.
    doc = yaml.safe_load((FLOWS / "lending_app_lawful.yaml").read_text("utf-8"))
    doc["flows"][0].pop("retention")
    doc["flows"][1].pop("impact_assessment")
    warn = tmp / "warn.yaml"
    warn.write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    code, text = _run("check", str(warn), "--format", "json")
    out["warn"] = (code, strict_json(text))
    db = str(tmp / "ledger.db")
    _ledger_for_the_bank_example(db)
    _run("consent", "withdraw", "consent-bank-002", "--ledger", db)
    report = tmp / "bank.json"  # --output: written atomically, the same JSON
    bank = str(FLOWS / "data_provider_to_bank.yaml")
    code, _ = _run("check", bank, "--ledger", db, "-f", "json", "-o", str(report))
    out["bank"] = (code, strict_json(report.read_text("utf-8")))
    return out


def test_check_reports_match_schema(reports: Reports) -> None:
    for name, (_code, doc) in reports.items():
        assert_valid("check-report", doc, f"check {name} --format json")
    codes = {name: code for name, (code, _) in reports.items()}
    assert codes == {"lending_app_lawful": 0, "lending_app_unlawful": 1, "warn": 0, "bank": 1}
    # Every verdict, severity and cited source the schema names was produced and accepted.
    flows = [f for _, doc in reports.values() for f in doc["flows"]]
    reasons = [r for f in flows for r in f["reasons"]]
    assert {f["verdict"] for f in flows} == {"allow", "warn", "deny"}
    assert {r["severity"] for r in reasons} == {"warn", "deny"}
    assert {r["source"] for r in reasons} == {"PIPL", "APP-2019", "NECESSARY-2021"}
    bank = {f["id"]: f["verdict"] for f in reports["bank"][1]["flows"]}
    assert bank == {
        "deliver-applicant-001": "allow",
        "deliver-applicant-002": "deny",  # its consent was withdrawn
        "resale-bought-list": "deny",
    }


def test_summary_counts_the_flows(reports: Reports) -> None:
    for _code, doc in reports.values():
        verdicts = [f["verdict"] for f in doc["flows"]]
        assert doc["summary"] == {v: verdicts.count(v) for v in ("allow", "warn", "deny")}


def _first(doc: dict[str, Any], verdict: str) -> dict[str, Any]:
    return next(f for f in doc["flows"] if f["verdict"] == verdict)


MUTATIONS = {
    "unknown verdict": lambda d: _first(d, "deny").update(verdict="refer"),
    "deny without a reason": lambda d: _first(d, "deny").update(reasons=[]),
    "deny with warnings only": lambda d: [r.update(severity="warn") for r in _first(d, "deny")["reasons"]],
    "allow with a reason": lambda d: d["flows"][0]["reasons"].append(_first(d, "deny")["reasons"][0]),
    "uncited source": lambda d: _first(d, "deny")["reasons"][0].update(source="GDPR"),
    "no article": lambda d: _first(d, "deny")["reasons"][0].pop("article"),
    "empty message": lambda d: _first(d, "deny")["reasons"][0].update(message_zh=""),
    "app type 40": lambda d: d.update(app_type=40),
    "summary without deny": lambda d: d["summary"].pop("deny"),
    "no flows": lambda d: d.pop("flows"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_check_schema_rejects_broken_reports(reports: Reports, mutation: str) -> None:
    broken = copy.deepcopy(reports["bank"][1])  # has an allowed flow first, and denied ones
    assert broken["flows"][0]["verdict"] == "allow"
    MUTATIONS[mutation](broken)
    assert schema_errors("check-report", broken), f"check-report.schema.json accepts a report with {mutation}"

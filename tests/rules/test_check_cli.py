"""``piguard check`` on the example flows: the JSON contract, exit codes, HTML and table output."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from piguard.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"
runner = CliRunner()


def _json(*args: str) -> tuple[int, dict]:
    res = runner.invoke(app, ["check", *args, "--format", "json"])
    return res.exit_code, json.loads(res.stdout) if res.stdout.strip() else {}


def _cites(flow: dict) -> set[tuple[str, str]]:
    return {(r["source"], r["article"]) for r in flow["reasons"]}


def test_unlawful_lending_app_is_denied_with_citations() -> None:
    code, out = _json(str(EXAMPLES / "lending_app_unlawful.yaml"))
    assert code == 1
    flows = {f["id"]: f for f in out["flows"]}
    assert all(f["verdict"] == "deny" for f in flows.values())
    for f in out["flows"]:
        assert set(f) == {"id", "verdict", "reasons"}
        for r in f["reasons"]:
            assert set(r) == {"rule", "source", "article", "severity", "message_en", "message_zh"}
    collect = _cites(flows["collect-application"])
    assert {("PIPL", "6"), ("PIPL", "14"), ("PIPL", "29"), ("NECESSARY-2021", "12")} <= collect
    assert any(s == "APP-2019" and a.startswith("C4.") for s, a in collect)
    share = _cites(flows["share-with-risk-vendor"])
    assert {("PIPL", "23"), ("PIPL", "29"), ("APP-2019", "C5.2")} <= share
    necessary = next(r for r in flows["collect-application"]["reasons"] if r["source"] == "NECESSARY-2021")
    assert "CONTACT_LIST" in necessary["message_en"] and "PRECISE_LOCATION" in necessary["message_en"]
    assert "PHONE_NUMBER" not in necessary["message_en"]
    debt = _cites(flows["contacts-for-collection"])
    assert ("PIPL", "6") in debt  # contact lists are not needed for debt collection


def test_lawful_lending_app_is_allowed() -> None:
    code, out = _json(str(EXAMPLES / "lending_app_lawful.yaml"))
    assert code == 0
    assert [f["verdict"] for f in out["flows"]] == ["allow"] * 4
    assert out["summary"] == {"allow": 4, "warn": 0, "deny": 0}


def test_ledger_reference_without_ledger_is_a_usage_error() -> None:
    res = runner.invoke(
        app, ["check", str(EXAMPLES / "data_provider_to_bank.yaml")], env={"PIGUARD_LEDGER": ""}
    )
    assert res.exit_code == 2
    assert "data_provider_to_bank.yaml:8" in res.stderr and "--ledger" in res.stderr


def test_invalid_file_exits_2_with_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(
        "controller: c\nflows:\n  - id: a\n    activity: sell\n"
        "    data: [PHONE_NUMBER]\n    purpose: payment\n"
    )
    res = runner.invoke(app, ["check", str(p)])
    assert res.exit_code == 2
    assert f"{p}:4:" in res.stderr and "'sell'" in res.stderr and "Traceback" not in res.stderr


def test_html_and_table_and_output_file(tmp_path: Path) -> None:
    res = runner.invoke(app, ["check", str(EXAMPLES / "lending_app_unlawful.yaml"), "--format", "html"])
    assert res.exit_code == 1
    assert res.stdout.startswith("<!doctype html>") and 'id="flow-share-with-risk-vendor"' in res.stdout
    assert "第二十三条" in res.stdout
    out = tmp_path / "report.txt"
    res = runner.invoke(app, ["check", str(EXAMPLES / "lending_app_unlawful.yaml"), "-o", str(out)])
    assert res.exit_code == 1 and "PIPL-23-SEPARATE-PROVISION" in out.read_text("utf-8")
    res = runner.invoke(app, ["check", str(EXAMPLES / "lending_app_unlawful.yaml"), "--format", "xml"])
    assert res.exit_code == 2 and "table, json, html" in res.stderr


def test_fail_on_warn(tmp_path: Path) -> None:
    p = tmp_path / "warn.yaml"
    p.write_text(
        "controller: c\nflows:\n  - id: a\n    activity: collect\n    data: [PHONE_NUMBER]\n"
        "    purpose: account_registration\n    legal_basis: consent\n    consent: {kind: explicit}\n"
    )
    code, out = _json(str(p))
    assert code == 0 and out["flows"][0]["verdict"] == "warn"
    assert [r["rule"] for r in out["flows"][0]["reasons"]] == ["PIPL-19-NO-RETENTION"]
    assert runner.invoke(app, ["check", str(p), "--fail-on", "warn", "-f", "json"]).exit_code == 1


def test_missing_ledger_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    res = runner.invoke(
        app, ["check", str(EXAMPLES / "data_provider_to_bank.yaml"), "--ledger", str(missing)]
    )
    assert res.exit_code == 2 and "does not exist" in res.stderr and not missing.exists()

"""``piguard app audit``: formats, files, a directory in parallel with a bad APK in it, usage errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from piguard.cli import app
from piguard.rules import load_flows

POLICIES = Path(__file__).parent / "fixtures" / "policies"
runner = CliRunner()


def test_json_and_flows_file(lender_apps: dict[str, Path], tmp_path: Path) -> None:
    out, flows = tmp_path / "audit.json", tmp_path / "flows.yaml"
    res = runner.invoke(
        app,
        [
            "app",
            "audit",
            str(lender_apps["unlawful"]),
            "--policy",
            str(POLICIES / "lender_omits.txt"),
            "--type",
            "12",
            "-f",
            "json",
            "-o",
            str(out),
            "--emit-flows",
            str(flows),
            "--fail-on",
            "violation",
        ],
    )
    assert res.exit_code == 1, res.output
    doc = json.loads(out.read_text("utf-8"))
    assert doc["summary"]["violation"] >= 14
    assert load_flows(flows).app["collects_before_consent"] is True


def test_sarif_html_and_table(lender_apps: dict[str, Path], tmp_path: Path) -> None:
    apk = str(lender_apps["lawful"])
    pol = str(POLICIES / "lender_complete.txt")
    sarif = json.loads(runner.invoke(app, ["app", "audit", apk, "-p", pol, "-f", "sarif"]).stdout)
    assert sarif["version"] == "2.1.0"
    assert {r["level"] for r in sarif["runs"][0]["results"]} <= {"note"}  # lawful: nothing above a note
    page = runner.invoke(app, ["app", "audit", apk, "-p", pol, "-f", "html"]).stdout
    assert page.startswith("<!doctype html>") and "C6.5" in page and "<script" not in page
    table = runner.invoke(app, ["app", "audit", apk, "-p", pol])
    assert table.exit_code == 0 and "com.example.lender" in table.stdout


def test_directory_goes_on_past_a_bad_apk(lender_apps: dict[str, Path], tmp_path: Path) -> None:
    d = tmp_path / "apks"
    d.mkdir()
    shutil.copy(lender_apps["lawful"], d / "a.apk")
    shutil.copy(lender_apps["unlawful"], d / "b.apk")
    (d / "c.apk").write_text("not an apk", "utf-8")
    res = runner.invoke(app, ["app", "audit", str(d), "-f", "json", "-j", "2"])
    assert res.exit_code == 3  # finished, one input skipped
    doc = json.loads(res.stdout)
    assert [Path(a["app"]["path"]).name for a in doc["audits"]] == ["a.apk", "b.apk"]
    assert len(doc["errors"]) == 1 and "not an APK" in doc["errors"][0]["error"]
    assert "c.apk: not an APK" in res.stderr


def test_usage_errors(lender_apps: dict[str, Path], tmp_path: Path) -> None:
    apk = str(lender_apps["lawful"])
    bad_type = runner.invoke(app, ["app", "audit", apk, "--type", "网贷"])
    assert bad_type.exit_code == 2 and "not one of the 39 app types" in bad_type.stderr
    bad_fmt = runner.invoke(app, ["app", "audit", apk, "-f", "xml"])
    assert bad_fmt.exit_code == 2 and "valid: table, json, html, sarif" in bad_fmt.stderr
    missing = runner.invoke(app, ["app", "audit", str(tmp_path / "nope.apk")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr

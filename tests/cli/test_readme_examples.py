"""The README's quick examples, run as written (in a scratch directory holding a copy of examples/).

Each command is first looked up in README.md verbatim, so a README edit that changes one fails here until
this test runs the new form: the README cannot drift from what the command line does.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text("utf-8")
PIGUARD = str(Path(sys.executable).parent / "piguard")


def _readme_command(start: str) -> list[str]:
    """The README line starting with ``start`` (joined with its ``\\`` continuations), without its comment."""
    lines = README.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(start):
            text = line
            while text.rstrip().endswith("\\"):
                i += 1
                text = text.rstrip()[:-1] + " " + lines[i].strip()
            return shlex.split(text, comments=True)
    raise AssertionError(f"README.md has no line starting with {start!r}")


def _run(argv: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert argv[0] == "piguard", argv
    res = subprocess.run(
        [PIGUARD, *argv[1:]], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    return res


def _block(lang: str, marker: str) -> str:
    """The README's fenced ``lang`` block that contains ``marker``."""
    for body in re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S):
        if marker in body:
            return body
    raise AssertionError(f"README.md has no {lang} block with {marker!r}")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "examples", d / "examples")
    return d


def test_library_scan_text_snippet() -> None:
    code = _block("python", "from piguard import scan_text")
    cmd = [sys.executable, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    lines = out.stdout.splitlines()
    assert "PHONE_NUMBER 9 22 138 **** 5678 False" in lines
    assert "CN_RESIDENT_ID 27 45 1101**********1233 True" in lines
    assert "110101199003071233" not in out.stdout  # masked only


def test_scan_with_own_detectors_masks_and_follows_the_jsonl_contract(work: Path) -> None:
    (work / "my_detectors.yaml").write_text(_block("yaml", "detectors:"), "utf-8")
    (work / "notes.txt").write_text("工号 EMP-123456，手机 13812345678\n", "utf-8")
    argv = ["piguard", "scan", "notes.txt", "--format", "jsonl", "--detectors", "my_detectors.yaml"]
    res = _run(argv, work)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    keys = {"path", "line", "start", "end", "entity", "confidence", "sensitive", "masked", "detector"}
    assert all(set(r) == keys for r in rows)
    assert {r["entity"] for r in rows} == {"EMPLOYEE_ID", "PHONE_NUMBER"}
    assert "EMP-123456" not in res.stdout and "13812345678" not in res.stdout
    gate = _run(["piguard", "scan", "notes.txt", "--fail-on", "any"], work)
    assert gate.returncode == 1


def test_scan_sqlite_data_map(work: Path) -> None:
    with sqlite3.connect(work / "customers.db") as db:
        db.execute("CREATE TABLE IF NOT EXISTS crm (sfzh TEXT, shouji TEXT)")
        db.execute("INSERT INTO crm VALUES ('110101199003071233', '13812345678')")
    res = _run(_readme_command("piguard scan sqlite:///customers.db"), work)
    assert res.returncode == 0, res.stderr
    sources = json.loads(res.stdout)["sources"]
    assert {(s["column"], s["entity"]) for s in sources} == {
        ("sfzh", "CN_RESIDENT_ID"),
        ("shouji", "PHONE_NUMBER"),
    }


def test_check_unlawful_lending_app_cites_what_the_readme_says(work: Path) -> None:
    argv = _readme_command("piguard check examples/flows/lending_app_unlawful.yaml")
    assert _run(argv, work).returncode == 1
    res = _run([*argv, "--format", "json"], work)
    cited = {(r["source"], r["article"]) for f in json.loads(res.stdout)["flows"] for r in f["reasons"]}
    # the README: "deny, citing PIPL 6/14/23/29, 2019 method C4/C5, 2021 scope type 12"
    assert {("PIPL", a) for a in ("6", "14", "23", "29")} <= cited
    assert any(s == "APP-2019" and a.startswith("C4") for s, a in cited)
    assert any(s == "APP-2019" and a.startswith("C5") for s, a in cited)
    assert ("NECESSARY-2021", "12") in cited


def test_robots_verdict(work: Path) -> None:
    (work / "robots.txt").write_text("User-agent: *\nDisallow: /private\n", "utf-8")
    res = _run(_readme_command("piguard robots robots.txt"), work)
    assert res.returncode == 0 and res.stdout.strip() == "allow https://example.org/page"


def test_deid_then_passport_issue_and_verify(work: Path) -> None:
    res = _run(_readme_command("piguard deid examples/data/loan_applicants.csv"), work)
    assert res.returncode == 0, res.stderr
    report = json.loads((work / "report.json").read_text("utf-8"))
    assert report["declared_state"] == "anonymized" and report["min_class_size"] >= 5

    # The passport lines read the delivery from delivery/ and a ledger with provenance ds-1.
    (work / "delivery").mkdir()
    shutil.move(work / "delivered.csv", work / "delivery" / "delivered.csv")
    assert _run(["piguard", "ledger", "init", "--ledger", "ledger.db"], work).returncode == 0
    prov = [
        "piguard", "ledger", "provenance", "ds-1", "--ledger", "ledger.db", "--dataset", "delivered.csv",
        "--method", "collected_from_subject", "--legal-basis", "consent", "--source", "app",
    ]  # fmt: skip
    assert _run(prov, work).returncode == 0
    keygen = _readme_command("mkdir -p keys && piguard passport keygen")
    assert keygen[:4] == ["mkdir", "-p", "keys", "&&"]
    (work / "keys").mkdir()
    assert _run(keygen[4:], work).returncode == 0
    issued = _run(_readme_command("piguard passport issue delivery/"), work)
    assert issued.returncode == 0, issued.stderr
    verified = _run(_readme_command("piguard passport verify delivery/"), work)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.splitlines()[0] == "accept"

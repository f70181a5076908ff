"""`piguard scan` run as a user runs it, on the example data and temporary tables and databases; every JSON
output checked against its published schema, and broken copies of it checked to fail.

One workspace holds each kind of input a scan meets: text and logs, CSV read both as text and as a table,
a SQLite database (tables, a view, a free-text column, a binary column, an empty table), a Parquet file, a
.gz log, a binary file (skipped) and a file with an invalid byte (noted); standard input too.
"""

from __future__ import annotations

import copy
import csv
import gzip
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from piguard.cli import app
from schema_check import assert_valid, schema_errors, strict_json

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "data"
PIGUARD = str(Path(sys.executable).parent / "piguard")
Doc = dict[str, Any]
Lines = list[dict[str, Any]]


def _piguard(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command in its own process, as a user runs it."""
    res = subprocess.run(
        [PIGUARD, *args, "--no-progress"], input=stdin, capture_output=True, text=True, timeout=180
    )
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    return res


def _in_process(*args: str) -> tuple[int, str]:
    """The same command line through the CLI's Typer app in this process (saves a start-up on small runs)."""
    res = CliRunner().invoke(app, [*args, "--no-progress", "--workers", "1"])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stdout


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("scan-inputs")
    files = root / "files"
    shutil.copytree(EXAMPLES, files)
    with (EXAMPLES / "loan_applicants.csv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:301]
    con = sqlite3.connect(files / "crm.db")
    cols = ", ".join(f'"{c}"' for c in header)
    con.execute(f"CREATE TABLE applicants ({cols})")
    con.executemany(f"INSERT INTO applicants VALUES ({', '.join('?' * len(header))})", body)
    con.execute(f'CREATE VIEW v_contacts AS SELECT "{header[0]}", "{header[1]}" FROM applicants')
    # Names inside free text (three rows in four): mapped from the text detectors' sample.
    templates = ["客户{}来电询问还款日期，已告知。", "{}女士要求延期还款一周", "与{}核对了本月账单",
                 "系统自动对账完成"]  # fmt: skip
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, remark TEXT)")
    con.executemany(
        "INSERT INTO notes (remark) VALUES (?)",
        [(templates[i % 4].format(r[0]),) for i, r in enumerate(body)],
    )
    con.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, img BLOB)")  # binary: skipped, named
    con.execute("INSERT INTO photos (img) VALUES (x'00ff')")
    con.execute("CREATE TABLE empty_table (a TEXT)")
    con.commit()
    con.close()
    log = (EXAMPLES / "customer_service.log").read_bytes()
    (files / "archive.log.gz").write_bytes(gzip.compress(log))
    (files / "image.bin").write_bytes(bytes(range(256)) * 16)  # binary: skipped
    # Noted: an invalid byte, replaced with U+FFFD.
    (files / "bad-byte.txt").write_bytes("客户电话 13812345678 ".encode() + b"\xff" + " 结束\n".encode())
    # A Parquet file lives apart: a directory holding one is scanned as a Parquet dataset, not as files.
    lake = root / "lake"
    lake.mkdir()
    columns = dict(zip(header, zip(*body, strict=True), strict=True))
    pl.DataFrame(columns).write_parquet(lake / "applicants.parquet")
    raw = [r[2] for r in body] + [r[1] for r in body]  # resident IDs and phone numbers, as stored
    return {"files": files, "parquet": lake / "applicants.parquet", "raw": raw, "root": root}


@pytest.fixture(scope="module")
def scan_json(workspace: dict[str, Any]) -> dict[str, Any]:
    out = workspace["root"] / "report.json"
    targets = [str(workspace["files"]), str(workspace["parquet"])]
    res = _piguard("scan", *targets, "--format", "json", "-o", str(out))
    assert res.returncode == 3, res.stderr[-2000:]  # finished, some inputs skipped (the binary file, column)
    text = out.read_text("utf-8")
    assert not any(v in text for v in workspace["raw"])
    return strict_json(text)


@pytest.fixture(scope="module")
def scan_jsonl(workspace: dict[str, Any]) -> list[dict[str, Any]]:
    log = (EXAMPLES / "customer_service.log").read_text("utf-8")
    res = _piguard("scan", str(workspace["files"]), "-", "--format", "jsonl", stdin=log)
    assert res.returncode == 3, res.stderr[-2000:]
    return [strict_json(line) for line in res.stdout.splitlines()]


@pytest.fixture(scope="module")
def datamap_json(workspace: dict[str, Any]) -> dict[str, Any]:
    """The data map alone: a SQLite database by URL and a CSV file as a table."""
    db = workspace["files"] / "crm.db"
    code, out = _in_process("scan", f"sqlite:///{db}", "--format", "json")
    assert code == 3  # the binary column is skipped, named
    return strict_json(out)


def test_scan_json_matches_schema(scan_json: dict[str, Any]) -> None:
    assert_valid("scan-report", scan_json, "scan --format json")
    assert_valid("datamap", scan_json, "the data map inside scan --format json")
    # What the fixture was built to reach, so the schema was tried on every part of the report:
    assert scan_json["findings"] and scan_json["sources"] and scan_json["combinations"]
    bases = {e["basis"] for e in scan_json["evidence"]}
    assert {"validated whole values", "text detectors on a sample"} <= bases
    skipped = {s["path"].rsplit("/", 1)[-1] for s in scan_json["summary"]["skipped"]}
    assert {"image.bin", "crm.db:photos"} <= skipped
    assert [n["path"].rsplit("/", 1)[-1] for n in scan_json["summary"]["notes"]] == ["bad-byte.txt"]
    tables = {(Path(r["source"]).name, r["table"]) for r in scan_json["sources"]}
    assert {
        ("crm.db", "applicants"),
        ("crm.db", "v_contacts"),
        ("crm.db", "notes"),
        ("applicants.parquet", "applicants.parquet"),
        ("loan_applicants.csv", "loan_applicants.csv"),
    } <= tables


def test_scan_json_keeps_what_schemas_cannot_say(scan_json: dict[str, Any]) -> None:
    """Cross-field parts of the contract: offsets, counts, and one evidence object per data-map row."""
    findings = scan_json["findings"]
    assert all(f["end"] > f["start"] for f in findings)
    assert scan_json["summary"]["findings"] == len(findings)
    assert scan_json["summary"]["sensitive_findings"] == sum(f["sensitive"] for f in findings)
    key = lambda r: (r["source"], r["table"], r["column"], r["entity"])  # noqa: E731
    assert [key(e) for e in scan_json["evidence"]] == [key(r) for r in scan_json["sources"]]
    for e in scan_json["evidence"]:
        assert e["rows_with_entity"] <= e["non_empty"]


def test_jsonl_lines_match_the_finding_schema(scan_jsonl: Lines, scan_json: Doc) -> None:
    assert scan_jsonl
    for i, line in enumerate(scan_jsonl, 1):
        assert_valid("scan-finding", line, f"jsonl line {i}")
        assert "value" not in line and line["end"] > line["start"]
    assert any(f["path"] == "-" for f in scan_jsonl)  # standard input
    # The same findings as the JSON report's, plus standard input's.
    as_json = {json.dumps(f, sort_keys=True) for f in scan_json["findings"]}
    assert as_json <= {json.dumps(f, sort_keys=True) for f in scan_jsonl}


def test_unmasked_output_carries_value_and_still_matches(workspace: dict[str, Any]) -> None:
    small = str(workspace["files"] / "borrowers.csv")
    code, out = _in_process("scan", small, "--format", "jsonl", "--unmasked")
    assert code == 0
    lines = [strict_json(x) for x in out.splitlines()]
    assert lines and all("value" in f for f in lines)
    for f in lines:
        assert_valid("scan-finding", f, "--unmasked jsonl line")


def test_data_map_json_matches_both_schemas(datamap_json: dict[str, Any]) -> None:
    assert_valid("scan-report", datamap_json, "scan sqlite:/// --format json")
    assert_valid("datamap", datamap_json, "scan sqlite:/// --format json")
    assert datamap_json["findings"] == [] and datamap_json["summary"]["files_scanned"] == 0
    assert {r["table"] for r in datamap_json["sources"]} == {"applicants", "v_contacts", "notes"}
    assert all(r["source"].startswith("sqlite:///") for r in datamap_json["sources"])


def test_library_data_map_matches_schema(workspace: dict[str, Any]) -> None:
    """``DataMap.as_dict()``, what the Spark job in docs/datamap.md prints, with skipped, tables and notes."""
    from piguard.sources.tables import scan_tables

    for target in (workspace["files"] / "crm.db", workspace["files"] / "borrowers.csv"):
        doc = strict_json(json.dumps(scan_tables(str(target)).as_dict()))
        assert_valid("datamap", doc, f"scan_tables({target.name}).as_dict()")
        assert doc["tables"] and doc["sources"]
    assert doc["combinations"] and not doc["skipped"]


def test_unreachable_database_url_is_reported_without_its_password() -> None:
    url = "postgresql+psycopg://reader:s3cret@127.0.0.1:9/crm"  # nothing listens on port 9
    code, out = _in_process("scan", url, "--format", "json", "--timeout", "2")
    assert code == 3
    doc = strict_json(out)
    assert_valid("scan-report", doc, "scan of an unreachable database")
    assert "s3cret" not in out and doc["summary"]["skipped"]


# --- the schemas reject broken reports ----------------------------------------------------------------
Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[int(last) if last.isdigit() else last] = value

    return apply


def _drop(path: str) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        del node[last]

    return apply


def _sample_evidence_without_its_figures(doc: dict[str, Any]) -> None:
    e = next(e for e in doc["evidence"] if e["basis"] == "text detectors on a sample")
    del e["sampled_rows"]


REPORT_MUTATIONS: dict[str, Mutation] = {
    "no summary": _drop("summary"),
    "no findings list": _drop("findings"),
    "another tool": _set("tool", "other"),
    "finding without masked": _drop("findings.0.masked"),
    "raw value as masked": _set("findings.0.masked", "110101199003071233"),
    "line 0": _set("findings.0.line", 0),
    "negative offset": _set("findings.0.start", -1),
    "offset as string": _set("findings.0.end", "12"),
    "confidence over 1": _set("findings.0.confidence", 1.5),
    "sensitive as string": _set("findings.0.sensitive", "yes"),
    "share over 1": _set("sources.0.share", 1.2),
    "row without share": _drop("sources.0.share"),
    "raw example in a row": _set("sources.0.examples_masked", ["13812345678"]),
    "four examples": _set("sources.0.examples_masked", ["1***", "2***", "3***", "4***"]),
    "password in a source": _set("sources.0.source", "postgresql+psycopg://reader:s3cret@db/crm"),
    "unknown combination kind": _set("combinations.0.kind", "likely"),
    "evidence without basis": _drop("evidence.0.basis"),
    "sample evidence without its figures": _sample_evidence_without_its_figures,
    "summary count negative": _set("summary.files_scanned", -1),
    "skipped without reason": _drop("summary.skipped.0.reason"),
    "password in a skipped path": _set("summary.skipped.0.path", "mysql+pymysql://root:s3cret@db/crm:*"),
    "entity row without count": _drop("summary.entities.0.count"),
}


@pytest.fixture(scope="module")
def report_sample(scan_json: dict[str, Any]) -> dict[str, Any]:
    """The real report with its 6,000 findings cut to three: each broken copy is checked in milliseconds."""
    doc = copy.deepcopy(scan_json)
    doc["findings"] = doc["findings"][:3]
    assert_valid("scan-report", doc)
    return doc


@pytest.mark.parametrize("mutation", sorted(REPORT_MUTATIONS))
def test_scan_report_schema_rejects_broken_reports(report_sample: dict[str, Any], mutation: str) -> None:
    broken = copy.deepcopy(report_sample)
    REPORT_MUTATIONS[mutation](broken)
    assert schema_errors("scan-report", broken), f"scan-report.schema.json accepts a report with {mutation}"


@pytest.mark.parametrize(
    "mutation",
    ["password in a source", "raw example in a row", "share over 1", "unknown combination kind",
     "sample evidence without its figures", "row without share"],
)  # fmt: skip
def test_datamap_schema_rejects_broken_maps(report_sample: dict[str, Any], mutation: str) -> None:
    broken = copy.deepcopy(report_sample)
    REPORT_MUTATIONS[mutation](broken)
    assert schema_errors("datamap", broken), f"datamap.schema.json accepts a map with {mutation}"


@pytest.mark.parametrize(
    ("key", "value"),
    [("line", 0), ("masked", "13812345678"), ("entity", ""), ("confidence", -0.1), ("path", None)],
)
def test_finding_schema_rejects_broken_lines(scan_jsonl: list[dict[str, Any]], key: str, value: Any) -> None:
    broken = dict(scan_jsonl[0], **{key: value})
    assert schema_errors("scan-finding", broken)
    incomplete = {k: v for k, v in scan_jsonl[0].items() if k != key}
    assert schema_errors("scan-finding", incomplete)

"""piguard scan over files: encodings, offsets, bad input, exit codes, report formats."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from piguard.cli import app
from piguard.pipeline import ScanOptions, scan_paths
from piguard.sources.files import Skip, read_chunks

ID = "110101199003071233"
PHONE = "13812345678"
TEXT = f"客户王小明\n身份证号：{ID}\n手机 {PHONE}，邮箱 wang@example.com\n"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def jsonl(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("gb18030", b""),
        ("gbk", b""),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-8", b"\xef\xbb\xbf"),
    ],
)
def test_encodings_give_offsets_into_the_decoded_text(tmp_path: Path, encoding: str, bom: bytes) -> None:
    f = tmp_path / f"sample-{encoding}.txt"
    f.write_bytes(bom + TEXT.encode(encoding))
    code, out, _ = run("scan", str(f), "--format", "jsonl", "--unmasked")
    assert code == 0
    rows = jsonl(out)
    values = {r["entity"]: r for r in rows}
    assert values["CN_RESIDENT_ID"]["value"] == ID
    assert values["PHONE_NUMBER"]["value"] == PHONE
    for r in rows:
        assert TEXT[r["start"] : r["end"]] == r["value"]
        assert TEXT.count("\n", 0, r["start"]) + 1 == r["line"]
    assert values["CN_RESIDENT_ID"]["line"] == 2
    assert values["PHONE_NUMBER"]["line"] == 3


def test_jsonl_contract_keys_and_masking(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text(TEXT, encoding="utf-8")
    code, out, _ = run("scan", str(f), "--format", "jsonl")
    assert code == 0
    rows = jsonl(out)
    assert rows, "expected findings"
    for r in rows:
        assert set(r) == {
            "path",
            "line",
            "start",
            "end",
            "entity",
            "confidence",
            "sensitive",
            "masked",
            "detector",
        }
        assert 0.0 <= r["confidence"] <= 1.0
    assert ID not in out and PHONE not in out, "raw values must not appear without --unmasked"
    ids = [r for r in rows if r["entity"] == "CN_RESIDENT_ID"]
    assert ids[0]["masked"] == "1101**********1233" and ids[0]["sensitive"] is True


def test_gzip_is_read(tmp_path: Path) -> None:
    f = tmp_path / "a.log.gz"
    f.write_bytes(gzip.compress(TEXT.encode("utf-8")))
    code, out, _ = run("scan", str(f), "--format", "jsonl")
    assert code == 0
    assert {r["entity"] for r in jsonl(out)} >= {"CN_RESIDENT_ID", "PHONE_NUMBER", "EMAIL_ADDRESS"}


def test_bad_inputs_are_skipped_with_a_note_and_the_scan_goes_on(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "image.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2000))
    (tmp_path / "broken.gz").write_bytes(gzip.compress(TEXT.encode() * 50)[:-30])
    (tmp_path / "invalid.txt").write_bytes(b"not utf8 \x80\x81\xc3\x28 " + f"手机{PHONE}".encode())
    (tmp_path / "dangling").symlink_to(tmp_path / "missing-target")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "loop").symlink_to(tmp_path)
    os.mkfifo(tmp_path / "pipe")
    code, out, err = run("scan", str(tmp_path), "--format", "jsonl", "--no-progress")
    assert code == 3, err  # finished, but something was skipped
    assert "Traceback" not in err
    skipped = {
        line.split(":")[0].removeprefix("skipped ")
        for line in err.splitlines()
        if line.startswith("skipped ")
    }
    assert str(tmp_path / "image.bin") in skipped
    assert str(tmp_path / "dangling") in skipped
    assert str(tmp_path / "pipe") in skipped
    assert any("loop" in line for line in err.splitlines()), err
    rows = jsonl(out)
    paths = {r["path"] for r in rows}
    assert str(tmp_path / "good.txt") in paths
    assert str(tmp_path / "invalid.txt") in paths  # invalid bytes replaced, the phone is still found


def test_truncated_gzip_reports_after_keeping_what_was_read(tmp_path: Path) -> None:
    f = tmp_path / "t.log.gz"
    f.write_bytes(gzip.compress((TEXT * 20000).encode())[:-50])
    events = list(scan_paths([str(f)], ScanOptions(workers=1)))
    assert any(e.skip is not None for e in events if not isinstance(e, Skip))


def test_huge_single_line_is_streamed_and_offsets_stay_exact(tmp_path: Path) -> None:
    filler = "数据" * (5 * 1024 * 1024)  # 10 M characters on one line, more than one chunk
    text = filler + f" 手机 {PHONE} " + filler[:1000] + "\n"
    f = tmp_path / "one-line.txt"
    f.write_text(text, encoding="utf-8")
    chunks = list(read_chunks(str(f)))
    assert len(chunks) >= 2
    assert "".join(c.text for c in chunks) == text
    code, out, _ = run("scan", str(f), "--format", "jsonl", "--unmasked")
    assert code == 0
    (row,) = [r for r in jsonl(out) if r["entity"] == "PHONE_NUMBER"]
    assert row["start"] == text.index(PHONE) and row["value"] == PHONE and row["line"] == 1


def test_fail_on_gates(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("邮箱 a@example.com\n", encoding="utf-8")
    assert run("scan", str(f), "--fail-on", "sensitive")[0] == 0  # email is not sensitive
    assert run("scan", str(f), "--fail-on", "any")[0] == 1
    f.write_text(f"身份证 {ID}\n", encoding="utf-8")
    assert run("scan", str(f), "--fail-on", "sensitive")[0] == 1


def test_usage_errors_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("x", encoding="utf-8")
    code, _, err = run("scan", str(f), "--entities", "NOT_A_THING")
    assert code == 2 and "unknown entity NOT_A_THING" in err
    bad = tmp_path / "det.yaml"
    bad.write_text("detectors:\n  - name: x\n    entity: X\n    pattern: '('\n", encoding="utf-8")
    code, _, err = run("scan", str(f), "--detectors", str(bad))
    assert code == 2 and str(bad) in err and "bad pattern" in err


def test_user_detector_from_yaml(tmp_path: Path) -> None:
    det = tmp_path / "det.yaml"
    det.write_text(
        "detectors:\n  - name: employee_id\n    entity: EMPLOYEE_ID\n    pattern: 'EMP-\\d{6}'\n"
        "    confidence: 0.7\n    context: [工号]\n",
        encoding="utf-8",
    )
    f = tmp_path / "a.txt"
    f.write_text("工号 EMP-123456, 手机 13812345678\n", encoding="utf-8")
    code, out, _ = run("scan", str(f), "--detectors", str(det), "--format", "jsonl")
    assert code == 0
    rows = {r["entity"]: r for r in jsonl(out)}
    assert rows["EMPLOYEE_ID"]["detector"] == "employee_id"
    assert rows["EMPLOYEE_ID"]["confidence"] > 0.7  # context word raised it
    assert "PHONE_NUMBER" in rows


def test_many_files_use_the_pool_and_keep_file_order(tmp_path: Path) -> None:
    for i in range(6):
        (tmp_path / f"f{i}.txt").write_text((TEXT + "填充文本 " * 20000) * 3, encoding="utf-8")
    events = [e for e in scan_paths([str(tmp_path)], ScanOptions(workers=2)) if not isinstance(e, Skip)]
    assert [Path(e.path).name for e in events] == [f"f{i}.txt" for i in range(6)]
    assert all(len([r for r in e.findings if r["entity"] == "CN_RESIDENT_ID"]) == 3 for e in events)


def test_json_sarif_and_html_reports(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text(TEXT, encoding="utf-8")
    code, out, _ = run("scan", str(f), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["summary"]["files_scanned"] == 1
    assert {e["entity"] for e in doc["summary"]["entities"]} >= {"CN_RESIDENT_ID", "PHONE_NUMBER"}
    assert len(doc["findings"]) == doc["summary"]["findings"]
    code, out, _ = run("scan", str(f), "--format", "sarif")
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    run0 = sarif["runs"][0]
    assert {r["id"] for r in run0["tool"]["driver"]["rules"]} >= {"CN_RESIDENT_ID", "PHONE_NUMBER"}
    res = next(r for r in run0["results"] if r["ruleId"] == "CN_RESIDENT_ID")
    assert res["level"] == "error"
    assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    assert ID not in out
    html_path = tmp_path / "r.html"
    code, _, _ = run("scan", str(f), "--format", "html", "-o", str(html_path))
    page = html_path.read_text(encoding="utf-8")
    assert code == 0 and "CN_RESIDENT_ID" in page and ID not in page


def test_the_console_script_runs(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text(TEXT, encoding="utf-8")
    exe = Path(sys.executable).with_name("piguard")
    res = subprocess.run(
        [str(exe), "scan", str(f), "-f", "jsonl"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert len(jsonl(res.stdout)) >= 3


def test_jsonl_lines_survive_awkward_paths_and_values() -> None:
    """Each JSONL line is valid JSON with the contract's keys in order, whatever the path or mask holds
    (quotes, backslashes, control characters, line separators, non-BMP characters)."""
    from piguard.report import JSONL_KEYS, finding_line

    for path, masked in [
        ("a.txt", "138****5678"),
        ('路径/"引号"\\x\t.log', 'a"b\\c\n'),
        ("😀/\u2028.txt", "张**"),
    ]:
        row = {
            "path": path, "line": 7, "start": 120, "end": 131, "entity": "PHONE_NUMBER",
            "confidence": 0.95, "sensitive": False, "masked": masked, "detector": "structured",
        }  # fmt: skip
        line = finding_line(row)
        assert "\n" not in line
        assert list(json.loads(line).items()) == [(k, row[k]) for k in JSONL_KEYS]

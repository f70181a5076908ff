"""Where reports go: `-o` written atomically while findings stream, never over an input; large and
compressed inputs streamed chunk by chunk; odd file names kept in valid UTF-8."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from piguard import pipeline
from piguard.cli import app
from piguard.pipeline import FileEvent, ScanOptions, scan_paths

runner = CliRunner()
LINE = "2024-03-01 09:15:02 INFO 客户来电，手机 13812345678，邮箱 wang@example.com\n"


def run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_a_report_replaces_the_old_one_only_when_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "a.log"
    src.write_text(LINE * 50, encoding="utf-8")
    report = tmp_path / "report.jsonl"
    report.write_text("the previous report\n", encoding="utf-8")
    report.chmod(0o640)

    real = pipeline._scan_chunks

    def failing(path: str, opts: ScanOptions):  # the scan dies after its first findings were written
        yield from list(real(path, opts))[:1]
        raise RuntimeError("disk gone")

    monkeypatch.setattr(pipeline, "_scan_chunks", failing)
    monkeypatch.setattr(pipeline, "STREAM_THRESHOLD", 0)  # stream this small file too
    res = runner.invoke(app, ["scan", str(src), "--format", "jsonl", "-o", str(report)])
    assert isinstance(res.exception, RuntimeError)
    assert report.read_text(encoding="utf-8") == "the previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.log", "report.jsonl"]  # no temporary left

    monkeypatch.setattr(pipeline, "_scan_chunks", real)
    code, _, err = run("scan", str(src), "--format", "jsonl", "-o", str(report))
    assert code == 0, err
    rows = [json.loads(x) for x in report.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 100 and {r["entity"] for r in rows} == {"PHONE_NUMBER", "EMAIL_ADDRESS"}
    assert (report.stat().st_mode & 0o777) == 0o640  # the report keeps its permissions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.log", "report.jsonl"]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "sarif", "table", "html"])
def test_every_format_writes_through_a_temporary_file(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "a.log"
    src.write_text(LINE * 3, encoding="utf-8")
    out = tmp_path / f"out.{fmt}"
    code, _, err = run("scan", str(src), "--format", fmt, "-o", str(out))
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    if fmt in ("json", "sarif"):
        json.loads(text)
    assert "138" in text or fmt == "sarif"


def test_the_report_may_not_overwrite_an_input(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence.txt"
    evidence.write_text(LINE, encoding="utf-8")
    code, _, err = run("scan", str(evidence), "--format", "jsonl", "-o", str(evidence))
    assert code == 2 and "would overwrite the input" in err and str(evidence) in err
    assert evidence.read_text(encoding="utf-8") == LINE
    # Found by walking a directory, too.
    code, _, err = run("scan", str(tmp_path), "--format", "jsonl", "-o", str(evidence))
    assert code == 2 and evidence.read_text(encoding="utf-8") == LINE


def test_unwritable_report_paths_are_usage_errors(tmp_path: Path) -> None:
    src = tmp_path / "a.log"
    src.write_text(LINE, encoding="utf-8")
    code, _, err = run("scan", str(src), "-o", str(tmp_path / "missing" / "r.jsonl"))
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    code, _, err = run("scan", str(src), "-o", str(tmp_path))
    assert code == 2 and "directory" in err


def test_a_device_is_written_directly(tmp_path: Path) -> None:
    src = tmp_path / "a.log"
    src.write_text(LINE, encoding="utf-8")
    code, _, err = run("scan", str(src), "--format", "jsonl", "-o", os.devnull)
    assert code == 0, err
    assert Path(os.devnull).is_char_device()


def test_compressed_files_stream_their_findings_chunk_by_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small .gz can hold gigabytes of lines: its findings are handed on per chunk, never merged."""
    # One line repeated compresses far past the default 100:1 bomb guard (sources/limits.py); this file is
    # wanted whole.
    monkeypatch.setenv("PIGUARD_MAX_RATIO", "2000")
    f = tmp_path / "pi.log.gz"
    with gzip.open(f, "wt", encoding="utf-8") as fh:
        for _ in range(60_000):  # ~5 MB of text: more than one 4 MB chunk
            fh.write(LINE)
    assert f.stat().st_size < 1_000_000
    events = [e for e in scan_paths([str(f)], ScanOptions(workers=2)) if isinstance(e, FileEvent)]
    chunks = [e for e in events if not e.done]
    assert len(chunks) >= 2 and all(e.count < 120_000 for e in chunks)
    assert sum(e.count for e in events) == 120_000


def test_a_file_name_that_is_not_utf8_survives_in_the_report(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.log")  # Latin-1 bytes: decoded with a surrogate escape
    (tmp_path / name).write_text(LINE, encoding="utf-8")
    out = tmp_path.parent / f"{tmp_path.name}-report.jsonl"
    for fmt in ("jsonl", "json", "sarif"):
        code, _, err = run("scan", str(tmp_path), "--format", fmt, "-o", str(out))
        assert code == 0, err
        raw = out.read_bytes()
        raw.decode("utf-8")  # valid UTF-8
        if fmt == "jsonl":
            paths = {json.loads(x)["path"] for x in raw.decode().splitlines()}
            assert {os.fsencode(p) for p in paths} == {os.fsencode(str(tmp_path / name))}
    out.unlink()

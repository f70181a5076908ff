"""Startup: `piguard --help` and a scan for structured entities load none of the heavy libraries (the data
map's polars, the name model's onnx, the ledger's SQLAlchemy, the crawler's Scrapy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("polars", "pyarrow", "onnx", "onnxruntime", "scrapy", "sqlalchemy", "numpy", "torch")


def loaded(argv: list[str]) -> list[str]:
    code = (
        "import sys, json, atexit\n"
        f"heavy = set({HEAVY!r})\n"
        "atexit.register(lambda: print('MODULES' + json.dumps(sorted({m.split('.')[0] for m in sys.modules}"
        " & heavy)), file=sys.stderr))\n"
        f"sys.argv = {['piguard', *argv]!r}\n"
        "from piguard.cli import main\n"
        "main()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    (line,) = [x for x in res.stderr.splitlines() if x.startswith("MODULES")]
    return json.loads(line.removeprefix("MODULES"))


@pytest.mark.parametrize("argv", [["--help"], ["scan", "--help"], ["--version"]])
def test_help_loads_nothing_heavy(argv: list[str]) -> None:
    assert loaded(argv) == []


def test_a_structured_scan_loads_nothing_heavy(tmp_path: Path) -> None:
    f = tmp_path / "app.log"
    f.write_text("客户手机 13812345678 邮箱 a@example.com\n", encoding="utf-8")
    assert loaded(["scan", str(f), "--entities", "PHONE_NUMBER,EMAIL_ADDRESS", "-f", "jsonl"]) == []

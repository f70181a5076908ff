"""The HTML report as a person sees it: rendered by headless Chromium, masked values only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from piguard.cli import app

ID = "110101199003071233"


def test_html_report_renders_in_chromium(tmp_path: Path, chromium: Callable[..., str]) -> None:
    src = tmp_path / "data"
    src.mkdir()
    (src / "a.txt").write_text(f"身份证号 {ID}\n手机 13812345678\n", encoding="utf-8")
    (src / "b.bin").write_bytes(b"\x00\x01\x02binary")
    report = tmp_path / "report.html"
    res = CliRunner().invoke(app, ["scan", str(src), "--format", "html", "-o", str(report)])
    assert res.exit_code == 3  # the binary was skipped
    dom = chromium(report.as_uri(), "--dump-dom")
    assert '<b id="files">1</b>' in dom
    assert '<b id="sensitive">1</b>' in dom
    assert "1101**********1233" in dom and ID not in dom
    assert 'class="sensitive"' in dom  # the sensitive row is highlighted
    assert "b.bin" in dom  # the skipped input is listed
    shot = tmp_path / "report.png"
    chromium(report.as_uri(), f"--screenshot={shot}", "--window-size=1000,800")
    assert shot.stat().st_size > 5000

"""The data-map page: self-contained, masked, sensitive rows highlighted, hostile names escaped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl
from datamap_data import customers

from piguard.report.datamap_html import render_datamap_html
from piguard.sources.tables import scan_tables


def _page(tmp_path: Path) -> tuple[str, pl.DataFrame]:
    df = (
        customers(120)
        .select("客户姓名", "sfzh", "col7", "amount")
        .rename({"col7": "<script>alert(1)</script>"})
    )
    df.write_parquet(tmp_path / "crm.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 nope")
    dm = scan_tables(str(tmp_path / "crm.parquet"))
    bad = scan_tables(str(tmp_path / "broken.parquet"))
    dm.extend(bad)
    return render_datamap_html(dm), df


def test_page_is_self_contained_masked_and_escaped(tmp_path: Path) -> None:
    html, df = _page(tmp_path)
    assert "<script" not in html.replace("&lt;script", "")  # only the escaped column name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"(src|href)=\"?https?://", html)
    for raw in df.get_column("sfzh").to_list() + df.get_column("<script>alert(1)</script>").to_list():
        assert raw not in html
    assert "<svg" in html
    assert html.count('class="sensitive"') >= 1  # the ID column row and its table row
    assert "broken.parquet" in html  # skipped inputs are listed with their reason


def test_page_in_headless_chromium(tmp_path: Path, chromium: Any) -> None:
    html, _ = _page(tmp_path)
    page = tmp_path / "map.html"
    page.write_text(html, encoding="utf-8")
    dom = chromium(page.as_uri(), "--dump-dom")
    # Three PI columns rendered as rows, the ID row marked sensitive, both charts drawn.
    assert dom.count('<tr class="sensitive">') >= 2
    assert dom.count("<svg") == 2
    assert "CN_RESIDENT_ID" in dom and "PHONE_NUMBER" in dom and "PERSON" in dom

"""The terminal summary (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from piguard.report import ScanSummary


def render_table(
    summary: ScanSummary, console: Console, datamap_rows: list[dict[str, Any]] | None = None
) -> None:
    t = Table(title=f"Personal information found in {summary.files_scanned} file(s)", show_lines=False)
    t.add_column("entity")
    t.add_column("类别 / kind")
    t.add_column("sensitive", justify="center")
    t.add_column("findings", justify="right")
    t.add_column("files", justify="right")
    t.add_column("examples (masked)")
    for row in summary.entity_rows():
        t.add_row(
            str(row["entity"]),
            f"{row['name_zh']} / {row['name_en']}",
            "[bold red]yes[/]" if row["sensitive"] else "no",
            str(row["count"]),
            str(row["files"]),
            ", ".join(row["examples_masked"]),
        )
    if summary.findings == 0:
        if summary.files_scanned or not datamap_rows:
            console.print(f"No personal information found in {summary.files_scanned} file(s).")
    else:
        console.print(t)
    if datamap_rows:
        dm = Table(title="Data map (tables and columns)")
        for col in ("source", "table", "column", "entity", "share", "rows", "sensitive", "examples (masked)"):
            dm.add_column(col)
        for r in datamap_rows:
            dm.add_row(
                escape(str(r["source"])), escape(str(r["table"])), escape(str(r["column"])), str(r["entity"]),
                f"{float(r['share']):.0%}", str(r["rows_scanned"]),
                "[bold red]yes[/]" if r["sensitive"] else "no",
                escape(", ".join(map(str, r["examples_masked"]))),
            )  # fmt: skip
        console.print(dm)
    # Paths and reasons are text, not Rich markup: "pip install 'piguard[spark]'" printed as 'piguard'.
    for s in summary.skipped:
        console.print(f"[yellow]skipped[/] {escape(str(s.path))}: {escape(s.reason)}", highlight=False)
    for s in summary.notes:
        console.print(f"[cyan]note[/] {escape(str(s.path))}: {escape(s.reason)}", highlight=False)

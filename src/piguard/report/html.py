"""A self-contained HTML report (no CDN, no JavaScript): summary, charts as inline SVG, masked examples."""

from __future__ import annotations

from importlib import resources
from typing import Any

from jinja2 import Environment, select_autoescape

from piguard import __version__
from piguard.report import ScanSummary


def render_html(
    summary: ScanSummary, datamap_rows: list[dict[str, Any]] | None = None, title: str = "piguard scan"
) -> str:
    env = Environment(autoescape=select_autoescape(["html"]))
    tpl = env.from_string(
        resources.files("piguard.report").joinpath("templates/scan.html").read_text("utf-8")
    )
    rows = summary.entity_rows()
    top = max([r["count"] for r in rows], default=1)
    files = summary.by_file.most_common(20)
    return tpl.render(
        title=title,
        version=__version__,
        s=summary.as_dict(),
        rows=rows,
        top=top,
        files=files,
        top_file=max([n for _, n in files], default=1),
        datamap=datamap_rows or [],
    )

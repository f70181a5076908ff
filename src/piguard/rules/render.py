"""Renderers for decisions: the JSON contract, a terminal table and a self-contained HTML page."""

from __future__ import annotations

import html
import json

from piguard.rules.engine import Decision, summary


def to_json(decisions: list[Decision], *, controller: str = "", app_type: int | None = None) -> str:
    doc = {
        "controller": controller,
        "app_type": app_type,
        "summary": summary(decisions),
        "flows": [d.as_dict() for d in decisions],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1)


def to_table(decisions: list[Decision], *, title: str = "piguard check"):  # type: ignore[no-untyped-def]
    from rich.table import Table

    colour = {"allow": "green", "warn": "yellow", "deny": "red"}
    t = Table(title=title, show_lines=True)
    for col in ("flow", "verdict", "rule", "source / article", "reason"):
        t.add_column(col, overflow="fold")
    for d in decisions:
        verdict = f"[{colour[d.verdict]}]{d.verdict}[/]"
        if not d.reasons:
            t.add_row(d.id, verdict, "", "", "")
            continue
        for i, r in enumerate(d.reasons):
            t.add_row(
                d.id if i == 0 else "", verdict if i == 0 else "", r.rule, f"{r.source} {r.article}",
                f"{r.message_en}\n{r.message_zh}",
            )  # fmt: skip
    return t


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}.allow{color:#070}
.warn{color:#a60}.deny{color:#b00;font-weight:bold}.zh{color:#555}"""


def to_html(decisions: list[Decision], *, controller: str = "", source: str = "") -> str:
    e = html.escape
    s = summary(decisions)
    rows = []
    for d in decisions:
        reasons = d.reasons or [None]
        for i, r in enumerate(reasons):
            head = (
                f'<td rowspan="{len(reasons)}" id="flow-{e(d.id)}">{e(d.id)}</td>'
                f'<td rowspan="{len(reasons)}" class="{d.verdict}">{d.verdict}</td>'
                if i == 0 else ""
            )  # fmt: skip
            if r is None:
                rows.append(f"<tr>{head}<td></td><td></td><td></td></tr>")
            else:
                rows.append(
                    f"<tr>{head}<td>{e(r.rule)}</td><td>{e(r.source)} {e(r.article)}</td>"
                    f'<td class="{r.severity}">{e(r.message_en)}'
                    f'<div class="zh">{e(r.message_zh)}</div></td></tr>'
                )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>piguard check</title>'
        f"<style>{_CSS}</style></head><body><h1>piguard check</h1>"
        f"<p>Controller: {e(controller)} · file: {e(source)} · allow {s['allow']} · warn {s['warn']} · "
        f"deny {s['deny']}</p><table><thead><tr><th>flow</th><th>verdict</th><th>rule</th>"
        f"<th>source / article</th><th>reason</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</body></html>\n"
    )

"""Reports of app audits: JSON (the contract), a terminal table, a self-contained HTML page, SARIF 2.1.0."""

from __future__ import annotations

import html
import io
import json
from typing import Any

from piguard import __version__

_SARIF_LEVEL = {"violation": "error", "undecidable": "note", "ok": "none"}


def to_json(docs: list[dict[str, Any]], errors: list[dict[str, Any]] | None = None) -> str:
    if len(docs) == 1 and not errors:
        return json.dumps(docs[0], ensure_ascii=False, indent=1) + "\n"
    return json.dumps({"audits": docs, "errors": errors or []}, ensure_ascii=False, indent=1) + "\n"


def _evidence_line(ev: dict[str, Any]) -> str:
    parts = []
    for k in (
        "sdk",
        "api_kind",
        "permissions",
        "channel",
        "found",
        "from",
        "confidence",
        "sentence",
        "note",
        "days",
        "unit",
        "conditions",
        "target_sdk",
    ):
        if k in ev and ev[k] not in (None, [], ""):
            v = ev[k]
            parts.append(f"{k}={', '.join(map(str, v)) if isinstance(v, list) else v}")
    if "path" in ev:
        parts.append("path=" + " -> ".join(ev["path"][-4:]))
    return "; ".join(parts)


def to_table(docs: list[dict[str, Any]]) -> str:
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    con = Console(file=buf, width=160, force_terminal=False)
    colour = {"violation": "red", "ok": "green", "undecidable": "yellow"}
    for d in docs:
        a = d["app"]
        con.print(
            f"[bold]{a['package']}[/] {a.get('version') or ''}  target SDK {a.get('target_sdk')}  "
            f"{len(a['permissions'])} permissions, {len(a['sdks'])} SDKs, "
            f"{len(a['sensitive_apis'])} sensitive-API kinds; policy: "
            f"{d['policy'].get('source') or 'none'} ({d['policy']['sentences']} sentences)"
        )
        for n in d.get("notes", []):
            con.print(f"  note: {n}")
        t = Table(show_lines=True)
        for col in ("item", "verdict", "what", "evidence / reason"):
            t.add_column(col, overflow="fold")
        for it in d["items"]:
            ev = "\n".join(_evidence_line(e) for e in it["evidence"][:4]) or it.get("reason", "")
            t.add_row(
                f"{it['source']} {it['item']}",
                f"[{colour[it['verdict']]}]{it['verdict']}[/]",
                f"{it['message_en']}\n{it['message_zh']}",
                ev,
            )
        con.print(t)
        s = d["summary"]
        con.print(f"{s['violation']} violation, {s['ok']} ok, {s['undecidable']} undecidable\n")
    return buf.getvalue()


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}.violation{color:#b00;
font-weight:bold}.ok{color:#070}.undecidable{color:#a60}.zh{color:#555}code{font-size:90%}"""


def to_html(docs: list[dict[str, Any]]) -> str:
    e = html.escape
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>piguard app audit</title>',
        f"<style>{_CSS}</style></head><body><h1>piguard app audit</h1>",
    ]
    for d in docs:
        a = d["app"]
        s = d["summary"]
        parts.append(
            f"<h2>{e(a['package'])} {e(str(a.get('version') or ''))}</h2><p>sha256 <code>"
            f"{e(a['sha256'])}</code> · target SDK {e(str(a.get('target_sdk')))} · policy "
            f"{e(str(d['policy'].get('source') or 'none'))} · violation {s['violation']} · ok {s['ok']}"
            f" · undecidable {s['undecidable']}</p>"
        )
        if a["sdks"]:
            parts.append(
                "<p>SDKs: " + ", ".join(e(f"{x['name']} ({x['vendor']})") for x in a["sdks"]) + "</p>"
            )
        parts.append(
            "<table><thead><tr><th>item</th><th>verdict</th><th>what</th><th>evidence / reason"
            "</th></tr></thead><tbody>"
        )
        for it in d["items"]:
            ev = "<br>".join(e(_evidence_line(x)) for x in it["evidence"][:6]) or e(it.get("reason", ""))
            parts.append(
                f'<tr><td>{e(it["source"])} {e(it["item"])}</td><td class="{it["verdict"]}">'
                f'{it["verdict"]}</td><td>{e(it["message_en"])}<div class="zh">{e(it["message_zh"])}'
                f"</div></td><td>{ev}</td></tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def to_sarif(docs: list[dict[str, Any]]) -> str:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for d in docs:
        uri = d["app"]["path"]
        for it in d["items"]:
            if it["verdict"] == "ok":
                continue
            rules.setdefault(
                it["rule"],
                {
                    "id": it["rule"],
                    "name": it["rule"],
                    "shortDescription": {"text": it["message_en"]},
                    "fullDescription": {"text": it["message_zh"]},
                    "properties": {"source": it["source"], "item": it["item"]},
                },
            )
            msg = it["message_en"]
            if it["evidence"]:
                msg += " — " + _evidence_line(it["evidence"][0])
            elif it.get("reason"):
                msg += " — undecidable: " + it["reason"]
            results.append(
                {
                    "ruleId": it["rule"],
                    "level": _SARIF_LEVEL[it["verdict"]],
                    "message": {"text": msg},
                    "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}}}],
                    "properties": {"verdict": it["verdict"]},
                }
            )
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "piguard app audit",
                        "version": __version__,
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def render(docs: list[dict[str, Any]], fmt: str, errors: list[dict[str, Any]] | None = None) -> str:
    if fmt == "json":
        return to_json(docs, errors)
    if fmt == "html":
        return to_html(docs)
    if fmt == "sarif":
        return to_sarif(docs)
    return to_table(docs)

"""The data map as one self-contained HTML page for a compliance officer: no JavaScript, no CDN, charts as
inline SVG, every value masked. Sensitive personal information (PIPL Art. 28) is highlighted."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, select_autoescape

from piguard import __version__, taxonomy

_TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;
color:#1d2433;background:#f6f7f9}
header{background:#1d2433;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c7ccd6}
main{padding:20px 28px;max-width:1280px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:18px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 16px;min-width:130px}
.card b{display:block;font-size:24px}.card.sens b{color:#b42318}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:14px 18px;margin-bottom:18px}
h2{font-size:16px;margin:0 0 10px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceef2;vertical-align:top}
th{background:#f1f3f6;font-weight:600}
tr.sensitive td{background:#fdecea}tr.sensitive td.entity{color:#b42318;font-weight:600}
.tag{display:inline-block;border-radius:3px;padding:0 6px;font-size:12px;background:#e7eaf0}
.tag.sens{background:#b42318;color:#fff}
.bar{display:inline-block;height:8px;background:#3867d6;border-radius:2px;vertical-align:middle}
.muted{color:#687385}.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.charts{display:flex;gap:18px;flex-wrap:wrap}.charts figure{margin:0}
figcaption{font-weight:600;margin-bottom:6px}
</style></head><body>
<header><h1>{{ title }} · 个人信息数据地图</h1>
<p>Generated {{ generated }} by piguard {{ version }}
 · values are masked · sensitive personal information
(PIPL Art. 28 / GB/T 35273-2020 Table B.1) is highlighted in red</p></header>
<main>
<div class="cards">
 <div class="card"><span>sources 数据源</span><b>{{ n_sources }}</b></div>
 <div class="card"><span>tables 表</span><b>{{ tables|length }}</b></div>
 <div class="card"><span>PI columns 含个人信息的列</span><b>{{ n_pi_columns }}</b></div>
 <div class="card sens"><span>sensitive columns 敏感列</span><b>{{ n_sensitive_columns }}</b></div>
 <div class="card"><span>identifying tables 可识别个人的表</span><b>{{ combinations|length }}</b></div>
 <div class="card"><span>skipped 跳过</span><b>{{ skipped|length }}</b></div>
</div>

<section><h2>Where personal information lives · 个人信息分布</h2><div class="charts">
<figure><figcaption>Columns by kind of information</figcaption>{{ entity_chart|safe }}</figure>
<figure><figcaption>Tables with the most personal-information columns</figcaption>
{{ table_chart|safe }}</figure>
</div></section>

{% if combinations %}<section><h2>Tables that identify people · 可识别特定自然人的表</h2>
<table><tr><th>source</th><th>table</th><th>kind</th><th>columns</th><th>why</th></tr>
{% for c in combinations %}<tr><td class="mono">{{ c.source }}</td><td>{{ c.table }}</td>
<td><span class="tag">{{ c.kind }}</span></td><td>{{ c.columns|join(", ") }}</td>
<td>{{ c.reason_zh }}<br><span class="muted">{{ c.reason }} ({{ c.basis }})</span></td></tr>{% endfor %}
</table></section>{% endif %}

<section><h2>Columns holding personal information · 列级明细</h2>
<table><tr><th>source</th><th>table</th><th>column</th><th>information</th><th>share</th>
<th>confidence</th>
<th>rows scanned</th><th>examples (masked)</th><th>evidence</th></tr>
{% for r in rows %}<tr class="{{ 'sensitive' if r.sensitive else '' }}">
<td class="mono">{{ r.source }}</td><td>{{ r.table }}</td><td class="mono">{{ r.column }}</td>
<td class="entity">{{ r.zh }} / {{ r.en }} {% if r.sensitive %}
<span class="tag sens">sensitive 敏感</span>{% endif %}
<div class="muted mono">{{ r.entity }}</div></td>
<td><span class="bar" style="width:{{ (r.share * 60)|round(0)|int + 1 }}px"></span>
{{ "%.0f"|format(r.share * 100) }}%</td>
<td>{{ "%.2f"|format(r.confidence) }}</td><td>{{ r.rows_scanned }}</td>
<td class="mono">{{ r.examples_masked|join(", ") }}</td><td class="muted">{{ r.evidence }}</td></tr>
{% else %}<tr><td colspan="9">No personal information found in the tables scanned.</td></tr>{% endfor %}
</table></section>

<section><h2>Tables scanned · 已扫描的表</h2>
<table><tr><th>source</th><th>table</th><th>rows scanned</th><th>columns</th><th>PI columns</th>
<th>sensitive</th><th>how</th></tr>
{% for t in tables %}<tr class="{{ 'sensitive' if t.sensitive_columns else '' }}">
<td class="mono">{{ t.source }}</td>
<td>{{ t.table }}</td><td>{{ t.rows_scanned }}</td><td>{{ t.columns }}</td><td>{{ t.pi_columns }}</td>
<td>{{ t.sensitive_columns }}</td><td class="muted">{{ t.method }}</td></tr>{% endfor %}
</table></section>

{% if skipped %}<section><h2>Skipped · 未扫描</h2><table><tr><th>source</th><th>table</th>
<th>reason</th></tr>
{% for s in skipped %}<tr><td class="mono">{{ s.source }}</td><td>{{ s.table }}</td>
<td>{{ s.reason }}</td></tr>{% endfor %}
</table></section>{% endif %}
{% if notes %}<section><h2>Notes · 说明</h2><table><tr><th>source</th><th>table</th><th>note</th></tr>
{% for s in notes %}<tr><td class="mono">{{ s.source }}</td><td>{{ s.table }}</td><td>{{ s.note }}
</td></tr>{% endfor %}
</table></section>{% endif %}
</main></body></html>
"""


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _bar_chart(items: list[tuple[str, int, bool]], width: int = 520) -> str:
    """Horizontal bars as inline SVG; red bars are sensitive."""
    if not items:
        return '<p class="muted">nothing to chart</p>'
    row, label_w = 22, 230
    top = max(n for _, n, _ in items) or 1
    h = row * len(items) + 6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" role="img">']
    for i, (label, n, sens) in enumerate(items):
        y = i * row + 3
        w = max(2, int((width - label_w - 40) * n / top))
        color = "#b42318" if sens else "#3867d6"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">{_esc(label[:34])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="14" fill="{color}" rx="2"><title>'
            f"{_esc(label)}: {n}</title></rect>"
            f'<text x="{label_w + w + 4}" y="{y + 14}" font-size="12">{n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_datamap_html(datamap: Any, title: str = "piguard data map") -> str:
    """Render a ``DataMap`` (from ``piguard.sources.tables.scan_tables``) as a standalone HTML page."""
    tax = taxonomy.entities()
    evidence = {
        (e["source"], e["table"], e["column"], e["entity"]): e["evidence"]
        for e in getattr(datamap, "evidence", [])
    }
    rows = []
    for r in sorted(datamap.rows, key=lambda r: (not r["sensitive"], r["source"], r["table"], r["column"])):
        et = tax.get(str(r["entity"]))
        rows.append(
            {
                **r,
                "zh": et.zh if et else r["entity"],
                "en": et.en if et else r["entity"],
                "evidence": evidence.get((r["source"], r["table"], r["column"], r["entity"]), ""),
            }
        )
    by_entity: Counter[str] = Counter(str(r["entity"]) for r in datamap.rows)
    entity_items = [
        (f"{tax[e].zh} {e}" if e in tax else e, n, taxonomy.is_sensitive(e))
        for e, n in by_entity.most_common(15)
    ]
    per_table: dict[tuple[str, str], set[str]] = defaultdict(set)
    sens_table: dict[tuple[str, str], bool] = defaultdict(bool)
    for r in datamap.rows:
        key = (str(r["source"]), str(r["table"]))
        per_table[key].add(str(r["column"]))
        sens_table[key] |= bool(r["sensitive"])
    table_items = sorted(
        ((t, len(cols), sens_table[(s, t)]) for (s, t), cols in per_table.items()), key=lambda x: -x[1]
    )[:15]
    pi_cols = {(r["source"], r["table"], r["column"]) for r in datamap.rows}
    sens_cols = {(r["source"], r["table"], r["column"]) for r in datamap.rows if r["sensitive"]}
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(_TEMPLATE).render(
        title=title,
        version=__version__,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        rows=rows,
        tables=getattr(datamap, "tables", []),
        combinations=datamap.combinations,
        skipped=datamap.skipped,
        notes=getattr(datamap, "notes", []),
        n_sources=len(
            {t["source"] for t in getattr(datamap, "tables", [])} | {r["source"] for r in datamap.rows}
        ),
        n_pi_columns=len(pi_cols),
        n_sensitive_columns=len(sens_cols),
        entity_chart=_bar_chart(entity_items),
        table_chart=_bar_chart(table_items),
    )

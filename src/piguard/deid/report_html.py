"""HTML rendering of the de-identification report (self-contained, autoescaped)."""

from __future__ import annotations

import json
from typing import Any

from jinja2 import Environment, select_autoescape

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>piguard de-identification report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
th{background:#f3f3f3}.num{text-align:right;font-variant-numeric:tabular-nums}
</style></head><body>
<h1>De-identification report</h1>
{% if r.declared_state %}<p><strong>Declared state: {{ r.declared_state }}</strong>
{% if r.state_reasons %}({{ r.state_reasons | join("; ") }}){% endif %}</p>{% endif %}
<p>{{ r.utility.search.mode }} search{% if r.utility.search.proven_optimal is false %} (best found within
the limit, not proven optimal){% endif %}; {{ r.equivalence_classes }} equivalence classes, smallest
{{ r.min_class_size }}; {{ r.suppressed_rows }} records suppressed of {{ r.risk.records_total }}.</p>
<h2>Privacy models</h2><pre>{{ models }}</pre>
<h2>Re-identification risk</h2>
<table><tr><th>attacker</th><th>highest</th><th>average</th><th>records above {{ r.risk.threshold }}</th></tr>
{% for m in ["prosecutor", "journalist", "marketer"] %}<tr><td>{{ m }}</td>
<td class="num">{{ "%.4f"|format(r.risk[m].highest) }}</td>
<td class="num">{{ "%.6f"|format(r.risk[m].average) }}</td>
<td class="num">{{ r.risk[m].records_at_risk }}</td></tr>{% endfor %}
</table>
<p>Sample uniques: {{ r.risk.sample_uniques.records }}.
Population {{ "{:,}".format(r.risk.population_uniqueness.population) }}: Zayatz estimates
{{ "%.1f"|format(r.risk.population_uniqueness.zayatz.sample_uniques_unique_in_population) }} sample uniques
also unique in the population; Pitman estimates
{% if r.risk.population_uniqueness.pitman.population_uniques is not none %}
{{ "%.1f"|format(r.risk.population_uniqueness.pitman.population_uniques) }}{% else %}(no fit){% endif %}
population uniques.</p>
<h2>Columns</h2>
<table><tr><th>column</th><th>operator</th><th>level</th><th>loss</th></tr>
{% for c, info in r.utility.columns.items() %}<tr><td>{{ c }}</td><td>{{ info.operator }}</td>
<td class="num">{{ info.level if info.level is not none else "" }}</td>
<td class="num">{{ "%.4f"|format(info.loss) if info.loss is defined else "" }}</td></tr>{% endfor %}
</table>
{% if r.columns %}<h2>Every input column</h2>
<table><tr><th>column</th><th>treatment</th><th>why</th><th>detected</th></tr>
{% for c, p in r.columns.items() %}<tr><td>{{ c }}</td><td>{{ p.treatment }}</td><td>{{ p.origin }}</td>
<td>{{ p.detected | join(", ") }}</td></tr>{% endfor %}
</table>{% endif %}
{% if r.passed_through %}<h2>Passed through unchanged</h2>
<table><tr><th>column</th><th>why</th><th>detected</th></tr>
{% for p in r.passed_through %}<tr><td>{{ p.column }}</td><td>{{ p.origin }}</td>
<td>{{ p.detected | join(", ") }}</td></tr>{% endfor %}
</table>{% endif %}
{% if r.rescan %}<h2>Re-scan of the output ({{ r.rescan.rows }} rows)</h2>
{% if r.rescan.columns %}<table><tr><th>column</th><th>entity</th><th>identifier</th><th>share</th></tr>
{% for c, fs in r.rescan.columns.items() %}{% for f in fs %}<tr><td>{{ c }}</td><td>{{ f.entity }}</td>
<td>{{ f.identifier }}</td><td class="num">{{ "%.2f"|format(f.share) }}</td></tr>{% endfor %}{% endfor %}
</table>{% else %}<p>Nothing found.</p>{% endif %}{% endif %}
{% if r.quasi_identifiers %}<h2>Hierarchies</h2>
<table><tr><th>column</th><th>kind</th><th>levels</th><th>SHA-256</th></tr>
{% for q in r.quasi_identifiers %}<tr><td>{{ q.column }}</td><td>{{ q.hierarchy.kind }}</td>
<td class="num">{{ q.hierarchy.levels }}</td><td><code>{{ q.hierarchy.sha256 }}</code></td></tr>{% endfor %}
</table>{% endif %}
</body></html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def render_html(report: dict[str, Any]) -> str:
    return _env.from_string(_TEMPLATE).render(
        r=report, models=json.dumps(report["models"], indent=2, ensure_ascii=False)
    )

"""A verdict as the terminal table, JSON or a standalone HTML page (escaped by Jinja2's autoescape)."""

from __future__ import annotations

import json

from jinja2 import Environment

from piguard.passport.verify import Verdict

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>piguard passport: {{ verdict }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}
.accept{color:#0a6b2d}.reject{color:#a10d0d}td,th{padding:.2em .6em;text-align:left;vertical-align:top}
code{font-size:90%}</style></head><body>
<h1 class="{{ verdict }}">{{ verdict }}</h1>
<p>Passport <code>{{ v.passport }}</code>{% if v.id %} (<code>{{ v.id }}</code>){% endif %}
{% if v.predicate %}issued by {{ v.predicate.issuer_name }}
(<code>{{ v.predicate.issuer_key_id }}</code>){% endif %}</p>
{% if v.reasons %}<h2>Reasons</h2><table><tr><th>check</th><th>reason</th></tr>
{% for r in v.reasons %}<tr><td><code>{{ r.code }}</code></td><td>{{ r.message }}</td></tr>{% endfor %}
</table>{% endif %}
{% if v.checks %}<h2>Verified</h2><ul>{% for c in v.checks %}<li>{{ c }}</li>{% endfor %}</ul>{% endif %}
{% if v.notes %}<h2>Notes</h2><ul>{% for n in v.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
</body></html>
"""


def to_text(v: Verdict) -> str:
    """``accept`` or ``reject``, then one line per reason (or per check held, on accept) and the notes."""
    lines = ["accept" if v.accepted else "reject"]
    lines += [f"  {r.code}: {r.message}" for r in v.reasons]
    if v.accepted:
        lines += [f"  ok: {c}" for c in v.checks]
    lines += [f"  note: {n}" for n in v.notes]
    return "\n".join(lines) + "\n"


def to_json(v: Verdict) -> str:
    return json.dumps(v.as_dict(), ensure_ascii=False, indent=2) + "\n"


def to_html(v: Verdict) -> str:
    env = Environment(autoescape=True)
    return env.from_string(_HTML).render(v=v, verdict="accept" if v.accepted else "reject")

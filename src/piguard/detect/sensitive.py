"""Sensitive personal information in free text by context: health, religion, biometrics, minors, money, trail.

These categories (PIPL Art. 28) have no fixed format, so the detector looks for the terms that name them
(``data/sensitive.yaml``: 确诊, 糖尿病, 基督徒, 指纹, 不满十四周岁, 银行流水, 行程轨迹 ...) and reports the
term. A term alone is a weak signal, reported below the default threshold; a person cue nearby on the same
line (我, 患者, 她, my, patient ...) makes it a finding. Users tune terms and cues in the YAML, not the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from piguard.detect._fastre import finditer_spans
from piguard.detect._lazy import LazyModule, load_yaml
from piguard.detect.structured import RawHit

pl = LazyModule("polars")


@dataclass(frozen=True)
class _Rules:
    window: int
    confidence: float
    confidence_with_cue: float
    rx_terms: re.Pattern[str]
    # the terms as one Rust regex over the text as written: English terms matched ASCII-case-insensitively
    # (lowering a 4 MB chunk of mixed text cost more than finding the terms in it)
    terms_rust: str
    term_entity: dict[str, str]
    entities: tuple[str, ...]
    # person cues as one Rust regex; English cues need a non-alphanumeric or the window's edge on each side
    cue_rust: str


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w.lower()) for w in sorted(set(words), key=len, reverse=True))


def _rust_term(term: str) -> str:
    """A lowercased term as a Rust regex matching it in any ASCII case (HIV阳性, Diabetes)."""
    if term.isascii():
        return f"(?i-u:{re.escape(term)})"
    return "".join(f"[{c}{c.upper()}]" if c.isascii() and c.isalpha() else re.escape(c) for c in term)


def _bounded(text: str, s: int, e: int) -> bool:
    # English terms need word boundaries ('hiv' must not match inside 'archive').
    if not text[s].isascii():
        return True
    return not (s > 0 and text[s - 1].isalpha() and text[s - 1].isascii()) and not (
        e < len(text) and text[e].isalpha() and text[e].isascii()
    )


def load_rules(text: str | None = None) -> _Rules:
    """Rules from YAML text (the packaged ``sensitive.yaml`` when ``text`` is None)."""
    if text is None:
        text = resources.files("piguard.detect").joinpath("data", "sensitive.yaml").read_text("utf-8")
    raw = load_yaml(text)
    cues = sorted({str(c) for c in raw["person_cues"]}, key=len, reverse=True)
    term_entity: dict[str, str] = {}
    for entity, spec in raw["categories"].items():
        for t in spec["terms"]:
            term_entity.setdefault(str(t).lower(), entity)
    return _Rules(
        window=int(raw["window"]),
        confidence=float(raw["confidence"]),
        confidence_with_cue=float(raw["confidence_with_cue"]),
        rx_terms=re.compile(_alternation(list(term_entity))),
        terms_rust="|".join(_rust_term(t) for t in sorted(term_entity, key=len, reverse=True)),
        term_entity=term_entity,
        entities=tuple(raw["categories"]),
        # An English cue stands as a word: not inside a word and not glued to digits ("75ms" is no Ms.).
        cue_rust="|".join(
            rf"(?:^|[^a-z0-9]){re.escape(c.lower())}(?:$|[^a-z0-9])" if c[:1].isascii() else re.escape(c)
            for c in cues
        ),
    )


@cache
def _rules() -> _Rules:
    return load_rules()


_DELIMITERS = "\t,|;"
_CELL_PAD = " \"'"
_RX_MD_RULE = r"(?m)^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*\r?$"


def _is_header(line: str) -> bool:
    """A row of column names: delimited, every cell a short label, no digits anywhere."""
    delim = max(_DELIMITERS, key=line.count)
    cells = [c.strip(_CELL_PAD) for c in line.strip().strip("|").split(delim)]
    return (
        line.count(delim) >= 1
        and all(0 < len(c) <= 16 for c in cells)
        and not any(ch.isdigit() for ch in line)
    )


def _header_rows(text: str) -> list[tuple[int, int]]:
    """Where the text's header rows are: its first line (a CSV or TSV export) and each line above a
    Markdown table rule (|---|---|), when they read as column names. A term there names a column (月收入,
    贷款金额); it says nothing about a person."""
    rows: list[tuple[int, int]] = []
    end = text.find("\n")
    end = len(text) if end < 0 else end
    if _is_header(text[:end]):
        rows.append((0, end))
    if "---" in text:
        for s, _e in finditer_spans(text, _RX_MD_RULE):
            if s >= 2:
                a = text.rfind("\n", 0, s - 1) + 1
                if _is_header(text[a : s - 1]):
                    rows.append((a, s - 1))
    return rows


class SensitiveContextDetector:
    """HEALTH_INFO, RELIGIOUS_BELIEF, BIOMETRIC, MINOR_INFO, FINANCIAL_INFO, WHEREABOUTS by terms and cues."""

    name = "sensitive_context"
    entities = (
        "HEALTH_INFO", "RELIGIOUS_BELIEF", "BIOMETRIC", "MINOR_INFO", "FINANCIAL_INFO", "WHEREABOUTS",
    )  # fmt: skip

    def find(self, text: str) -> list[RawHit]:
        r = _rules()
        w = r.window
        n = len(text)
        # English terms need word boundaries ('hiv' must not match inside 'archive'), and a segment of a URL
        # path is a route, not a statement about anyone (a lender's logs: /api/v1/loan/…). Inlined: a log
        # can hold a term on every line.
        spans = []
        for s, e in finditer_spans(text, r.terms_rust):
            if text[s] < "\x80":
                if s and ((c := text[s - 1]) == "/" or (c < "\x80" and c.isalpha())):
                    continue
                if e < n and ((c := text[e]) == "/" or (c < "\x80" and c.isalpha())):
                    continue
            spans.append((s, e))
        if not spans:
            return []
        labels = _header_rows(text)
        if labels:
            spans = [(s, e) for s, e in spans if not any(a <= s < b for a, b in labels)]
            if not spans:
                return []
        # Is a person cue near each term? One Rust-regex pass over all the windows at once (Python's re
        # tried each window in turn, ~4 us each, which dominated texts full of terms).
        # Windows stay on the term's line: a cue on the next log line speaks of someone else.
        before = pl.Series([text[max(0, s - w) : s] for s, _ in spans]).str.replace(r"(?s)^.*\n", "")
        after = pl.Series([text[e : e + w] for _, e in spans]).str.replace(r"(?s)\n.*$", "")
        before, after = before.str.to_lowercase(), after.str.to_lowercase()
        near = (before.str.contains(r.cue_rust) | after.str.contains(r.cue_rust)).to_list()
        term_entity, name = r.term_entity, self.name
        hi, lo = r.confidence_with_cue, r.confidence
        entity_of: dict[str, str] = {}  # as written (Loan, LOAN) -> entity
        out = []
        for (s, e), cue in zip(spans, near, strict=True):
            written = text[s:e]
            ent = entity_of.get(written)
            if ent is None:
                ent = entity_of[written] = term_entity[written.lower()]
            out.append(RawHit(ent, s, e, hi if cue else lo, name))
        return out

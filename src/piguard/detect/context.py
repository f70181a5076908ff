"""Context words that raise or lower confidence (data in ``context.yaml``).

The rule: look at the text just before a candidate, on the same line, within ``window`` characters.
A positive word for the candidate's entity raises confidence (and is required for entities that need
context, such as bare 8-digit dates); a negative word (order no., tracking no., ISBN...) lowers it.
When both occur, the word nearer to the value speaks for it.

A value that stands alone on its line ("Phone:\n467 3395") takes its window from the end of the line above.

``adjust_expr_frame`` applies the rule to a polars frame of candidates (the reference engine); the compiled
engine (_cscan.c) applies the same rule to each candidate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from piguard.detect._lazy import LazyModule, load_yaml

pl = LazyModule("polars")  # the reference engine's; the compiled engine reads the words, not the frames


def _ordered(words: list[str]) -> tuple[str, ...]:
    """Lowercased, longest first, so '订单号' wins over '订单' (the order every pattern tries the words in,
    and the order the compiled engine receives them)."""
    return tuple(w.lower() for w in sorted(set(words), key=len, reverse=True))


def _bounded(word: str) -> bool:
    # An ASCII word must not be the tail of a longer word ('ip' in 'zip').
    return word[:1].isascii() and word[:1].isalpha()


def _alternation(words: list[str]) -> re.Pattern[str]:
    """Python regex for any of ``words`` (lowercased text); ASCII words need a non-letter on their left."""
    return re.compile(
        "|".join(rf"(?<![a-z]){re.escape(w)}" if _bounded(w) else re.escape(w) for w in _ordered(words))
    )


_RUST_META = set(r"\.+*?()|[]{}^$#&-~")


def _rust_escape(s: str) -> str:
    return "".join("\\" + c if c in _RUST_META else c for c in s)


def _last_match_pattern(words: list[str]) -> str:
    """A Rust regex that matches from the start of a window through the end of the LAST context word in
    it (greedy prefix), case-insensitively; ASCII words need a non-letter (or the start) on their left."""
    alts = (f"(?:^|[^a-z]){_rust_escape(w)}" if _bounded(w) else _rust_escape(w) for w in _ordered(words))
    return "(?is)^.*(?:" + "|".join(alts) + ")"


@dataclass(frozen=True)
class ContextRules:
    window: int
    boost: float
    penalty: float
    negative_last: str = ""
    positive_last: dict[str, str] = field(default_factory=dict)
    # The words themselves, lowercased and longest first (the order the patterns try them), for the
    # compiled engine.
    negative_words: tuple[str, ...] = ()
    positive_words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Words that name the value from right after it ("085 175 7641-Office", "416 60 039 fax"): up to two
    # separators, then the word; they count when no negative word stands before the value.
    after_words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    after_pattern: dict[str, str] = field(default_factory=dict)

    def adjust_expr_frame(self, hits: pl.DataFrame) -> pl.Series:
        """``adjust`` for every row of ``hits`` (columns ``l`` line text, ``cil`` char offset in the line,
        ``entity``, ``confidence``, ``needs_context``): a Float64 series, null where the row is dropped.

        Removing "everything up to the last context word" from a window leaves a remainder whose length
        is the distance from that word to the value: a shorter remainder is a nearer word."""
        if hits.height == 0:
            return pl.Series("confidence", [], dtype=pl.Float64)
        lo = (pl.col("cil") - self.window).clip(lower_bound=0)
        win = pl.col("l").str.slice(lo, pl.col("cil") - lo)
        # A value alone on its line ("Phone:\n467 3395") takes its context from the end of the line above.
        alone = pl.col("l").str.slice(0, pl.col("cil")).str.strip_chars() == ""
        if "prev" in hits.columns:
            above = pl.col("prev").str.slice(-self.window)
            win = pl.when(alone & pl.col("prev").is_not_null()).then(above).otherwise(win)
        after = pl.col("l").str.slice(pl.col("cil") + pl.col("n").str.len_chars(), AFTER_REACH)
        frame = hits.select("entity", "confidence", "needs_context", w=win, a=after).with_row_index("_i")
        frame = frame.with_columns(wlen=pl.col("w").str.len_bytes())
        rest_len = pl.col("w").str.replace(self.negative_last, "").str.len_bytes()
        frame = frame.with_columns(neg=pl.when(rest_len < pl.col("wlen")).then(rest_len))
        parts = []
        for (ent,), part in frame.partition_by("entity", as_dict=True).items():
            pat = self.positive_last.get(str(ent))
            if pat:
                rest = pl.col("w").str.replace(pat, "").str.len_bytes()
                part = part.with_columns(pos=pl.when(rest < pl.col("wlen")).then(rest))
            else:
                part = part.with_columns(pos=pl.lit(None, dtype=pl.UInt32))
            apat = self.after_pattern.get(str(ent))
            aft = pl.col("a").str.contains(apat).fill_null(False) if apat else pl.lit(False)
            parts.append(part.with_columns(aft=aft))
        frame = pl.concat(parts).sort("_i")
        # A smaller remainder is a nearer word; ties go to the positive word.
        has_pos = (
            pl.col("pos").is_not_null() & (pl.col("neg").is_null() | (pl.col("pos") <= pl.col("neg")))
        ) | (pl.col("aft") & pl.col("neg").is_null())
        has_neg = pl.col("neg").is_not_null() & ~has_pos
        c, need = pl.col("confidence"), pl.col("needs_context")
        out = (
            pl.when(has_pos & ~need)
            .then((c + self.boost).clip(upper_bound=1.0))
            .when(has_pos)
            .then(c.clip(lower_bound=0.85))
            .when(need)
            .then(pl.lit(None, dtype=pl.Float64))
            .when(has_neg)
            .then((c - self.penalty).clip(lower_bound=0.0))
            .otherwise(c)
        )
        return frame.select(confidence=out).to_series()


@cache
def context_rules() -> ContextRules:
    raw = load_yaml(resources.files("piguard.detect").joinpath("context.yaml").read_text("utf-8"))
    return ContextRules(
        window=int(raw["window"]),
        boost=float(raw["boost"]),
        penalty=float(raw["penalty"]),
        negative_last=_last_match_pattern(raw["negative"]),
        positive_last={k: _last_match_pattern(v) for k, v in raw["positive"].items()},
        negative_words=_ordered(raw["negative"]),
        positive_words={k: _ordered(v) for k, v in raw["positive"].items()},
        after_words={k: _ordered(v) for k, v in raw.get("positive_after", {}).items()},
        after_pattern={k: _after_pattern(v) for k, v in raw.get("positive_after", {}).items()},
    )


AFTER_REACH = 16  # characters after a value read for an after-word (two separators and the word)
AFTER_SEPARATORS = " -(（:："


def _after_pattern(words: list[str]) -> str:
    """A Rust regex for "up to two separators, then one of the words" at the start of the text after a
    value, case-insensitively; an ASCII word must not run on into more letters."""
    seps = "".join(_rust_escape(c) for c in AFTER_SEPARATORS)
    alts = (f"{_rust_escape(w)}(?:$|[^a-z])" if _bounded(w) else _rust_escape(w) for w in _ordered(words))
    return f"(?is)^[{seps}]{{0,2}}(?:" + "|".join(alts) + ")"

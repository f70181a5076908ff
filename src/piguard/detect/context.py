"""Context words that raise or lower confidence (data in ``context.yaml``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml


def _alternation(words: list[str]) -> re.Pattern[str]:
    # Longest first so '订单号' wins over '订单'; ASCII words need a word boundary on the left.
    parts = []
    for w in sorted(set(words), key=len, reverse=True):
        esc = re.escape(w.lower())
        parts.append(rf"(?<![a-z]){esc}" if w[:1].isascii() and w[:1].isalpha() else esc)
    return re.compile("|".join(parts))


@dataclass(frozen=True)
class ContextRules:
    window: int
    boost: float
    penalty: float
    negative: re.Pattern[str]
    positive: dict[str, re.Pattern[str]]

    def adjust(self, text: str, start: int, entity: str, confidence: float, needs_context: bool) -> float | None:
        """Confidence after context, or None when the entity needs context and has none."""
        lo = start - self.window
        window = text[lo if lo > 0 else 0 : start]
        nl = window.rfind("\n")
        if nl >= 0:
            window = window[nl + 1 :]
        if not window:
            return None if needs_context else confidence
        window = window.lower()
        pos = self.positive.get(entity)
        pos_m = pos.search(window) if pos is not None else None
        neg_m = self.negative.search(window)
        if pos_m and neg_m:
            # The nearer word speaks for the value.
            if pos_m.end() >= neg_m.end():
                neg_m = None
            else:
                pos_m = None
        if pos_m:
            return min(1.0, confidence + self.boost) if not needs_context else max(confidence, 0.85)
        if needs_context:
            return None
        if neg_m:
            return max(0.0, confidence - self.penalty)
        return confidence


@cache
def context_rules() -> ContextRules:
    raw = yaml.safe_load(resources.files("piguard.detect").joinpath("context.yaml").read_text("utf-8"))
    return ContextRules(
        window=int(raw["window"]),
        boost=float(raw["boost"]),
        penalty=float(raw["penalty"]),
        negative=_alternation(raw["negative"]),
        positive={k: _alternation(v) for k, v in raw["positive"].items()},
    )

"""The Finding: one detected piece of personal information, located but never carrying the raw value."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class Finding:
    """A located entity. ``start``/``end`` are character offsets (end exclusive) into the scanned text;
    ``line`` is 1-based. The raw value is deliberately absent: slice the text you scanned if you need it."""

    entity: str
    start: int
    end: int
    confidence: float
    detector: str
    masked: str
    sensitive: bool
    line: int = 1

    def value_in(self, text: str) -> str:
        return text[self.start : self.end]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

"""Discover personal information in text.

Public API::

    from piguard.detect import scan_text, Registry, Finding
    findings = scan_text("手机 13812345678")

``scan_text`` returns masked, located findings; the raw value is never stored in a Finding.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from operator import attrgetter

from piguard import taxonomy
from piguard.detect.findings import Finding
from piguard.detect.masking import mask_value
from piguard.detect.registry import (
    STRUCTURED_ENTITIES,
    Detector,
    DetectorConfigError,
    PatternDetector,
    Registry,
    load_detector_file,
)
from piguard.detect.structured import RawHit, classify_values

DEFAULT_MIN_CONFIDENCE = 0.5


@cache
def default_registry() -> Registry:
    return Registry.default()


def resolve_overlaps(hits: Iterable[RawHit]) -> list[RawHit]:
    """Keep one hit per overlapping cluster: the most confident, then the longest (the first of equals)."""
    # Sorting on the start alone (stable, C-level key) and letting a strictly better hit replace the kept
    # one gives the same answer as sorting on (start, -confidence, -length): hits at one start always overlap.
    ordered = sorted(hits, key=_START)
    kept: list[RawHit] = []
    for h in ordered:
        if kept and h.start < kept[-1].end:
            prev = kept[-1]
            if h.confidence > prev.confidence or (
                h.confidence == prev.confidence and h.end - h.start > prev.end - prev.start
            ):
                kept[-1] = h
            continue
        kept.append(h)
    return kept


_START = attrgetter("start")


def findings_from_hits(  # the readable definition; detect.batch does the same as columns
    text: str,
    hits: Iterable[RawHit],
    *,
    entities: set[str] | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    include_non_personal: bool = False,
    base_offset: int = 0,
    base_line: int = 1,
) -> list[Finding]:
    """Threshold, filter, mask and locate (line numbers) raw hits."""
    if entities is not None:
        selected = [h for h in hits if h.confidence >= min_confidence and h.entity in entities]
    elif include_non_personal:
        selected = [h for h in hits if h.confidence >= min_confidence]
    else:
        hidden = _non_personal()
        selected = [h for h in hits if h.confidence >= min_confidence and h.entity not in hidden]
    out: list[Finding] = []
    append = out.append
    line = base_line
    pos = 0
    count = text.count
    sensitive = _sensitive()
    rounded = _ROUNDED  # round(x, 3) costs ~0.3 us; detectors emit few distinct confidences
    for h in resolve_overlaps(selected) if len(selected) > 1 else selected:
        start, end, entity, conf = h.start, h.end, h.entity, h.confidence
        line += count("\n", pos, start)
        pos = start
        r = rounded.get(conf)
        if r is None:
            r = round(conf, 3)
            if len(rounded) < 4096:
                rounded[conf] = r
        append(
            Finding(
                entity,
                base_offset + start,
                base_offset + end,
                r,
                h.detector,
                mask_value(entity, text[start:end]),
                sensitive.get(entity, False),
                line,
            )
        )
    return out


_ROUNDED: dict[float, float] = {}


@cache
def _non_personal() -> frozenset[str]:
    return frozenset(e for e, (personal, _s) in _entity_info().items() if not personal)


@cache
def _sensitive() -> dict[str, bool]:
    return {e: sensitive for e, (_p, sensitive) in _entity_info().items()}


@cache
def _entity_info() -> dict[str, tuple[bool, bool]]:
    """(personal, sensitive) per entity id; ids outside the taxonomy (user detectors) count as personal."""
    return {e.id: (e.personal, e.sensitive) for e in taxonomy.entities().values()}


def scan_text(
    text: str,
    *,
    entities: Iterable[str] | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    registry: Registry | None = None,
    include_non_personal: bool = False,
) -> list[Finding]:
    """Find personal information in ``text``.

    ``entities`` restricts the search to those ids (naming ``CN_USCC`` there reports organisations too);
    ``include_non_personal`` reports non-personal identifiers such as the unified social credit code.
    """
    ents = set(entities) if entities is not None else None
    if ents is not None:
        known = set(taxonomy.entities()) | (registry or default_registry()).entities()
        unknown = sorted(ents - known)
        if unknown:
            raise taxonomy.UnknownEntity(unknown[0])
    from piguard.detect.batch import find_batch

    reg = registry or default_registry()
    batch = find_batch(
        text, reg, entities=ents, min_confidence=min_confidence, include_non_personal=include_non_personal
    )
    return batch.to_findings()


__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "STRUCTURED_ENTITIES",
    "Detector",
    "DetectorConfigError",
    "Finding",
    "PatternDetector",
    "RawHit",
    "Registry",
    "classify_values",
    "default_registry",
    "findings_from_hits",
    "load_detector_file",
    "mask_value",
    "resolve_overlaps",
    "scan_text",
]

"""Findings of a text as columns, from the detectors to the report without a Python object per finding.

A dense file holds a finding every few dozen bytes; building a hit, a ``Finding``, a row dict and a JSON
string for each cost far more than finding them. ``find_batch`` runs the registry over a text and returns a
``FindingBatch``: flat byte columns (entity and detector codes, offsets, line numbers, rounded confidences,
masked values) that the compiled engine (``_cscan.findings``) thresholds, settles where hits overlap,
locates and masks, and that ``FindingBatch.render`` writes as JSON lines, JSON array items or SARIF results
(``_cscan.render``). The rules are those of ``findings_from_hits``, ``mask_value`` and
``report.finding_line``; without the compiled engine those functions produce the same columns and bytes.

Raw values never enter a batch unless asked for (``with_values``, the CLI's ``--unmasked``).
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from piguard.detect.findings import Finding
from piguard.detect.masking import mask_kind, mask_value
from piguard.detect.structured import ENGINE_ENTITIES, RawHit, _engine

N_FIRSTS = 8  # the compiled engine's N_FIRSTS: indices kept of each entity's first findings
FORMAT_JSONL, FORMAT_JSON_ITEMS, FORMAT_SARIF = 0, 1, 2

# Codes for entity ids and detector names, per process. The compiled structured engine's codes come
# first, so its output needs no translation; others are added as detectors report them.
_ENTITIES: list[str] = list(ENGINE_ENTITIES)
_ENTITY_CODE: dict[str, int] = {e: i for i, e in enumerate(_ENTITIES)}
_DETECTORS: list[str] = ["structured"]
_DETECTOR_CODE: dict[str, int] = {"structured": 0}
MAX_CODES = 256


class TooManyEntities(ValueError):
    """More distinct entity ids or detector names than a batch can code (256)."""


def entity_code(entity: str) -> int:
    code = _ENTITY_CODE.get(entity)
    if code is None:
        if len(_ENTITIES) >= MAX_CODES:
            raise TooManyEntities(f"more than {MAX_CODES} entity ids in one scan")
        code = _ENTITY_CODE[entity] = len(_ENTITIES)
        _ENTITIES.append(entity)
    return code


def detector_code(name: str) -> int:
    code = _DETECTOR_CODE.get(name)
    if code is None:
        if len(_DETECTORS) >= MAX_CODES:
            raise TooManyEntities(f"more than {MAX_CODES} detectors in one scan")
        code = _DETECTOR_CODE[name] = len(_DETECTORS)
        _DETECTORS.append(name)
    return code


@dataclass(frozen=True, slots=True)
class FindingBatch:
    """The findings of one text (or one chunk of a file), in text order, column by column.

    ``entity``/``detector`` hold one code byte per finding (names in ``entities``/``detectors``);
    ``start``, ``end`` (character offsets into the whole decoded file) and ``line`` are int64;
    ``confidence`` float64 (rounded to three places); ``masked`` is the UTF-8 of every masked value, the
    i-th between int64 ``masked_offsets[i]`` and ``[i + 1]`` (``values`` likewise, only when asked for).
    ``counts`` holds int64 findings per entity code; ``firsts`` the indices of each code's first findings."""

    count: int
    entities: tuple[str, ...]
    detectors: tuple[str, ...]
    entity: bytes
    detector: bytes
    start: bytes
    end: bytes
    line: bytes
    confidence: bytes
    masked: bytes
    masked_offsets: bytes
    values: bytes | None
    value_offsets: bytes | None
    counts: bytes
    firsts: bytes

    def column(self, name: str) -> memoryview:
        """A numeric column as a typed view (int64, float64 or code bytes)."""
        raw = getattr(self, name)
        fmt = "B" if name in ("entity", "detector") else "d" if name == "confidence" else "q"
        return memoryview(raw).cast(fmt)

    def entity_counts(self) -> dict[str, int]:
        counts = memoryview(self.counts).cast("q")
        return {self.entities[c]: n for c, n in enumerate(counts) if n}

    def masked_at(self, i: int) -> str:
        off = memoryview(self.masked_offsets).cast("q")
        return self.masked[off[i] : off[i + 1]].decode("utf-8", "surrogatepass")

    def value_at(self, i: int) -> str:
        if self.values is None or self.value_offsets is None:
            raise ValueError("this batch holds masked values only")
        off = memoryview(self.value_offsets).cast("q")
        return self.values[off[i] : off[i + 1]].decode("utf-8", "surrogatepass")

    def examples(self, limit: int) -> dict[str, list[str]]:
        """Up to ``limit`` distinct masked values per entity, from its first findings."""
        firsts = memoryview(self.firsts).cast("q")
        out: dict[str, list[str]] = {}
        for code, entity in enumerate(self.entities):
            if (code + 1) * N_FIRSTS > len(firsts) or firsts[code * N_FIRSTS] < 0:
                continue
            seen: list[str] = []
            for k in range(N_FIRSTS):
                i = firsts[code * N_FIRSTS + k]
                if i < 0 or len(seen) >= limit:
                    break
                m = self.masked_at(i)
                if m not in seen:
                    seen.append(m)
            out[entity] = seen
        return out

    def to_findings(self) -> list[Finding]:
        sens = _sensitive()
        ent, det = self.column("entity"), self.column("detector")
        start, end, line, conf = (self.column(c) for c in ("start", "end", "line", "confidence"))
        out = []
        for i in range(self.count):
            e = self.entities[ent[i]]
            d = self.detectors[det[i]]
            out.append(
                Finding(e, start[i], end[i], conf[i], d, self.masked_at(i), sens.get(e, False), line[i])
            )
        return out

    def rows(self, path: str) -> Iterator[dict[str, object]]:
        """Each finding as the JSONL contract's row (plus ``value`` when the batch holds values)."""
        for i, f in enumerate(self.to_findings()):
            row: dict[str, object] = {
                "path": path,
                "line": f.line,
                "start": f.start,
                "end": f.end,
                "entity": f.entity,
                "confidence": f.confidence,
                "sensitive": f.sensitive,
                "masked": f.masked,
                "detector": f.detector,
            }
            if self.values is not None:
                row["value"] = self.value_at(i)
            yield row

    def render(self, fmt: int, path_json: bytes) -> bytes:
        """The findings as JSON lines (``FORMAT_JSONL``), JSON array items each after ``,\\n  ``
        (``FORMAT_JSON_ITEMS``) or SARIF results each after ``,\\n`` (``FORMAT_SARIF``), in UTF-8.
        ``path_json`` is ``json_path(path)``."""
        if not self.count:
            return b""
        engine = _engine()
        if engine is None or not hasattr(engine, "render"):
            return _render_python(self, fmt, json.loads(path_json))
        sens = _sensitive()
        return engine.render(
            fmt, self.count, self.entity, self.detector, self.start, self.end, self.line, self.confidence,
            self.masked, self.masked_offsets, self.values, self.value_offsets, path_json,
            [_json_name(e) for e in self.entities], [_json_name(d) for d in self.detectors],
            bytes(bool(sens.get(e, False)) for e in self.entities),
        )  # fmt: skip


def json_path(path: str) -> bytes:
    """A path as a JSON string in UTF-8. A name holding bytes that are not UTF-8 (decoded with surrogate
    escapes) is written with \\u escapes, so the report stays valid UTF-8 and ``os.fsencode`` of the
    parsed string gives the file's bytes back."""
    try:
        return json.dumps(path, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(path).encode("ascii")


@cache
def _json_name(name: str) -> bytes:
    return json.dumps(name, ensure_ascii=False).encode("utf-8", "surrogatepass")


def find_batch(
    text: str,
    registry: Any,
    *,
    entities: set[str] | None = None,
    min_confidence: float = 0.5,
    include_non_personal: bool = False,
    base_offset: int = 0,
    base_line: int = 1,
    with_values: bool = False,
) -> FindingBatch:
    """Run ``registry``'s detectors over ``text`` and settle their hits into a batch (thresholded, one
    per overlapping cluster, located, masked): what ``findings_from_hits`` does, as columns."""
    engine = _engine()
    columnar = engine is not None and hasattr(engine, "findings")
    codes_e, starts, ends, confs, codes_d = bytearray(), array("q"), array("q"), array("d"), bytearray()
    structured: tuple[bytes, bytes, bytes, bytes] | None = None
    hits: list[RawHit] = []
    for det in registry.detectors:
        if entities is not None and not entities.intersection(det.entities):
            continue
        if columnar and structured is None and getattr(det, "name", "") == "structured" and _is_builtin(det):
            structured = engine.scan(text)
            continue
        hits.extend(det.find(text))
    if not columnar:
        return _batch_python(
            text, hits, entities, min_confidence, include_non_personal, base_offset, base_line, with_values
        )
    if hits:
        # Hits the threshold or the entity choice drops go no further (a log's paths can hold a sensitive
        # term below the threshold on every line); the engine settles the rest.
        hidden = _non_personal() if entities is None and not include_non_personal else frozenset()
        hits = [
            h
            for h in hits
            if h.confidence >= min_confidence
            and (h.entity in entities if entities is not None else h.entity not in hidden)
        ]
        ecode = {e: entity_code(e) for e in {h.entity for h in hits}}
        dcode = {d: detector_code(d) for d in {h.detector for h in hits}}
        codes_e = bytearray(ecode[h.entity] for h in hits)
        codes_d = bytearray(dcode[h.detector] for h in hits)
        starts = array("q", [h.start for h in hits])
        ends = array("q", [h.end for h in hits])
        confs = array("d", [h.confidence for h in hits])
    n_structured = 0
    if structured is not None:
        ent_b, start_b, end_b, conf_b = structured
        n_structured = len(ent_b)
        ent_all = ent_b + bytes(codes_e)
        start_all, end_all = start_b + starts.tobytes(), end_b + ends.tobytes()
        conf_all = conf_b + confs.tobytes()
        det_all = bytes(n_structured) + bytes(codes_d)
    else:
        ent_all, det_all = bytes(codes_e), bytes(codes_d)
        start_all, end_all, conf_all = starts.tobytes(), ends.tobytes(), confs.tobytes()
    names = tuple(_ENTITIES)
    allowed, kinds, first, last = _tables(names, frozenset(entities) if entities is not None else None,
                                          include_non_personal)  # fmt: skip
    (count, ent, dcol, start, end, line, conf, masked, moff, values, voff, counts, firsts) = engine.findings(
        text, ent_all, start_all, end_all, conf_all, det_all, allowed, kinds, first, last,
        float(min_confidence), base_offset, base_line, with_values,
    )  # fmt: skip
    return FindingBatch(count, names, tuple(_DETECTORS), ent, dcol, start, end, line, conf, masked, moff,
                        values, voff, counts, firsts)  # fmt: skip


def structured_only(registry: Any, entities: set[str] | frozenset[str] | None) -> bool:
    """Whether the only detector that runs for ``entities`` is the compiled structured engine, so a file's
    UTF-8 bytes can go to ``find_batch_utf8`` without a str of their text."""
    engine = _engine()
    if engine is None or not hasattr(engine, "scan_utf8") or entities is None:
        return False
    running = [det for det in registry.detectors if entities.intersection(det.entities)]
    return len(running) == 1 and getattr(running[0], "name", "") == "structured" and _is_builtin(running[0])


def find_batch_utf8(
    data: bytes | memoryview,
    *,
    entities: set[str] | frozenset[str],
    min_confidence: float = 0.5,
    include_non_personal: bool = False,
    base_offset: int = 0,
    base_line: int = 1,
    with_values: bool = False,
) -> tuple[FindingBatch, int, int] | None:
    """``find_batch`` of the text that the UTF-8 ``data`` holds, when only the compiled structured engine
    runs (``structured_only``): the engine decodes and scans in one pass, and settles its hits from the
    decoded text it kept, so no str of the text is made. Returns the batch with the text's length in
    characters and its count of newlines, or None when ``data`` is not valid UTF-8 (decode it with
    replacement and call ``find_batch``)."""
    engine = _engine()
    scanned = engine.scan_utf8(data)
    if scanned is None:
        return None
    nchars, newlines, (ent, start, end, conf) = scanned
    names = tuple(_ENTITIES)
    allowed, kinds, first, last = _tables(names, frozenset(entities), include_non_personal)
    (count, ent, dcol, start, end, line, conf, masked, moff, values, voff, counts, firsts) = engine.findings(
        None, ent, start, end, conf, bytes(len(ent)), allowed, kinds, first, last,
        float(min_confidence), base_offset, base_line, with_values,
    )  # fmt: skip
    batch = FindingBatch(count, names, tuple(_DETECTORS), ent, dcol, start, end, line, conf, masked, moff,
                         values, voff, counts, firsts)  # fmt: skip
    return batch, nchars, newlines


def _is_builtin(det: object) -> bool:
    from piguard.detect.registry import StructuredDetector

    return type(det) is StructuredDetector


@cache
def _tables(
    names: tuple[str, ...], entities: frozenset[str] | None, include_non_personal: bool
) -> tuple[bytes, bytes, bytes, bytes]:
    """Per entity code: selected (as findings_from_hits selects), and the mask rule (kind, first, last)."""
    hidden = _non_personal()
    if entities is not None:
        allowed = bytes(e in entities for e in names)
    elif include_non_personal:
        allowed = b"\x01" * len(names)
    else:
        allowed = bytes(e not in hidden for e in names)
    specs = [mask_kind(e) for e in names]
    kinds, first, last = (bytes(spec[k] for spec in specs) for k in range(3))
    return allowed, kinds, first, last


def _non_personal() -> frozenset[str]:
    from piguard.detect import _non_personal

    return _non_personal()


def _sensitive() -> dict[str, bool]:
    from piguard.detect import _sensitive

    return _sensitive()


# --- without the compiled engine: the same columns through the readable Python functions -----------------
def _batch_python(
    text: str,
    hits: list[RawHit],
    entities: set[str] | None,
    min_confidence: float,
    include_non_personal: bool,
    base_offset: int,
    base_line: int,
    with_values: bool,
) -> FindingBatch:
    from piguard.detect import findings_from_hits

    found = findings_from_hits(
        text,
        hits,
        entities=entities,
        min_confidence=min_confidence,
        include_non_personal=include_non_personal,
        base_offset=base_offset,
        base_line=base_line,
    )
    return batch_from_findings(found, text if with_values else None, base_offset)


def batch_from_findings(
    found: Iterable[Finding], text: str | None = None, base_offset: int = 0
) -> FindingBatch:
    """A batch of ``Finding`` objects (values sliced from ``text`` when given, offsets less
    ``base_offset`` index it)."""
    found = list(found)
    for f in found:
        entity_code(f.entity)
        detector_code(f.detector)
    names = tuple(_ENTITIES)
    counts = array("q", [0] * len(names))
    firsts = array("q", [-1] * (len(names) * N_FIRSTS))
    masked = bytearray()
    moff = array("q", [0])
    vals, voff = bytearray(), array("q", [0])
    for i, f in enumerate(found):
        c = _ENTITY_CODE[f.entity]
        if counts[c] < N_FIRSTS:
            firsts[c * N_FIRSTS + counts[c]] = i
        counts[c] += 1
        masked += f.masked.encode("utf-8", "surrogatepass")
        moff.append(len(masked))
        if text is not None:
            vals += text[f.start - base_offset : f.end - base_offset].encode("utf-8", "surrogatepass")
            voff.append(len(vals))
    return FindingBatch(
        len(found),
        names,
        tuple(_DETECTORS),
        bytes(_ENTITY_CODE[f.entity] for f in found),
        bytes(_DETECTOR_CODE[f.detector] for f in found),
        array("q", [f.start for f in found]).tobytes(),
        array("q", [f.end for f in found]).tobytes(),
        array("q", [f.line for f in found]).tobytes(),
        array("d", [f.confidence for f in found]).tobytes(),
        bytes(masked),
        moff.tobytes(),
        bytes(vals) if text is not None else None,
        voff.tobytes() if text is not None else None,
        counts.tobytes(),
        firsts.tobytes(),
    )


def _render_python(batch: FindingBatch, fmt: int, path: str) -> bytes:
    from piguard.report import finding_line, sarif_result

    out = []
    for row in batch.rows(path):
        if fmt == FORMAT_JSONL:
            out.append(finding_line(row) + "\n")
        elif fmt == FORMAT_JSON_ITEMS:
            out.append(",\n  " + finding_line(row))
        else:
            out.append(",\n" + json.dumps(sarif_result(row), ensure_ascii=False))
    return "".join(out).encode("utf-8", "surrogatepass")


__all__ = [
    "FORMAT_JSONL",
    "FORMAT_JSON_ITEMS",
    "FORMAT_SARIF",
    "FindingBatch",
    "batch_from_findings",
    "detector_code",
    "entity_code",
    "find_batch",
    "find_batch_utf8",
    "json_path",
    "mask_value",
    "structured_only",
]

"""Findings as columns (detect.batch and the compiled engine's findings/render) against the readable Python
definitions: findings_from_hits, mask_value and report.finding_line give the same findings, masks, bytes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piguard.detect import Registry, default_registry, findings_from_hits, scan_text
from piguard.detect.batch import (
    FORMAT_JSON_ITEMS,
    FORMAT_JSONL,
    FORMAT_SARIF,
    batch_from_findings,
    find_batch,
    json_path,
)
from piguard.detect.masking import mask_value
from piguard.detect.structured import RawHit, _engine
from piguard.report import finding_line, sarif_result

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
MASKED_ENTITIES = [
    "PHONE_NUMBER", "CN_RESIDENT_ID", "BANK_CARD", "EMAIL_ADDRESS", "IP_ADDRESS", "PERSON", "ADDRESS",
    "GPS_COORDINATE", "DATE_OF_BIRTH", "HEALTH_INFO", "IMEI", "MAC_ADDRESS", "EMPLOYEE_ID",
]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    if _engine() is None or not hasattr(_engine(), "findings"):
        pytest.skip("the compiled engine is not built (pip install -e . builds it)")


class Spans:
    """A detector that reports the spans it is given (for driving the engine with chosen hits)."""

    name = "spans"

    def __init__(self, hits: list[RawHit]) -> None:
        self.hits = hits
        self.entities = tuple({h.entity for h in hits}) or ("PERSON",)

    def find(self, text: str) -> list[RawHit]:
        return self.hits


_CHARS = '0123456789０１２３ +-－—.．·•:：/()（）＋@\t\n\r\u3000abcXYZ王小明北京市朝阳区é"\\\x01\x7f'
_ALPHABET = st.sampled_from([*_CHARS, "\ud800"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.text(_ALPHABET, min_size=0, max_size=40), entity=st.sampled_from(MASKED_ENTITIES))
def test_masks_are_mask_value(value: str, entity: str) -> None:
    reg = Registry([Spans([RawHit(entity, 0, len(value), 0.9, "spans")])])
    batch = find_batch(value, reg, entities={entity}, with_values=True)
    assert batch.masked_at(0) == mask_value(entity, value)
    assert batch.value_at(0) == value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(_ALPHABET, min_size=1, max_size=80),
    raw=st.lists(
        st.tuples(
            st.integers(0, 79),
            st.integers(0, 12),
            st.sampled_from([0.3, 0.5, 0.6, 0.85, 0.9, 0.95, 1.0, 0.12345, 0.7777]),
            st.sampled_from(MASKED_ENTITIES),
        ),
        max_size=30,
    ),
    min_conf=st.sampled_from([0.0, 0.5, 0.8]),
    base=st.tuples(st.integers(0, 10**6), st.integers(1, 10**4)),
)
def test_settling_overlaps_and_locating_are_findings_from_hits(
    text: str, raw: list[tuple[int, int, float, str]], min_conf: float, base: tuple[int, int]
) -> None:
    hits = [RawHit(e, min(s, len(text)), min(s + k, len(text)), c, "spans") for s, k, c, e in raw]
    reg = Registry([Spans(hits)])
    kw = {"min_confidence": min_conf, "base_offset": base[0], "base_line": base[1]}
    got = find_batch(text, reg, entities=None, include_non_personal=True, **kw).to_findings()  # type: ignore[arg-type]
    want = findings_from_hits(text, hits, include_non_personal=True, **kw)  # type: ignore[arg-type]
    assert got == want


def test_every_detector_on_the_corpus_gives_the_python_findings() -> None:
    corpus = BENCH / "data" / "detect_corpus.txt"
    if not corpus.exists():
        pytest.skip(f"{corpus} not generated (python benchmarks/detect_corpus.py)")
    text = corpus.read_text("utf-8")[:300_000]
    reg = default_registry()
    for entities in (None, {"PHONE_NUMBER", "PERSON", "CN_USCC"}):
        want = findings_from_hits(text, reg.find(text, entities), entities=entities)
        assert scan_text(text, entities=entities) == want


def test_rendered_lines_are_finding_line() -> None:
    rnd = random.Random(3)
    text = "".join(
        rnd.choice(["手机 13812345678\n", '王小明 "x"\\ 110101199003071233\t', "a@b.cn ", "10.1.2.3\n"])
        for _ in range(200)
    )
    for path in ("logs/a b.log", "日志/客服.txt", "odd\udcffname.log"):
        batch = find_batch(text, default_registry(), with_values=True, base_offset=5, base_line=3)
        assert batch.count > 100
        rows = list(batch.rows(path))
        lines = batch.render(FORMAT_JSONL, json_path(path)).decode("utf-8")
        parsed = [json.loads(x) for x in lines.splitlines()]
        assert parsed == rows
        if "\udcff" not in path:
            assert lines == "".join(finding_line(r) + "\n" for r in rows)
            items = batch.render(FORMAT_JSON_ITEMS, json_path(path)).decode("utf-8")
            assert items == "".join(",\n  " + finding_line(r) for r in rows)
            sarif = batch.render(FORMAT_SARIF, json_path(path)).decode("utf-8")
            assert sarif == "".join(",\n" + json.dumps(sarif_result(r), ensure_ascii=False) for r in rows)


def test_a_batch_from_finding_objects_renders_the_same() -> None:
    text = "客户王小明，手机 13812345678，邮箱 wang@example.com\n身份证 110101199003071233\n"
    batch = find_batch(text, default_registry())
    again = batch_from_findings(batch.to_findings())
    assert again.render(FORMAT_JSONL, b'"x"') == batch.render(FORMAT_JSONL, b'"x"')
    assert again.entity_counts() == batch.entity_counts()
    assert again.examples(3) == batch.examples(3)

"""The compiled engine (_cscan.c) against the polars reference engine: same hits, same offsets, same
confidence, on the labelled benchmark corpus, on adversarial random text, and on table cells.

The reference engine writes every rule as a readable column expression; the compiled one exists for speed.
These tests are what lets a rule change land in both: any disagreement shows the text that caused it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piguard.detect import Registry, scan_text
from piguard.detect.registry import StructuredDetector
from piguard.detect.structured import (
    _engine,
    classify_values,
    find_structured,
    find_structured_frame,
    reference_classify_values,
    reference_find_structured_frame,
)

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    if _engine() is None:
        reason = "the compiled engine piguard.detect._cscan is not built (pip install -e . builds it)"
        if os.environ.get("CI") == "true" or os.environ.get("PIGUARD_ENGINE") != "reference":
            pytest.fail(reason)
        pytest.skip(reason)


def rows(frame: pl.DataFrame) -> list[tuple]:
    return sorted(frame.with_columns(pl.col("confidence").round(9)).rows())


def assert_same(text: str) -> None:
    compiled, reference = rows(find_structured_frame(text)), rows(reference_find_structured_frame(text))
    if compiled != reference:
        only_c = sorted(set(compiled) - set(reference))
        only_r = sorted(set(reference) - set(compiled))

        def show(r: tuple) -> str:
            return f"{r} {text[max(0, r[1] - 24) : r[2] + 2]!r}"

        pytest.fail(
            "engines disagree\n compiled only: "
            + "; ".join(map(show, only_c[:5]))
            + "\n reference only: "
            + "; ".join(map(show, only_r[:5]))
        )


def test_same_hits_on_the_labelled_corpus() -> None:
    sys.path.insert(0, str(BENCH))
    from detect_corpus import generate

    text, labels = generate(mb=0.5, seed=7)
    assert len(labels) > 5000
    assert_same(text)


# Characters that build and break every candidate shape: digits (ASCII and full-width), separators, letters
# of hex/permits/plates, province characters, date marks, context words' characters, line breaks.
ALPHABET = (
    list("0123456789０１２３４５６７８９ -.:/,+()@Xx_%·\t\n")
    + list("ABCDEFGHLMWxyzabef")
    + list("京粤沪年月日号挂学（）－．：，＠＋手机身份证卡号订单电话")
)
CHUNKS = [
    "13812345678",
    "+86 ",
    "0086",
    "110101199003071233",
    "6222021234567890128",
    "2001:db8::",
    "00:1a:2b:3c:4d:5e",
    "京A12345",
    "39.9042,116.4074",
    "1990年3月7日",
    "a.b@example.com",
    "订单号",
    "身份证",
    "tel ",
    "(010)",
    "91350100M000100Y43",
    "352099001761481",
    "E12345678",
    "416 60 039",
    "-Office",
    " fax",
    "(mobile)",
    "x4587",
]


PIECES = st.one_of(st.sampled_from(ALPHABET), st.sampled_from(CHUNKS))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=60).map("".join))
def test_same_hits_on_adversarial_text(text: str) -> None:
    assert_same(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(PIECES, max_size=6).map("".join)))
def test_same_verdicts_on_table_cells(cells: list[str]) -> None:
    values = pl.Series("v", [*cells, None, "  13812345678\u3000", "１３８１２３４５６７８"], dtype=pl.String)
    compiled = classify_values(values).with_columns(pl.col("confidence").round(9))
    reference = reference_classify_values(values).with_columns(pl.col("confidence").round(9))
    assert compiled.rows() == reference.rows()


def test_sliced_and_chunked_columns_keep_their_rows() -> None:
    """Arrow slices start inside their offsets buffer; chunked columns are several buffers."""
    base = pl.Series("v", ["x", "13812345678", "nothing", "a@b.cn", "110101199003071233"])
    sliced = base.slice(1, 4)
    assert classify_values(sliced)["entity"].to_list() == [
        "PHONE_NUMBER",
        None,
        "EMAIL_ADDRESS",
        "CN_RESIDENT_ID",
    ]
    chunked = pl.concat([base, base], rechunk=False)
    assert classify_values(chunked)["entity"].to_list() == classify_values(base)["entity"].to_list() * 2


def test_offsets_are_python_string_indices_across_scripts() -> None:
    """Code points outside the BMP and combining marks before a value must not shift its offsets."""
    text = "😀𠀀é 手机：13812345678；邮箱 a.b@example.com"
    hits = find_structured(text)
    assert [(h.entity, text[h.start : h.end]) for h in hits] == [
        ("PHONE_NUMBER", "13812345678"),
        ("EMAIL_ADDRESS", "a.b@example.com"),
    ]


def test_a_huge_single_token_and_surrogates() -> None:
    """A 2-million-character number run and lone surrogates (from surrogateescape decoding) do not crash."""
    assert find_structured("1 " * 1_000_000) == []
    text = "\udcff手机 13812345678 \ud800"
    assert [text[h.start : h.end] for h in find_structured(text)] == ["13812345678"]
    reg = Registry([StructuredDetector()])
    assert [f.entity for f in scan_text(text, registry=reg)] == ["PHONE_NUMBER"]


def test_threads_scan_at_once_and_agree() -> None:
    """The engine releases the GIL while it scans: threads running it at once get the same answers."""
    from concurrent.futures import ThreadPoolExecutor

    line = "客户{i} 手机 1381234{i:04d} 身份证 11010519491231002X 邮箱 u{i}@example.com\n"
    texts = [line.format(i=i) * 200 for i in range(8)]
    alone = [find_structured_frame(t).rows() for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda t: find_structured_frame(t).rows(), texts))
    assert together == alone
    assert all(len(r) == 600 for r in alone)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_crf_decoding_matches_the_numpy_definition(dtype: str) -> None:
    """The name model's CRF (Viterbi paths, forward-backward marginals) in C, against numpy's steps."""
    import numpy as np

    from piguard.detect import _lac

    rng = np.random.default_rng(7)
    batch, width, tags = 13, 31, 59
    em = (rng.normal(size=(batch, width, tags)) * 3).astype(dtype)
    trans = rng.normal(size=(tags, tags)).astype(dtype)
    trans[:, 5] = trans[:, 4]  # ties: the first maximum wins in both
    lengths = rng.integers(1, width + 1, size=batch)
    lengths[0] = width
    got, want = _lac.viterbi(em, trans, lengths), _lac.viterbi_reference(em, trans, lengths)
    assert [p.tolist() for p in got] == [p.tolist() for p in want]
    post, ref = _lac.posteriors(em, trans, lengths), _lac.posteriors_reference(em, trans, lengths)
    tol = 1e-12 if dtype == "float64" else 1e-5  # numpy exponentiates float32 transitions in float32
    for b in range(batch):
        assert post[b, : lengths[b]] == pytest.approx(ref[b, : lengths[b]], abs=tol)


# Letters at the edges of [A-Z] and [a-z] in each string width, and characters whose low byte is a letter.
CAP_PIECES = st.sampled_from(
    ["A", "Z", "a", "z", "@", "[", "`", "{", " ", "\n", "中", "😀", "Ł", "š", "Ā", "ġ"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(CAP_PIECES, max_size=600).map("".join))
def test_capitalised_pair_check_is_the_regex(text: str) -> None:
    from piguard.detect._fastre import contains, has_capitalised

    assert has_capitalised(text) == contains(text, r"[A-Z][a-z]")

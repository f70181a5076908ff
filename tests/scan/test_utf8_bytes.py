"""A scan for structured entities hands the file's UTF-8 bytes to the compiled engine, which decodes them
itself (``_cscan.scan_utf8``): the findings, offsets, lines, values and notes must be those of the text
path (decode in Python, then scan), whatever the chunking, bad bytes or line lengths."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import piguard.pipeline as pipeline
import piguard.sources.files as files
from piguard.detect.structured import _engine
from piguard.pipeline import FileEvent, ScanOptions, scan_paths

STRUCTURED = frozenset(
    ("CN_RESIDENT_ID", "CN_PASSPORT", "PHONE_NUMBER", "EMAIL_ADDRESS", "BANK_CARD", "IP_ADDRESS",
     "MAC_ADDRESS", "IMEI", "CN_LICENCE_PLATE", "GPS_COORDINATE", "DATE_OF_BIRTH")
)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    if _engine() is None or not hasattr(_engine(), "scan_utf8"):
        pytest.skip("the compiled engine is not built (pip install -e . builds it)")


def _lines(seed: int, n: int) -> bytes:
    rnd = random.Random(seed)
    parts = [
        "客户手机 13812345678，身份证 110101199003071233",
        "login ok mail=user7@example.com ip=10.1.2.3 ua=okhttp",
        "卡号 6222 0212 3456 7890 128 车牌 京A12345 坐标 39.9042,116.4074",
        "Phone:",
        "467 3395",
        "plain words only and a trace 9f2c4e1a7b3d5e6f",
        "全角 １３８１２３４５６７８ 电话 (010) 12345678",
    ]
    out = bytearray()
    for _ in range(n):
        line = rnd.choice(parts).encode("utf-8")
        k = rnd.random()
        if k < 0.05:
            line += b" bad \xff\xfe byte"
        elif k < 0.08:
            line += b" cut \xe4\xb8"  # a character cut short before the newline
        elif k < 0.1:
            line += "𝄞 astral é".encode()
        out += line + (b"\r\n" if k > 0.95 else b"\n")
    return bytes(out)


def _scan(path: Path, opts: ScanOptions) -> tuple[list[dict[str, object]], list[FileEvent]]:
    events = [e for e in scan_paths([str(path)], opts) if isinstance(e, FileEvent)]
    return [row for e in events for row in e.findings], [e for e in events if e.done]


@pytest.mark.parametrize("tail", [b"", b"no newline at the end 13812345678", b"cut at the end \xe4\xb8"])
@pytest.mark.parametrize("unmasked", [False, True])
def test_bytes_path_gives_the_text_paths_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: bytes, unmasked: bool
) -> None:
    f = tmp_path / "app.log"
    f.write_bytes(_lines(7, 3000) + tail)
    monkeypatch.setattr(files, "BLOCK_BYTES", 4096)  # many chunks, cut between reads
    opts = ScanOptions(entities=STRUCTURED, with_values=unmasked, workers=1)
    assert pipeline.structured_only(pipeline._registry(opts), set(STRUCTURED))  # the bytes path is taken
    got_rows, got_done = _scan(f, opts)
    monkeypatch.setattr(pipeline, "structured_only", lambda reg, ents: False)
    want_rows, want_done = _scan(f, opts)
    assert got_rows == want_rows and len(got_rows) > 1000
    summary = [(e.note, e.bytes, e.encoding) for e in got_done]
    assert summary == [(e.note, e.bytes, e.encoding) for e in want_done]
    assert got_done[0].note  # the bad bytes were replaced and said so


def test_a_line_longer_than_a_chunk_goes_on_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "long.txt"
    long_line = ("数据 " * 3000 + "手机 13812345678 ") * 3
    f.write_bytes(_lines(3, 50) + long_line.encode() + b"\n" + _lines(4, 50))
    monkeypatch.setattr(files, "BLOCK_BYTES", 2048)
    monkeypatch.setattr(files, "MAX_CHUNK_CHARS", 8192)
    opts = ScanOptions(entities=STRUCTURED, with_values=True, workers=1)
    got_rows, _ = _scan(f, opts)
    monkeypatch.setattr(pipeline, "structured_only", lambda reg, ents: False)
    want_rows, _ = _scan(f, opts)
    assert got_rows == want_rows
    assert sum(r["entity"] == "PHONE_NUMBER" for r in got_rows) > 3


@settings(max_examples=300, deadline=None)
@given(data=st.lists(st.sampled_from([b"\x80", b"\xbf", b"\xc0", b"\xc2", b"\xdf", b"\xe0", b"\xe1", b"\xed",
                                      b"\xef", b"\xf0", b"\xf4", b"\xf5", b"\xff", b"\x90", b"\xa0", b"a",
                                      b"\n", b"7", "é".encode(), "手".encode(), "𝄞".encode()]),
                     max_size=24).map(b"".join))  # fmt: skip
def test_the_engine_decodes_exactly_what_python_decodes(data: bytes) -> None:
    engine = _engine()
    got = engine.scan_utf8(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        assert got is None
        return
    assert got is not None
    assert got[:2] == (len(text), text.count("\n"))
    assert got[2] == engine.scan(text)


def test_findings_without_a_decoded_text_is_an_error() -> None:
    engine = _engine()
    engine.scan("13812345678")  # a str scan leaves no decoded bytes behind
    with pytest.raises(TypeError, match="scan_utf8"):
        engine.findings(None, b"", b"", b"", b"", b"", b"", b"", b"", b"", 0.5, 0, 1, False)

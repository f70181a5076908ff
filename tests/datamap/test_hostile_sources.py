"""Hostile input for the sources: files, tables, databases. For each, what a user relies on: a named skip
or error, no traceback, no password or raw value in the output, bounded time (and memory where a bomb is
the attack). Generated with Hypothesis where the input space is wide."""

from __future__ import annotations

import gzip
import io
import json
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import openpyxl
import polars as pl
import pytest
import sqlalchemy as sa
from datamap_data import customers, load_table, verdicts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piguard.sources.files import STDIN, TextFile, UnreadableInput, iter_paths, read_chunks
from piguard.sources.limits import ReadLimits
from piguard.sources.redact import describe_error, mask_message, redact_url, url_secrets
from piguard.sources.sql import schema_selected, table_selected
from piguard.sources.tables import scan_tables

PIGUARD = str(Path(sys.executable).parent / "piguard")
PHONE = "13812345678"
ID = "110101199003071233"
QUICK = ReadLimits(timeout_s=1.0)
FUNCTION_DATA = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def run_cli(*args: str, stdin: bytes | None = None, timeout: float = 120, mem_gib: float | None = None):
    def limit() -> None:
        if mem_gib is not None:
            resource.setrlimit(resource.RLIMIT_AS, (int(mem_gib * 2**30),) * 2)

    res = subprocess.run(
        [PIGUARD, "scan", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        preexec_fn=limit,
    )
    return res.returncode, res.stdout.decode("utf-8", "replace"), res.stderr.decode("utf-8", "replace")


# --- §1 nothing secret in a message ------------------------------------------------------------------
_PW_CHARS = st.characters(codec="utf-8", exclude_characters="\x00\n\r") | st.sampled_from(
    list("/@ :?#%&=+[]")
)
passwords = st.builds(lambda s: f"Pw{s}Z9", st.text(_PW_CHARS, min_size=3, max_size=16))
schemes = st.sampled_from(["postgresql+psycopg", "mysql+pymysql", "mongodb", "redis", "mariadb", "oracle"])


@settings(max_examples=300, deadline=None)
@given(scheme=schemes, pw=passwords)
def test_a_password_never_survives_redaction(scheme: str, pw: str) -> None:
    url = f"{scheme}://admin:{pw}@db.example:5432/app"
    shown = redact_url(url)
    assert pw not in shown and "Z9" not in shown
    assert shown.startswith(scheme)
    msg = mask_message(f"cannot connect to {url}: authentication failed", secrets=url_secrets(url))
    assert pw not in msg


@settings(max_examples=12, deadline=None)
@given(pw=passwords)
def test_scan_tables_of_an_unreachable_server_names_it_without_the_password(pw: str) -> None:
    dm = scan_tables(f"postgresql+psycopg://admin:{pw}@127.0.0.1:1/app", limits=QUICK)
    (skip,) = dm.skipped
    assert skip["table"] == "*" and "cannot connect" in skip["reason"]
    assert pw not in json.dumps(dm.as_dict(), ensure_ascii=False)


def test_cli_never_echoes_a_url_password() -> None:
    code, out, err = run_cli("mongodb://admin:s3cret-Mongo@db.example/x")
    assert code == 2 and "not a supported database URL" in err
    assert "s3cret-Mongo" not in out + err and "Traceback" not in err
    pw = "p@ss/w rd?#1"
    code, out, err = run_cli(
        f"postgresql+psycopg://admin:{pw}@127.0.0.1:1/app", "--format", "json", "--timeout", "2"
    )
    assert code == 3 and "cannot connect" in err and "Traceback" not in err
    assert pw not in out + err and "ss/w" not in out + err
    json.loads(out)


def test_driver_message_quoting_data_is_masked(postgres_url: str, pg_schema: tuple[sa.Engine, str]) -> None:
    eng, schema = pg_schema
    with eng.begin() as conn:
        conn.execute(sa.text(f'CREATE TABLE "{schema}".raw (phone text, note text)'))
        conn.execute(sa.text(f"INSERT INTO \"{schema}\".raw VALUES ('{PHONE}', '王小明')"))
        conn.execute(sa.text(f'CREATE VIEW "{schema}".v_phone AS SELECT phone::int AS p FROM "{schema}".raw'))
        conn.execute(sa.text(f'CREATE VIEW "{schema}".v_name AS SELECT note::int AS p FROM "{schema}".raw'))
    dm = scan_tables(postgres_url, include=[f"{schema}.v_*"], limits=QUICK)
    reasons = {s["table"]: s["reason"] for s in dm.skipped}
    assert reasons[f"{schema}.v_phone"].startswith("NumericValueOutOfRange: value ")
    assert "out of range for type integer" in reasons[f"{schema}.v_phone"]
    assert reasons[f"{schema}.v_name"].startswith("InvalidTextRepresentation: ")
    text = json.dumps(dm.as_dict(), ensure_ascii=False)
    assert PHONE not in text and "王小明" not in text and "小明" not in text


def test_a_full_read_that_stalls_is_cancelled_and_the_scan_goes_on(
    postgres_url: str, pg_schema: tuple[sa.Engine, str]
) -> None:
    # A live server that stops sending mid-read (here a view that sleeps) trips no TCP timeout: the COPY
    # of a full scan must still end after --timeout, skip that table by name, and read the next one.
    eng, schema = pg_schema
    with eng.begin() as conn:
        conn.execute(sa.text(f'CREATE TABLE "{schema}".people (phone text)'))
        conn.execute(sa.text(f"INSERT INTO \"{schema}\".people VALUES ('{PHONE}')"))
        conn.execute(
            sa.text(
                f'CREATE VIEW "{schema}".slow AS SELECT g, CASE WHEN g = 2 THEN pg_sleep(60)::text '
                f"ELSE '{PHONE}' END AS phone FROM generate_series(1, 3) AS g"
            )
        )
    started = time.monotonic()
    dm = scan_tables(postgres_url, full=True, include=[f"{schema}.*"], limits=ReadLimits(timeout_s=2))
    assert time.monotonic() - started < 30
    reasons = {s["table"]: s["reason"] for s in dm.skipped}
    assert "sent no rows for 2 s" in reasons[f"{schema}.slow"], reasons
    assert verdicts(dm.rows, f"{schema}.people") == {("phone", "PHONE_NUMBER")}
    assert PHONE not in json.dumps(dm.as_dict(), ensure_ascii=False)


def test_polars_error_quoting_a_raw_row_is_masked() -> None:
    msg = f"could not parse `\"王小明,{ID}\n` as dtype `str` at column 'x' (column number 1)"
    shown = describe_error(ValueError(msg))
    assert ID not in shown and "王小明" not in shown and "小明" not in shown
    assert shown.startswith("ValueError: could not parse")


_CSV_PARTS = st.sampled_from(
    ['"', ",", "\n", "\r\n", "a", "王小明", PHONE, ID, " ", "\\", "'", "\t", '""', "\xff"]
)


@settings(max_examples=80, deadline=None, suppress_health_check=FUNCTION_DATA)
@given(parts=st.lists(_CSV_PARTS, min_size=1, max_size=60))
def test_any_csv_is_mapped_or_named_and_never_leaks(tmp_path: Path, parts: list[str]) -> None:
    p = tmp_path / "fuzz.csv"
    p.write_bytes("".join(parts).encode("utf-8", "surrogateescape").replace(b"\xc3\xbf", b"\xff"))
    dm = scan_tables(str(p))  # never raises
    text = json.dumps(dm.as_dict(), ensure_ascii=False)
    assert PHONE not in text and ID not in text
    for s in dm.skipped:
        assert s["source"] == str(p) and s["reason"]


# --- §2 no hangs, bounded memory -----------------------------------------------------------------------
@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


@pytest.mark.parametrize("scheme", ["mysql+pymysql", "postgresql+psycopg"])
def test_a_server_that_never_answers_times_out(silent_server: int, scheme: str) -> None:
    started = time.monotonic()
    dm = scan_tables(f"{scheme}://u:pw@127.0.0.1:{silent_server}/db", limits=ReadLimits(timeout_s=2))
    elapsed = time.monotonic() - started
    assert elapsed < 20, elapsed  # PostgreSQL's libpq rounds the connect timeout up to whole seconds
    (skip,) = dm.skipped
    assert "cannot connect" in skip["reason"]


def test_cli_timeout_option_bounds_a_silent_mysql(silent_server: int) -> None:
    started = time.monotonic()
    code, _, err = run_cli(
        f"mysql+pymysql://root@127.0.0.1:{silent_server}/x", "--timeout", "1", "--format", "json"
    )
    assert code == 3 and "cannot connect" in err and "Traceback" not in err
    assert time.monotonic() - started < 60


def _bomb(path: Path, inflated: int) -> None:
    line = f"{'-' * 200} 手机 {PHONE}\n".encode()
    block = line * ((1 << 20) // len(line))
    with gzip.open(path, "wb", compresslevel=9) as fh:
        for _ in range(inflated // len(block)):
            fh.write(block)


def test_gzip_bomb_is_stopped_by_ratio_within_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.log.gz"
    _bomb(bomb, 64 << 20)  # 64 MiB of lines with a phone number in a file of about 250 KiB
    started = time.monotonic()
    code, out, err = run_cli(
        str(bomb),
        "--format",
        "jsonl",
        "--entities",
        "PHONE_NUMBER",
        "--no-progress",
        mem_gib=2.5,
        timeout=300,
    )
    assert code == 3, err[-500:]
    assert "compression ratio over 100:1" in err and "--max-ratio" in err and "Traceback" not in err
    assert PHONE not in out and time.monotonic() - started < 240
    assert len(out.splitlines()) > 0  # what was read before the bound is still reported


def test_gzip_size_bound_is_configurable(tmp_path: Path) -> None:
    f = tmp_path / "a.log.gz"
    _bomb(f, 8 << 20)
    info = TextFile(str(f))
    read = 0
    with pytest.raises(UnreadableInput, match=r"decompressed size exceeds 2\.0 MiB"):
        for chunk in read_chunks(str(f), info, ReadLimits(max_decompressed=2 << 20, max_ratio=1e9)):
            read += len(chunk.text)
    assert read > 0
    assert sum(len(c.text) for c in read_chunks(str(f), None, ReadLimits(max_ratio=1e9))) > 8e6 / 3


def _xlsx(path: Path, sheet_xml: bytes) -> None:
    """A real workbook whose first sheet's XML is replaced."""
    wb = openpyxl.Workbook()
    wb.active.append(["姓名", "手机"])
    buf = io.BytesIO()
    wb.save(buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = sheet_xml if item.filename == "xl/worksheets/sheet1.xml" else src.read(item)
            dst.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


_SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)


def test_xlsx_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    body = _SHEET_HEAD + b"<sheetData>" + row * ((96 << 20) // len(row)) + b"</sheetData></worksheet>"
    p = tmp_path / "bomb.xlsx"
    _xlsx(p, body)
    assert p.stat().st_size < 2 << 20
    started = time.monotonic()
    dm = scan_tables(str(p))
    assert time.monotonic() - started < 10
    (skip,) = dm.skipped
    assert "decompression bomb" in skip["reason"] and "--max-ratio" in skip["reason"]


def test_xlsx_claiming_every_cell_and_jumping_rows_is_bounded(tmp_path: Path) -> None:
    cell = '<c r="{col}{{r}}" t="inlineStr"><is><t>{{{key}}}</t></is></c>'
    cells = cell.format(col="A", key="a") + cell.format(col="B", key="b")
    rows = [f'<row r="1">{cells.format(r=1, a="姓名", b="手机")}</row>']
    rows += [
        f'<row r="{i}">{cells.format(r=i, a="王小明", b=PHONE[:-2] + f"{i:02d}")}</row>' for i in range(2, 40)
    ]
    rows.append(f'<row r="999999999">{cells.format(r=999999999, a="x", b="y")}</row>')
    body = (
        _SHEET_HEAD
        + b'<dimension ref="A1:XFD1048576"/><sheetData>'
        + "".join(rows).encode()
        + b"</sheetData></worksheet>"
    )
    p = tmp_path / "odd.xlsx"
    _xlsx(p, body)
    started = time.monotonic()
    sampled = scan_tables(str(p), sample_rows=30)
    assert ("手机", "PHONE_NUMBER") in verdicts(sampled.rows)
    full = scan_tables(str(p), full=True)
    assert time.monotonic() - started < 60
    assert full.skipped == [] and any("1048576 rows" in n["note"] for n in full.notes), full.notes


def test_a_csv_of_20000_columns_is_mapped_in_seconds(tmp_path: Path) -> None:
    n = 20_000
    p = tmp_path / "wide.csv"
    with p.open("w") as fh:
        fh.write(",".join(f"c{i}" for i in range(n)) + "\n")
        for r in range(3):
            fh.write(",".join(str(13800000000 + 7919 * i + r) for i in range(n)) + "\n")
    started = time.monotonic()
    dm = scan_tables(str(p))
    # Column by column with a schema walk each was quadratic (10k columns > 120 s).
    assert time.monotonic() - started < 90
    assert len(dm.rows) == n and dm.tables[0]["columns"] == n


def test_fifo_on_the_command_line_is_skipped_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    code, _, err = run_cli(str(fifo), "--format", "jsonl", timeout=60)
    assert code == 3 and "FIFO" in err and "Traceback" not in err
    with pytest.raises(UnreadableInput, match="FIFO"):
        list(read_chunks(str(fifo)))  # opened non-blocking, refused after fstat
    skips: list = []
    assert list(iter_paths([str(fifo)], skips)) == [] and "FIFO" in skips[0].reason


def test_json_nested_past_any_record_layout_is_named(tmp_path: Path) -> None:
    p = tmp_path / "deep.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    dm = scan_tables(str(p))
    assert "nested too deeply" in dm.skipped[0]["reason"]
    q = tmp_path / "deep.jsonl"
    q.write_text("[" * 100_000 + "]" * 100_000 + "\n" + json.dumps({"shouji": PHONE}) + "\n")
    dm = scan_tables(str(q))
    assert any("1 malformed JSON line" in n["note"] for n in dm.notes)


# --- §3 no internal errors, nothing lost ----------------------------------------------------------------
_NAME_CHARS = st.sampled_from([*"ab#?%&=; 客户_.-", "%3F", "%23"])


@settings(max_examples=25, deadline=None, suppress_health_check=FUNCTION_DATA)
@given(stem=st.lists(_NAME_CHARS, min_size=1, max_size=8).map("".join))
def test_sqlite_names_with_hash_or_question_are_read_only_and_never_created(
    tmp_path: Path, stem: str
) -> None:
    d = tmp_path / uuid.uuid4().hex
    d.mkdir()
    db = d / f"{stem}.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (sfzh TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [(ID,)] * 20)
    conn.commit()
    conn.close()
    before = sorted(os.listdir(d))
    by_path = scan_tables(str(db))
    by_url = scan_tables("sqlite:///" + quote(str(db), safe="/#"))  # '?' must be %3F inside a URL
    for dm in (by_path, by_url):
        assert verdicts(dm.rows) == {("sfzh", "CN_RESIDENT_ID")}, dm.skipped
    missing = scan_tables(f"sqlite:///{d}/nothing{stem.replace('?', '')}.db")
    assert missing.rows == [] and "never created" in missing.skipped[0]["reason"]
    assert sorted(os.listdir(d)) == before


def test_bogus_byte_order_mark_before_utf8_is_not_utf16(tmp_path: Path) -> None:
    p = tmp_path / "bom.txt"
    text = f"客户王小明\n手机 {PHONE}\n"
    p.write_bytes(b"\xff\xfe" + text.encode())
    info = TextFile(str(p))
    decoded = "".join(c.text for c in read_chunks(str(p), info))
    assert decoded == text and info.encoding == "utf-8" and "byte-order mark" in (info.note() or "")
    c = tmp_path / "bom.csv"
    c.write_bytes(b"\xff\xfe" + f"姓名,手机\n王小明,{PHONE}\n李建国,13912345678\n".encode())
    assert ("手机", "PHONE_NUMBER") in verdicts(scan_tables(str(c)).rows)


@settings(max_examples=60, deadline=None, suppress_health_check=FUNCTION_DATA)
@given(
    bad=st.lists(
        st.sampled_from([b"\xff", b"\xfe", b"\xc0", b"\xc1", b"\xf8", b"\x80"]), min_size=1, max_size=3
    ),
    where=st.floats(min_value=0, max_value=1),
)
def test_a_few_bad_bytes_are_replaced_and_counted_not_a_skip(
    tmp_path: Path, bad: list[bytes], where: float
) -> None:
    lines = [f"第{i}行 客户备注：来电咨询还款事宜，已处理。\n" for i in range(200)]
    head = "".join(lines[:100]).encode()
    tail = "".join(lines[100:]).encode()
    cut = head.rfind(b"\n", 0, int(len(head) * where)) + 1  # at a line start: characters stay whole
    data = head[:cut] + b"".join(bad) + head[cut:] + f"手机 {PHONE}\n".encode() + tail
    assert len(data) < 64 * 1024
    p = tmp_path / "damaged.txt"
    p.write_bytes(data)
    info = TextFile(str(p))
    text = "".join(c.text for c in read_chunks(str(p), info))
    assert PHONE in text and info.encoding == "utf-8"
    assert info.bad_bytes == len(bad) and f"{len(bad)} invalid byte(s)" in (info.note() or "")


def test_postgres_names_with_double_quotes_and_spaces_are_sampled(
    postgres_url: str, pg_schema: tuple[sa.Engine, str]
) -> None:
    eng, schema = pg_schema
    big = customers(400).select("sfzh", "col7")
    for name in ('we"ird', "sp ace"):
        load_table(eng, pl.concat([big] * 8), name, schema)  # 3,200 rows
        with eng.begin() as conn:
            conn.execute(sa.text(f'ANALYZE "{schema}"."{name.replace(chr(34), chr(34) * 2)}"'))
    dm = scan_tables(postgres_url, sample_rows=200, include=[f"{schema}.*"], limits=QUICK)
    assert dm.skipped == []
    for name in ('we"ird', "sp ace"):
        assert verdicts(dm.rows, f"{schema}.{name}") == {("sfzh", "CN_RESIDENT_ID"), ("col7", "PHONE_NUMBER")}
    assert all("TABLESAMPLE SYSTEM" in str(t["method"]) for t in dm.tables)


def test_mariadb_column_and_table_names_with_backticks(maria_db: tuple[sa.Engine, str, str]) -> None:
    eng, name, url = maria_db
    with eng.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE `ta``b` (id INT PRIMARY KEY AUTO_INCREMENT, `sh``ouji` VARCHAR(20))")
        )
        for i in range(60):
            conn.execute(sa.text("INSERT INTO `ta``b` (`sh``ouji`) VALUES (:p)"), {"p": f"1391234{i:04d}"})
    for full in (False, True):
        dm = scan_tables(url, include=[f"{name}.*"], full=full, limits=QUICK)
        assert dm.skipped == [] and verdicts(dm.rows) == {("sh`ouji", "PHONE_NUMBER")}


def test_file_names_that_are_not_utf8_travel_through_the_data_map(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    with open(os.path.join(root, b"caf\xe9.csv"), "w", encoding="utf-8") as fh:
        fh.write("shouji\n" + "\n".join(f"1381234{i:04d}" for i in range(30)) + "\n")
    pl.DataFrame({"sfzh": [ID] * 10}).write_parquet(tmp_path / "plain.parquet")
    os.rename(os.path.join(root, b"plain.parquet"), os.path.join(root, b"\xff.parquet"))
    dm = scan_tables(str(tmp_path))
    tables = {t["table"] for t in dm.tables}
    assert "caf\\xe9.csv" in tables and dm.skipped == [], dm.skipped
    json.dumps(dm.as_dict(), ensure_ascii=False).encode("utf-8")  # reports can be written as UTF-8


# --- §4 database scans a user can steer -----------------------------------------------------------------
def test_include_and_exclude_schemas_and_tables(postgres_url: str, pg_schema: tuple[sa.Engine, str]) -> None:
    eng, schema = pg_schema
    other = f"{schema}_b"
    with eng.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{other}"'))
    try:
        for s in (schema, other):
            load_table(eng, customers(40).select("sfzh"), "keep_t", s)
            load_table(eng, customers(40).select("sfzh"), "tmp_t", s)
        dm = scan_tables(postgres_url, include=[f"{schema}.*"], exclude=["*.tmp_*"], limits=QUICK)
        assert {t["table"] for t in dm.tables} == {f"{schema}.keep_t"}
        dm = scan_tables(postgres_url, include=[f"{schema}*.keep_t"], limits=QUICK)
        assert {t["table"] for t in dm.tables} == {f"{schema}.keep_t", f"{other}.keep_t"}
    finally:
        with eng.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{other}" CASCADE'))
    assert not schema_selected("public", ["crm.*"], None) and schema_selected("crm", ["crm.*"], None)
    assert schema_selected("public", ["*.x"], None) and not schema_selected("tmp", None, ["tmp.*"])
    assert table_selected("crm.users", ["crm.*"], ["*.tmp_*"]) and not table_selected(
        "crm.tmp_a", ["crm.*"], ["*.tmp_*"]
    )


def test_progress_is_reported_per_table(tmp_path: Path) -> None:
    db = tmp_path / "two.db"
    eng = sa.create_engine(f"sqlite:///{db}")
    load_table(eng, customers(50).select("sfzh"), "a")
    load_table(eng, customers(70).select("col7"), "b")
    eng.dispose()
    seen: dict[str, list[tuple[int, bool]]] = {}
    scan_tables(str(db), progress=lambda ts, rows, done: seen.setdefault(ts.table, []).append((rows, done)))
    assert set(seen) == {"a", "b"}
    for table, calls in seen.items():
        assert calls[-1] == ({"a": 50, "b": 70}[table], True) and [d for _, d in calls].count(True) == 1
        assert [r for r, _ in calls] == sorted(r for r, _ in calls)


@pytest.mark.slow  # two CLI runs
def test_standard_input_is_scanned_gzip_or_not() -> None:
    text = f"客户王小明 手机 {PHONE}\n".encode()
    for data in (text, gzip.compress(text)):
        code, out, err = run_cli("-", "--format", "jsonl", "--entities", "PHONE_NUMBER", stdin=data)
        assert code == 0, err
        rows = [json.loads(line) for line in out.splitlines()]
        assert {"path": STDIN, "entity": "PHONE_NUMBER"}.items() <= next(
            r for r in rows if r["entity"] == "PHONE_NUMBER"
        ).items()
        assert PHONE not in out

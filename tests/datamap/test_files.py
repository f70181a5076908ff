"""Tabular files: CSV (UTF-8, GBK, mixed), JSON / JSON Lines (nested -> dotted), Parquet, Excel, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from datamap_data import EXPECTED, customers, verdicts

from piguard.sources.tables import is_table_target, is_tabular_file, scan_tables


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return customers()


def test_targets(tmp_path: Path) -> None:
    pq = tmp_path / "lake"
    pq.mkdir()
    pl.DataFrame({"a": [1]}).write_parquet(pq / "part-0.parquet")
    assert is_table_target("sqlite:///x.db")
    assert is_table_target("postgresql+psycopg://u@h/db")
    assert is_table_target("mysql+pymysql://root@127.0.0.1/test")
    assert is_table_target(str(pq)) and is_table_target(str(pq / "part-0.parquet"))
    assert not is_table_target("https://example.com/x")
    assert not is_table_target(str(tmp_path / "missing.csv"))
    for name in ("a.csv", "a.tsv", "a.json", "a.jsonl", "a.parquet", "a.xlsx"):
        assert is_tabular_file(name)
    assert not is_tabular_file("a.txt")


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_csv_encodings(tmp_path: Path, frame: pl.DataFrame, encoding: str) -> None:
    p = tmp_path / "customers.csv"
    p.write_bytes(frame.write_csv().encode(encoding))
    dm = scan_tables(str(p))
    assert verdicts(dm.rows) == EXPECTED
    assert dm.skipped == []
    if encoding != "utf-8":
        assert any("gb18030" in n["note"] for n in dm.notes)


def test_tsv_and_mixed_encodings_and_ragged_rows(tmp_path: Path) -> None:
    lines = ["姓名\t手机号\t备注"]
    lines += [f"王{'伟芳娜强敏'[i % 5]}{'明亮'[i % 2]}\t1381234{i:04d}\t无" for i in range(60)]
    body = "\n".join(lines).encode("utf-8")
    gbk_line = "\n李建国\t13912345678\t备注很长\t多出来的一列\n".encode(
        "gb18030"
    )  # GBK line, one field too many
    short = "赵小明\t13712345678\n".encode()  # one field short
    p = tmp_path / "mixed.tsv"
    p.write_bytes(body + gbk_line + short)
    dm = scan_tables(str(p))
    assert verdicts(dm.rows) == {("姓名", "PERSON"), ("手机号", "PHONE_NUMBER")}
    assert dm.rows[0]["rows_scanned"] == 62
    assert any("GB18030" in n["note"] for n in dm.notes)


def test_csv_sampling_is_bounded(tmp_path: Path, frame: pl.DataFrame) -> None:
    p = tmp_path / "big.csv"
    pl.concat([frame] * 10).write_csv(p)
    dm = scan_tables(str(p), sample_rows=500)
    assert verdicts(dm.rows) == EXPECTED
    (table,) = dm.tables
    assert 400 <= int(table["rows_scanned"]) <= 500  # type: ignore[call-overload]
    assert "sample" in str(table["method"])
    full = scan_tables(str(p), full=True)
    assert full.tables[0]["rows_scanned"] == 4000


def test_jsonl_nested_fields_become_dotted_columns(tmp_path: Path, frame: pl.DataFrame) -> None:
    p = tmp_path / "events.jsonl"
    with p.open("w", encoding="utf-8") as fh:
        for i, r in enumerate(frame.head(200).iter_rows(named=True)):
            rec = {
                "customer": {"name": r["客户姓名"], "contact": {"mobile": r["col7"]}},
                "amount": r["amount"],
            }
            if i % 50 == 0:
                rec["customer"]["extra"] = {"email": r["ext_info"]}  # fields that only some records have
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        fh.write("{not json\n")
    dm = scan_tables(str(p))
    found = verdicts(dm.rows)
    assert ("customer.name", "PERSON") in found
    assert ("customer.contact.mobile", "PHONE_NUMBER") in found
    assert ("customer.extra.email", "EMAIL_ADDRESS") in found
    assert ("amount", "PERSON") not in found
    assert any("1 malformed JSON line" in n["note"] for n in dm.notes)


def test_json_document_with_records_inside(tmp_path: Path, frame: pl.DataFrame) -> None:
    p = tmp_path / "export.json"
    recs = [
        {"id": r["sfzh"], "profile": {"addr": r["家庭住址"]}} for r in frame.head(100).iter_rows(named=True)
    ]
    p.write_text(json.dumps({"meta": {"v": 1}, "data": recs}, ensure_ascii=False), encoding="utf-8")
    dm = scan_tables(str(p))
    assert verdicts(dm.rows) == {("id", "CN_RESIDENT_ID"), ("profile.addr", "ADDRESS")}
    assert dm.rows[0]["table"] == "export.json:data"


def test_parquet_file_and_dataset_directory(tmp_path: Path, frame: pl.DataFrame) -> None:
    lake = tmp_path / "lake" / "customers"
    lake.mkdir(parents=True)
    frame.head(200).write_parquet(lake / "part-0.parquet")
    frame.tail(200).write_parquet(lake / "part-1.parquet")
    (tmp_path / "lake" / "orders").mkdir()
    pl.DataFrame({"order_no": [str(13800000000 + i) for i in range(300)]}).write_parquet(
        tmp_path / "lake" / "orders" / "o.parquet"
    )
    dm = scan_tables(str(tmp_path / "lake"))
    assert {t["table"] for t in dm.tables} == {"customers", "orders"}
    assert verdicts(dm.rows, "customers") == EXPECTED
    assert verdicts(dm.rows, "orders") == set()
    assert {t["table"]: t["rows_scanned"] for t in dm.tables}["customers"] == 400


def test_parquet_binary_column_and_corrupt_file(tmp_path: Path, frame: pl.DataFrame) -> None:
    good = tmp_path / "ok.parquet"
    frame.head(100).select("sfzh").with_columns(photo=pl.lit(b"\x89PNG\x00\x01")).write_parquet(good)
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(good.read_bytes()[:200])
    dm = scan_tables(str(good))
    assert verdicts(dm.rows) == {("sfzh", "CN_RESIDENT_ID")}
    assert [s["reason"] for s in dm.skipped] == ["column 'photo': binary column, not scanned"]
    dm = scan_tables(str(bad))
    assert dm.rows == [] and dm.skipped[0]["table"] == "broken.parquet"
    # In a dataset directory the broken part is reported and the good part is still mapped.
    dm = scan_tables(str(tmp_path))
    assert verdicts(dm.rows) == {("sfzh", "CN_RESIDENT_ID")}
    assert any("broken.parquet" in s["reason"] for s in dm.skipped)


def test_excel_sheets(tmp_path: Path, frame: pl.DataFrame) -> None:
    p = tmp_path / "book.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "客户"
    ws.append(["客户姓名", "sfzh", "联系电话", "金额"])
    for r in frame.head(150).iter_rows(named=True):
        # Excel users store IDs as text; phone numbers often become numbers.
        ws.append([r["客户姓名"], r["sfzh"], int(r["col7"]), r["amount"]])
    ws2 = wb.create_sheet("说明")
    ws2.append(["说明"])
    ws2.append(["本表为测试数据"])
    wb.save(p)
    dm = scan_tables(str(p))
    assert verdicts(dm.rows, ":客户") == {
        ("客户姓名", "PERSON"), ("sfzh", "CN_RESIDENT_ID"), ("联系电话", "PHONE_NUMBER"),
    }  # fmt: skip
    assert verdicts(dm.rows, ":说明") == set()
    assert len(dm.tables) == 2


def test_corrupt_excel_and_missing_path(tmp_path: Path) -> None:
    p = tmp_path / "bad.xlsx"
    p.write_bytes(b"PK\x03\x04 not really a workbook")
    dm = scan_tables(str(p))
    assert dm.rows == [] and dm.skipped and dm.skipped[0]["source"] == str(p)
    dm = scan_tables(str(tmp_path / "nope.csv"))
    assert dm.skipped[0]["reason"] == "no such file or directory"


def test_huge_cell_is_cut_and_the_scan_goes_on(tmp_path: Path) -> None:
    p = tmp_path / "huge.csv"
    with p.open("w", encoding="utf-8") as fh:
        fh.write("note,shouji\n")
        fh.write('"' + "x" * (100 * 1024 * 1024) + ' 13812345678",13912345678\n')
        for i in range(30):
            fh.write(f"ok,1391234{i:04d}\n")
    dm = scan_tables(str(p))
    assert ("shouji", "PHONE_NUMBER") in verdicts(dm.rows)
    assert any("1 cell(s) over 1 MiB" in n["note"] for n in dm.notes)


def test_parquet_sampling_by_row_groups(tmp_path: Path, frame: pl.DataFrame) -> None:
    p = tmp_path / "big.parquet"
    pl.concat([frame] * 10).write_parquet(p, row_group_size=500)  # 4000 rows in 8 row groups
    dm = scan_tables(str(p), sample_rows=400)
    assert verdicts(dm.rows) == EXPECTED
    (t,) = dm.tables
    assert t["rows_scanned"] == 400 and "random row groups" in str(t["method"])


def test_directory_with_parquet_and_csv_beside_it(tmp_path: Path, frame: pl.DataFrame) -> None:
    frame.head(100).select("sfzh").write_parquet(tmp_path / "part-0.parquet")
    frame.head(100).select("col7").write_csv(tmp_path / "contacts.csv")
    (tmp_path / "only.parquet").write_bytes(b"garbage")
    dm = scan_tables(str(tmp_path))
    assert {(r["table"], r["column"], r["entity"]) for r in dm.rows} == {
        (tmp_path.name, "sfzh", "CN_RESIDENT_ID"),
        ("contacts.csv", "col7", "PHONE_NUMBER"),
    }
    assert any("only.parquet" in s["reason"] for s in dm.skipped)

"""Column verdicts: headers (Chinese, pinyin, camelCase) and validated values decide together."""

from __future__ import annotations

import polars as pl
import pytest
from datamap_data import EXPECTED, customers, verdicts

from piguard.detect.columns import TableClassifier, header_hint
from piguard.sources.datamap import DataMap, add_table_result


@pytest.mark.parametrize(
    ("header", "entity"),
    [
        ("sfzh", "CN_RESIDENT_ID"),
        ("身份证号码", "CN_RESIDENT_ID"),  # the longer synonym wins over 号码-like phone words
        ("客户手机号", "PHONE_NUMBER"),
        ("shouji", "PHONE_NUMBER"),
        ("custMobileNo", "PHONE_NUMBER"),
        ("cust_mobile_no", "PHONE_NUMBER"),
        ("E-Mail", "EMAIL_ADDRESS"),
        ("家庭住址", "ADDRESS"),
        ("xm", "PERSON"),
        ("csrq", "DATE_OF_BIRTH"),
        ("性别", "GENDER"),
        ("col7", None),
        ("remark", None),
        ("xml_payload", None),  # 'xm' only matches a whole token
    ],
)
def test_header_synonyms(header: str, entity: str | None) -> None:
    assert header_hint(header).entity == entity


def test_negative_headers() -> None:
    assert header_hint("order_no").negative
    assert header_hint("订单编号").negative
    assert not header_hint("shouji").negative


def _map(df: pl.DataFrame) -> DataMap:
    clf = TableClassifier()
    for i in range(0, df.height, 150):  # several batches, like a reader gives them
        clf.add(df.slice(i, 150))
    dm = DataMap()
    add_table_result(dm, "mem", "customers", "test", clf)
    return dm


def test_misleading_table_verdicts() -> None:
    dm = _map(customers())
    assert verdicts(dm.rows) == EXPECTED
    by = {(r["column"], r["entity"]): r for r in dm.rows}
    assert by[("sfzh", "CN_RESIDENT_ID")]["share"] == 1.0
    assert by[("remark", "CN_RESIDENT_ID")]["share"] == pytest.approx(0.1)
    assert by[("sfzh", "CN_RESIDENT_ID")]["sensitive"] is True
    assert by[("col7", "PHONE_NUMBER")]["sensitive"] is False
    assert all(r["rows_scanned"] == 400 for r in dm.rows)


def test_examples_are_masked_never_raw() -> None:
    df = customers()
    dm = _map(df)
    raw = {str(v) for c in df.columns for v in df.get_column(c).to_list()}
    for r in dm.rows:
        if r["entity"] != "GENDER":  # only the header speaks for gender: there is no value to show
            assert r["examples_masked"], r
        for ex in r["examples_masked"]:  # type: ignore[union-attr]
            assert ex not in raw and "*" in ex


def test_json_contract_keys() -> None:
    dm = _map(customers())
    for r in dm.rows:
        assert list(r) == [
            "source", "table", "column", "entity", "share", "rows_scanned", "sensitive", "confidence",
            "examples_masked",
        ]  # fmt: skip
        assert 0 < float(r["confidence"]) <= 1  # type: ignore[arg-type]


def test_combination_name_plus_phone() -> None:
    dm = _map(customers().select("客户姓名", "col7", "amount"))
    assert len(dm.combinations) == 1
    combo = dm.combinations[0]
    assert combo["kind"] == "direct" and set(combo["entities"]) == {"PERSON", "PHONE_NUMBER"}  # type: ignore[arg-type]
    # A lone phone column with non-personal columns identifies nobody by combination.
    assert _map(customers().select("col7", "amount", "status")).combinations == []


def test_quasi_identifier_combination() -> None:
    dm = _map(customers().select("性别", "csrq", "amount"))
    assert dm.combinations == []  # gender + birth date only: two quasi-identifiers are not enough
    dm = _map(customers().select("性别", "csrq").with_columns(年龄=pl.lit(30)))
    assert [c["kind"] for c in dm.combinations] == ["quasi"]


def test_header_naming_an_id_whose_values_fail_is_a_note_not_a_finding() -> None:
    df = customers().select(pl.col("id_code").alias("身份证号"))
    dm = _map(df)
    assert dm.rows == []
    assert any("身份证号" in n["note"] and "CN_RESIDENT_ID" in n["note"] for n in dm.notes)


def test_typed_columns() -> None:
    df = pl.DataFrame(
        {
            "phone": pl.Series([13812345678 + 7919 * i for i in range(300)], dtype=pl.Int64),
            "seq": pl.Series([13800000000 + i for i in range(300)], dtype=pl.Int64),
            "birthday": pl.date_range(pl.date(1980, 1, 1), pl.date(1980, 10, 26), eager=True),
            "blob": pl.Series([b"\x00\x01"] * 300, dtype=pl.Binary),
        }
    )
    dm = _map(df)
    assert verdicts(dm.rows) == {("phone", "PHONE_NUMBER"), ("birthday", "DATE_OF_BIRTH")}
    assert any("blob" in s["reason"] and "binary" in s["reason"] for s in dm.skipped)


def test_free_text_share_counts_rows() -> None:
    df = pl.DataFrame(
        {"note": [f"请回电 {13912345670 + 10007 * i} 谢谢您的耐心等待" if i < 5 else "无" for i in range(50)]}
    )
    dm = _map(df)
    (row,) = dm.rows
    assert row["entity"] == "PHONE_NUMBER" and row["share"] == pytest.approx(5 / 50)


def test_header_only_entities_need_fitting_values() -> None:
    df = pl.DataFrame(
        {
            "年龄": [str(x) for x in range(18, 78)],
            "nl": ["abc"] * 60,  # pinyin for age, but the values are not ages
            "xb": ["男", "女"] * 30,
            "sex": ["yes", "no"] * 30,  # not a gender vocabulary
            "mima": ["x9!k"] * 60,
        }
    )
    dm = _map(df)
    assert verdicts(dm.rows) == {("年龄", "AGE"), ("xb", "GENDER"), ("mima", "ACCOUNT_CREDENTIAL")}
    assert {r["entity"]: r["sensitive"] for r in dm.rows}["ACCOUNT_CREDENTIAL"] is True


def test_free_text_names_share_is_the_share_of_rows_with_its_evidence() -> None:
    """A remark column where a third of the rows name a customer: the share says a third (it said 1.0 when
    the rows without words were left out of the sample, or distinct values counted instead of rows)."""
    surnames, given = "王李张刘陈杨黄赵吴周", ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军"]
    notes = []
    for i in range(600):
        if i % 3 == 0:
            notes.append(f"客户{surnames[i % 10]}{given[(i // 10) % 10]}来电咨询贷款额度，已回复")
        elif i % 3 == 1:
            notes.append(f"系统自动备注：本月账单已出，第{i}号")
        else:
            notes.append("-- -- -- -- -- --")  # punctuation only: no words, no name, still a row
    dm = _map(pl.DataFrame({"备注": notes}))
    (row,) = [r for r in dm.rows if r["entity"] == "PERSON"]
    assert 0.2 <= float(row["share"]) <= 0.45, row  # type: ignore[arg-type]
    (ev,) = [e for e in dm.evidence if e["entity"] == "PERSON"]
    assert ev["basis"] == "text detectors on a sample" and ev["non_empty"] == 600
    # Words are counted in the batches the sample came from (the first 150 rows here): two rows in three.
    assert ev["rows_with_words"] * 3 == ev["rows_checked_for_words"] * 2  # type: ignore[operator]
    assert ev["sampled_rows_with_entity"] <= ev["sampled_rows"]  # type: ignore[operator]


def test_wide_tables_take_the_long_form_pass_with_the_same_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """The long-form pass for wide text tables (a 100,000-column CSV) against the column-by-column one."""
    import piguard.detect.columns as columns

    df = customers(300).with_columns(pl.all().cast(pl.String))

    def stats(min_columns: int) -> TableClassifier:
        monkeypatch.setattr(columns, "WIDE_MIN_COLUMNS", min_columns)
        clf = TableClassifier()
        for i in range(0, df.height, 150):
            clf.add(df.slice(i, 150))
        return clf

    narrow, wide = stats(10**9), stats(1)
    for name, a in narrow.columns.items():
        b = wide.columns[name]
        assert (a.non_null, a.free_text_rows, a.truncated) == (b.non_null, b.free_text_rows, b.truncated), (
            name
        )
        assert +a.counts == +b.counts and +a.shape_counts == +b.shape_counts, name
        assert a.conf_sum.keys() == b.conf_sum.keys(), name
        assert {k: set(v) for k, v in a.numbers.items()} == {k: set(v) for k, v in b.numbers.items()}, name
    # The text detectors' subsample may take other distinct values first; the verdicts agree.
    assert {(v.column, v.entity) for v in narrow.verdicts()} == {
        (v.column, v.entity) for v in wide.verdicts()
    }
    assert {(v.column, v.entity) for v in wide.verdicts()} == EXPECTED

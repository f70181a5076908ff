"""ARX hierarchy files, directory naming, validation errors, automatic hierarchies."""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl
import pytest

from piguard.deid import DeidError, load_hierarchy_dir, read_arx_csv
from piguard.deid import hierarchy as hm
from shared_data import needs_shared, shared_path

ADULT = shared_path("data", "anon", "adult")
pytestmark = needs_shared(ADULT)


def test_reads_arx_adult_hierarchies() -> None:
    h = load_hierarchy_dir(ADULT, ["age", "education", "sex", "not-there"])
    assert set(h) == {"age", "education", "sex"}
    age = h["age"]
    assert age.height == 5 and age.domain_size == 100
    leaf = age.encode_column(pl.Series(["39", "1"]))
    assert [age.labels[2][age.codes[2][i]] for i in leaf] == ["30-39", "0-9"]
    assert [age.labels[4][age.codes[4][i]] for i in leaf] == ["*", "*"]
    # ARX domain share: leaves under the generalized value / leaves in the hierarchy.
    assert age.shares(4).tolist() == [1.0]


def test_plain_column_name_files(tmp_path: Path) -> None:
    (tmp_path / "city.csv").write_text("杭州;浙江;*\n宁波;浙江;*\n南京;江苏;*\n", encoding="utf-8")
    (tmp_path / "x_hierarchy_grade.csv").write_text("A;good\nB;good\n", encoding="utf-8")
    h = load_hierarchy_dir(tmp_path, ["city", "grade"])
    assert h["city"].labels[1] == ["浙江", "江苏"]
    assert h["grade"].height == 2


def test_two_files_for_one_column_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "city.csv").write_text("a;*\n", encoding="utf-8")
    (tmp_path / "t_hierarchy_city.csv").write_text("a;*\n", encoding="utf-8")
    with pytest.raises(DeidError, match="two hierarchy files for column 'city'"):
        load_hierarchy_dir(tmp_path, ["city"])


def test_value_missing_from_hierarchy_names_column_and_masks_value() -> None:
    h = load_hierarchy_dir(ADULT, ["race"])["race"]
    with pytest.raises(DeidError) as err:
        h.encode_column(pl.Series(["White", "Martian-Visitor"]))
    msg = str(err.value)
    assert "column 'race'" in msg and "M*******" in msg and "Martian" not in msg


def test_inconsistent_levels(tmp_path: Path) -> None:
    f = tmp_path / "h_hierarchy_zip.csv"
    f.write_text("310012;3100**;*\n310013;3100**\n", encoding="utf-8")
    with pytest.raises(DeidError, match=r"column 'zip'.*row 2 \(value 3\*+\) has 2 levels.*inconsistent"):
        read_arx_csv(f, "zip")
    f.write_text("a;Zhejiang;*\nb;Zhejiang;TOP2\n", encoding="utf-8")
    with pytest.raises(DeidError, match=r"inconsistent levels: level 1 value Z\*+ generalizes to both"):
        read_arx_csv(f, "zip")
    f.write_text("a;X\na;Y\n", encoding="utf-8")
    with pytest.raises(DeidError, match="appears twice"):
        read_arx_csv(f, "zip")
    f.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DeidError, match="not UTF-8"):
        read_arx_csv(f, "zip")


def test_auto_age_intervals_nest() -> None:
    h = hm.numeric_intervals("age", ["17", "23", "39", "90"], widths=(5, 10, 20))
    row = {r[0]: r for r in h.rows}
    assert row["23"] == ["23", "[20, 25)", "[20, 30)", "[20, 40)", "*"]
    assert row["17"][1:3] == ["[15, 20)", "[10, 20)"]
    with pytest.raises(DeidError, match="do not nest"):
        hm.numeric_intervals("age", ["1"], widths=(5, 7))
    with pytest.raises(DeidError, match=r"column 'age': value x\*+ is not a number"):
        hm.numeric_intervals("age", ["1", "xyz"])


def test_auto_dates_resident_id_address_phone_postcode() -> None:
    d = hm.dates("visit", ["2024-03-05", "2024年3月9日"])
    assert d.rows[0][1:] == ["2024-03", "2024", "2020-2029", "*"]
    assert d.rows[1][1] == "2024-03"

    rid = hm.resident_id_region("id", ["11010519491231002X", "330106199001011234"])
    assert {r[0][:2]: r[3] for r in rid.rows} == {"11": "北京市", "33": "浙江省"}
    assert rid.rows[1][1] == "330106************" and rid.rows[1][2] == "3301**"

    a = hm.chinese_address(
        "addr",
        ["浙江省杭州市西湖区文三路90号", "北京市海淀区中关村大街1号", "广西壮族自治区南宁市青秀区民族大道"],
    )
    by = {r[0][:2]: r for r in a.rows}
    assert by["浙江"][1:] == ["浙江省杭州市西湖区", "浙江省杭州市", "浙江省", "*"]
    assert by["北京"][1:] == ["北京市海淀区", "北京市", "北京市", "*"]
    assert by["广西"][1:4] == ["广西壮族自治区南宁市青秀区", "广西壮族自治区南宁市", "广西壮族自治区"]
    with pytest.raises(DeidError, match="does not start with a known province, city or district"):
        hm.chinese_address("addr", ["文三路90号"])
    # Without the province, and with the short forms people write (GB/T 2260 names from python-stdnum).
    b = {r[0]: r[1:] for r in hm.chinese_address("addr", ["杭州西湖区文三路", "深圳市南山区科技园"]).rows}
    assert b["杭州西湖区文三路"] == ["浙江省杭州市西湖区", "浙江省杭州市", "浙江省", "*"]
    assert b["深圳市南山区科技园"][2] == "广东省"

    p = hm.phone_prefix("tel", ["13812345678", "+86 139 0000 1111"])
    by = {r[0]: r[1:] for r in p.rows}
    assert by["13812345678"] == ["1381234****", "138********", "*"]
    assert by["+86 139 0000 1111"][0] == "1390000****"

    z = hm.postcode("zip", ["310012"])
    assert z.rows[0] == ["310012", "3100**", "310***", "31****", "*"]
    with pytest.raises(DeidError, match="not a 6-digit postcode"):
        hm.postcode("zip", ["3100"])


def test_inferred_hierarchy_kinds_from_values() -> None:
    from piguard.deid.infer import infer_spec

    def kind(col: str, values: list[str]) -> str:
        return str(infer_spec(col, pl.Series(values))["auto"])

    assert kind("性别", ["男", "女", "女"]) == "sex"
    assert kind("gender", ["M", "F"]) == "sex"
    assert kind("年龄", ["23", "45", "67"]) == "intervals"
    assert infer_spec("年龄", pl.Series(["23", "45"]))["widths"] == [5, 10, 20]
    spec = infer_spec("月收入", pl.Series(["3000", "5500", "12000", "80000"]))
    widths = spec["widths"]
    assert spec["auto"] == "intervals" and all(b % a == 0 for a, b in itertools.pairwise(widths))
    assert kind("邮编", ["310012", "100080"]) == "postcode"
    assert kind("出生日期", ["1990-03-07", "1985/12/01", "2001年1月2日"]) == "date"
    assert kind("身份证号", ["110101199003071233", "11010519491231002X"]) == "resident-id"
    assert kind("手机", ["13812345678", "15900001111"]) == "phone"
    assert kind("城市", ["杭州市", "宁波", "南京市", "上海市"]) == "place"
    assert kind("区县", ["西湖区", "海淀区", "浦东新区"]) == "place"
    assert kind("职业", ["教师", "学生", "文员"]) == "flat"


def test_place_hierarchy_from_the_gb_t_2260_list() -> None:
    h = hm.chinese_place("城市", ["杭州", "宁波市", "南京", "北京市", ""])
    by = {r[0]: r[1:] for r in h.rows}
    # Cities go straight to their province; a municipality is its own province; missing stays missing.
    assert by["杭州"] == ["浙江省", "*"] and by["宁波市"] == ["浙江省", "*"] and by["南京"] == ["江苏省", "*"]
    assert by["北京市"] == ["北京市", "*"] and by[""] == ["", "*"]
    d = {r[0]: r[1:] for r in hm.chinese_place("区县", ["西湖区", "海淀区", "鼓楼区", "火星"]).rows}
    assert d["海淀区"] == ["北京市", "北京市", "*"]
    # A name two cities share generalizes to both; the levels stay a tree.
    assert d["西湖区"][0] == "南昌市|杭州市" and d["西湖区"][1] == "江西省|浙江省"
    assert "福州市" in d["鼓楼区"][0] and d["火星"][:2] == ["(未识别)", "(未识别)"]
    assert len(h.sha256) == 64 and h.describe()["kind"] == "place"

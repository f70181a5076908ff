"""Postal addresses: Chinese gazetteer + grammar, English street grammar."""

from __future__ import annotations

import re

import pytest
from faker import Faker

from piguard.detect import scan_text
from piguard.detect.address import AddressDetector, gazetteer


def addresses_in(text: str) -> list[str]:
    return [text[f.start : f.end] for f in scan_text(text, entities=["ADDRESS"])]


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("收货地址：山西省太原市小店区长风街12号。订单号2024", "山西省太原市小店区长风街12号"),
        ("我住在北京市海淀区中关村大街27号附近", "北京市海淀区中关村大街27号"),
        (
            "办公地址内蒙古自治区呼和浩特市新城区新华大街5号3栋2单元501室，合同",
            "内蒙古自治区呼和浩特市新城区新华大街5号3栋2单元501室",
        ),
        ("寄至广东省深圳市南山区科技园路8号", "广东省深圳市南山区科技园路8号"),
        ("家住浙江省杭州市西湖区文三路", "浙江省杭州市西湖区文三路"),
    ],
)
def test_chinese_addresses(text: str, address: str) -> None:
    assert addresses_in(text) == [address]


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (
            "Ship to 154 Mitchell Bridge Apt. 073, Brownmouth, CO 02725. Thanks",
            "154 Mitchell Bridge Apt. 073, Brownmouth, CO 02725",
        ),
        (
            "Our office is at 1600 Pennsylvania Avenue, Washington, DC 20500.",
            "1600 Pennsylvania Avenue, Washington, DC 20500",
        ),
        ("She lives at 42 Oak St.", "42 Oak St."),
    ],
)
def test_english_addresses(text: str, address: str) -> None:
    assert addresses_in(text) == [address]


@pytest.mark.parametrize(
    ("text", "address"),
    [
        # all capitals: no capitalised word anywhere, the pass over English addresses must still run
        ("addr=USS NIMITZ, FPO AP 96620 ts=1", "USS NIMITZ, FPO AP 96620"),
        ("MAIL: PSC 1234, Box 5678, APO AE 09123", "PSC 1234, Box 5678, APO AE 09123"),
        ("2024-03-01 INFO ship to 42 Oak St.", "42 Oak St."),
    ],
)
def test_military_mail_and_streets_in_log_lines(text: str, address: str) -> None:
    assert addresses_in(text) == [address]


@pytest.mark.parametrize(
    "text",
    [
        "全市各区都在努力推进工作。",  # unit words without a place or house number
        "北京是中国的首都。",  # a city alone is not a postal address
        "系统于2024/02/16完成批处理，共处理89567条记录。",
        "We shipped 3 Large Boxes yesterday.",
        "Release 2 Way Forward",  # no comma/city/ZIP: at most weak
    ],
)
def test_hard_negatives(text: str) -> None:
    assert addresses_in(text) == []


def test_gazetteer_comes_from_stdnum_division_codes() -> None:
    g = gazetteer()
    assert {"北京市", "海淀区", "内蒙古自治区", "内蒙古", "广东"} <= g
    assert len(g) > 3000


def test_faker_addresses_recall() -> None:
    fz, fe = Faker("zh_CN"), Faker("en_US")
    fz.seed_instance(11)
    fe.seed_instance(11)
    found = total = 0
    for _ in range(100):
        zh = re.sub(r"\s*\d{6}$", "", fz.address())
        en = fe.street_address() + ", " + fe.city() + ", " + fe.state_abbr() + " " + fe.postcode()
        text = f"收货地址：{zh}。Ship to {en}. Thanks"
        got = addresses_in(text)
        found += (zh in got) + (en in got)
        total += 2
    assert found / total >= 0.9


def test_detector_interface() -> None:
    det = AddressDetector()
    assert det.entities == ("ADDRESS",)
    text = "地址：上海市浦东新区世纪大道100号"
    (hit,) = det.find(text)
    assert text[hit.start : hit.end] == "上海市浦东新区世纪大道100号"
    assert hit.detector == "address"

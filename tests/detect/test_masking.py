"""Masked evidence: enough to recognise the kind of value, never enough to identify the person."""

from __future__ import annotations

import re

import pytest

from piguard.detect import mask_value, scan_text


@pytest.mark.parametrize(
    ("entity", "value", "masked"),
    [
        ("CN_RESIDENT_ID", "11010519491231002X", "1101**********002X"),
        ("BANK_CARD", "6222 0212 3456 7890", "6222 **** **** 7890"),
        ("PHONE_NUMBER", "138-1234-5678", "138-****-5678"),
        ("EMAIL_ADDRESS", "wang.xm@example.com", "w***@example.com"),
        ("IP_ADDRESS", "192.168.1.20", "192.168.*.*"),
        ("IP_ADDRESS", "2001:db8::1", "2001:****"),
        ("MAC_ADDRESS", "00:1a:2b:3c:4d:5e", "00:**:**:**:**:**"),
        ("DATE_OF_BIRTH", "1990-03-07", "1990-**-**"),
        ("GPS_COORDINATE", "39.904200, 116.407400", "39.9***, 116.4***"),
        ("CN_LICENCE_PLATE", "京A12345", "京A****5"),
        ("CN_PASSPORT", "E12345678", "E******78"),
    ],
)  # fmt: skip
def test_masks(entity: str, value: str, masked: str) -> None:
    assert mask_value(entity, value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [("+86 138-1234-5678", "+86 138-****-5678"), ("008613812345678", "0086138****5678"),
     ("+44 7400 123456", "+44 740* **3456")],
)  # fmt: skip
def test_phone_keeps_the_country_code_and_hides_the_subscriber_digits(value: str, masked: str) -> None:
    assert mask_value("PHONE_NUMBER", value) == masked


def test_unknown_entity_shows_only_length() -> None:
    assert mask_value("EMPLOYEE_ID", "EMP-123456") == "**********"
    long = mask_value("EMPLOYEE_ID", "X" * 40)
    assert "(40 chars)" in long and "XX" not in long


def test_empty_value() -> None:
    assert mask_value("PHONE_NUMBER", "") == ""


def test_findings_never_carry_a_raw_value() -> None:
    text = "身份证 11010519491231002X 手机 13812345678 卡号 6222021234567890128 邮箱 li.lei@example.com"
    found = scan_text(text)
    assert {f.entity for f in found} >= {"CN_RESIDENT_ID", "PHONE_NUMBER", "EMAIL_ADDRESS"}
    for f in found:
        raw = text[f.start : f.end]
        assert f.masked != raw
        assert raw not in repr(f.as_dict())
        if f.entity == "EMAIL_ADDRESS":
            assert "li.lei" not in f.masked  # the local part names the person; the domain may stay
        else:  # most of the significant characters are hidden
            assert len(re.findall(r"\*", f.masked)) >= len(re.sub(r"[\s\-]", "", raw)) // 3

"""Structured detectors: positives, formatting variants, hard negatives, offsets, and validators
cross-checked against python-stdnum."""

from __future__ import annotations

import random
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from stdnum import luhn
from stdnum.cn import ric, uscc

from piguard.detect import Registry, classify_values, scan_text
from piguard.detect.registry import StructuredDetector
from piguard.detect.structured import (
    _checksums,
    find_structured,
    reference_find_structured_frame,
    region_codes,
)

REG = Registry([StructuredDetector()])
_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def rid(body: str) -> str:
    """A resident ID with the right check character for a 17-digit body."""
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, _W, strict=True)) % 11]


def card(prefix: str, length: int) -> str:
    body = prefix + "7" * (length - len(prefix) - 1)
    return body + luhn.calc_check_digit(body)


def uscc_code(body17: str) -> str:
    return body17 + uscc.calc_check_digit(body17)


def spans(text: str, **kw: object) -> list[tuple[str, str]]:
    """(entity, exact text) for every finding; asserts the offsets index the original text."""
    out = []
    for f in scan_text(text, registry=REG, **kw):
        assert 0 <= f.start < f.end <= len(text)
        out.append((f.entity, text[f.start : f.end]))
    return out


def entities(text: str, **kw: object) -> set[str]:
    return {e for e, _ in spans(text, **kw)}


ID18 = rid("11010519491231002")  # the GB 11643 example body
FW = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


# --- resident identity card -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "written",
    [ID18, ID18.lower(), f"{ID18[:6]} {ID18[6:14]} {ID18[14:]}", f"{ID18[:6]}-{ID18[6:14]}-{ID18[14:]}"],
)
def test_resident_id_variants(written: str) -> None:
    text = f"客户身份证号码：{written}，已核实。"
    assert ("CN_RESIDENT_ID", written) in spans(text)


def test_resident_id_full_width_offsets_index_the_original_text() -> None:
    wide = ID18.translate(FW)
    text = f"证件号 {wide} 手机 １３８１２３４５６７８"
    got = spans(text)
    assert ("CN_RESIDENT_ID", wide) in got
    assert ("PHONE_NUMBER", "１３８１２３４５６７８") in got


@pytest.mark.parametrize(
    "body",
    [
        "62020119900307123",  # 620201: a district of Jiayuguan stdnum does not list (only 620200)
        "81000019900307123",  # residence permit of a Hong Kong resident
        "82000019850101234",  # of a Macao resident
        "83000019951231456",  # of a Taiwan resident (830000 is not in stdnum's list)
    ],
)
def test_resident_id_with_a_county_code_missing_from_the_list(body: str) -> None:
    value = rid(body)
    text = f"申请人 {value} 已核验"
    assert spans(text) == [("CN_RESIDENT_ID", value)]
    ref = reference_find_structured_frame(text)
    assert ref.filter(pl.col("entity") == "CN_RESIDENT_ID")["start"].to_list() == [text.index(value)]
    assert classify_values(pl.Series([value]))["entity"].to_list() == ["CN_RESIDENT_ID"]


def test_resident_id_needs_a_known_province_and_a_birth_date() -> None:
    assert spans(f"编号 {rid('99000019900307123')}") == []  # no province opens with 99
    assert spans(f"编号 {rid('62020119901307123')}") == []  # month 13


def test_resident_id_legacy_15_digits() -> None:
    legacy = "110105491231002"  # region, YYMMDD 1949-12-31, sequence
    assert ("CN_RESIDENT_ID", legacy) in spans(f"身份证 {legacy}")


def test_resident_id_glued_to_a_prefix() -> None:
    assert ("CN_RESIDENT_ID", ID18) in spans(f"ID{ID18} 已登记")


@pytest.mark.parametrize(
    "bad",
    [
        ID18[:-1] + ("0" if ID18[-1] != "0" else "1"),  # wrong check digit
        rid("99010519491231002"),  # no such region
        rid("11010519491331002"),  # month 13
        rid("11010521991231002"),  # born in 2199
    ],
)
def test_resident_id_rejects_invalid(bad: str) -> None:
    assert "CN_RESIDENT_ID" not in entities(f"身份证号码 {bad}")


# --- phones -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "written",
    [
        "13812345678",
        "+86 13812345678",
        "+86-13812345678",
        "+8613812345678",
        "008613812345678",
        "138 1234 5678",
        "138-1234-5678",
        "１３８１２３４５６７８",
        "＋８６ １３８１２３４５６７８",
        "010-62345678",
        "(021)52345678",
        "（0755）86013388",
        "0571-8765432",
        "+86-20-79379586",
        "010-62345678-123",
        "+44 7400 123456",
        "+1 415-555-2671",
    ],
)
def test_phone_variants(written: str) -> None:
    assert ("PHONE_NUMBER", written) in spans(f"联系电话：{written}。")


@pytest.mark.parametrize("bad", ["12345678901", "10012345678", "+99 1234 5678", "1381234567"])
def test_phone_rejects_non_numbers(bad: str) -> None:
    assert "PHONE_NUMBER" not in entities(f"号码 {bad} 结束")


def test_phone_after_order_word_is_below_default_threshold() -> None:
    assert "PHONE_NUMBER" not in entities("订单号13812345678已发货")
    low = scan_text("订单号13812345678已发货", registry=REG, min_confidence=0.0)
    assert [f.entity for f in low] == ["PHONE_NUMBER"] and low[0].confidence < 0.5


# --- e-mail, cards, network, devices ------------------------------------------------------------------------
def test_email() -> None:
    assert ("EMAIL_ADDRESS", "wang.xm+vip@example.com.cn") in spans("邮箱wang.xm+vip@example.com.cn，谢谢")


@pytest.mark.parametrize(
    "number",
    [
        card("622202", 16),
        card("622848", 19),
        card("4", 16),
        card("53", 16),
        card("37", 15),
        card("2131", 15),
        card("6759", 12),
        card("5018", 16),
    ],
)
def test_bank_card(number: str) -> None:
    assert ("BANK_CARD", number) in spans(f"银行卡号 {number}")
    if len(number) in (16, 19):
        grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        assert ("BANK_CARD", grouped) in spans(f"card number {grouped} ok")


def test_bank_card_rejects_bad_luhn_and_bad_issuer() -> None:
    good = card("622202", 16)
    bad_luhn = good[:-1] + str((int(good[-1]) + 1) % 10)
    no_issuer = card("12", 16)
    assert "BANK_CARD" not in entities(f"卡号 {bad_luhn}")
    assert "BANK_CARD" not in entities(f"卡号 {no_issuer}")


@pytest.mark.parametrize(
    "ip", ["8.8.8.8", "192.168.1.20", "2001:db8:85a3:0:0:8a2e:370:7334", "2001:db8::8a2e:370:7334", "fe80::1"]
)
def test_ip_addresses(ip: str) -> None:
    assert ("IP_ADDRESS", ip) in spans(f"login from ip {ip} ok")


def test_ip_negatives_versions_times_and_out_of_range() -> None:
    assert "IP_ADDRESS" not in entities("app version 10.2.3.4 released")
    assert "IP_ADDRESS" not in entities("host 300.1.1.1 unreachable")
    assert "IP_ADDRESS" not in entities("2024-03-05 12:34:56 job done")


@pytest.mark.parametrize("mac", ["00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "AA:BB:CC:DD:EE:FF"])
def test_mac(mac: str) -> None:
    assert ("MAC_ADDRESS", mac) in spans(f"device {mac} online")


def test_mac_of_digits_only_needs_context() -> None:
    assert "MAC_ADDRESS" not in entities("值 00-12-34-56-78-90 结束")
    assert ("MAC_ADDRESS", "00-12-34-56-78-90") in spans("MAC地址 00-12-34-56-78-90")


def test_imei() -> None:
    imei = card("86", 15)  # Luhn-valid, reporting body 86
    assert ("IMEI", imei) in spans(f"设备IMEI {imei}")


# --- plates, coordinates, travel documents ----------------------------------------------------------------
@pytest.mark.parametrize(
    "plate", ["京A12345", "粤B8K9Z7", "沪AD12345", "粤BF1234A"[:-1] + "5", "苏E·12345", "浙A12345挂"]
)
def test_plates(plate: str) -> None:
    assert ("CN_LICENCE_PLATE", plate) in spans(f"车牌号 {plate} 违停")


def test_plate_negatives() -> None:
    assert "CN_LICENCE_PLATE" not in entities("车牌 京A1234 不完整")
    assert "CN_LICENCE_PLATE" not in entities("编码 京A12345X9 是物料号")


def test_gps() -> None:
    assert ("GPS_COORDINATE", "39.904200, 116.407400") in spans("定位 39.904200, 116.407400 附近")
    assert "GPS_COORDINATE" not in entities("ratio 95.1234, 300.5678 only")


def test_passport_and_permits() -> None:
    got = spans("护照号 E12345678，港澳通行证 C87654321，台胞证 L12345678")
    assert ("CN_PASSPORT", "E12345678") in got
    assert ("CN_HK_MACAO_PERMIT", "C87654321") in got
    assert ("CN_TW_PERMIT", "L12345678") in got


# --- dates of birth -----
@pytest.mark.parametrize(
    ("context", "value"),
    [
        ("出生日期：", "1990年3月7日"),
        ("生日 ", "1990-03-07"),
        ("DOB: ", "1990/03/07"),
        ("date of birth ", "19900307"),
        ("born ", "1990.3.7"),
        ("出生于", "1985年12月01日"),
    ],
)
def test_date_of_birth_with_context(context: str, value: str) -> None:
    assert ("DATE_OF_BIRTH", value) in spans(f"{context}{value}")


def test_dates_without_birth_context_are_not_reported() -> None:
    assert "DATE_OF_BIRTH" not in entities("2024-03-05 12:34:56 INFO job finished")
    assert "DATE_OF_BIRTH" not in entities("下单时间 2023-05-01，发货日期 2023年5月3日")
    assert "DATE_OF_BIRTH" not in entities("出生日期：2199-01-01")  # not a real date of birth


# --- the unified social credit code ------------------------------------------------------------------------
def test_uscc_is_detected_but_not_reported_as_personal_by_default() -> None:
    code = uscc_code("91110108MA01ABCD2")
    text = f"统一社会信用代码 {code}"
    assert "CN_USCC" not in entities(text)
    assert ("CN_USCC", code) in spans(text, include_non_personal=True)
    assert ("CN_USCC", code) in spans(text, entities=["CN_USCC"])
    bad = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert "CN_USCC" not in entities(f"统一社会信用代码 {bad}", include_non_personal=True)


# --- hard negatives together -----
def test_hard_negatives_produce_no_findings() -> None:
    wrong = ID18[:-1] + ("0" if ID18[-1] != "0" else "1")
    text = "\n".join(
        [
            "订单号 202403051234567890 已支付，快递单号 SF1234567890123，运单号 YT7531234567890",
            "时间 2024-03-05 12:34:56，时间戳 1709612096 / 1709612096123",
            "ISBN 978-7-111-54742-6 与 9787111547426 是书号",
            f"参考号 {wrong}",
            "价格 ¥1,299.00，$45.99，12999元，RMB 5,599,859",
            "version v2.3.1, build 12.2.2.234, 版本 3.10.2.1",
            "Ticket #4540307 closed after 660ms; 共处理89567条记录",
        ]
    )
    assert spans(text) == []


# --- offsets and lines -----
def test_offsets_and_lines_across_lines_with_wide_characters() -> None:
    text = "第一行：无\n第二行，手机１３８１２３４５６７８\n第三行 ｅｍａｉｌ a@b.cn 和 身份证" + ID18
    found = scan_text(text, registry=REG)
    by = {f.entity: f for f in found}
    assert text[by["PHONE_NUMBER"].start : by["PHONE_NUMBER"].end] == "１３８１２３４５６７８"
    assert by["PHONE_NUMBER"].line == 2
    assert text[by["EMAIL_ADDRESS"].start : by["EMAIL_ADDRESS"].end] == "a@b.cn"
    assert by["CN_RESIDENT_ID"].line == 3 and text[by["CN_RESIDENT_ID"].end - 18 :] == ID18


def test_token_whose_text_also_occurs_earlier_in_its_line_is_located_exactly() -> None:
    # The phone's digits first occur inside the order number; the finding must point at the second place.
    text = "单号9913812345678000，手机13812345678"
    got = [(h.entity, h.start, h.end) for h in find_structured(text) if h.entity == "PHONE_NUMBER"]
    assert got == [("PHONE_NUMBER", text.rindex("13812345678"), len(text))]


def test_empty_and_plain_text() -> None:
    assert find_structured("") == []
    assert find_structured("没有任何个人信息的一段话。No numbers here at all.") == []


# --- classify_values (table columns) -----------------------------------------------------------------------
def test_classify_values_per_cell() -> None:
    cells = pl.Series(
        ["13812345678", ID18, None, "hello", "wang@example.com", card("622202", 16), " 8.8.8.8 "]
    )
    out = classify_values(cells)
    assert out.height == cells.len()
    assert out["entity"].to_list() == [
        "PHONE_NUMBER",
        "CN_RESIDENT_ID",
        None,
        None,
        "EMAIL_ADDRESS",
        "BANK_CARD",
        "IP_ADDRESS",
    ]
    assert out["confidence"][0] > 0.5 and out["confidence"][2] == 0.0


# --- validators against python-stdnum -----
def test_resident_id_validation_matches_stdnum() -> None:
    rnd = random.Random(7)
    regions = sorted(region_codes())
    values = []
    for _ in range(3000):
        born = date(1950, 1, 1) + timedelta(days=rnd.randint(0, 365 * 55))
        body = rnd.choice(regions) + born.strftime("%Y%m%d") + f"{rnd.randint(0, 999):03d}"
        values.append(body + rnd.choice("0123456789X"))  # right about one time in eleven
    ours = classify_values(pl.Series(values))["entity"].to_list()
    # stdnum's check character and birth date; its extra rule that the county code existed in the birth
    # *year* is deliberately not ours: codes are assigned when the card is issued, often years later.
    theirs = [v[-1] == ric.calc_check_digit(v) and ric.get_birth_date(v) is not None for v in values]
    assert sum(theirs) > 150
    assert [e == "CN_RESIDENT_ID" for e in ours] == theirs


def test_luhn_matches_stdnum() -> None:
    rnd = random.Random(11)
    values = ["".join(rnd.choice("0123456789") for _ in range(rnd.randint(12, 19))) for _ in range(5000)]
    d = pl.Series(values)
    ok, _, _ = _checksums(d, d.str.len_bytes().to_numpy(), np.ones(len(values), dtype=bool))
    assert ok.tolist() == [luhn.is_valid(v) for v in values]
    # And through the classifier: UnionPay-shaped 16-digit numbers are cards exactly when Luhn holds.
    cards = ["62" + "".join(rnd.choice("0123456789") for _ in range(14)) for _ in range(2000)]
    got = classify_values(pl.Series(cards))["entity"].to_list()
    assert [e == "BANK_CARD" for e in got] == [luhn.is_valid(c) for c in cards]


def test_uscc_checksum_matches_stdnum() -> None:
    rnd = random.Random(13)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    values = []
    for _ in range(4000):
        body = "".join(rnd.choice("0123456789") for _ in range(8)) + "".join(
            rnd.choice(alphabet) for _ in range(9)
        )
        values.append(body + (uscc.calc_check_digit(body) if rnd.random() < 0.3 else rnd.choice(alphabet)))
    d = pl.Series(values)
    _, _, ok = _checksums(d, d.str.len_bytes().to_numpy(), d.str.contains(r"^[0-9]+$").to_numpy())
    assert ok.tolist() == [uscc.is_valid(v) for v in values]


def test_very_long_single_line_keeps_exact_offsets_and_context() -> None:
    unit = '{"phone":"13812345678","ref":"订单号13912345678","mail":"a.b@example.com"},'
    text = "首行 身份证" + ID18 + "\n" + unit * 2000 + "\n末行 手机１３７１２３４５６７８"  # ~150 KB line
    found = scan_text(text, registry=REG)
    values = [(f.entity, text[f.start : f.end]) for f in found]
    assert values.count(("PHONE_NUMBER", "13812345678")) == 2000
    assert values.count(("EMAIL_ADDRESS", "a.b@example.com")) == 2000
    assert ("PHONE_NUMBER", "13912345678") not in values  # after 订单号: below the default threshold
    assert values[0] == ("CN_RESIDENT_ID", ID18) and values[-1] == ("PHONE_NUMBER", "１３７１２３４５６７８")
    assert found[-1].line == 3


def test_lone_surrogates_do_not_break_scanning_or_offsets() -> None:
    text = "手机 13812345678 \udcff 邮箱 a@b.cn"
    got = [(h.entity, text[h.start : h.end]) for h in find_structured(text)]
    assert got == [("PHONE_NUMBER", "13812345678"), ("EMAIL_ADDRESS", "a@b.cn")]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("仙仙Ｔｅｌ：13810585448QQ：776979804，知名", "13810585448"),
        ("教学联系tel：010-63012488QQ：449801320。", "010-63012488"),
        ("【M：+86-18601200718E：haowenjing", "+86-18601200718"),
        ("香港电话+85223352109", "+85223352109"),
    ],
)
def test_numbers_glued_to_letters_are_found(text: str, value: str) -> None:
    assert ("PHONE_NUMBER", value) in spans(text)


@pytest.mark.parametrize(
    "text",
    ["Please have the manager call me at 0699 868 88 55 today", "Phone: 201-948-1927", "fax 930.167.3943"],
)
def test_other_national_formats_need_a_phone_word(text: str) -> None:
    assert "PHONE_NUMBER" in entities(text)
    bare = text.split(" ")[-1] if not text.endswith("today") else "0699 868 88 55"
    assert "PHONE_NUMBER" not in entities(f"batch {bare} processed")


def test_a_date_near_a_phone_word_is_not_a_phone() -> None:
    assert spans("备用电话：0451-43268423；登记时间2023-07-18") == [("PHONE_NUMBER", "0451-43268423")]


def test_long_lines_without_any_candidate() -> None:
    assert find_structured("数据" * 40_000) == []
    assert find_structured("短行\n" + "数据" * 40_000 + "\n没有号码") == []


def test_hex_pseudonyms_and_hashes_are_not_split_into_phone_numbers() -> None:
    # Keyed pseudonyms (HMAC hex) and hashes mix letters and digit runs; none of their runs is a phone.
    tokens = ("026144052346bc89", "90ccbd0924067977", "d15ef08304595065", "5D41402ABC4B2A76B9719D911017C592")
    for token in tokens:
        assert scan_text(f"手机号 {token}") == [], token
    # Digits with genuinely glued letters still get their second chance.
    assert [f.entity for f in scan_text("QQ:776979804 手机13810585448QQ")] == ["PHONE_NUMBER"]


# --- context on the line above ----------------------------------------------------------------------------
def test_a_number_alone_on_its_line_takes_the_phone_word_above() -> None:
    """Forms put the label on one line and the value on the next ("Phone:\\n467 3395")."""
    assert spans("Personal Info:\nPhone:\n467 3395\n\nE-mail: a.b@example.com") == [
        ("PHONE_NUMBER", "467 3395"),
        ("EMAIL_ADDRESS", "a.b@example.com"),
    ]
    # The word above only speaks for a value that starts its line.
    assert spans("Phone:\nroom 467 3395") == []
    # And a label two lines up does not.
    assert spans("Phone:\n\n467 3395") == []


def test_bare_digit_runs_need_a_phone_word() -> None:
    assert spans("Fax: 9498777106") == [("PHONE_NUMBER", "9498777106")]
    assert spans("They're not answering at 516 466 638") == [("PHONE_NUMBER", "516 466 638")]
    assert spans("ticket 9498777106") == []
    assert spans("order number 9498777106, fax") == []
    # A bare 8-digit date after 出生 stays a date of birth.
    assert spans("出生 19900307") == [("DATE_OF_BIRTH", "19900307")]


def test_a_word_right_after_the_number_names_it() -> None:
    """Contact blocks often put the label after the number ("085 175 7641-Office", "416 60 039 fax")."""
    assert spans("085 175 7641-Office\\,3660170548-Fax") == [
        ("PHONE_NUMBER", "085 175 7641"),
        ("PHONE_NUMBER", "3660170548"),
    ]
    assert spans("416 60 039 office") == [("PHONE_NUMBER", "416 60 039")]
    # Not a label when the word runs on, or when a negative word stands before the number.
    assert spans("416 60 039 officers") == []
    assert spans("order no 416 60 039 office") == []


def test_a_number_with_an_extension_is_found_without_it() -> None:
    assert spans("Fax: 345-899-3560x4587") == [("PHONE_NUMBER", "345-899-3560")]
    assert spans("Desk: +1-903-140-4508x769") == [("PHONE_NUMBER", "+1-903-140-4508")]
    # A screen size is no phone number.
    assert spans("display 1920x1080, phone case") == []


def test_packaged_tables_match_their_sources() -> None:
    """The fast readers of stdnum's division codes and phonenumbers' number lengths give what the libraries
    give (phone_lengths.txt is regenerated from intl_keys_from_phonenumbers when phonenumbers changes)."""
    from piguard.detect.structured import (
        _intl_key_list,
        intl_keys_from_phonenumbers,
        region_codes_from_stdnum,
    )

    assert region_codes() == region_codes_from_stdnum()
    assert _intl_key_list() == intl_keys_from_phonenumbers()

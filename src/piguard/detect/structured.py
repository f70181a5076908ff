"""Detection of structured personal information (IDs, phones, cards, plates, addresses on the wire...).

Two engines implement one set of rules:

* the **compiled engine** (``_cscan.c``, configured by ``_engine()`` with this module's tables) does
  tokenizing, classification, validation and context in one pass over the text's code points; it is what
  ``find_structured``, ``find_structured_frame`` and ``classify_values`` use when it is built;
* the **reference engine** below states the rules as polars expressions: one pass of a single Rust regex
  cuts the text into *candidate tokens*, then every candidate is classified and validated column-wise
  (check digits, Luhn, region codes, birth dates). It is the readable definition, the fallback when the
  extension is not built, and the oracle that ``tests/detect/test_cscan.py`` holds the compiled engine to.

A rule change is made in both (the differential test shows any text they disagree on).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from types import ModuleType
from typing import Any

from piguard.detect._lazy import LazyModule
from piguard.detect.context import AFTER_REACH, ContextRules, context_rules

# The reference engine's libraries, imported when it (or a table classification) first runs: the compiled
# engine needs none of them.
np = LazyModule("numpy")
pl = LazyModule("polars")
pa = LazyModule("pyarrow")

# --- character classes ---------------------------------------------------------------------------------
_D = "[0-9０-９]"
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_FULLWIDTH_FROM = (
    [chr(0xFF10 + i) for i in range(10)]
    + [chr(0xFF21 + i) for i in range(26)]
    + [chr(0xFF41 + i) for i in range(26)]
    + ["－", "＋", "．", "：", "（", "）", "\u3000", "＠", "／", "，"]
)
_FULLWIDTH_TO = (
    [str(i) for i in range(10)]
    + [chr(0x41 + i) for i in range(26)]
    + [chr(0x61 + i) for i in range(26)]
    + ["-", "+", ".", ":", "(", ")", " ", "@", "/", ","]
)

_EMAIL = r"[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
_EMAIL_FULL = f"^{_EMAIL}$"  # a table cell is an e-mail address only when all of it is one

# Order matters: Rust's regex is leftmost-first, so specific shapes come before the generic number token.
CANDIDATE_PATTERN = "|".join(
    [
        _EMAIL,
        # licence plates (maximal alnum run; the length is checked afterwards)
        rf"[{_PROVINCES}][A-Z][·•・ ]?[A-Z0-9]{{5,}}[挂学警港澳]?",
        # dates written in Chinese
        rf"{_D}{{4}} ?年 ?{_D}{{1,2}} ?月 ?{_D}{{1,2}} ?[日号]?",
        # coordinate pairs
        rf"[+\-]?{_D}{{1,3}}[.．]{_D}{{4,}} ?[,，] ?[+\-]?{_D}{{1,3}}[.．]{_D}{{4,}}",
        # landline with the area code in brackets
        rf"[(（]0{_D}{{2,3}}[)）] ?{_D}{{7,8}}",
        # MAC addresses
        r"[0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5}",
        # IPv6 (full or compressed)
        r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}",
        r"(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}",
        # the generic number token: digits with single separators, optional letter prefix and '+'
        rf"[+＋]?(?:[A-Za-zＡ-Ｚａ-ｚ]{{1,2}})?{_D}(?:{_D}|[ \-－.．/:：]{_D}|[A-Za-zＡ-Ｚａ-ｚ]){{3,}}",
    ]
)

# Mobile prefixes assigned in mainland China (MIIT numbering plan; 14x data-only, 16x/19x newer).
_MOBILE_PREFIXES = [
    *(f"13{i}" for i in range(10)),
    "145",
    "146",
    "147",
    "148",
    "149",
    *(f"15{i}" for i in (0, 1, 2, 3, 5, 6, 7, 8, 9)),
    "162",
    "165",
    "166",
    "167",
    *(f"17{i}" for i in range(9)),
    *(f"18{i}" for i in range(10)),
    *(f"19{i}" for i in (0, 1, 2, 3, 5, 6, 7, 8, 9)),
]

# Three-digit area codes; every other mainland code is 0 + 3 digits starting 3-9.
# Maestro issuer identification numbers (ISO/IEC 7812 registrations used by Maestro).
_MAESTRO_IIN = ["5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763", "0604", "6390"]
_AREA3 = ["010", *(f"02{i}" for i in range(10))]

_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
# Issuer reporting bodies that start real IMEI type allocation codes (GSMA).
_IMEI_RB = [
    "01",
    "10",
    "30",
    "33",
    "35",
    "44",
    "45",
    "49",
    "50",
    "51",
    "52",
    "53",
    "54",
    "86",
    "91",
    "98",
    "99",
]


# Numbers outside the GB/T 2260 divisions that resident ID numbers carry: 810000, 820000 and 830000 open
# the numbers of residence permits for residents of Hong Kong, Macao and Taiwan (港澳台居民居住证申领发放办法,
# 国办发〔2018〕81号, Art. 5); stdnum lists the first two but not 830000.
_PERMIT_REGIONS = ("810000", "820000", "830000")


@cache
def region_codes() -> frozenset[str]:
    """Six-digit administrative division codes, past and present, from python-stdnum's data file (and the
    residence-permit codes, see ``_PERMIT_REGIONS``)."""
    # Read straight from the data file (two-digit province lines, indented four-digit county lines): stdnum's
    # generic reader takes a fifth of a second, most of a scan's startup. The test suite holds this to it.
    text = _stdnum_data("cn", "loc.dat")
    codes: set[str] = set(_PERMIT_REGIONS)
    province = ""
    for m in re.finditer(r"(?m)^([0-9]{2}) |^[ \t]+([0-9]{4}) ", text):
        if m.group(1):
            province = m.group(1)
        elif province:
            codes.add(province + m.group(2))
    return frozenset(codes)


def _stdnum_data(*parts: str) -> str:
    """A data file of python-stdnum, found without importing the package (its __init__ imports pydoc and
    ssl, a tenth of a scan's startup); through importlib.resources when it is not a plain directory."""
    import importlib.util

    spec = importlib.util.find_spec("stdnum")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(folder, *parts)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                return fh.read()
    return resources.files("stdnum").joinpath(*parts).read_text("utf-8")


def region_codes_from_stdnum() -> frozenset[str]:
    """``region_codes`` through stdnum's own reader (the reference the fast one is tested against)."""
    from stdnum import numdb

    codes: set[str] = set(_PERMIT_REGIONS)
    for _, prov, _, _, counties in numdb.get("cn/loc").prefixes:
        for _, county, _, _, _ in counties:
            codes.add(prov + county)
    return frozenset(codes)


@cache
def province_codes() -> frozenset[str]:
    """The two-digit province codes that open the division codes above. A number whose county code is new
    (or was merged away before stdnum listed it: 620201) still opens with one of these."""
    return frozenset(c[:2] for c in region_codes())


@dataclass(frozen=True, slots=True)
class Candidate:
    """A classified token: what it is, how sure we are before context, and whether context is required."""

    entity: str
    confidence: float
    needs_context: bool


# --- vectorized helpers ---------------------------------------------------------------------------------
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


@cache
def _check_tables() -> dict[str, Any]:
    """numpy tables of the check-digit arithmetic (built on first use: numpy is imported lazily)."""
    uscc_value = np.full(256, -1, dtype=np.int64)
    for i, c in enumerate(_USCC_ALPHABET):
        uscc_value[ord(c)] = i
        uscc_value[ord(c.lower())] = i  # compact values keep their case; digits map to themselves
    return {
        "id_check": np.frombuffer(b"10X98765432", dtype=np.uint8),
        "id_w": np.array(_ID_WEIGHTS, dtype=np.int32),
        "luhn_double": np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int32),
        "uscc_w": np.array(_USCC_WEIGHTS, dtype=np.int64),
        "uscc_value": uscc_value,
    }


def _checksums(d: pl.Series, dlen: np.ndarray, alld: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Luhn, resident-ID (ISO 7064 MOD 11-2) and USCC (GB 32100 MOD 31) checks of the compact values ``d``,
    as numpy matrix arithmetic over the rows where each can apply (others are False)."""
    tables = _check_tables()
    n = d.len()
    luhn = np.zeros(n, dtype=bool)
    id_ok = np.zeros(n, dtype=bool)
    uscc_ok = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(alld & (dlen >= 12) & (dlen <= 19))
    if rows.size:
        sub = d.gather(rows).str.pad_start(19, "0")
        m = np.frombuffer(sub.str.join("").item().encode("ascii"), dtype=np.uint8).reshape(-1, 19) - 48
        # From the right, every second digit doubled; zero padding on the left changes nothing.
        luhn[rows] = (
            m[:, 18::-2].sum(axis=1, dtype=np.int32) + tables["luhn_double"][m[:, 17::-2]].sum(axis=1)
        ) % 10 == 0
    rows = np.flatnonzero(dlen == 18)
    if rows.size:
        sub = d.gather(rows)
        ascii_ok = (sub.str.len_chars() == 18).to_numpy()
        rows, sub = rows[ascii_ok], sub.filter(pl.Series(ascii_ok))
    if rows.size:
        m = np.frombuffer(sub.str.join("").item().encode("ascii"), dtype=np.uint8).reshape(-1, 18)
        # Resident ID: 17 digits weighted, the 18th a digit or 'X'.
        body = m[:, :17].astype(np.int32) - 48
        digits17 = ((body >= 0) & (body <= 9)).all(axis=1)
        expected = tables["id_check"][(body * tables["id_w"]).sum(axis=1) % 11]
        last = m[:, 17]
        id_ok[rows] = digits17 & ((expected == last) | ((expected == 88) & (last == 120)))  # 'X' or 'x'
        # USCC: 18 characters of the GB 32100 alphabet (2 + 6 digits + 10), MOD 31 check character.
        um = tables["uscc_value"][m]
        shape = (um >= 0).all(axis=1) & ((m[:, 2:8] >= 48) & (m[:, 2:8] <= 57)).all(axis=1)
        uscc_ok[rows] = shape & ((31 - (um[:, :17] * tables["uscc_w"]).sum(axis=1) % 31) % 31 == um[:, 17])
    return luhn, id_ok, uscc_ok


_SEPARATORS = [" ", "\t", "-", ".", "(", ")", "/", ":", "+", "·", "•", "・"]


def _valid_date(expr: pl.Expr, fmt: str) -> pl.Expr:
    parsed = expr.str.to_date(fmt, strict=False)
    return parsed.is_not_null() & (parsed.dt.year() >= 1900) & (parsed <= pl.lit(date.today()))


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"^{_OCTET}(?:\.{_OCTET}){{3}}$"
_PLATE = (
    rf"^[{_PROVINCES}][A-HJ-NP-Z][·•・ ]?(?:[A-HJ-NP-Z0-9]{{5}}|[DF][A-HJ-NP-Z0-9][0-9]{{4}}|[0-9]{{5}}[DF])"
    r"[挂学警港澳]?$"
)


def _rules() -> list[tuple[pl.Expr, pl.Expr, str, float, bool]]:
    """(gate, condition, entity, confidence, needs_context) in priority order; the first rule whose gate
    and condition hold names the value. Gates are cheap tests on precomputed columns; a condition is
    only evaluated on the rows its gate lets through and no earlier rule has claimed."""
    n, d = pl.col("n"), pl.col("d")
    length, alld, p2 = pl.col("dlen"), pl.col("alld"), pl.col("d").str.slice(0, 2)
    region6 = d.str.slice(0, 6).is_in(_region_series().implode())
    province2 = d.str.slice(0, 2).is_in(pl.Series(sorted(province_codes()), dtype=pl.String).implode())
    has = n.str.contains

    id18_shape = has(r"^[0-9]{6}[ \-]?[0-9]{8}[ \-]?[0-9]{3}[0-9Xx]$") & _valid_date(
        d.str.slice(6, 8), "%Y%m%d"
    )
    id18 = id18_shape & region6
    # A province known, its county code not: a division newer than stdnum's list, or one merged away.
    id18_province = id18_shape & ~region6 & province2
    id15 = has(r"^[0-9]{15}$") & region6 & _valid_date(pl.lit("19") + d.str.slice(6, 6), "%Y%m%d")
    card = (has(r"^[0-9]{12,19}$") | has(r"^[0-9]{4}(?:[ \-][0-9]{4}){2,3}(?:[ \-]?[0-9]{1,3})?$")) & (
        (d.str.starts_with("4") & length.is_in([13, 16, 19]))
        | (p2.is_in(["51", "52", "53", "54", "55", "22", "23", "24", "25", "26", "27"]) & (length == 16))
        | (p2.is_in(["34", "37"]) & (length == 15))
        | (p2.is_in(["62", "60", "65", "35", "94", "95", "68", "69", "81"]) & length.is_in([16, 17, 18, 19]))
        | (p2.is_in(["30", "36", "38"]) & (length == 14))
        # JCB's 15-digit ranges and Maestro's issuer numbers (12-19 digits).
        | (d.str.slice(0, 4).is_in(["2131", "1800"]) & (length == 15))
        | (d.str.slice(0, 4).is_in(_MAESTRO_IIN) & length.is_between(12, 19))
    )
    imei_shape = (has(r"^[0-9]{15}$") | has(r"^[0-9]{2}[ \-][0-9]{6}[ \-][0-9]{6}[ \-][0-9]$")) & ~p2.is_in(
        ["34", "37"]
    )
    mobile = has(r"^(?:(?:\+|00)?86[ \-]?)?1[0-9]{2}[ \-]?[0-9]{4}[ \-]?[0-9]{4}$") & d.str.slice(
        -11, 3
    ).is_in(_MOBILE_PREFIXES)
    # '+86 20 ...' drops the trunk 0 of the area code; put it back before testing the national form.
    land_core = (
        pl.when(has(r"^(?:\+|00)86[ \-]?[1-9]"))
        .then(pl.lit("0") + n.str.replace(r"^(?:\+|00)86[ \-]?", ""))
        .otherwise(n.str.replace(r"^(?:\+|00)?86[ \-]?", ""))
    )
    land_digits = land_core.str.replace_all(r"[^0-9]", "")
    area_ok = land_digits.str.slice(0, 3).is_in(_AREA3) | land_digits.str.contains(r"^0[3-9][0-9]{2}")
    landline = (
        land_core.str.contains(r"^\(?0[0-9]{2,3}\)?[ \-]?[0-9]{7,8}(?:[ \-][0-9]{1,5})?$")
        & area_ok
        & (
            land_digits.str.len_bytes().is_between(10, 12)
            | (land_core.str.contains(r"[ \-][0-9]{1,5}$") & land_digits.str.len_bytes().is_between(11, 17))
        )
    )
    gps_parts = n.str.extract_groups(r"^([+\-]?[0-9]{1,3}\.[0-9]{4,}) ?[,，] ?([+\-]?[0-9]{1,3}\.[0-9]{4,})$")
    a = gps_parts.struct.field("1").cast(pl.Float64, strict=False).abs()
    b = gps_parts.struct.field("2").cast(pl.Float64, strict=False).abs()
    date_parts = n.str.extract_groups(
        r"^([0-9]{4}) ?[\-/.年] ?([0-9]{1,2}) ?[\-/.月] ?([0-9]{1,2}) ?[日号]?$"
    )
    ymd = (
        date_parts.struct.field("1")
        + pl.lit("-")
        + date_parts.struct.field("2").str.zfill(2)
        + pl.lit("-")
        + date_parts.struct.field("3").str.zfill(2)
    )
    dob = _valid_date(ymd, "%Y-%m-%d") | (has(r"^(?:19|20)[0-9]{6}$") & _valid_date(n, "%Y%m%d"))
    mac = has(r"^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$|^[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}$")
    true = n.is_not_null()  # a column-length "always"
    return [
        (pl.col("at"), has(_EMAIL_FULL), "EMAIL_ADDRESS", 0.95, False),
        (pl.col("id_ck"), id18, "CN_RESIDENT_ID", 0.95, False),
        (pl.col("id_ck"), id18_province, "CN_RESIDENT_ID", 0.9, False),
        (alld & length.is_between(11, 15) & ~pl.col("plus_cc"), mobile, "PHONE_NUMBER", 0.9, False),
        (alld & pl.col("luhn") & length.is_between(12, 19), card, "BANK_CARD", 0.85, False),
        (alld & pl.col("luhn") & (length == 15), imei_shape & p2.is_in(_IMEI_RB), "IMEI", 0.6, False),
        (alld & pl.col("luhn") & (length == 15), imei_shape, "IMEI", 0.5, True),
        (alld & (length == 15), id15, "CN_RESIDENT_ID", 0.6, False),
        (
            alld
            & length.is_between(10, 19)
            & ~pl.col("plus_cc")
            & (d.str.starts_with("0") | d.str.starts_with("86")),
            landline,
            "PHONE_NUMBER",
            0.8,
            False,
        ),
        (
            alld & length.is_between(11, 12) & d.str.starts_with("0"),
            has(r"^0[0-9]{10,11}$") & area_ok,
            "PHONE_NUMBER",
            0.5,
            True,
        ),
        # Other national formats (grouped digits: "0680 298 70 63", "201-948-1927", "930.167.3943") are
        # phone numbers only when a phone word stands before them.
        (
            alld & length.is_between(7, 13) & ~pl.col("plus_cc"),
            has(r"^[0-9]{2,5}(?:[ \-.][0-9]{2,5}){1,4}$")
            & ~has(r"^(?:19|20)[0-9]{2}[\-./][0-9]{1,2}[\-./][0-9]{1,2}$"),  # a date, not a number
            "PHONE_NUMBER",
            0.5,
            True,
        ),
        (pl.col("uscc_ck") & ~alld, true, "CN_USCC", 0.7, False),
        # International numbers written '+CC ...': a country calling code and a length possible there.
        (
            pl.col("plus_cc"),
            has(r"^\+[1-9][0-9]{0,2}[ \-]?[0-9][0-9 \-]{5,16}[0-9]$") & _intl_possible(d, length),
            "PHONE_NUMBER",
            0.75,
            False,
        ),
        (alld & length.is_between(4, 12), has(_IPV4), "IP_ADDRESS", 0.75, False),
        (length == 12, mac & ~has(r"^[0-9\-]+$"), "MAC_ADDRESS", 0.85, False),
        (length == 12, mac, "MAC_ADDRESS", 0.5, True),
        # IPv6: eight groups, or fewer around one '::' (then checked with the ipaddress module).
        (
            pl.col("colon2"),
            has(r"^[0-9A-Fa-f:]+$")
            & (n.str.contains("::", literal=True) | (n.str.count_matches(":", literal=True) == 7)),
            "IP_ADDRESS",
            0.8,
            False,
        ),
        (~alld & (length == 9), has(r"^(?:[EG][0-9]{8}|E[A-HJ-NP-Z][0-9]{7})$"), "CN_PASSPORT", 0.6, False),
        (
            ~alld & length.is_in([9, 11]),
            has(r"^(?:[CW][0-9]{8}|C[A-HJ-NP-Z][0-9]{7}|[HM][0-9]{8}(?:[0-9]{2})?)$"),
            "CN_HK_MACAO_PERMIT",
            0.6,
            False,
        ),
        (~alld & (length == 9), has(r"^L[0-9]{8}$"), "CN_TW_PERMIT", 0.6, False),
        (alld & (length == 8), has(r"^[0-9]{8}$"), "CN_TW_PERMIT", 0.6, True),
        (~alld & length.is_between(8, 13), has(_PLATE), "CN_LICENCE_PLATE", 0.85, False),
        (pl.col("comma"), ((a <= 90) & (b <= 180)) | ((a <= 180) & (b <= 90)), "GPS_COORDINATE", 0.8, False),
        (
            (d.str.starts_with("19") | d.str.starts_with("20"))
            & ((alld & length.is_between(6, 8)) | n.str.contains("年", literal=True)),
            dob,
            "DATE_OF_BIRTH",
            0.85,
            True,
        ),
        # An all-digit USCC is rare and reads like many other 18-digit numbers: it needs its context.
        (pl.col("uscc_ck") & alld, true, "CN_USCC", 0.7, True),
        # A bare run of 7-13 digits after a phone word ("Fax: 9498777106"); last, so that the readings
        # above (dates, permits) keep their two context slots.
        (alld & length.is_between(7, 13) & ~pl.col("plus_cc"), has(r"^[0-9]+$"), "PHONE_NUMBER", 0.5, True),
    ]


@cache
def _intl_keys() -> pl.Series:
    return pl.Series(_intl_key_list(), dtype=pl.String)


@cache
def _intl_key_list() -> list[str]:
    """'CC:length' for every country calling code and each possible national number length: the packaged
    ``data/phone_lengths.txt``, derived from phonenumbers (``intl_keys_from_phonenumbers``)."""
    text = resources.files("piguard.detect").joinpath("data", "phone_lengths.txt").read_text("utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def intl_keys_from_phonenumbers() -> list[str]:
    """'CC:length' for every country calling code and each possible national number length, from the
    metadata phonenumbers ships (the same data its ``is_possible_number`` uses)."""
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

    keys: set[str] = set()
    for cc, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            md = (
                PhoneMetadata.metadata_for_nongeo_region(cc)
                if region == "001"
                else PhoneMetadata.metadata_for_region(region)
            )
            for n in (md.general_desc.possible_length or ()) if md else ():
                keys.add(f"{cc}:{n}")
    return sorted(keys)


def _intl_possible(d: pl.Expr, length: pl.Expr) -> pl.Expr:
    # Calling codes are prefix-free, so at most one of the 1-, 2- or 3-digit readings is a real code.
    keys = _intl_keys().implode()
    return pl.any_horizontal(
        *[(d.str.slice(0, k) + pl.lit(":") + (length - k).cast(pl.String)).is_in(keys) for k in (1, 2, 3)]
    )


@cache
def _compiled_rules() -> list[tuple[pl.Expr, pl.Expr, str, float, bool]]:
    return _rules()


def _classify_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Add ``d`` (compact form), ``entity``, ``confidence`` and ``needs_context`` to a frame with a string
    column ``n`` (the normalized candidate). Rows that are nothing get a null entity.

    Cheap features are computed once for all rows (compact form, its length, digits-only, checksums as
    numpy matrix arithmetic); each rule's expensive condition then runs only on rows its gate admits."""
    n = pl.col("n")
    full = df
    # Only the columns the rules read travel through the per-rule gathers (never the line text).
    df = df.select(
        "n",
        d=n.str.replace_many(_SEPARATORS, [""] * len(_SEPARATORS)),
    )
    df = df.with_columns(
        dlen=pl.col("d").str.len_bytes(),
        alld=pl.col("d").str.contains(r"^[0-9]+$"),
        at=n.str.contains("@", literal=True),
        plus_cc=n.str.starts_with("+") & ~n.str.starts_with("+86"),
        colon2=n.str.count_matches(":", literal=True) >= 2,
        comma=n.str.contains(r"[,，]"),
    )
    dlen = df["dlen"].to_numpy()
    alld = df["alld"].fill_null(False).to_numpy()
    luhn, id_ck, uscc_ck = _checksums(df["d"], dlen, alld)
    df = df.with_columns(luhn=pl.Series(luhn), id_ck=pl.Series(id_ck), uscc_ck=pl.Series(uscc_ck))
    rules = _compiled_rules()
    # A rule that needs context does not settle a value: a later rule may still claim it (a 15-digit
    # legacy ID is also Luhn-valid one time in ten, i.e. an IMEI shape). Up to two context-needing readings
    # are kept beside the settled one and the context words choose (see _judge).
    rule_of = np.full(df.height, -1, dtype=np.int16)
    ctx1 = np.full(df.height, -1, dtype=np.int16)
    ctx2 = np.full(df.height, -1, dtype=np.int16)
    gates = df.select(*[g.fill_null(False).alias(f"g{i}") for i, (g, *_rest) in enumerate(rules)])
    for i, (_, cond, _e, _c, needs) in enumerate(rules):
        open_rows = rule_of < 0
        if needs:
            open_rows &= ctx2 < 0
        rows = np.flatnonzero(gates[f"g{i}"].to_numpy() & open_rows)
        if rows.size == 0:
            continue
        ok = df[rows].select(cond.fill_null(False)).to_series().to_numpy()
        hit = rows[ok]
        if not needs:
            rule_of[hit] = i
        else:
            first = ctx1[hit] < 0
            ctx1[hit[first]] = i
            ctx2[hit[~first]] = i
    # The value's own reading: the settled rule, else the first context-needing one.
    main = np.where(rule_of >= 0, rule_of, ctx1)
    alt = np.where(rule_of >= 0, ctx1, ctx2)
    none = len(rules)  # the index of the "nothing" entry below
    main = np.where(main < 0, none, main)
    alt = np.where(alt < 0, none, alt)
    ent_names = pl.Series([r[2] for r in rules] + [None], dtype=pl.String)
    confs = np.array([r[3] for r in rules] + [0.0])
    needs_a = np.array([r[4] for r in rules] + [False])
    return full.with_columns(
        d=df["d"],
        entity=ent_names.gather(main),
        confidence=pl.Series(confs[main]),
        needs_context=pl.Series(needs_a[main]),
        alt_entity=ent_names.gather(alt),
        alt_confidence=pl.Series(confs[alt]),
    )


@cache
def _region_series() -> pl.Series:
    return pl.Series(sorted(region_codes()), dtype=pl.String)


def normalize_expr(col: pl.Expr) -> pl.Expr:
    """Full-width digits and punctuation to ASCII; one character for one, so offsets stay valid."""
    return col.str.replace_many(_FULLWIDTH_FROM, _FULLWIDTH_TO)


def classify_values(values: pl.Series) -> pl.DataFrame:
    """Classify whole values (e.g. table cells): returns ``entity`` (null when nothing), ``confidence``,
    ``needs_context``. Each value is judged as one token; use the text scanner for free text."""
    engine = _engine()
    if engine is None:
        return reference_classify_values(values)
    arr = values.cast(pl.String).fill_null("").to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    _validity, offsets, data = arr.buffers()
    start = arr.offset * 8  # a sliced array starts further into its offsets buffer
    ent, conf, needs = engine.classify_arrow(
        memoryview(offsets)[start:] if offsets is not None else b"\0" * 8,
        memoryview(data) if data is not None else b"",
        len(arr),
        1,
    )
    codes = np.frombuffer(ent, dtype=np.int8)
    return pl.DataFrame(
        {
            "entity": _engine_names().gather(np.where(codes < 0, len(ENGINE_ENTITIES), codes)),
            "confidence": np.frombuffer(conf, dtype=np.float64),
            "needs_context": np.frombuffer(needs, dtype=np.uint8).astype(bool),
        }
    )


def reference_classify_values(values: pl.Series) -> pl.DataFrame:
    """``classify_values`` by the polars reference engine (readable rules; the compiled one must agree)."""
    frame = pl.DataFrame({"v": values.cast(pl.String)}).select(
        n=normalize_expr(pl.col("v")).str.strip_chars()
    )
    out = _classify_frame(frame.with_columns(n=pl.col("n").fill_null("")))
    out = _verify_scalar(out)
    return out.select("entity", "confidence", "needs_context")


def _ipv6_ok(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _verify_scalar(df: pl.DataFrame) -> pl.DataFrame:
    """IPv6 syntax (rare, and not worth vectorizing) is verified per value with ``ipaddress``; only rows
    that reached it are touched."""
    mask = ((df["entity"] == "IP_ADDRESS") & df["n"].str.contains(":", literal=True)).fill_null(False)
    if not mask.any():
        return df
    rows = mask.arg_true()
    bad = [i for i, v in zip(rows.to_list(), df["n"].gather(rows).to_list(), strict=True) if not _ipv6_ok(v)]
    if not bad:
        return df
    drop = np.zeros(df.height, dtype=bool)
    drop[bad] = True
    return df.with_columns(entity=pl.when(pl.Series(drop)).then(None).otherwise(pl.col("entity")))


# --- the text scanner -----------------------------------------------------------------------------------
@dataclass(slots=True)
class RawHit:
    """A detector's answer before thresholding and masking: entity, span, confidence, who found it."""

    entity: str
    start: int
    end: int
    confidence: float
    detector: str = "structured"


def _hit_schema() -> dict[str, Any]:
    return {"entity": pl.String, "start": pl.Int64, "end": pl.Int64, "confidence": pl.Float64}


_MIN_CANDIDATE_CHARS = 6  # the shortest thing we detect: an e-mail like a@b.cn


def _locate(text: str) -> pl.DataFrame:
    """Candidate tokens with their line (``l``, ``li``), char offset in the line (``cil``) and in the text
    (``start``). Tokens never span a newline, so the candidate pass runs per line, and each token is found
    in its line with a vectorized literal search. A search can only land early when the token text also
    occurs before its true place; then it lands before the previous token's end (the regex is leftmost-first
    and has no look-around), so such lines are detected and located again exactly in Python."""
    lines = pl.Series("l", [text]).str.split("\n").explode()
    frame = pl.DataFrame({"l": lines}).with_row_index("li")
    frame = frame.with_columns(
        lcs=(pl.col("l").str.len_chars() + 1).cum_sum() - (pl.col("l").str.len_chars() + 1),
        lbs=(pl.col("l").str.len_bytes() + 1).cum_sum() - (pl.col("l").str.len_bytes() + 1),
        # the end of the line above, context for a value that stands alone on its line
        prev=pl.col("l").str.slice(-_CONTEXT_REACH).shift(1),
    )
    long = frame["l"].str.len_bytes() > _LONG_LINE_BYTES
    if not long.any():
        return _locate_lines(frame, text)
    parts = [_locate_lines(frame.filter(~long), text), _locate_long(frame.filter(long))]
    found = [p for p in parts if p.height]
    return pl.concat(found, how="diagonal_relaxed").sort("start") if found else parts[1]


# Above this, a line's tokens are located by a running search in Python: the vectorized per-token search
# starts at the line's beginning every time (quadratic in a huge single-line file).
_LONG_LINE_BYTES = 64 * 1024
_CONTEXT_REACH = 64  # characters of a long line kept before a token: more than any context window


def _locate_long(frame: pl.DataFrame) -> pl.DataFrame:
    """Tokens of very long lines, each with a short excerpt of its line as ``l`` (enough for the
    context window and the character after the token)."""
    li, ls, lcs, ts, starts, cils, prevs = [], [], [], [], [], [], []
    found = frame.select("li", "lcs", "l", "prev", toks=pl.col("l").str.extract_all(CANDIDATE_PATTERN))
    for line_no, line_start, line, prev, toks in found.iter_rows():
        # Tokens come in order and never overlap, and a token's text cannot occur in the gap before it
        # (the regex would have matched there first), so a running search from the previous end is exact.
        e = 0
        for tok in toks:
            s = line.find(tok, e)
            e = s + len(tok)
            ws = max(0, s - _CONTEXT_REACH)
            li.append(line_no)
            ls.append(line[ws : e + AFTER_REACH])  # the character after a plate, the words after a value
            lcs.append(line_start + ws)
            ts.append(tok)
            starts.append(line_start + s)
            cils.append(s - ws)
            prevs.append(prev if ws == 0 else None)  # an excerpt from mid-line does not start the line
    return pl.DataFrame(
        {"li": li, "l": ls, "lcs": lcs, "t": ts, "start": starts, "cil": cils, "prev": prevs},
        schema={
            "li": pl.UInt32,
            "l": pl.String,
            "lcs": pl.Int64,
            "t": pl.String,
            "start": pl.Int64,
            "cil": pl.Int64,
            "prev": pl.String,
        },
    )


def _locate_lines(frame: pl.DataFrame, text: str) -> pl.DataFrame:
    frame = frame.with_columns(t=pl.col("l").str.extract_all(CANDIDATE_PATTERN))
    toks = frame.filter(pl.col("t").list.len() > 0).explode("t")
    if toks.height == 0:
        return toks.with_columns(start=pl.lit(0, dtype=pl.Int64), cil=pl.lit(0, dtype=pl.Int64)).drop("lbs")
    toks = toks.with_columns(bpos=pl.col("l").str.find(pl.col("t"), literal=True).cast(pl.Int64))
    in_chars = _find_counts_chars()
    tok_len = pl.col("t").str.len_chars() if in_chars else pl.col("t").str.len_bytes()
    prev_end = (pl.col("bpos") + tok_len).shift(1)
    toks = toks.with_columns(
        bad=pl.col("bpos").is_null() | ((pl.col("li") == pl.col("li").shift(1)) & (pl.col("bpos") < prev_end))
    )
    if in_chars:
        toks = toks.with_columns(start=pl.col("lcs") + pl.col("bpos"))
    else:
        # Byte offsets -> char offsets: a character starts at every byte that is not a UTF-8 continuation
        # byte (0b10xxxxxx), so char offset = byte offset - continuation bytes before it.
        raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        cont = np.flatnonzero((raw & 0xC0) == 0x80)
        gb = (toks["lbs"] + toks["bpos"]).to_numpy()
        toks = toks.with_columns(start=pl.Series(gb - np.searchsorted(cont, gb), dtype=pl.Int64))
    if toks["bad"].any():
        toks = _relocate(toks)
    return toks.with_columns(cil=pl.col("start") - pl.col("lcs")).drop("bpos", "bad", "lbs")


@cache
def _find_counts_chars() -> bool:
    """Whether polars' ``str.find`` gives character offsets (polars 2.2) or byte offsets (earlier): the
    release notes do not promise either, so ask once."""
    return pl.Series(["é."]).str.find(".", literal=True)[0] == 1


def _relocate(toks: pl.DataFrame) -> pl.DataFrame:
    """Exact offsets for the (rare) lines where a token's text also occurs before its place."""
    bad_lines = toks.filter(pl.col("bad"))["li"].unique()
    redo = toks.with_row_index("_r").filter(pl.col("li").is_in(bad_lines.implode()))
    rows, starts = [], []
    pos, cur = 0, -1
    for r, line_no, tok, line, lcs in redo.select("_r", "li", "t", "l", "lcs").iter_rows():
        if line_no != cur:
            cur, pos = line_no, 0
        s = line.find(tok, pos)
        rows.append(r)
        starts.append(lcs + s)
        pos = s + len(tok)
    fixed = pl.DataFrame({"_r": rows, "_s": starts}, schema={"_r": pl.UInt32, "_s": pl.Int64})
    return (
        toks.with_row_index("_r")
        .join(fixed, on="_r", how="left")
        .with_columns(start=pl.coalesce("_s", "start"))
        .sort("_r")
        .drop("_r", "_s")
    )


# Tokens worth a second chance when whole they are nothing: spaces, letters glued to a long digit run, or an
# extension written after the number (3560x4587).
_SUB_SPLIT = r"[A-Za-z][0-9]{6}|[0-9]{6}[A-Za-z]|[0-9][xX][0-9]"  # the last: an extension, 3560x4587
_DIGIT_RUN = r"[0-9]{17}[Xx]|\+?[0-9](?:[0-9]|[\-.:/ ][0-9])*"  # an ID's check 'X' stays with it
_DIGIT_RUN_RX = re.compile(_DIGIT_RUN)


def _subtokens(miss: pl.DataFrame) -> pl.DataFrame:
    """Second chance for whole tokens that were nothing: numbers joined by single spaces
    ("13812345678 12345", "2024-03-05 12:34:56") are tried one by one, and within a piece that has
    letters glued to it ("ID1101...", "13810585448QQ:776979804", "+86-18601200718E") the digit runs
    (with their single separators) are tried alone."""
    n = pl.col("n")
    parts = miss.with_columns(parts=n.str.split(" "))
    parts = parts.with_columns(
        off=pl.col("parts").list.eval(
            (pl.element().str.len_chars() + 1).cum_sum() - pl.element().str.len_chars() - 1
        )
    )
    parts = parts.explode("parts", "off").with_columns(n=pl.col("parts")).drop("parts")
    # Pieces are ASCII after normalization (generic tokens carry no CJK), so byte offsets are char offsets.
    lettered = n.str.contains("[A-Za-z]") & (n.str.len_bytes() == n.str.len_chars())
    # Hex strings (hashes, UUID parts, keyed pseudonyms) are not digits with letters glued on: no second
    # chance, or every pseudonymized column would "contain" phone numbers.
    parts = parts.filter(~(n.str.contains(r"^(?:[0-9a-f]{12,}|[0-9A-F]{12,})$") & n.str.contains("[A-Fa-f]")))
    plain = parts.filter(~lettered)
    # Lettered pieces are few; Python's re locates each run exactly (a run's text may occur twice).
    runs = parts.filter(lettered)
    found = [[(m.group(), m.start()) for m in _DIGIT_RUN_RX.finditer(v)] for v in runs["n"].to_list()]
    runs = (
        runs.with_columns(
            run=pl.Series([[r for r, _ in f] for f in found], dtype=pl.List(pl.String)),
            roff=pl.Series([[o for _, o in f] for f in found], dtype=pl.List(pl.Int64)),
        )
        .explode("run", "roff")
        .drop_nulls("run")
    )
    runs = runs.with_columns(off=pl.col("off") + pl.col("roff"), n=pl.col("run")).drop("run", "roff")
    out = pl.concat([plain, runs], how="vertical_relaxed").filter(
        pl.col("n").str.len_chars() >= _MIN_CANDIDATE_CHARS
    )
    return out.with_columns(start=pl.col("start") + pl.col("off"), cil=pl.col("cil") + pl.col("off")).drop(
        "off"
    )


def _judge(cands: pl.DataFrame, rules: ContextRules) -> pl.DataFrame:
    """Classify, verify and weigh context for candidates (whole tokens, ``_piece`` false, and their
    second-chance pieces, ``_piece`` true, sharing the token id ``_tok``); return the hits.

    A piece only speaks when its whole token was nothing: both are judged in one pass (one set of
    column operations instead of two), and pieces of tokens that were something are dropped."""
    out = _verify_scalar(_classify_frame(cands))
    named = pl.col("entity").is_not_null()
    claimed = out.filter(named & ~pl.col("_piece"))["_tok"]
    out = out.filter(named & ~(pl.col("_piece") & pl.col("_tok").is_in(claimed.implode())))
    # Context-needing second readings become rows of their own; overlap resolution keeps the likelier.
    alt = out.filter(pl.col("alt_entity").is_not_null()).with_columns(
        entity=pl.col("alt_entity"), confidence=pl.col("alt_confidence"), needs_context=pl.lit(True)
    )
    hit = pl.concat([out, alt]).drop("alt_entity", "alt_confidence")
    hit = hit.with_columns(
        end=pl.col("start") + pl.col("n").str.len_chars(),
        confidence=rules.adjust_expr_frame(hit),
    ).filter(pl.col("confidence").is_not_null())
    # A plate glued to more letters or digits is part of a longer code, not a plate.
    after = pl.col("l").str.slice(pl.col("cil") + pl.col("n").str.len_chars(), 1)
    hit = hit.filter(~((pl.col("entity") == "CN_LICENCE_PLATE") & after.str.contains(r"^[A-Za-z0-9]$")))
    return hit.select(list(_hit_schema()))


def find_structured_frame(text: str, rules: ContextRules | None = None) -> pl.DataFrame:
    """All structured entities in ``text`` as a frame (entity, start, end, confidence); offsets are character
    offsets into ``text`` (end exclusive), confidence is context-adjusted but not thresholded."""
    engine = _engine()
    if engine is None or (rules is not None and rules is not context_rules()):
        return reference_find_structured_frame(text, rules)
    ent, start, end, conf = engine.scan(text)
    codes = np.frombuffer(ent, dtype=np.int8)
    return pl.DataFrame(
        {
            "entity": _engine_names().gather(codes),
            "start": np.frombuffer(start, dtype=np.int64),
            "end": np.frombuffer(end, dtype=np.int64),
            "confidence": np.frombuffer(conf, dtype=np.float64),
        },
        schema=_hit_schema(),
    )


def reference_find_structured_frame(text: str, rules: ContextRules | None = None) -> pl.DataFrame:
    """``find_structured_frame`` by the polars reference engine: the rules written as column expressions,
    readable and extensible; the compiled engine (``_cscan.c``) is tested to give the same hits."""
    empty = pl.DataFrame(schema=_hit_schema())
    if not text:
        return empty
    rules = rules or context_rules()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (e.g. from surrogateescape decoding) cannot enter polars; '?' keeps the length,
        # so offsets still index the caller's text.
        text = text.encode("utf-8", "replace").decode("utf-8")
    toks = _locate(text)
    if toks.height == 0:
        return empty
    cands = (
        toks.with_columns(n=normalize_expr(pl.col("t")))
        .drop("t")
        .filter(pl.col("n").str.len_chars() >= _MIN_CANDIDATE_CHARS)
        .with_row_index("_tok")
        .with_columns(_piece=pl.lit(False))
    )
    retry = cands.filter(pl.col("n").str.contains(" ", literal=True) | pl.col("n").str.contains(_SUB_SPLIT))
    if retry.height:
        cands = pl.concat(
            [cands, _subtokens(retry).with_columns(_piece=pl.lit(True))], how="vertical_relaxed"
        )
    return _judge(cands, rules).sort("start")


def find_structured(text: str, rules: ContextRules | None = None) -> list[RawHit]:
    """All structured entities in ``text`` with context-adjusted confidence (not yet thresholded)."""
    engine = _engine()
    if engine is not None and (rules is None or rules is context_rules()):
        ent, start, end, conf = engine.scan(text)
        names = ENGINE_ENTITIES
        return [
            RawHit(names[e], s, t, c)
            for e, s, t, c in zip(
                ent,
                np.frombuffer(start, dtype=np.int64).tolist(),
                np.frombuffer(end, dtype=np.int64).tolist(),
                np.frombuffer(conf, dtype=np.float64).tolist(),
                strict=True,
            )
        ]
    frame = find_structured_frame(text, rules)
    if frame.height == 0:
        return []
    return [
        RawHit(e, s, t, c)
        for e, s, t, c in zip(
            frame["entity"].to_list(),
            frame["start"].to_list(),
            frame["end"].to_list(),
            frame["confidence"].to_list(),
            strict=True,
        )
    ]


# --- the compiled engine --------------------------------------------------------------------------------
# Entity ids in the order of the enum in _cscan.c.
ENGINE_ENTITIES = (
    "EMAIL_ADDRESS", "CN_RESIDENT_ID", "PHONE_NUMBER", "BANK_CARD", "IMEI", "CN_USCC", "IP_ADDRESS",
    "MAC_ADDRESS", "CN_PASSPORT", "CN_HK_MACAO_PERMIT", "CN_TW_PERMIT", "CN_LICENCE_PLATE", "GPS_COORDINATE",
    "DATE_OF_BIRTH",
)  # fmt: skip


@cache
def _engine_names() -> pl.Series:
    return pl.Series([*ENGINE_ENTITIES, None], dtype=pl.String)


def _flags(size: int, keys: Iterable[int]) -> bytes:
    out = bytearray(size)
    for k in keys:
        out[k] = 1
    return bytes(out)


@cache
def _engine() -> ModuleType | None:
    """The compiled engine, configured with this module's tables (region codes, number plans, calling-code
    lengths) and the context words; None when it was not built (then the polars reference engine runs).
    ``PIGUARD_ENGINE=reference`` forces the reference engine."""
    if os.environ.get("PIGUARD_ENGINE", "") == "reference":
        return None
    try:
        from piguard.detect import _cscan  # type: ignore[attr-defined]
    except ImportError:  # a source checkout that was not built: correct, only slower
        return None
    rules = context_rules()
    intl = []
    for key in _intl_key_list():
        cc, length = key.split(":")
        if int(length) < 32:
            intl.append(int(cc) * 32 + int(length))
    today = date.today()
    _cscan.configure(
        _flags(1_000_000, (int(c) for c in region_codes())),
        _flags(1000, (int(p) for p in _MOBILE_PREFIXES)),
        _flags(100, (int(p) for p in _IMEI_RB)),
        _flags(32_000, intl),
        today.year * 10000 + today.month * 100 + today.day,
        rules.window,
        rules.boost,
        rules.penalty,
        list(rules.negative_words),
        [list(rules.positive_words.get(e, ())) for e in ENGINE_ENTITIES],
        [list(rules.after_words.get(e, ())) for e in ENGINE_ENTITIES],
    )
    return _cscan

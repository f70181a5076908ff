"""Column operators: FF1 against NIST's sample vectors, keyed pseudonyms, masking, date shifting, coding."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from piguard.deid import DeidError
from piguard.deid import operators as ops
from piguard.deid.ff1 import FF1

K128 = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
K192 = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F")
K256 = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F7F036D6F04FC6A94")
A36 = "0123456789abcdefghijklmnopqrstuvwxyz"
T1 = bytes.fromhex("39383736353433323130")
T2 = bytes.fromhex("3737373770717273373737")

# NIST CSRC "Examples with intermediate values", FF1 samples 1-9 (SP 800-38G).
NIST = [
    (K128, "0123456789", b"", "0123456789", "2433477484"),
    (K128, "0123456789", T1, "0123456789", "6124200773"),
    (K128, A36, T2, "0123456789abcdefghi", "a9tv40mll9kdu509eum"),
    (K192, "0123456789", b"", "0123456789", "2830668132"),
    (K192, "0123456789", T1, "0123456789", "2496655549"),
    (K192, A36, T2, "0123456789abcdefghi", "xbj3kv35jrawxv32ysr"),
    (K256, "0123456789", b"", "0123456789", "6657667009"),
    (K256, "0123456789", T1, "0123456789", "1001623463"),
    (K256, A36, T2, "0123456789abcdefghi", "xs8a0azh2avyalyzuwd"),
]


@pytest.mark.parametrize("key,alphabet,tweak,pt,ct", NIST)
def test_ff1_nist_vectors(key: bytes, alphabet: str, tweak: bytes, pt: str, ct: str) -> None:
    f = FF1(key, alphabet)
    assert f.encrypt(pt, tweak) == ct
    assert f.decrypt(ct, tweak) == pt


def _key(tmp_path: Path, name: str, content: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content)
    return p


def test_ff1_column_keeps_format_and_round_trips(tmp_path: Path) -> None:
    key = ops.read_key(_key(tmp_path, "k", K256.hex().encode() + b"\n"), "id", sizes=(16, 24, 32))
    s = pl.Series("id", ["11010519491231002X", "13800138000", None, "138-0013-8000"])
    enc = ops.ff1_encrypt(s, key, alphabet="digits", tweak="id", column="id")
    assert enc[2] is None
    assert enc[0][-1] == "X" and enc[0][:-1].isdigit() and len(enc[0]) == 18 and enc[0] != s[0]
    assert enc[3][3] == "-" and enc[3][8] == "-"
    back = ops.ff1_encrypt(enc, key, alphabet="digits", tweak="id", column="id", decrypt=True)
    assert back.to_list() == s.to_list()
    # Different tweak (column) gives different ciphertext under the same key.
    assert ops.ff1_encrypt(s, key, tweak="phone", column="id")[1] != enc[1]
    with pytest.raises(DeidError, match=r"column 'id': value 1\*+ has fewer than 6"):
        ops.ff1_encrypt(pl.Series(["12345"]), key, column="id")


def test_pseudonym_deterministic_per_key(tmp_path: Path) -> None:
    k1 = ops.read_key(_key(tmp_path, "a", b"k" * 32), "phone")
    k2 = ops.read_key(_key(tmp_path, "b", b"z" * 32), "phone")
    s = pl.Series(["13800138000", "13800138000", "13900139000"])
    p1 = ops.pseudonym(s, k1)
    assert p1[0] == p1[1] != p1[2] and len(p1[0]) == 16
    assert ops.pseudonym(s, k1).to_list() == p1.to_list()
    assert ops.pseudonym(s, k2)[0] != p1[0]
    import hashlib
    import hmac

    assert p1[0] == hmac.new(b"k" * 32, b"13800138000", hashlib.sha256).hexdigest()[:16]


def test_key_file_errors_never_show_the_key(tmp_path: Path) -> None:
    with pytest.raises(DeidError, match=r"column 'phone': key file .* cannot be read"):
        ops.read_key(tmp_path / "missing.key", "phone")
    short = _key(tmp_path, "short", b"s3cr3t-value")
    with pytest.raises(DeidError) as err:
        ops.read_key(short, "phone")
    assert "too short (12 bytes, need 32)" in str(err.value) and "s3cr3t" not in str(err.value)
    with pytest.raises(DeidError, match="FF1 needs 16, 24 or 32"):
        ops.read_key(_key(tmp_path, "odd", b"x" * 20), "id", sizes=(16, 24, 32))


def test_mask_chinese_names_and_first_last() -> None:
    s = pl.Series(["张三", "欧阳娜娜", "李小龙", None])
    assert ops.mask(s, keep_surname=True).to_list() == ["张*", "欧阳**", "李**", None]
    assert ops.mask(s).to_list() == ["**", "****", "***", None]
    phones = pl.Series(["13812345678"])
    assert ops.mask(phones, keep_first=3, keep_last=4).to_list() == ["138****5678"]
    assert ops.mask(pl.Series(["ab"]), keep_first=3).to_list() == ["**"]


def test_date_shift_same_offset_per_subject(tmp_path: Path) -> None:
    key = b"k" * 32
    dates = pl.Series(["2024-01-10", "2024-01-20", "2024-03-01", "2024/1/10"])
    subj = pl.Series(["p1", "p1", "p2", "p2"])
    out = ops.date_shift(dates, subj, key, max_days=30, column="visit").to_list()
    d = [date.fromisoformat(x) for x in out]
    assert (d[1] - d[0]).days == 10  # interval within a subject kept
    off1 = (d[0] - date(2024, 1, 10)).days
    off2 = (d[3] - date(2024, 1, 10)).days
    assert 0 < abs(off1) <= 30 and 0 < abs(off2) <= 30
    assert (d[2] - date(2024, 3, 1)).days == off2
    assert ops.date_shift(dates, subj, key, column="visit").to_list() == out
    with pytest.raises(DeidError, match=r"column 'visit': value n\*+ is not a date"):
        ops.date_shift(pl.Series(["not a date"]), pl.Series(["p"]), key, column="visit")


def test_top_bottom_coding_and_mixed_types() -> None:
    s = pl.Series(["17", "45", "95", None])
    assert ops.top_bottom(s, top=90, bottom=18, column="age").to_list() == ["<=18", "45", ">=90", None]
    with pytest.raises(DeidError, match=r"column 'age': value u\*+ is not a number .*mixed types"):
        ops.top_bottom(pl.Series(["17", "unknown"]), top=90, column="age")

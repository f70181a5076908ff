"""Per-column operators: drop, mask, keyed pseudonyms, FF1 encryption, date shifting, hierarchy
generalization at a fixed level, top/bottom coding.

Operators work on the distinct values of a column and map them back (polars ``replace_strict``), so the
cost follows the number of distinct values. Keys are read from key files; a key never appears in logs,
errors or reports.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from piguard.deid.errors import DeidError, mask_cell
from piguard.deid.ff1 import FF1
from piguard.deid.hierarchy import Hierarchy, parse_date

MIN_HMAC_KEY = 32  # bytes: HMAC-SHA-256 keys shorter than the hash output weaken it (RFC 2104 section 3)

# Two-character surnames (复姓) most often met; a name starting with one keeps both characters.
_COMPOUND = (
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 令狐 长孙 宇文 司徒 夏侯 轩辕 端木 独孤 南宫 西门 百里 "
    "呼延 申屠 太史 闻人 万俟 澹台 公冶 宗政 濮阳 淳于 单于 太叔 仲孙 钟离 赫连 拓跋 第五 东郭 北堂 左丘"
)
COMPOUND_SURNAMES = frozenset(_COMPOUND.split())

ALPHABETS = {
    "digits": "0123456789",
    "alnum": "0123456789abcdefghijklmnopqrstuvwxyz",
    "ALNUM": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "base62": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
}


def read_key(
    path: str | Path, column: str, *, sizes: tuple[int, ...] | None = None, min_len: int = MIN_HMAC_KEY
) -> bytes:
    """Key bytes from a key file: hex text (e.g. ``openssl rand -hex 32``) or raw bytes."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DeidError(f"column '{column}': key file {p} cannot be read: {exc.strerror or exc}") from None
    text = raw.strip()
    key = raw
    try:
        s = text.decode("ascii")
        if s and len(s) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in s):
            key = bytes.fromhex(s)
    except UnicodeDecodeError:
        pass
    if sizes is not None and len(key) not in sizes:
        raise DeidError(f"column '{column}': key in {p} is {len(key)} bytes; FF1 needs 16, 24 or 32")
    if sizes is None and len(key) < min_len:
        raise DeidError(f"column '{column}': key in {p} is too short ({len(key)} bytes, need {min_len})")
    return key


def _map_distinct(s: pl.Series, fn) -> pl.Series:  # type: ignore[no-untyped-def]
    """Apply ``fn`` to each distinct non-null value and map back; nulls stay null."""
    s = s.cast(pl.String)
    uniq = s.drop_nulls().unique()
    if len(uniq) == 0:
        return s
    new = pl.Series([fn(v) for v in uniq.to_list()], dtype=pl.String)
    return s.replace_strict(uniq, new, default=None, return_dtype=pl.String)


def mask(
    s: pl.Series, *, keep_first: int = 0, keep_last: int = 0, char: str = "*", keep_surname: bool = False
) -> pl.Series:
    """Replace characters by ``char`` except the first/last ones kept. ``keep_surname`` keeps a Chinese
    name's surname (two characters for a compound surname) and masks the given name."""

    def one(v: str) -> str:
        if keep_surname:
            n = 2 if v[:2] in COMPOUND_SURNAMES and len(v) > 2 else 1
            return v[:n] + char * max(len(v) - n, 1 if len(v) <= n else 0)
        if keep_first + keep_last >= len(v):
            return char * len(v)
        tail = v[len(v) - keep_last :] if keep_last else ""
        return v[:keep_first] + char * (len(v) - keep_first - keep_last) + tail

    return _map_distinct(s, one)


def pseudonym(s: pl.Series, key: bytes, *, length: int = 16, prefix: str = "") -> pl.Series:
    """Deterministic keyed pseudonym: hex of HMAC-SHA-256(key, value), cut to ``length`` characters."""
    if not 8 <= length <= 64:
        raise DeidError(f"pseudonym length must be 8..64 hex characters, got {length}")
    return _map_distinct(
        s, lambda v: prefix + hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest()[:length]
    )


def ff1_encrypt(
    s: pl.Series,
    key: bytes,
    *,
    alphabet: str = "digits",
    tweak: str = "",
    column: str = "",
    decrypt: bool = False,
) -> pl.Series:
    """FF1-encrypt the characters of each value that are in ``alphabet``; other characters (dashes,
    spaces, a trailing ID check letter outside the alphabet) stay in place. Reversible with the key."""
    alpha = ALPHABETS.get(alphabet, alphabet)
    cipher = FF1(key, alpha)
    fold = alphabet == "alnum"
    t = tweak.encode("utf-8")

    def one(v: str) -> str:
        src = v.lower() if fold else v
        pos = [i for i, ch in enumerate(src) if ch in cipher._index]
        if len(pos) < cipher.minlen:
            raise DeidError(
                f"column '{column}': value {mask_cell(v)} has fewer than {cipher.minlen} characters "
                f"to encrypt"
            )
        body = "".join(src[i] for i in pos)
        out = cipher.decrypt(body, t) if decrypt else cipher.encrypt(body, t)
        chars = list(v)
        for i, ch in zip(pos, out, strict=True):
            chars[i] = ch
        return "".join(chars)

    return _map_distinct(s, one)


def date_shift(
    s: pl.Series, subjects: pl.Series, key: bytes, *, max_days: int = 30, column: str = ""
) -> pl.Series:
    """Shift every date of a subject by the same keyed offset in [-max_days, max_days] (never 0), so
    intervals within a subject are kept and dates across subjects do not line up."""
    if max_days < 1:
        raise DeidError(f"column '{column}': max_days must be at least 1")
    subj = subjects.cast(pl.String).fill_null("")
    uniq = subj.unique()
    offsets = {}
    for u in uniq.to_list():
        h = int.from_bytes(hmac.new(key, u.encode("utf-8"), hashlib.sha256).digest()[:8], "big")
        off = h % (2 * max_days + 1) - max_days  # [-max_days, max_days]
        offsets[u] = off or max_days
    off = subj.replace_strict(uniq, pl.Series([offsets[u] for u in uniq.to_list()]), return_dtype=pl.Int64)
    vals = s.cast(pl.String).to_list()
    out: list[str | None] = []
    for v, o in zip(vals, off.to_list(), strict=True):
        if v is None or v == "":
            out.append(v)
            continue
        d = parse_date(v)
        if d is None:
            raise DeidError(f"column '{column}': value {mask_cell(v)} is not a date")
        out.append((d + timedelta(days=int(o))).isoformat())
    return pl.Series(s.name, out, dtype=pl.String)


def generalize(s: pl.Series, hierarchy: Hierarchy, level: int) -> pl.Series:
    """Replace each value by its ancestor at ``level`` of the hierarchy."""
    if not 0 <= level < hierarchy.height:
        raise DeidError(f"column '{hierarchy.column}': level {level} outside 0..{hierarchy.height - 1}")
    leaf = hierarchy.encode_column(s)
    lab = np.asarray(hierarchy.labels[level], dtype=object)
    return pl.Series(s.name, lab[hierarchy.codes[level][leaf]].tolist(), dtype=pl.String)


def top_bottom(
    s: pl.Series, *, top: float | None = None, bottom: float | None = None, column: str = ""
) -> pl.Series:
    """Top/bottom coding: values above ``top`` become ``>=top``, below ``bottom`` become ``<=bottom``."""
    txt = s.cast(pl.String)
    num = txt.str.strip_chars().cast(pl.Float64, strict=False)
    bad = num.is_null() & txt.is_not_null() & (txt.str.strip_chars() != "")
    if bad.any():
        raise DeidError(
            f"column '{column}': value {mask_cell(txt.filter(bad)[0])} is not a number "
            f"(mixed types in a column cannot be top/bottom coded)"
        )

    def fmt(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    out = pl.select(
        pl.when(pl.lit(top is not None) & (num >= (top if top is not None else 0)))
        .then(pl.lit(f">={fmt(top)}" if top is not None else ""))
        .when(pl.lit(bottom is not None) & (num <= (bottom if bottom is not None else 0)))
        .then(pl.lit(f"<={fmt(bottom)}" if bottom is not None else ""))
        .otherwise(txt)
        .alias(s.name)
    ).to_series()
    return out

"""Identifiers normalised before they are hashed, so the same person matches across parties.

Validation is the detectors' own (``piguard.detect.structured.classify_values``: region codes, birth dates
and the ISO 7064 check digit of resident IDs, the MIIT number plan, Luhn and card ranges, e-mail shape);
canonical forms come from python-stdnum (the resident-ID check digit of an upgraded 15-digit ID) and
phonenumbers (E.164 for anything that is not a mainland mobile). Values the validators reject are counted
and left out, never guessed at.

Canonical forms:

* ``CN_RESIDENT_ID``: 18 characters, upper-case ``X``; a 15-digit (pre-1999) ID gains ``19`` before its
  birth year and its check digit, so both generations of one person's ID match.
* ``PHONE_NUMBER``: E.164 (``+8613812345678``); mainland numbers without a country code are read as +86.
* ``BANK_CARD``: the digits alone.
* ``EMAIL_ADDRESS``: lower-cased (providers treat the local part case-insensitively in practice).

Each canonical value is prefixed with its type (``PHONE_NUMBER:+86...``) so a number never matches an ID.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers
import polars as pl
from stdnum.cn import ric

from piguard.detect.messages import mask_message
from piguard.detect.structured import classify_values, normalize_expr
from piguard.joint.errors import InputError

ID_TYPES = {
    "cn_resident_id": "CN_RESIDENT_ID",
    "phone": "PHONE_NUMBER",
    "bank_card": "BANK_CARD",
    "email": "EMAIL_ADDRESS",
}
ENTITIES = frozenset(ID_TYPES.values())
_MAINLAND_MOBILE = r"^(?:\+86|0086|86)?(1[3-9][0-9]{9})$"


@dataclass(slots=True)
class Normalised:
    """Canonical identifiers of one input, in file order, with what was left out."""

    keys: pl.Series  # canonical key per input row, null where invalid or empty
    rows: int
    invalid: int
    empty: int
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def unique(self) -> list[str]:
        """Distinct valid keys (the set that takes part in a protocol)."""
        return self.keys.drop_nulls().unique(maintain_order=True).to_list()

    def summary(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "valid": self.rows - self.invalid - self.empty,
            "invalid_dropped": self.invalid,
            "empty_dropped": self.empty,
            "by_type": dict(sorted(self.by_type.items())),
        }


def _upgrade_15(ids15: pl.Series) -> pl.Series:
    """15-digit IDs to 18: insert the century, append the check digit (python-stdnum computes it)."""
    body = ids15.str.slice(0, 6) + "19" + ids15.str.slice(6, 9)
    # stdnum's calc_check_digit reads the number with a placeholder where the check digit goes.
    return pl.Series([b + ric.calc_check_digit(b + "0") for b in body.to_list()], dtype=pl.String)


def _phones(values: pl.Series) -> pl.Series:
    """E.164 for detected phone numbers: mainland mobiles vectorised, everything else through phonenumbers."""
    digits = values.str.replace_all(r"[^0-9+]", "")
    mobile = digits.str.extract(_MAINLAND_MOBILE, 1)
    out = "+86" + mobile
    rest = mobile.is_null().arg_true()
    if rest.len():
        formatted: list[str | None] = []
        for v in values.gather(rest).to_list():
            try:
                num = phonenumbers.parse(v, "CN")
            except phonenumbers.NumberParseException:
                formatted.append(None)
                continue
            ok = phonenumbers.is_possible_number(num)
            formatted.append(
                phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164) if ok else None
            )
        out = out.scatter(rest, pl.Series(formatted, dtype=pl.String))
    return out


def normalise(values: Sequence[str | None] | pl.Series, id_type: str = "auto") -> Normalised:
    """Canonical keys for ``values``. ``id_type`` is ``auto`` (each value as the detectors classify it) or
    one of ``cn_resident_id``, ``phone``, ``bank_card``, ``email`` (other types count as invalid)."""
    if id_type != "auto" and id_type not in ID_TYPES:
        raise InputError(f"unknown identifier type {id_type!r}; valid: auto, {', '.join(ID_TYPES)}")
    want = None if id_type == "auto" else ID_TYPES[id_type]
    series = values if isinstance(values, pl.Series) else pl.Series("v", list(values), dtype=pl.String)
    series = series.cast(pl.String)
    frame = pl.DataFrame({"v": series}).with_columns(n=normalize_expr(pl.col("v")).str.strip_chars())
    empty_mask = frame["n"].is_null() | (frame["n"] == "")
    cls = classify_values(frame["n"].fill_null(""))
    entity = cls["entity"]
    ok = entity.is_in(list(ENTITIES)).fill_null(False) & ~empty_mask
    if want is not None:
        ok = ok & (entity == want).fill_null(False)
    n = frame["n"]
    keys = pl.Series("key", [None] * frame.height, dtype=pl.String)
    by_type: dict[str, int] = {}
    for ent in sorted(ENTITIES):
        mask = ok & (entity == ent).fill_null(False)
        if not mask.any():
            continue
        rows = mask.arg_true()
        vals = n.gather(rows)
        if ent == "CN_RESIDENT_ID":
            compact = vals.str.replace_all(r"[ \-]", "").str.to_uppercase()
            is15 = compact.str.len_chars() == 15
            if is15.any():
                idx = is15.arg_true()
                compact = compact.scatter(idx, _upgrade_15(compact.gather(idx)))
            canon = compact
        elif ent == "PHONE_NUMBER":
            canon = _phones(vals)
        elif ent == "BANK_CARD":
            canon = vals.str.replace_all(r"[^0-9]", "")
        else:
            canon = vals.str.to_lowercase()
        keyed = ent + ":" + canon
        count = int(keyed.is_not_null().sum())
        if count:
            keys = keys.scatter(rows, keyed)
            by_type[ent] = count
    empty = int(empty_mask.sum())
    invalid = frame.height - empty - sum(by_type.values())
    return Normalised(keys=keys, rows=frame.height, invalid=invalid, empty=empty, by_type=by_type)


MAX_TABLE_BYTES = 4 * 1024**3
_COMPRESSED = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh", b"\xfd7zX")  # gzip, zstd, bzip2, xz


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_table(path: str | Path, column: str) -> pl.DataFrame:
    """A CSV/TSV file as strings (nothing inferred, so leading zeros and ``X`` survive), checked to hold
    ``column``. Errors name the file and the column, never a cell."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"identifier file {p} does not exist or is not a file")
    if p.stat().st_size > MAX_TABLE_BYTES:
        raise InputError(f"identifier file {p} is larger than {MAX_TABLE_BYTES} bytes")
    with p.open("rb") as fh:
        magic = fh.read(4)
    if magic.startswith(_COMPRESSED):
        # polars would inflate it whole in memory, unbounded (a small bomb panics it out of memory).
        raise InputError(f"identifier file {p} is compressed; decompress it first")
    sep = "\t" if p.suffix.lower() in (".tsv", ".tab") else ","
    try:
        # polars takes only UTF-8 path strings: a file whose name is not UTF-8 is handed over as bytes.
        source: Path | bytes = p if _utf8(str(p)) else p.read_bytes()
        frame = pl.read_csv(source, separator=sep, infer_schema=False, encoding="utf8-lossy")
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise InputError(f"identifier file {p} is not a readable CSV ({type(exc).__name__})") from None
    if column not in frame.columns:
        # A file without a header row has its first record as column names: they are masked and cut.
        shown = mask_message(", ".join(c if len(c) <= 60 else c[:60] + "..." for c in frame.columns[:20]))
        raise InputError(f"identifier file {p} has no column {mask_message(repr(column))}; columns: {shown}")
    return frame

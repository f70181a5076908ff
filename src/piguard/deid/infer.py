"""Choose a generalization hierarchy for a quasi-identifier from its header and values, so that
``piguard deid data.csv --quasi 性别,年龄,城市 --k 5`` works without hierarchy files.

The kinds, in the order they are tried:

- ``sex``: a handful of values from a sex/gender vocabulary, or a header naming sex -> ``*``;
- ``resident-id``, ``phone``, ``date``: most values validate as that entity (piguard's own validators);
- ``age``: numbers under a header naming age -> 5, 10, 20-year bands;
- ``postcode``: six digits under a header naming a postcode;
- ``intervals``: other numbers -> nesting intervals of 1-2-5 widths sized to the column's range;
- ``date``: values that parse as dates;
- ``place``: Chinese cities, districts or addresses (GB/T 2260 names) -> city -> province;
- ``flat``: anything else -> ``*`` (the attribute is kept or suppressed as a whole).
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from piguard.deid.hierarchy import nice_widths, parse_date, resolve_place

SAMPLE = 5000  # distinct values looked at to decide the kind (builders then read every value)
MAJORITY = 0.9
PLACE_SHARE = 0.8
SEX_VALUES = frozenset(
    {"男", "女", "未知", "其他", "m", "f", "male", "female", "man", "woman", "u", "unknown", "other", "x"}
)
_AGE_HEADER = re.compile(r"年龄|周岁|(^|[^a-z])age($|[^a-z])", re.IGNORECASE)
_POSTCODE_HEADER = re.compile(r"邮编|邮政编码|post_?code|zip", re.IGNORECASE)
_SEX_HEADER = re.compile(r"性别|(^|[^a-z])(sex|gender)($|[^a-z])", re.IGNORECASE)


def infer_spec(column: str, values: pl.Series) -> dict[str, Any]:
    """The automatic hierarchy for a column, as a config entry (``{auto: KIND, ...}``) with ``reason``."""
    uniq = values.cast(pl.String).drop_nulls().str.strip_chars().unique()
    uniq = uniq.filter(uniq != "")
    sample = uniq.head(SAMPLE)
    n = len(sample)
    if n == 0:
        return {"auto": "flat", "reason": "no values"}
    low = {v.casefold() for v in sample.to_list()}
    if (_SEX_HEADER.search(column) and n <= 8) or (n <= 5 and low <= SEX_VALUES):
        return {"auto": "sex", "reason": "sex/gender values"}
    entity = _majority_entity(sample)
    if entity == "CN_RESIDENT_ID":
        return {"auto": "resident-id", "reason": "resident ID numbers"}
    if entity == "PHONE_NUMBER":
        return {"auto": "phone", "reason": "phone numbers"}
    nums = sample.cast(pl.Float64, strict=False)
    if nums.null_count() == 0 and nums.is_finite().all():
        if _AGE_HEADER.search(column):
            return {"auto": "intervals", "widths": [5, 10, 20], "reason": "ages (header)"}
        if _POSTCODE_HEADER.search(column) and sample.str.contains(r"^\d{6}$").all():
            return {"auto": "postcode", "reason": "six-digit postcodes (header)"}
        all_nums = uniq.cast(pl.Float64, strict=False).drop_nulls()
        widths = nice_widths([float(all_nums.min()), float(all_nums.max())])  # type: ignore[arg-type]
        return {"auto": "intervals", "widths": widths, "reason": "numbers"}
    dated = sum(parse_date(v) is not None for v in sample.to_list())
    if dated >= MAJORITY * n:
        return {"auto": "date", "reason": "dates"}
    placed = sum(bool(resolve_place(v)) for v in sample.head(1000).to_list())
    if placed >= PLACE_SHARE * min(n, 1000):
        return {"auto": "place", "reason": "Chinese place names or addresses (GB/T 2260)"}
    return {"auto": "flat", "reason": "no structure recognized: value -> *"}


def _majority_entity(sample: pl.Series) -> str | None:
    from piguard.detect import classify_values

    ents = classify_values(sample)["entity"].drop_nulls()
    if len(ents) == 0:
        return None
    top, count = ents.value_counts(sort=True).row(0)
    return str(top) if count >= MAJORITY * len(sample) else None


__all__ = ["infer_spec"]

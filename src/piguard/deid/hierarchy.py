"""Generalization hierarchies: ARX's CSV format, validation, integer encoding, automatic builders.

A hierarchy is a table with one row per original value: ``value;level1;level2;...`` (ARX's format,
semicolon separated, no header). Level 0 is the value itself; every row has the same number of levels
and a value at level i maps to exactly one value at level i+1 (a tree), which is what makes group counts
roll up and privacy models monotone.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl

from piguard.deid.errors import DeidError, mask_cell


@dataclass
class Hierarchy:
    """A validated, integer-encoded generalization hierarchy for one column."""

    column: str
    rows: list[list[str]]
    source: str = "<memory>"
    # Filled by _encode(): codes[level][leaf] -> value id at that level; labels[level][id] -> text.
    codes: list[np.ndarray] = field(default_factory=list, repr=False)
    labels: list[list[str]] = field(default_factory=list, repr=False)
    leaf_index: dict[str, int] = field(default_factory=dict, repr=False)
    _keys: pl.Series | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._validate()
        self._encode()

    @property
    def height(self) -> int:
        """Number of levels including level 0 (the original values)."""
        return len(self.rows[0])

    @property
    def domain_size(self) -> int:
        return len(self.rows)

    def _validate(self) -> None:
        where = f"hierarchy for column '{self.column}' ({self.source})"
        if not self.rows:
            raise DeidError(f"{where}: empty hierarchy")
        width = len(self.rows[0])
        for i, row in enumerate(self.rows, 1):
            if len(row) != width:
                raise DeidError(
                    f"{where}: row {i} (value {mask_cell(row[0])}) has {len(row)} levels, "
                    f"row 1 has {width}: inconsistent levels"
                )
        seen: dict[str, int] = {}
        for i, row in enumerate(self.rows, 1):
            if row[0] in seen:
                raise DeidError(
                    f"{where}: value {mask_cell(row[0])} appears twice (rows {seen[row[0]]}, {i})"
                )
            seen[row[0]] = i
        # Tree check: a value at level l must always generalize to the same value at level l+1.
        for lvl in range(1, width - 1):
            parent: dict[str, str] = {}
            for row in self.rows:
                prev = parent.setdefault(row[lvl], row[lvl + 1])
                if prev != row[lvl + 1]:
                    raise DeidError(
                        f"{where}: inconsistent levels: level {lvl} value {mask_cell(row[lvl])} generalizes "
                        f"to both {mask_cell(prev)} and {mask_cell(row[lvl + 1])} at level {lvl + 1}"
                    )
        # Level 0 values sharing a level-1 parent is fine; a level-1 value must not reappear under
        # two different originals' chains inconsistently, which the check above covers.

    def _encode(self) -> None:
        self.leaf_index = {row[0]: i for i, row in enumerate(self.rows)}
        self.codes, self.labels = [], []
        for lvl in range(self.height):
            ids: dict[str, int] = {}
            arr = np.empty(len(self.rows), dtype=np.int32)
            for i, row in enumerate(self.rows):
                arr[i] = ids.setdefault(row[lvl], len(ids))
            self.codes.append(arr)
            self.labels.append(list(ids))

    def shares(self, level: int) -> np.ndarray:
        """ARX's domain share per value id at ``level``: leaves under it / leaves in the hierarchy."""
        counts = np.bincount(self.codes[level], minlength=len(self.labels[level]))
        return counts / float(self.domain_size)

    def encode_column(self, values: Sequence[str] | np.ndarray | pl.Series) -> np.ndarray:
        """Leaf index of every cell; a value missing from the hierarchy is a DeidError naming it (masked).
        Missing cells (null) are looked up as the empty string."""
        s = (
            values
            if isinstance(values, pl.Series)
            else pl.Series(np.asarray(values, dtype=object).astype(str))
        )
        s = s.cast(pl.String).fill_null("")
        if self._keys is None:
            self._keys = pl.Series(list(self.leaf_index), dtype=pl.String)
        out = s.replace_strict(
            self._keys,
            pl.Series(np.arange(len(self._keys), dtype=np.int32)),
            default=None,
            return_dtype=pl.Int32,
        )
        if out.null_count():
            bad = s.filter(out.is_null())[0]
            raise DeidError(
                f"column '{self.column}': value {mask_cell(bad)} is missing from its hierarchy "
                f"({self.source})"
            )
        return out.to_numpy()

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=";", lineterminator="\n")
        w.writerows(self.rows)
        return buf.getvalue()


def encode_columns(
    columns: dict[str, np.ndarray | pl.Series], hierarchies: dict[str, Hierarchy]
) -> list[np.ndarray]:
    """Leaf indices for several columns in one polars pass (columns are looked up in parallel)."""
    frame = pl.DataFrame(
        {
            c: (v if isinstance(v, pl.Series) else pl.Series(np.asarray(v, dtype=object).astype(str)))
            for c, v in columns.items()
        }
    )
    exprs = []
    for c, h in hierarchies.items():
        if h._keys is None:
            h._keys = pl.Series(list(h.leaf_index), dtype=pl.String)
        idx = pl.Series(np.arange(len(h._keys), dtype=np.int32))
        exprs.append(
            pl.col(c)
            .cast(pl.String)
            .fill_null("")
            .replace_strict(h._keys, idx, default=None, return_dtype=pl.Int32)
        )
    out = frame.select(exprs)
    result = []
    for c, h in hierarchies.items():
        col = out[c]
        if col.null_count():
            h.encode_column(frame[c])  # raises the error naming the (masked) missing value
        result.append(col.to_numpy())
    return result


def read_arx_csv(path: str | Path, column: str) -> Hierarchy:
    """Read one hierarchy file in ARX's format (``;``-separated, no header, UTF-8 with optional BOM)."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise DeidError(f"{p}: cannot read hierarchy: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DeidError(f"{p}: hierarchy is not UTF-8 text") from None
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=";") if r and any(c.strip() for c in r)]
    return Hierarchy(column=column, rows=rows, source=str(p))


_ARX_NAME = re.compile(r"^(?:.*_hierarchy_)?(?P<col>.+)\.csv$")


def load_hierarchy_dir(directory: str | Path, columns: Iterable[str]) -> dict[str, Hierarchy]:
    """Hierarchies for ``columns`` from ``directory``: ``*_hierarchy_<column>.csv`` (ARX naming) or
    ``<column>.csv``. Columns without a file are simply absent from the result."""
    d = Path(directory)
    if not d.is_dir():
        raise DeidError(f"{d}: hierarchy directory not found")
    wanted = set(columns)
    found: dict[str, Path] = {}
    for f in sorted(d.iterdir()):
        if not f.is_file() or f.suffix.lower() != ".csv":
            continue
        name = f.name
        col = None
        if "_hierarchy_" in name:
            col = name.split("_hierarchy_", 1)[1][:-4]
        elif name[:-4] in wanted:
            col = name[:-4]
        if col in wanted:
            if col in found:
                raise DeidError(f"{d}: two hierarchy files for column '{col}': {found[col].name}, {name}")
            found[col] = f
    return {c: read_arx_csv(p, c) for c, p in found.items()}


# ---------------------------------------------------------------- automatic hierarchies


def numeric_intervals(
    column: str, values: Iterable[object], widths: Sequence[int] = (5, 10, 20), origin: float | None = None
) -> Hierarchy:
    """Intervals of growing width (age bands by default), then ``*``. Widths must nest (each a multiple
    of the previous) so the result is a tree."""
    for a, b in itertools.pairwise(widths):
        if b % a:
            raise DeidError(f"column '{column}': interval widths {list(widths)} do not nest")
    distinct: dict[str, float] = {}
    for v in values:
        s = str(v)
        if s in distinct:
            continue
        try:
            distinct[s] = float(s)
        except ValueError:
            raise DeidError(f"column '{column}': value {mask_cell(s)} is not a number") from None
    if not distinct:
        raise DeidError(f"column '{column}': no values to build a hierarchy from")
    lo = min(distinct.values()) if origin is None else origin
    base = np.floor(lo / widths[-1]) * widths[-1] if origin is None else origin
    rows = []
    for s, x in sorted(distinct.items(), key=lambda kv: kv[1]):
        row = [s]
        for w in widths:
            start = base + np.floor((x - base) / w) * w
            row.append(f"[{_num(start)}, {_num(start + w)})")
        row.append("*")
        rows.append(row)
    return Hierarchy(column=column, rows=rows, source="auto:intervals")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def dates(column: str, values: Iterable[object]) -> Hierarchy:
    """Day -> month -> year -> decade -> ``*``. Accepts ISO dates (``2024-03-05``, ``2024/3/5``,
    ``2024年3月5日``)."""
    rows = []
    for s in sorted({str(v) for v in values}):
        d = parse_date(s)
        if d is None:
            raise DeidError(f"column '{column}': value {mask_cell(s)} is not a date")
        decade = d.year // 10 * 10
        rows.append([s, f"{d.year:04d}-{d.month:02d}", f"{d.year:04d}", f"{decade}-{decade + 9}", "*"])
    return Hierarchy(column=column, rows=rows, source="auto:dates")


_DATE_RE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")


def parse_date(s: str) -> date | None:
    m = _DATE_RE.match(s)
    if m:
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    if len(s) == 8 and s.isdigit():
        try:
            return datetime.strptime(s, "%Y%m%d").date()
        except ValueError:
            return None
    return None


def _load_regions() -> dict[str, str]:
    import yaml

    with (Path(__file__).parent / "regions.yaml").open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return {str(k): v for k, v in data["provinces"].items()}


def resident_id_region(column: str, values: Iterable[object]) -> Hierarchy:
    """Resident ID (18 characters) -> county code (6) -> prefecture code (4) -> province -> ``*``
    (administrative division codes of GB/T 2260, first 6 digits of GB 11643)."""
    provinces = _load_regions()
    rows = []
    for s in sorted({str(v) for v in values}):
        if len(s) < 6 or not s[:6].isdigit():
            raise DeidError(f"column '{column}': value {mask_cell(s)} is not a resident ID number")
        prov = provinces.get(s[:2])
        if prov is None:
            raise DeidError(f"column '{column}': value {mask_cell(s)} has an unknown province code")
        rows.append([s, s[:6] + "*" * (len(s) - 6), s[:4] + "**", prov, "*"])
    return Hierarchy(column=column, rows=rows, source="auto:resident-id")


_ADDR_PROV = re.compile(r"^(北京市|天津市|上海市|重庆市|.{2,7}?(?:省|自治区)|香港特别行政区|澳门特别行政区)")
_ADDR_CITY = re.compile(r"^(.{1,10}?(?:自治州|地区|盟|市))")
_ADDR_DIST = re.compile(r"^(.{1,10}?(?:区|县|旗|市))")


def split_address(addr: str) -> tuple[str, str, str]:
    """(province, city, district) prefixes of a Chinese address; municipalities are their own city."""
    s = addr.strip()
    m = _ADDR_PROV.match(s)
    if not m:
        return "", "", ""
    prov = m[1]
    rest = s[len(prov) :]
    if prov in ("北京市", "天津市", "上海市", "重庆市"):
        city = prov
    else:
        mc = _ADDR_CITY.match(rest)
        city = prov + mc[1] if mc else ""
        rest = rest[len(mc[1]) :] if mc else rest
    md = _ADDR_DIST.match(rest)
    dist = (city or prov) + md[1] if md else ""
    return prov, city, dist


def chinese_address(column: str, values: Iterable[object]) -> Hierarchy:
    """Address -> district -> city -> province -> ``*``. Missing parts repeat the coarser one so the
    levels stay a tree."""
    rows = []
    for s in sorted({str(v) for v in values}):
        prov, city, dist = split_address(s)
        if not prov:
            raise DeidError(f"column '{column}': value {mask_cell(s)} does not start with a province")
        city = city or prov
        dist = dist or city
        rows.append([s, dist, city, prov, "*"])
    return Hierarchy(column=column, rows=rows, source="auto:address")


def phone_prefix(column: str, values: Iterable[object]) -> Hierarchy:
    """Mobile number -> first 7 digits (number segment + H code, which locates the issuing city)
    -> first 3 (carrier segment) -> ``*``."""
    rows = []
    for s in sorted({str(v) for v in values}):
        digits = re.sub(r"\D", "", s)
        if digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]
        if len(digits) != 11:
            raise DeidError(f"column '{column}': value {mask_cell(s)} is not an 11-digit mobile number")
        rows.append([s, digits[:7] + "****", digits[:3] + "*" * 8, "*"])
    return Hierarchy(column=column, rows=rows, source="auto:phone")


def postcode(column: str, values: Iterable[object]) -> Hierarchy:
    """Six-digit postcode truncated: 4 digits (delivery area), 3 (county), 2 (province group), ``*``."""
    rows = []
    for s in sorted({str(v) for v in values}):
        t = s.strip()
        if len(t) != 6 or not t.isdigit():
            raise DeidError(f"column '{column}': value {mask_cell(s)} is not a 6-digit postcode")
        rows.append([s, t[:4] + "**", t[:3] + "***", t[:2] + "****", "*"])
    return Hierarchy(column=column, rows=rows, source="auto:postcode")


def flat(column: str, values: Iterable[object]) -> Hierarchy:
    """Value -> ``*`` (suppress the attribute when generalized)."""
    return Hierarchy(
        column=column, rows=[[s, "*"] for s in sorted({str(v) for v in values})], source="auto:flat"
    )


AUTO_BUILDERS = {
    "intervals": numeric_intervals,
    "age": numeric_intervals,
    "date": dates,
    "resident-id": resident_id_region,
    "address": chinese_address,
    "phone": phone_prefix,
    "postcode": postcode,
    "flat": flat,
}

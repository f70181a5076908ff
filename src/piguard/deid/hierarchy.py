"""Generalization hierarchies: ARX's CSV format, validation, integer encoding, automatic builders.

A hierarchy is a table with one row per original value: ``value;level1;level2;...`` (ARX's format,
semicolon separated, no header). Level 0 is the value itself; every row has the same number of levels
and a value at level i maps to exactly one value at level i+1 (a tree), which is what makes group counts
roll up and privacy models monotone.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl

from piguard.deid.errors import DeidError, mask_cell
from piguard.deid.gazetteer import Place


@dataclass
class Hierarchy:
    """A validated, integer-encoded generalization hierarchy for one column."""

    column: str
    rows: list[list[str]]
    source: str = "<memory>"
    reason: str = ""  # why an automatic kind was chosen (for the report)
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

    def parent_ids(self, level: int) -> np.ndarray:
        """Value id at ``level`` of every value id at ``level - 1`` (the levels form a tree)."""
        cache = self.__dict__.setdefault("_parents", {})
        hit = cache.get(level)
        if hit is None:
            hit = np.zeros(len(self.labels[level - 1]), dtype=np.int64)
            hit[self.codes[level - 1]] = self.codes[level]
            cache[level] = hit
        return hit

    def level_mass(self, level: int, leaf_mass: np.ndarray) -> np.ndarray:
        """Sum of a per-leaf quantity under every value id at ``level``."""
        cache = self.__dict__.setdefault("_mass", {})
        key = (level, id(leaf_mass))
        hit = cache.get(key)
        if hit is None or hit[0] is not leaf_mass:
            hit = (
                leaf_mass,
                np.bincount(self.codes[level], weights=leaf_mass, minlength=len(self.labels[level])),
            )
            cache[key] = hit
        return hit[1]

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

    @property
    def kind(self) -> str:
        """``file`` for a hierarchy read from a file, else the automatic builder's name."""
        return self.source.removeprefix("auto:") if self.source.startswith("auto:") else "file"

    @property
    def sha256(self) -> str:
        """Digest of the hierarchy as ARX CSV (rows in order, ``;``-separated, LF line ends), so that a
        dataset passport can name exactly the hierarchy a release used without holding its values."""
        return hashlib.sha256(self.to_csv().encode("utf-8")).hexdigest()

    def describe(self) -> dict[str, object]:
        d: dict[str, object] = {
            "kind": self.kind,
            "source": self.source if self.kind == "file" else "automatic",
            "levels": self.height,
            "values": self.domain_size,
            "sha256": self.sha256,
        }
        if self.reason:
            d["reason"] = self.reason
        return d


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
# Every builder takes the column's distinct values as text. A missing cell (the empty string) stays itself
# up to the top level: it tells nothing to generalize.


def _missing_row(height: int) -> list[str]:
    return [""] * (height - 1) + ["*"]


def numeric_intervals(
    column: str,
    values: Iterable[object],
    widths: Sequence[float] = (5, 10, 20),
    origin: float | None = None,
) -> Hierarchy:
    """Intervals of growing width (age bands by default), then ``*``. Widths must nest (each a multiple
    of the previous) so the result is a tree."""
    if not widths or any(not (isinstance(w, int | float) and not isinstance(w, bool)) for w in widths):
        raise DeidError(f"column '{column}': interval widths must be numbers, got {list(widths)}")
    if any(w <= 0 for w in widths):
        raise DeidError(f"column '{column}': interval widths must be positive, got {list(widths)}")
    for a, b in itertools.pairwise(widths):
        if b < a or abs(b / a - round(b / a)) > 1e-9:
            raise DeidError(f"column '{column}': interval widths {list(widths)} do not nest")
    distinct: dict[str, float] = {}
    missing = False
    for v in values:
        s = str(v)
        if s in distinct:
            continue
        if s.strip() == "":
            missing = True
            continue
        try:
            x = float(s)
        except ValueError:
            raise DeidError(f"column '{column}': value {mask_cell(s)} is not a number") from None
        if not np.isfinite(x):
            raise DeidError(f"column '{column}': value {mask_cell(s)} is not a finite number")
        distinct[s] = x
    if not distinct:
        raise DeidError(f"column '{column}': no values to build a hierarchy from")
    lo = min(distinct.values()) if origin is None else origin
    base = np.floor(lo / widths[-1]) * widths[-1] if origin is None else origin
    rows = []
    for s, x in sorted(distinct.items(), key=lambda kv: kv[1]):
        row = [s]
        for w in widths:
            start = base + np.floor((x - base) / w + 1e-12) * w
            row.append(f"[{_num(start)}, {_num(start + w)})")
        row.append("*")
        rows.append(row)
    if missing:
        rows.append(_missing_row(len(widths) + 2))
    return Hierarchy(column=column, rows=rows, source="auto:intervals")


def _num(x: float) -> str:
    x = round(float(x), 9)
    return str(int(x)) if x.is_integer() else f"{x:g}"


def nice_widths(values: Iterable[float], buckets: int = 20, levels: int = 4) -> list[float]:
    """Nesting interval widths for a numeric column: the first about range/``buckets`` rounded to 1, 2 or 5
    times a power of ten, each next one 2 or 2.5 times wider (1-2-5 steps: 10, 20, 50, 100, ...)."""
    xs = [float(v) for v in values]
    span = (max(xs) - min(xs)) if xs else 0.0
    if span <= 0:
        return [1.0]
    raw = span / buckets
    exp = math.floor(math.log10(raw))
    mant = raw / 10**exp
    step = 1 if mant <= 1 else 2 if mant <= 2 else 5 if mant <= 5 else 10
    w = step * 10.0**exp
    out = [w]
    while len(out) < levels and out[-1] < span:
        m = round(out[-1] / 10 ** math.floor(math.log10(out[-1])))
        out.append(out[-1] * (2 if m in (1, 5, 10) else 5 / 2 if m == 2 else 2))
        if abs(out[-1] / out[-2] - round(out[-1] / out[-2])) > 1e-9:  # 2 -> 5 does not nest: go to 10
            out[-1] = out[-2] * 5
    return [int(x) if float(x).is_integer() else x for x in out]


def dates(column: str, values: Iterable[object]) -> Hierarchy:
    """Day -> month -> year -> decade -> ``*``. Accepts ISO dates (``2024-03-05``, ``2024/3/5``,
    ``2024年3月5日``, ``20240305``), with or without a time after them."""
    rows = []
    for s in sorted({str(v) for v in values}):
        if s.strip() == "":
            rows.append(_missing_row(5))
            continue
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
    t = s.strip()
    if len(t) == 8 and t.isdigit():
        try:
            return datetime.strptime(t, "%Y%m%d").date()
        except ValueError:
            return None
    return None


def resident_id_region(column: str, values: Iterable[object]) -> Hierarchy:
    """Resident ID (18 characters) -> county code (6) -> prefecture code (4) -> province -> ``*``
    (administrative division codes of GB/T 2260, the first 6 digits of GB 11643; province names from the
    division list python-stdnum ships, which also covers the 81/82/83 codes of residence permits)."""
    from piguard.deid.gazetteer import gazetteer

    provinces = gazetteer().province_of_code
    rows = []
    for s in sorted({str(v) for v in values}):
        if s.strip() == "":
            rows.append(_missing_row(5))
            continue
        if len(s) < 6 or not s[:6].isdigit():
            raise DeidError(f"column '{column}': value {mask_cell(s)} is not a resident ID number")
        prov = provinces.get(s[:2])
        if prov is None:
            raise DeidError(f"column '{column}': value {mask_cell(s)} has an unknown province code")
        rows.append([s, s[:6] + "*" * (len(s) - 6), s[:4] + "**", prov, "*"])
    return Hierarchy(column=column, rows=rows, source="auto:resident-id")


UNKNOWN_PLACE = "(未识别)"


def _place_labels(places: Iterable[Place]) -> tuple[str, str, str] | None:
    """(county, prefecture, province) labels for the places a value can mean. Several candidates (朝阳区
    is in Beijing and in Changchun) give joined labels, so that the levels stay a tree."""
    ps = list(places)
    if not ps:
        return None
    counties = sorted({p.county or p.prefecture or p.province for p in ps})
    prefs = sorted({p.prefecture or p.province for p in ps})
    provs = sorted({p.province for p in ps})
    return "|".join(counties), "|".join(prefs), "|".join(provs)


def resolve_place(text: str) -> frozenset[Place]:
    """The places a cell can mean: a bare name (``杭州``, ``西湖区``) or an address's leading places."""
    from piguard.deid.gazetteer import gazetteer

    g = gazetteer()
    places = g.resolve(text)
    if not places:
        p = g.resolve_prefix(text)
        places = frozenset([p]) if p else frozenset()
    return places


def chinese_place(column: str, values: Iterable[object]) -> Hierarchy:
    """Chinese place names or addresses -> prefecture (city) -> province -> ``*``, from the GB/T 2260
    division list (``piguard.deid.gazetteer``). A column that holds counties, districts or addresses gets
    the city level; a column of cities or provinces goes straight to the province. A name several
    places share (鼓楼区) generalizes to all of them joined (``南京市|徐州市|...``); a value that names no
    known place generalizes to ``(未识别)``."""
    resolved: dict[str, tuple[str, str, str] | None] = {}
    fine = False
    for s in sorted({str(v) for v in values}):
        if s.strip() == "":
            resolved[s] = None
            continue
        places = resolve_place(s)
        resolved[s] = _place_labels(places)
        if any(p.county for p in places) or (places and s.strip() not in _place_names(places)):
            fine = True  # counties or longer addresses: keep a city level
    if not resolved:
        raise DeidError(f"column '{column}': no values to build a hierarchy from")
    height = 4 if fine else 3
    rows = []
    for s, labels in resolved.items():
        if s.strip() == "":
            rows.append(_missing_row(height))
            continue
        _, pref, prov = labels if labels else ("", UNKNOWN_PLACE, UNKNOWN_PLACE)
        rows.append([s, pref, prov, "*"] if fine else [s, prov, "*"])
    return Hierarchy(column=column, rows=rows, source="auto:place")


def _place_names(places: Iterable[Place]) -> set[str]:
    from piguard.deid.gazetteer import short_names

    out: set[str] = set()
    for p in places:
        for name in (p.province, p.prefecture):
            if name:
                out |= short_names(name)
    return out


def chinese_address(column: str, values: Iterable[object]) -> Hierarchy:
    """Address -> district -> city -> province -> ``*`` (GB/T 2260 names via ``piguard.deid.gazetteer``).
    Missing parts repeat the coarser one so the levels stay a tree."""
    from piguard.deid.gazetteer import gazetteer

    g = gazetteer()
    rows = []
    for s in sorted({str(v) for v in values}):
        if s.strip() == "":
            rows.append(_missing_row(5))
            continue
        p = g.resolve_prefix(s)
        if p is None:
            raise DeidError(
                f"column '{column}': value {mask_cell(s)} does not start with a known province, city or "
                f"district (GB/T 2260)"
            )
        # Labels carry their parents (浙江省杭州市西湖区), so equal county names stay apart.
        city = p.province + p.prefecture if p.prefecture and p.prefecture != p.province else p.province
        dist = city + p.county if p.county and p.county != p.prefecture else city
        rows.append([s, dist, city, p.province, "*"])
    return Hierarchy(column=column, rows=rows, source="auto:address")


def phone_prefix(column: str, values: Iterable[object]) -> Hierarchy:
    """Phone number -> first 7 digits (for a mobile, number segment + H code, which locates the issuing
    city) -> first 3 (carrier segment) -> ``*``. A leading +86/86 is ignored."""
    rows = []
    for s in sorted({str(v) for v in values}):
        if s.strip() == "":
            rows.append(_missing_row(4))
            continue
        digits = re.sub(r"\D", "", s)
        if digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]
        if not 7 <= len(digits) <= 15:
            raise DeidError(f"column '{column}': value {mask_cell(s)} is not a phone number")
        rows.append([s, digits[:7] + "*" * (len(digits) - 7), digits[:3] + "*" * (len(digits) - 3), "*"])
    return Hierarchy(column=column, rows=rows, source="auto:phone")


def postcode(column: str, values: Iterable[object]) -> Hierarchy:
    """Six-digit postcode truncated: 4 digits (delivery area), 3 (county), 2 (province group), ``*``."""
    rows = []
    for s in sorted({str(v) for v in values}):
        t = s.strip()
        if t == "":
            rows.append(_missing_row(5))
            continue
        if len(t) != 6 or not t.isdigit():
            raise DeidError(f"column '{column}': value {mask_cell(s)} is not a 6-digit postcode")
        rows.append([s, t[:4] + "**", t[:3] + "***", t[:2] + "****", "*"])
    return Hierarchy(column=column, rows=rows, source="auto:postcode")


def flat(column: str, values: Iterable[object]) -> Hierarchy:
    """Value -> ``*`` (suppress the attribute when generalized)."""
    return Hierarchy(
        column=column, rows=[[s, "*"] for s in sorted({str(v) for v in values})], source="auto:flat"
    )


def sex(column: str, values: Iterable[object]) -> Hierarchy:
    """Sex or gender -> ``*`` (a flat hierarchy; kind ``sex`` in the report)."""
    h = flat(column, values)
    h.source = "auto:sex"
    return h


AUTO_BUILDERS = {
    "intervals": numeric_intervals,
    "age": numeric_intervals,
    "date": dates,
    "resident-id": resident_id_region,
    "address": chinese_address,
    "place": chinese_place,
    "phone": phone_prefix,
    "postcode": postcode,
    "sex": sex,
    "flat": flat,
}

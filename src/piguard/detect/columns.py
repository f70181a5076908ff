"""Column classification for the data map: which personal information a table column holds.

Two kinds of evidence meet here:

* the **header** (English and Chinese synonyms, abbreviations and pinyin such as ``sfzh`` or ``shouji``,
  data in ``data/headers.yaml``), and
* the **values**: the share of non-empty values that the validators in ``piguard.detect.classify_values``
  accept (check digits, Luhn, region codes, mobile prefixes...), computed column-wise with polars.

Free-text columns (long values) are cut into candidate tokens with the structured detector's own candidate
pattern and every token is validated in one vectorized pass; the share is then the share of rows holding the
entity. Python touches only aggregates, a bounded number of masked examples, and (for names, addresses and
sensitive categories that need the text detectors) a small subsample of values.

The verdict rules are documented in docs/datamap.md; in short: values decide for entities a validator can
check, the header lowers the share they need, and a header alone decides only entities no validator can check.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import unicodedata
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import polars as pl
import yaml

from piguard import taxonomy
from piguard.detect.masking import mask_value
from piguard.detect.structured import CANDIDATE_PATTERN, classify_values, normalize_expr

# Values longer than this are cut for classification (a 100 MB cell must not stall the scan).
MAX_CELL_CHARS = 1 << 20
# Whole-value classification looks at values up to this length (a full IPv6 address is 39 characters);
# values from MIN_TEXT_CHARS on that hold spaces, Chinese or punctuation are also cut into tokens.
MAX_WHOLE_CHARS = 64
MIN_TEXT_CHARS = 12
TEXT_MARK_RE = r"[\s\u3000-\u303f\u4e00-\u9fff\uff00-\uffef,;=|]"
# Validated values inside text count when the detector is this sure (no context words are read here).
TEXT_MIN_CONFIDENCE = 0.8
# The shortest structured value ("1.2.3.4" or a plate): shorter cells cannot hold one and are not classified.
MIN_STRUCTURED_CHARS = 7
# Share of non-empty values that must validate, without / with a header naming the entity.
SHARE_NO_HEADER = 0.8
SHARE_WITH_HEADER = 0.3
SHARE_NEGATIVE_HEADER = 0.98
# Per-value text detectors (names, addresses, sensitive context) look at this many values per column.
TEXT_DETECTOR_SAMPLE = 100
MAX_EXAMPLES = 3
# Values that may hold a name or an address: Chinese characters, or a Latin word.
WORDY_RE = r"[\u4e00-\u9fff]|[A-Za-z]{2,}"
DISTINCT_PROBE = 5000
# A batch with at least this many text columns, and at most WIDE_MAX_CELLS cells per group of columns, is
# classified in long form (one pass for all its columns) rather than column by column.
WIDE_MIN_COLUMNS = 64
WIDE_MAX_CELLS = 4_000_000
# Numbers kept per column to tell counters (order numbers 13800000001, 13800000002...) from phone numbers.
SEQUENCE_SAMPLE = 4000
SEQUENCE_MAX_MEDIAN_GAP = 100
SEQUENCE_ENTITIES = frozenset({"PHONE_NUMBER", "BANK_CARD", "IMEI"})

# Common Chinese surnames (the 100 most frequent in the 2020 household registration statistics of the
# Ministry of Public Security, plus the usual compound surnames).
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马胡朱郭何罗高林郑梁谢唐许冯宋韩邓彭曹曾田于肖潘袁董叶杜丁蒋程余吕魏蔡苏任卢沈姜"
    "姚钟崔陆谭汪石付贾范金方韦夏廖侯白孟邹秦尹江熊薛邱阎段雷季史陶毛贺龙万顾关郝孔向龚邵钱武扈戴严欧文"
)
_COMPOUND = (
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "令狐",
    "长孙",
    "宇文",
    "司徒",
    "夏侯",
)
CN_NAME_RE = rf"^(?:{'|'.join(_COMPOUND)}|[{_SURNAMES}])[\u4e00-\u9fff]{{1,2}}$"
EN_NAME_RE = r"^[A-Z][a-z]+(?:[ .'\-][A-Z][a-z]+){1,3}$"
# Address grammar: an administrative unit followed by a street-level unit.
ADDRESS_RE = r"[\u4e00-\u9fff]{2,}(?:省|市|自治区|区|县|镇|乡).*(?:路|街|道|巷|弄|号|室|栋|幢|楼|村|组|小区)"
EN_ADDRESS_RE = (
    r"^\d+[A-Za-z]? [A-Za-z0-9 .'\-]+ (?:St|Street|Ave|Avenue|Rd|Road|Blvd|Lane|Ln|Dr|Drive|Way)\b"
)
_HEADER_ONLY_CONFIDENCE = 0.6
_POOL_WORKERS = min(2, os.cpu_count() or 1)
_TEXT_LOCK = threading.Lock()


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_POOL_WORKERS, thread_name_prefix="piguard-columns")


# --- headers -------------------------------------------------------------------------------------------
@cache
def header_rules() -> dict[str, object]:
    raw = yaml.safe_load(resources.files("piguard.detect").joinpath("data/headers.yaml").read_text("utf-8"))
    return raw


@dataclass(frozen=True, slots=True)
class HeaderHint:
    entity: str | None  # the entity the header names, if any
    synonym: str | None  # the synonym that matched
    negative: bool  # the header names something else (order number, amount, product...)


def _tokens(header: str) -> tuple[list[str], str]:
    h = unicodedata.normalize("NFKC", header)
    h = re.sub(r"([a-z])([A-Z])", r"\1_\2", h).lower()
    toks = [t for t in re.split(r"[^0-9a-z\u4e00-\u9fff]+|(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])", h) if t]
    toks = [t for t in toks if not t.isdigit()]
    return toks, h


def _synonym_matches(syn: str, toks: list[str], lowered: str) -> bool:
    s = unicodedata.normalize("NFKC", syn).lower()
    if re.search(r"[\u4e00-\u9fff]", s):
        return s in lowered
    key = s.replace("_", "")
    if key in toks:
        return True
    joined_all = "".join(t for t in toks if t.isascii())
    if key == joined_all:
        return True
    # consecutive tokens joined: "phone_no" written as "phone_no", "phoneNo" or "phone-no"
    for i in range(len(toks)):
        acc = ""
        for t in toks[i:]:
            acc += t
            if acc == key:
                return True
            if len(acc) >= len(key):
                break
    return False


@dataclass(frozen=True, slots=True)
class _Synonym:
    order: int  # position in headers.yaml: among equally long matches the first listed wins
    entity: str | None  # None for negative words
    text: str  # as written in headers.yaml
    key: str  # NFKC, lower case; ASCII ones without underscores (matched against joined tokens)


@dataclass(frozen=True, slots=True)
class _SynonymIndex:
    cjk: tuple[_Synonym, ...]  # matched as substrings of the lowered header
    ascii: dict[str, tuple[_Synonym, ...]]  # key -> synonyms, looked up by the header's token runs
    longest: int  # longest ASCII key


def _index(pairs: list[tuple[str | None, object]]) -> _SynonymIndex:
    cjk: list[_Synonym] = []
    by_key: dict[str, list[_Synonym]] = {}
    for order, (entity, syn) in enumerate(pairs):
        s = unicodedata.normalize("NFKC", str(syn)).lower()
        if re.search(r"[\u4e00-\u9fff]", s):
            cjk.append(_Synonym(order, entity, str(syn), s))
        else:
            key = s.replace("_", "")
            by_key.setdefault(key, []).append(_Synonym(order, entity, str(syn), key))
    return _SynonymIndex(
        tuple(cjk), {k: tuple(v) for k, v in by_key.items()}, max(map(len, by_key), default=0)
    )


@cache
def _synonyms() -> tuple[_SynonymIndex, _SynonymIndex]:
    """headers.yaml normalized and indexed once: (entity synonyms, negative words)."""
    rules = header_rules()
    ents = [(e, syn) for e, syns in rules["entities"].items() for syn in syns]  # type: ignore[union-attr]
    return _index(ents), _index([(None, w) for w in rules["negative"]])  # type: ignore[union-attr]


def _token_joins(toks: list[str], longest: int) -> set[str]:
    """Every run of consecutive tokens joined (``phone_no``, ``phoneNo``, ``phone-no`` all give
    ``phoneno``) up to ``longest`` characters, and all ASCII tokens joined: what an ASCII synonym's key is
    compared with. Bounded by ``longest``, so a header of ten thousand tokens costs ten thousand steps."""
    joins = {"".join(t for t in toks if t.isascii())}
    for i in range(len(toks)):
        acc = ""
        for t in toks[i:]:
            acc += t
            if len(acc) > longest:
                break
            joins.add(acc)
    return joins


def _found(index: _SynonymIndex, joins: set[str], lowered: str, has_cjk: bool) -> list[_Synonym]:
    out = [syn for key in joins for syn in index.ascii.get(key, ())]
    if has_cjk:
        out.extend(syn for syn in index.cjk if syn.key in lowered)
    return out


_CJK = re.compile(r"[\u4e00-\u9fff]")


@cache
def header_hint(header: str) -> HeaderHint:
    """What the column name says. The longest matching synonym wins ('身份证号码' is an ID, not a phone).

    Same answers as ``header_hint_reference`` (the rules as first written, one synonym at a time), with
    the synonyms indexed once and the header's token runs looked up in the index: microseconds a header,
    so a table of 100,000 columns is not held up by its names."""
    ents, neg = _synonyms()
    toks, lowered = _tokens(header)
    has_cjk = _CJK.search(lowered) is not None
    joins = _token_joins(toks, max(ents.longest, neg.longest))
    hits = _found(ents, joins, lowered, has_cjk)
    negative = bool(_found(neg, joins, lowered, has_cjk))
    if not hits:
        return HeaderHint(None, None, negative)
    best = min(hits, key=lambda syn: (-len(syn.text), syn.order))
    return HeaderHint(best.entity, best.text, negative)


def header_hint_reference(header: str) -> HeaderHint:
    """``header_hint`` as first written: each synonym normalized and matched on its own (kept as the
    readable statement of the rules; tests check the fast one against it)."""
    rules = header_rules()
    toks, lowered = _tokens(header)
    best: tuple[int, str, str] | None = None
    for entity, syns in rules["entities"].items():  # type: ignore[union-attr]
        for syn in syns:
            if _synonym_matches(str(syn), toks, lowered) and (best is None or len(str(syn)) > best[0]):
                best = (len(str(syn)), entity, str(syn))
    negative = any(_synonym_matches(str(w), toks, lowered) for w in rules["negative"])  # type: ignore[union-attr]
    if best is None:
        return HeaderHint(None, None, negative)
    return HeaderHint(best[1], best[2], negative)


# --- per-column accumulation ---------------------------------------------------------------------------
@dataclass
class ColumnStats:
    """Aggregates for one column across batches. Only masked examples are kept, never raw values."""

    name: str
    dtype: str = ""
    non_null: int = 0
    free_text_rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    conf_sum: Counter[str] = field(default_factory=Counter)
    # Entities found by the per-value text detectors on a subsample: hits and values looked at.
    sub_counts: Counter[str] = field(default_factory=Counter)
    sub_seen: int = 0
    sub_distinct: dict[str, set[int]] = field(default_factory=dict)
    # The same subsample weighted by rows: rows the sampled values stand for, and rows whose value held
    # each entity; plus every row whose value has words at all (only those can hold a name). The share
    # reported is P(words) x P(entity | words), a share of rows as docs/datamap.md defines it.
    sub_rows: int = 0
    sub_hit_rows: Counter[str] = field(default_factory=Counter)
    wordy_rows: int = 0
    word_checked_rows: int = 0  # the rows those were counted among (the batches the subsample read)
    shape_counts: Counter[str] = field(default_factory=Counter)  # name / address / vocabulary shapes
    examples: dict[str, list[str]] = field(default_factory=dict)
    numbers: dict[str, list[int]] = field(default_factory=dict)
    truncated: int = 0
    skipped_reason: str | None = None
    sequence_votes: dict[str, list[int]] = field(default_factory=dict)  # merged from partitions: [yes, no]

    def add_example(self, entity: str, masked: str) -> None:
        ex = self.examples.setdefault(entity, [])
        if len(ex) < MAX_EXAMPLES and masked not in ex:
            ex.append(masked)

    # Partial stats travel between processes (Spark executors -> driver) as JSON-able dicts. The digit
    # runs kept for the counter test never leave the process: each side ships its own verdict on them.
    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "non_null": self.non_null,
            "free_text_rows": self.free_text_rows,
            "counts": dict(self.counts),
            "conf_sum": dict(self.conf_sum),
            "sub_counts": dict(self.sub_counts),
            "sub_seen": self.sub_seen,
            "sub_distinct": {k: sorted(v) for k, v in self.sub_distinct.items()},
            "sub_rows": self.sub_rows,
            "sub_hit_rows": dict(self.sub_hit_rows),
            "wordy_rows": self.wordy_rows,
            "word_checked_rows": self.word_checked_rows,
            "shape_counts": dict(self.shape_counts),
            "examples": self.examples,
            "sequence": {e: _is_sequence(nums) for e, nums in self.numbers.items()},
            "truncated": self.truncated,
            "skipped_reason": self.skipped_reason,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnStats:
        st = cls(name=d["name"], dtype=d["dtype"])
        st.merge_dict(d)
        return st

    def merge_dict(self, d: dict[str, Any]) -> None:
        self.non_null += d["non_null"]
        self.free_text_rows += d["free_text_rows"]
        self.counts.update(d["counts"])
        self.conf_sum.update(d["conf_sum"])
        self.sub_counts.update(d["sub_counts"])
        self.sub_seen += d["sub_seen"]
        for k, v in d["sub_distinct"].items():
            self.sub_distinct.setdefault(k, set()).update(v)
        self.sub_rows += d.get("sub_rows", 0)
        self.sub_hit_rows.update(d.get("sub_hit_rows", {}))
        self.wordy_rows += d.get("wordy_rows", 0)
        self.word_checked_rows += d.get("word_checked_rows", 0)
        self.shape_counts.update(d["shape_counts"])
        for ent, exs in d["examples"].items():
            for ex in exs:
                self.add_example(ent, ex)
        for ent, seq in d["sequence"].items():
            votes = self.sequence_votes.setdefault(ent, [0, 0])
            votes[0 if seq else 1] += 1
        self.truncated += d["truncated"]
        self.skipped_reason = self.skipped_reason or d["skipped_reason"]


def _distinct(strings: pl.Series) -> pl.DataFrame:
    """Distinct values ``v`` with their row counts ``n``. Hashing pays off for repetitive columns (cities,
    statuses); for nearly unique ones (IDs, phones) a look at the head decides to skip it."""
    strings = strings.rename("v")  # a column may be called "n" or "v" itself
    head = strings.head(DISTINCT_PROBE)
    if strings.len() > DISTINCT_PROBE and head.n_unique() > 0.9 * head.len():
        return pl.DataFrame({"v": strings, "n": pl.repeat(1, strings.len(), dtype=pl.UInt32, eager=True)})
    return strings.value_counts(name="n")


def _is_texty(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)


def _as_strings(series: pl.Series) -> pl.Series | None:
    """The column as strings for value classification, or None when its type cannot hold a structured
    value (floats, booleans, dates are judged by header alone)."""
    dt = series.dtype
    if _is_texty(dt):
        return series.cast(pl.String)
    if dt.is_integer():
        return series.cast(pl.String)
    if isinstance(dt, pl.Decimal):
        return series.cast(pl.String)
    if isinstance(dt, pl.List | pl.Array):
        inner = series.explode()
        return _as_strings(inner) if not isinstance(inner.dtype, pl.List | pl.Struct) else None
    return None


class TableClassifier:
    """Feed a table's batches (polars DataFrames) and get column verdicts."""

    def __init__(self, *, text_detectors: bool = True) -> None:
        self.columns: dict[str, ColumnStats] = {}
        self.rows = 0
        self._text_detectors = text_detectors

    def add(self, df: pl.DataFrame) -> None:
        self.rows += df.height
        todo = []
        # One pass over the columns in order: looking each up by name (df.schema[name], df[name]) walks
        # the schema every time, and a 100,000-column CSV would take hours.
        for series in df.get_columns():
            name = series.name
            st = self.columns.get(name)
            if st is None:
                st = self.columns[name] = ColumnStats(name=name, dtype=str(series.dtype))
            if st.skipped_reason is None:
                todo.append((st, series))
        # Many text columns of few rows (a 100,000-column CSV): one pass over all of them in long form,
        # instead of some thirty small polars calls per column.
        per_group = WIDE_MAX_CELLS // max(1, df.height)
        wide = [(st, s) for st, s in todo if s.dtype == pl.String]
        if len(wide) >= WIDE_MIN_COLUMNS and per_group >= WIDE_MIN_COLUMNS:
            for i in range(0, len(wide), per_group):
                self._add_wide(wide[i : i + per_group])
            todo = [(st, s) for st, s in todo if s.dtype != pl.String]
        # Columns are independent and polars releases the GIL while it computes: two threads keep both
        # cores busy. Each thread only touches its own column's stats.
        if len(todo) > 1 and _POOL_WORKERS > 1:
            list(_pool().map(lambda a: self._add_column(*a), todo))
        else:
            for st, series in todo:
                self._add_column(st, series)

    # The per-column pass. Every step is a polars expression over the distinct values of the batch.
    def _add_column(self, st: ColumnStats, series: pl.Series) -> None:
        dt = series.dtype
        if dt == pl.Binary:
            st.skipped_reason = "binary column, not scanned"
            return
        if isinstance(dt, pl.Struct | pl.Object | pl.Null):
            if isinstance(dt, pl.Null):
                return
            st.skipped_reason = f"column of type {dt} not scanned"
            return
        values = series.drop_nulls()
        if values.len() == 0:
            return
        hint = header_hint(st.name)
        coded = hint.entity in ("AGE", "GENDER") and values.dtype.is_numeric()  # 30, or 1 = male
        strings = None if coded else _as_strings(values)
        if strings is None:
            st.non_null += values.len()
            self._typed_shapes(st, values, hint)
            return
        if values.dtype.is_integer():
            # Digits only: nothing to strip, no text, no names; just the numbers long enough to matter.
            st.non_null += strings.len()
            u = _distinct(strings).with_columns(len=pl.col("v").str.len_bytes())
            self._whole_values(st, u.filter(pl.col("len") >= MIN_STRUCTURED_CHARS))
            return
        strings = strings.str.strip_chars()
        # Repeated values are judged once (cities, statuses, names); unique columns pay one hash pass.
        u = _distinct(strings).filter(pl.col("v").str.len_bytes() > 0)
        if u.height == 0:
            return
        st.non_null += int(u.get_column("n").sum())
        long = u.get_column("v").str.len_bytes() > MAX_CELL_CHARS
        if long.any():
            st.truncated += int(u.filter(long).get_column("n").sum())
            u = u.with_columns(pl.col("v").str.slice(0, MAX_CELL_CHARS))
        u = u.with_columns(len=pl.col("v").str.len_chars())
        ln = pl.col("len")
        short = u.filter(ln <= MAX_WHOLE_CHARS)
        # A value that validates as a whole (a phone, an ID) is neither text nor a name nor an address:
        # the later passes look only at the rest.
        rest = self._whole_values(st, short.filter(ln >= MIN_STRUCTURED_CHARS))
        rest = pl.concat([short.filter(ln < MIN_STRUCTURED_CHARS), rest])
        # Values made of several words (Chinese text, spaces, punctuation) are cut into tokens.
        texty = pl.concat([rest.filter(ln >= MIN_TEXT_CHARS), u.filter(ln > MAX_WHOLE_CHARS)])
        texty = texty.filter(pl.col("v").str.contains(TEXT_MARK_RE))
        if texty.height:
            st.free_text_rows += int(texty.get_column("n").sum())
            self._free_text(st, texty)
        self._shapes(st, rest, hint)
        # The batches that feed the subsample also say what share of rows has words at all (only the
        # first batch, usually: a regex over every batch of a 10M-row table would cost more than it tells).
        if self._text_detectors and _is_texty(series.dtype) and st.sub_seen < TEXT_DETECTOR_SAMPLE:
            wordy = u.filter(pl.col("v").str.contains(WORDY_RE))
            st.wordy_rows += int(wordy.get_column("n").sum())
            st.word_checked_rows += int(u.get_column("n").sum())
            self._text_subsample(st, wordy)

    def _add_wide(self, group: list[tuple[ColumnStats, pl.Series]]) -> None:
        """``_add_column`` for many text columns at once: the same steps over one long frame of (column
        index ``c``, value ``v``, rows ``n``), the results grouped by column. Gives the same statistics
        (tests/datamap/test_columns.py compares the two), at a cost that grows with the cells, not with
        the number of polars calls per column."""
        stats = [st for st, _ in group]
        hints = [header_hint(st.name) for st in stats]
        frame = pl.DataFrame([s.rename(str(i)) for i, (_, s) in enumerate(group)])
        cells = (
            frame.unpivot(variable_name="c", value_name="v")
            .drop_nulls("v")
            .with_columns(pl.col("c").cast(pl.UInt32), pl.col("v").str.strip_chars())
            .filter(pl.col("v").str.len_bytes() > 0)
        )
        if cells.height == 0:
            return
        u = cells.group_by("c", "v").agg(n=pl.len().cast(pl.UInt32))
        for c, rows in u.group_by("c").agg(pl.col("n").sum()).iter_rows():
            stats[c].non_null += int(rows)
        long = pl.col("v").str.len_bytes() > MAX_CELL_CHARS
        for c, rows in u.filter(long).group_by("c").agg(pl.col("n").sum()).iter_rows():
            stats[c].truncated += int(rows)
        u = u.with_columns(pl.col("v").str.slice(0, MAX_CELL_CHARS)).with_columns(
            len=pl.col("v").str.len_chars()
        )
        ln = pl.col("len")
        short = u.filter(ln <= MAX_WHOLE_CHARS)
        rest = self._whole_values_wide(stats, short.filter(ln >= MIN_STRUCTURED_CHARS))
        rest = pl.concat([short.filter(ln < MIN_STRUCTURED_CHARS), rest])
        texty = pl.concat([rest.filter(ln >= MIN_TEXT_CHARS), u.filter(ln > MAX_WHOLE_CHARS)])
        texty = texty.filter(pl.col("v").str.contains(TEXT_MARK_RE))
        if texty.height:
            for c, rows in texty.group_by("c").agg(pl.col("n").sum()).iter_rows():
                stats[c].free_text_rows += int(rows)
            self._free_text_wide(stats, texty)
        self._shapes_wide(stats, hints, rest)
        if self._text_detectors:
            open_ = [i for i, st in enumerate(stats) if st.sub_seen < TEXT_DETECTOR_SAMPLE]
            u = u.filter(pl.col("c").is_in(open_))
            wordy = u.filter(pl.col("v").str.contains(WORDY_RE))
            for c, rows in wordy.group_by("c").agg(pl.col("n").sum()).iter_rows():
                stats[c].wordy_rows += int(rows)
            for c, rows in u.group_by("c").agg(pl.col("n").sum()).iter_rows():
                stats[c].word_checked_rows += int(rows)
            self._text_subsample_wide(stats, wordy)

    def _whole_values_wide(self, stats: list[ColumnStats], u: pl.DataFrame) -> pl.DataFrame:
        if u.height == 0:
            return u
        cls = classify_values(u.get_column("v"))
        matched = cls.get_column("entity").is_not_null()
        rest = u.filter(~matched)
        found = u.select("c", "v", "n").with_columns(cls).filter(matched)
        agg = found.group_by("c", "entity", "needs_context").agg(
            pl.col("n").sum().alias("rows"),
            (pl.col("confidence") * pl.col("n")).sum().alias("conf"),
            pl.col("v").head(MAX_EXAMPLES).alias("ex"),
        )
        for c, ent, ctx, rows, conf, ex in agg.iter_rows():
            st = stats[c]
            key = f"{ent}?" if ctx else ent
            st.counts[key] += int(rows)
            st.conf_sum[key] += float(conf)
            for v in ex:
                st.add_example(ent, mask_value(ent, v))
        seq = (
            found.filter(pl.col("entity").is_in(list(SEQUENCE_ENTITIES)))
            .group_by("c", "entity")
            .agg(pl.col("v").head(SEQUENCE_SAMPLE))
        )
        for c, ent, values in seq.iter_rows():
            nums = stats[c].numbers.setdefault(ent, [])
            for v in values[: max(0, SEQUENCE_SAMPLE - len(nums))]:
                digits = re.sub(r"[^0-9]", "", v)[-18:]
                if digits:
                    nums.append(int(digits))
        return rest

    def _free_text_wide(self, stats: list[ColumnStats], u: pl.DataFrame) -> None:
        toks = (
            u.with_row_index("row")
            .select("c", "row", "n", tok=normalize_expr(pl.col("v")).str.extract_all(CANDIDATE_PATTERN))
            .explode("tok")
            .drop_nulls("tok")
        )
        if toks.height == 0:
            return
        cls = toks.with_columns(classify_values(toks.get_column("tok"))).filter(
            pl.col("entity").is_not_null() & ~pl.col("needs_context")
        )
        agg = (
            cls.group_by("c", "entity", "row")
            .agg(pl.col("n").first(), pl.col("confidence").max(), pl.col("tok").first())
            .group_by("c", "entity")
            .agg(
                pl.col("n").sum().alias("rows"),
                (pl.col("confidence") * pl.col("n")).sum().alias("conf"),
                pl.col("tok").head(MAX_EXAMPLES).alias("ex"),
            )
        )
        for c, ent, rows, conf, ex in agg.iter_rows():
            st = stats[c]
            st.counts[f"{ent}#text"] += int(rows)
            st.conf_sum[f"{ent}#text"] += float(conf)
            for v in ex:
                st.add_example(ent, mask_value(ent, v))

    def _shapes_wide(self, stats: list[ColumnStats], hints: list[HeaderHint], u: pl.DataFrame) -> None:
        if u.height == 0:
            return
        v, ln, c = pl.col("v"), pl.col("len"), pl.col("c")
        person = [i for i, h in enumerate(hints) if h.entity == "PERSON"]
        subsets = [
            ("cn_name", u.filter(ln.is_between(2, 4)), CN_NAME_RE),
            ("address", u.filter(ln >= 6), f"(?:{ADDRESS_RE})|(?:{EN_ADDRESS_RE})"),
            ("en_name", u.filter(c.is_in(person) & (ln >= 5)), EN_NAME_RE),
        ]
        for kind, sub, rx in subsets:
            hit = sub.filter(v.str.contains(rx))
            ent = "ADDRESS" if kind == "address" else "PERSON"
            for col, rows, ex in hit.group_by("c").agg(pl.col("n").sum(), v.head(MAX_EXAMPLES)).iter_rows():
                st = stats[col]
                st.shape_counts[kind] += int(rows)
                for val in ex:
                    st.add_example(ent, mask_value(ent, val))
        ages = [i for i, h in enumerate(hints) if h.entity == "AGE"]
        if ages:
            hit = u.filter(c.is_in(ages) & v.str.contains(r"^[0-9]{1,3}$"))
            hit = hit.filter(v.cast(pl.Int64, strict=False) <= 130)
            for col, rows in hit.group_by("c").agg(pl.col("n").sum()).iter_rows():
                stats[col].shape_counts["age"] += int(rows)
        vocab = header_rules().get("vocabulary", {})
        for ent in {h.entity for h in hints if h.entity in vocab}:  # type: ignore[operator]
            cols = [i for i, h in enumerate(hints) if h.entity == ent]
            words = [str(w).lower() for w in vocab[ent]]  # type: ignore[index]
            hit = u.filter(c.is_in(cols) & v.str.to_lowercase().is_in(words))
            for col, rows in hit.group_by("c").agg(pl.col("n").sum()).iter_rows():
                stats[col].shape_counts["vocab"] += int(rows)

    def _text_subsample_wide(self, stats: list[ColumnStats], wordy: pl.DataFrame) -> None:
        room = pl.DataFrame(
            {"c": range(len(stats)), "room": [TEXT_DETECTOR_SAMPLE - st.sub_seen for st in stats]},
            schema={"c": pl.UInt32, "room": pl.Int64},
        )
        take = (
            wordy.join(room.filter(pl.col("room") > 0), on="c")
            .filter(pl.int_range(pl.len()).over("c") < pl.col("room"))
            .select("c", "n", pl.col("v").str.slice(0, 2000).str.replace_all(r"[\r\n]", " "))
        )
        if take.height == 0:
            return
        cols, rows, texts = (take.get_column(k).to_list() for k in ("c", "n", "v"))
        # One detector call per block of values, not one per column.
        by_col: dict[int, list[tuple[str, int, int, str]]] = {}
        for start in range(0, len(texts), 20_000):
            for ent, i, digest, masked in _detect_lines(texts[start : start + 20_000]):
                by_col.setdefault(cols[start + i], []).append((ent, start + i, digest, masked))
        for col, found in by_col.items():
            _add_detections(stats[col], found, rows)
        for col, n_vals, n_rows in take.group_by("c").agg(pl.len(), pl.col("n").sum()).iter_rows():
            stats[col].sub_seen += int(n_vals)
            stats[col].sub_rows += int(n_rows)

    def _whole_values(self, st: ColumnStats, u: pl.DataFrame) -> pl.DataFrame:
        """``u``: distinct values ``v`` with their row counts ``n`` (and ``len``). Returns the rows of ``u``
        that are no structured entity."""
        if u.height == 0:
            return u
        cls = classify_values(u.get_column("v"))
        matched = cls.get_column("entity").is_not_null()
        rest = u.filter(~matched)
        found = u.select("v", "n").with_columns(cls).filter(matched)
        if found.height == 0:
            return rest
        # Values that need context are counted apart from those that stand alone, even for one entity:
        # bare digit runs read as phone numbers only beside a phone word must not swell a column's share
        # of valid mobile numbers.
        agg = found.group_by("entity", "needs_context", maintain_order=True).agg(
            pl.col("n").sum().alias("rows"),
            (pl.col("confidence") * pl.col("n")).sum().alias("conf"),
            pl.col("v").head(MAX_EXAMPLES).alias("ex"),
        )
        for ent, ctx, rows, conf, ex in agg.iter_rows():
            key = f"{ent}?" if ctx else ent  # entities that need context are kept apart
            st.counts[key] += int(rows)
            st.conf_sum[key] += float(conf)
            for v in ex:
                st.add_example(ent, mask_value(ent, v))
            if ent in SEQUENCE_ENTITIES:
                nums = st.numbers.setdefault(ent, [])
                if len(nums) < SEQUENCE_SAMPLE:
                    digits = (
                        found.filter(pl.col("entity") == ent)
                        .get_column("v")
                        .head(SEQUENCE_SAMPLE - len(nums))
                        .str.replace_all(r"[^0-9]", "")
                        .str.slice(-18)
                        .cast(pl.Int64, strict=False)
                        .drop_nulls()
                    )
                    nums.extend(digits.to_list())
        return rest

    def _free_text(self, st: ColumnStats, u: pl.DataFrame) -> None:
        """``u``: distinct texts ``v`` with row counts ``n``; the share counts rows holding the entity."""
        toks = (
            u.with_row_index("row")
            .select("row", "n", tok=normalize_expr(pl.col("v")).str.extract_all(CANDIDATE_PATTERN))
            .explode("tok")
            .drop_nulls("tok")
        )
        if toks.height == 0:
            return
        cls = toks.with_columns(classify_values(toks.get_column("tok"))).filter(
            pl.col("entity").is_not_null() & ~pl.col("needs_context")
        )
        if cls.height == 0:
            return
        agg = (
            cls.group_by("entity", "row")
            .agg(pl.col("n").first(), pl.col("confidence").max(), pl.col("tok").first())
            .group_by("entity")
            .agg(
                pl.col("n").sum().alias("rows"),
                (pl.col("confidence") * pl.col("n")).sum().alias("conf"),
                pl.col("tok").head(MAX_EXAMPLES).alias("ex"),
            )
        )
        for ent, rows, conf, ex in agg.iter_rows():
            st.counts[f"{ent}#text"] += int(rows)
            st.conf_sum[f"{ent}#text"] += float(conf)
            for v in ex:
                st.add_example(ent, mask_value(ent, v))

    def _shapes(self, st: ColumnStats, u: pl.DataFrame, hint: HeaderHint) -> None:
        """Names and addresses by shape, counted over distinct values weighted by their rows."""
        if u.height == 0:
            return
        v, ln = pl.col("v"), pl.col("len")
        # Each regex runs only on the values whose length allows a match (a when/then would run it on all).
        subsets = {
            "cn_name": (u.filter(ln.is_between(2, 4)), CN_NAME_RE),
            "address": (u.filter(ln >= 6), f"(?:{ADDRESS_RE})|(?:{EN_ADDRESS_RE})"),
        }
        if hint.entity == "PERSON":
            subsets["en_name"] = (u.filter(ln >= 5), EN_NAME_RE)
        for kind, (sub, rx) in subsets.items():
            if sub.height == 0:
                continue
            hit = sub.filter(v.str.contains(rx))
            st.shape_counts[kind] += int(hit.get_column("n").sum())
            ent = "ADDRESS" if kind == "address" else "PERSON"
            if hit.height and len(st.examples.get(ent, [])) < MAX_EXAMPLES:
                for val in hit.get_column("v").head(MAX_EXAMPLES).to_list():
                    st.add_example(ent, mask_value(ent, val))
        if hint.entity == "AGE":
            ages = u.filter(v.str.contains(r"^[0-9]{1,3}$"))
            ages = ages.filter(v.cast(pl.Int64, strict=False) <= 130)
            st.shape_counts["age"] += int(ages.get_column("n").sum())
        vocab = header_rules().get("vocabulary", {})
        if hint.entity in vocab:  # type: ignore[operator]
            words = [str(w).lower() for w in vocab[hint.entity]]  # type: ignore[index]
            st.shape_counts["vocab"] += int(u.filter(v.str.to_lowercase().is_in(words)).get_column("n").sum())

    def _typed_shapes(self, st: ColumnStats, values: pl.Series, hint: HeaderHint) -> None:
        dt = values.dtype
        if hint.entity == "DATE_OF_BIRTH" and (dt.is_temporal()):
            st.shape_counts["date"] += values.len()
        elif hint.entity == "GPS_COORDINATE" and dt.is_float():
            st.shape_counts["coordinate"] += int(values.is_between(-180, 180).sum())
        elif hint.entity == "AGE" and dt.is_numeric():
            st.shape_counts["age"] += int(values.is_between(0, 130).sum())
        elif hint.entity == "GENDER" and dt.is_integer():
            st.shape_counts["vocab"] += int(values.is_in([0, 1, 2]).sum())

    def _text_subsample(self, st: ColumnStats, wordy: pl.DataFrame) -> None:
        """Names, addresses and sensitive categories from the per-value text detectors, on a bounded
        subsample (these detectors read context and are not vectorized). ``wordy``: distinct values with
        words (``v``) and their row counts (``n``). The values go through the detectors as one text, one
        value a line, so the cost is one call per column, not one per value."""
        take = wordy.head(TEXT_DETECTOR_SAMPLE - st.sub_seen)
        if take.height == 0:
            return
        texts = take.get_column("v").str.slice(0, 2000).str.replace_all(r"[\r\n]", " ").to_list()
        rows = take.get_column("n").to_list()
        _add_detections(st, _detect_lines(texts), rows)
        st.sub_seen += take.height
        st.sub_rows += sum(rows)

    # --- verdicts --------------------------------------------------------------------------------------
    def verdicts(self) -> list[ColumnVerdict]:
        out: list[ColumnVerdict] = []
        for st in self.columns.values():
            out.extend(column_verdicts(st))
        return out


def _detect_lines(texts: list[str]) -> list[tuple[str, int, int, str]]:
    """Run the registry's text detectors (not the structured one) over ``texts``, one value a line, in
    one call. Returns (entity, index of the value, hash of the found string, masked string) per finding;
    the hashes stay in memory (a phrase repeated by a template is not many people)."""
    from piguard.detect import default_registry, scan_text

    reg = default_registry()
    if not texts or not any(d.name != "structured" for d in reg.detectors):
        return []
    structured = set(reg.detectors[0].entities)
    text = "\n".join(texts)
    with _TEXT_LOCK:  # the text detectors (models, caches) are not known to be thread-safe
        findings = scan_text(text, registry=reg)
    return [
        (f.entity, f.line - 1, _stable_hash(text[f.start : f.end]), f.masked)
        for f in findings
        if f.entity not in structured
    ]


def _add_detections(st: ColumnStats, found: list[tuple[str, int, int, str]], rows: list[int]) -> None:
    """Fold ``_detect_lines`` findings for one column into its stats; ``rows[i]``: rows value i stands for."""
    lines: dict[str, set[int]] = {}
    for ent, i, digest, masked in found:
        lines.setdefault(ent, set()).add(i)
        st.sub_distinct.setdefault(ent, set()).add(digest)
        st.add_example(ent, masked)
    for ent, idx in lines.items():
        st.sub_counts[ent] += len(idx)
        st.sub_hit_rows[ent] += sum(rows[i] for i in idx)


@dataclass(frozen=True, slots=True)
class ColumnVerdict:
    column: str
    entity: str
    share: float
    confidence: float
    evidence: str  # why, in words (header, validated share)
    examples_masked: tuple[str, ...]
    # The figures behind ``share``: rows holding the entity, rows judged, and how they were counted.
    counts: dict[str, object] = field(default_factory=dict)


def _is_sequence(nums: list[int]) -> bool:
    """Dense, nearly consecutive numbers are a counter (order or serial numbers), not phones or cards."""
    if len(nums) < 20:
        return False
    s = pl.Series(nums, dtype=pl.Int64).unique().sort()
    if s.len() < 20:
        return False
    gap = s.diff().drop_nulls().median()
    return gap is not None and float(gap) <= SEQUENCE_MAX_MEDIAN_GAP  # type: ignore[arg-type]


def _stable_hash(text: str) -> int:
    """Same in every process (Python's hash() is salted per process; partial stats are merged across)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def _counter_like(st: ColumnStats, entity: str) -> bool:
    if entity in st.sequence_votes:
        yes, no = st.sequence_votes[entity]
        return yes > no
    return entity in st.numbers and _is_sequence(st.numbers[entity])


def column_verdicts(st: ColumnStats) -> list[ColumnVerdict]:
    """Decide which entities a column holds (rules in docs/datamap.md)."""
    if st.non_null == 0 or st.skipped_reason:
        return []
    hint = header_hint(st.name)
    tax = taxonomy.entities()
    out: list[ColumnVerdict] = []
    n = st.non_null
    free_text = st.free_text_rows >= n / 2
    header_ev = f"header {st.name!r} matches {hint.synonym!r}" if hint.entity else ""
    decided: set[str] = set()

    # Whole-value evidence first, then values found inside text.
    for key, rows in sorted(st.counts.items(), key=lambda kv: (kv[0].endswith("#text"), -kv[1])):
        in_text = key.endswith("#text")
        needs_ctx = key.endswith("?")
        ent = key.removesuffix("#text").rstrip("?")
        if ent in decided or not (tax.get(ent) is None or tax[ent].personal):
            continue
        share = rows / n
        conf = st.conf_sum[key] / rows if rows else 0.0
        named = hint.entity == ent
        if in_text:
            ok = conf >= TEXT_MIN_CONFIDENCE
            why = f"{rows} of {n} values contain a validated {ent} in text"
        elif named:
            ok = share >= SHARE_WITH_HEADER
            why = f"{header_ev}; {share:.0%} of values validate"
        elif needs_ctx:
            ok = False  # a bare date or digit run says nothing without a header naming it
            why = ""
        elif hint.negative or hint.entity is not None:
            ok = share >= SHARE_NEGATIVE_HEADER
            why = f"{share:.0%} of values validate although the header says otherwise"
        else:
            ok = share >= SHARE_NO_HEADER
            why = f"{share:.0%} of values validate"
        if ok and not named and _counter_like(st, ent):
            ok = False  # consecutive numbers: a counter that happens to pass the check
        if not ok:
            continue
        if named:
            conf = min(0.99, max(conf, 0.6) + 0.1)
        confidence = round(
            conf * (min(1.0, share / SHARE_NO_HEADER) if not in_text and not named else 1.0), 3
        )
        decided.add(ent)
        basis = "validated values inside text" if in_text else "validated whole values"
        counts = {"basis": basis, "rows_with_entity": rows, "non_empty": n}
        out.append(
            ColumnVerdict(
                st.name, ent, round(share, 4), confidence, why, tuple(st.examples.get(ent, ())), counts
            )
        )

    # Names and addresses: vectorized shapes, then the text detectors' subsample.
    for ent, shape_key in (("PERSON", "cn_name"), ("ADDRESS", "address")):
        if ent in decided:
            continue
        shape = st.shape_counts[shape_key] + (
            st.shape_counts["en_name"] if ent == "PERSON" and hint.entity == ent else 0
        )
        share = shape / n
        named = hint.entity == ent
        if (named and share >= SHARE_WITH_HEADER) or (not hint.negative and share >= SHARE_NO_HEADER):
            why = (
                f"{header_ev}; " if named else ""
            ) + f"{share:.0%} of values have the shape of a {ent.lower()}"
            conf = round(min(0.95, 0.55 + 0.4 * share + (0.1 if named else 0.0)), 3)
            decided.add(ent)
            counts = {"basis": f"shape of a {ent.lower()}", "rows_with_entity": shape, "non_empty": n}
            out.append(
                ColumnVerdict(
                    st.name, ent, round(share, 4), conf, why, tuple(st.examples.get(ent, ())), counts
                )
            )
    if st.sub_seen:
        for ent, hits in st.sub_counts.most_common():
            if ent in decided:
                continue
            share = sample_share(st, ent)
            distinct = len(st.sub_distinct.get(ent, ()))
            if distinct < 2 or distinct < 0.1 * hits:
                continue  # one phrase repeated row after row is a template, not many people
            needed = SHARE_WITH_HEADER if hint.entity == ent else SHARE_NO_HEADER
            if (free_text and hits >= 1) or share >= needed:
                decided.add(ent)
                why = (
                    f"text detectors found {ent} in {hits} of {st.sub_seen} sampled values "
                    f"({st.sub_hit_rows[ent]} of the {st.sub_rows} rows they stand for); "
                    f"{st.wordy_rows} of {st.word_checked_rows} values read for it have words"
                )
                counts = {
                    "basis": "text detectors on a sample",
                    "rows_with_entity": round(share * n),
                    "non_empty": n,
                    "sampled_values": st.sub_seen,
                    "sampled_rows": st.sub_rows,
                    "sampled_rows_with_entity": st.sub_hit_rows[ent],
                    "rows_with_words": st.wordy_rows,
                    "rows_checked_for_words": st.word_checked_rows,
                }
                out.append(
                    ColumnVerdict(
                        st.name, ent, round(share, 4), 0.7, why, tuple(st.examples.get(ent, ())), counts
                    )
                )

    # Entities only a header can name (no validator exists for gender, ethnicity, income...).
    ent = hint.entity
    if ent and ent not in decided and not _validatable(ent):
        shape_key = {"DATE_OF_BIRTH": "date", "GPS_COORDINATE": "coordinate", "AGE": "age"}.get(ent)
        vocab = ent in header_rules().get("vocabulary", {})  # type: ignore[operator]
        if vocab:
            matched = st.shape_counts["vocab"]
            share, ok, basis = matched / n, matched / n >= SHARE_NO_HEADER, "header, values in its vocabulary"
        elif shape_key:
            matched = st.shape_counts[shape_key]
            share, ok, basis = (
                matched / n,
                matched / n >= SHARE_NO_HEADER,
                f"header, values of {shape_key} shape",
            )
        else:
            # Nothing in the values can confirm these (income, diagnosis...): the header speaks for every
            # non-empty value, and the evidence says so.
            matched, share, ok = n, 1.0, ent not in ("PERSON", "ADDRESS")
            basis = "header only (no validator for this entity; share assumed)"
        if ok:
            out.append(
                ColumnVerdict(
                    st.name,
                    ent,
                    round(share, 4),
                    _HEADER_ONLY_CONFIDENCE,
                    header_ev,
                    tuple(st.examples.get(ent, ())),
                    {"basis": basis, "rows_with_entity": matched, "non_empty": n},
                )
            )
    return out


def sample_share(st: ColumnStats, entity: str) -> float:
    """Share of non-empty rows holding ``entity`` by the text detectors' subsample: the share of rows whose
    value has words at all (counted in the batches the subsample read), times the share of sampled rows
    (weighted by how often each sampled value occurs) in which the entity was found."""
    if not st.sub_rows or not st.non_null:
        return 0.0
    if not st.word_checked_rows:
        return 0.0
    return min(1.0, (st.sub_hit_rows[entity] / st.sub_rows) * (st.wordy_rows / st.word_checked_rows))


def _validatable(entity: str) -> bool:
    """Entities whose values the validators check; for them the header alone is not enough."""
    from piguard.detect.registry import STRUCTURED_ENTITIES

    return entity in STRUCTURED_ENTITIES and entity not in ("DATE_OF_BIRTH", "GPS_COORDINATE")


def header_only_note(st: ColumnStats) -> str | None:
    """A header naming a validatable entity whose values do not validate: worth telling the reader."""
    hint = header_hint(st.name)
    if hint.entity and _validatable(hint.entity) and st.non_null:
        share = st.counts.get(hint.entity, 0) / st.non_null
        if share < SHARE_WITH_HEADER:
            return (
                f"header suggests {hint.entity} but only {share:.0%} of {st.non_null} values validate; "
                "not reported"
            )
    return None


def combinations(table_entities: dict[str, list[str]]) -> dict[str, object] | None:
    """Does this table's set of PI columns identify people? ``table_entities`` maps column -> entities."""
    tax = taxonomy.entities()
    rules = header_rules()["combinations"]  # type: ignore[index]
    direct = {
        c: e
        for c, ents in table_entities.items()
        for e in ents
        if tax.get(e) and tax[e].identifier == "direct"
    }
    quasi = {
        c: e
        for c, ents in table_entities.items()
        for e in ents
        if tax.get(e) and tax[e].identifier == "quasi"
    }
    others = {c: e for c, ents in table_entities.items() for e in ents}
    if direct and len(others) >= 2:
        r = rules["direct_plus"]  # type: ignore[index]
        kind = "direct"
    elif len({e for e in quasi.values()}) >= int(rules["quasi"]["min_quasi"]):  # type: ignore[index]
        r = rules["quasi"]  # type: ignore[index]
        kind = "quasi"
    else:
        return None
    cols = sorted(table_entities)
    return {
        "kind": kind,
        "columns": cols,
        "entities": sorted({e for ents in table_entities.values() for e in ents}),
        "reason": r["reason_en"],
        "reason_zh": r["reason_zh"],
        "basis": r["basis"],
    }

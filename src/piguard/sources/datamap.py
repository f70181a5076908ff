"""The data map's model: what each table holds, and the one loop that classifies a table batch by batch.

Readers (``csvfile``, ``jsonfile``, ``parquet``, ``excel``, ``sql``, ``spark``) describe each table as a
``TableScan`` whose ``batches()`` yields bounded polars frames; ``map_table`` feeds them to the column
classifier and adds the verdicts to a ``DataMap``. Readers import this module; this module imports no
reader, and ``tables.py`` (the orchestrator) imports both.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import polars as pl

from piguard import taxonomy
from piguard.detect.columns import TableClassifier, combinations, header_only_note
from piguard.sources.redact import describe_error

ROW_KEYS = (
    "source",
    "table",
    "column",
    "entity",
    "share",
    "rows_scanned",
    "sensitive",
    "confidence",
    "examples_masked",
)
BATCH_ROWS = 200_000
_LONG_DIGITS = re.compile(r"\d{9,}")


@dataclass
class TableScan:
    """One table to map: where it is, how it is read, and a factory for its batches."""

    source: str
    table: str
    method: str  # e.g. "TABLESAMPLE SYSTEM (0.3%)", "every 100th row", "full"
    batches: Callable[[], Iterator[pl.DataFrame]]
    notes: list[str] = field(default_factory=list)
    skips: list[dict[str, str]] = field(default_factory=list)  # parts of the table that could not be read
    expected_rows: int | None = None  # for progress bars: rows the read should yield, when known
    # For error messages: strings that are never masked (names this reader put there itself) and strings
    # that always are (the password of the URL the table came from).
    identifiers: list[str] = field(default_factory=list)
    secrets: tuple[str, ...] = ()


# Called as a table is read: (the table, rows read so far, finished). The CLI draws a bar per table.
ProgressFn = Callable[[TableScan, int, bool], None]


@dataclass
class DataMap:
    rows: list[dict[str, object]] = field(default_factory=list)
    combinations: list[dict[str, object]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    tables: list[dict[str, object]] = field(default_factory=list)  # every table mapped, with or without PI
    notes: list[dict[str, str]] = field(default_factory=list)
    evidence: list[dict[str, object]] = field(default_factory=list)  # why each row was reported

    def skip(self, source: str, table: str, reason: str) -> None:
        self.skipped.append({"source": source, "table": table, "reason": reason})

    def extend(self, other: DataMap) -> None:
        self.rows.extend(other.rows)
        self.combinations.extend(other.combinations)
        self.skipped.extend(other.skipped)
        self.tables.extend(other.tables)
        self.notes.extend(other.notes)
        self.evidence.extend(other.evidence)

    def as_dict(self) -> dict[str, object]:
        return {
            "sources": self.rows,
            "combinations": self.combinations,
            "skipped": self.skipped,
            "tables": self.tables,
            "notes": self.notes,
            "evidence": self.evidence,
        }


def map_table(ts: TableScan, dm: DataMap, progress: ProgressFn | None = None) -> None:
    """Classify one table batch by batch; a failure in mid-table skips the table, not the scan."""
    clf = TableClassifier()
    dm.skipped.extend(ts.skips)
    if progress is not None:
        progress(ts, 0, False)
    try:
        for batch in ts.batches():
            clf.add(batch)
            if progress is not None:
                progress(ts, clf.rows, False)
    except MemoryError:
        dm.skip(ts.source, ts.table, "out of memory while reading this table")
        return
    except Exception as exc:  # readers raise driver and format errors of every kind; each skips one table
        keep = [ts.table, *ts.table.split("."), *ts.identifiers, *clf.columns]
        dm.skip(ts.source, ts.table, describe_error(exc, secrets=ts.secrets, keep=keep))
        return
    finally:
        if progress is not None:
            progress(ts, clf.rows, True)
    add_table_result(dm, ts.source, ts.table, ts.method, clf, ts.notes)


@functools.lru_cache(maxsize=65536)
def column_label(name: str) -> str:
    """A column name as reports show it: identifiers the validators accept (a phone number, an ID number,
    an e-mail address) masked. A file without a header row makes its first row of data the column names."""
    from piguard.detect import STRUCTURED_ENTITIES, scan_text

    if "@" not in name and sum(ch.isdigit() for ch in name) < 7:
        return name  # a phone, ID or card number has more digits; "c12345" is a name
    found = scan_text(name[:1000], entities=STRUCTURED_ENTITIES)
    for f in sorted(found, key=lambda f: f.start, reverse=True):
        name = name[: f.start] + f.masked + name[f.end :]
    # A digit run as long as a phone number's that the validators did not take ("13812345678aaa") is
    # still no column's name; dates (8 digits) are left alone.
    return _LONG_DIGITS.sub(lambda m: m.group(0)[:3] + "*" * (len(m.group(0)) - 3), name)


def add_table_result(
    dm: DataMap, source: str, table: str, method: str, clf: TableClassifier, notes: list[str] | None = None
) -> None:
    tax = taxonomy.entities()
    table_entities: dict[str, list[str]] = {}
    labels = {name: column_label(name) for name in clf.columns}
    masked_names = sum(1 for name, label in labels.items() if label != name)
    for v in clf.verdicts():
        et = tax.get(v.entity)
        dm.rows.append(
            {
                "source": source,
                "table": table,
                "column": labels[v.column],
                "entity": v.entity,
                "share": v.share,
                "rows_scanned": clf.rows,
                "sensitive": bool(et and et.sensitive),
                "confidence": v.confidence,
                "examples_masked": list(v.examples_masked),
            }
        )
        dm.evidence.append(
            {
                "source": source,
                "table": table,
                "column": labels[v.column],
                "entity": v.entity,
                "evidence": v.evidence.replace(v.column, labels[v.column]),
                **v.counts,
            }
        )
        table_entities.setdefault(labels[v.column], []).append(v.entity)
    for st in clf.columns.values():
        label = labels[st.name]
        if st.skipped_reason:
            dm.skip(source, table, f"column {label!r}: {st.skipped_reason}")
        if st.truncated:
            dm.notes.append(
                {
                    "source": source,
                    "table": table,
                    "note": f"column {label!r}: {st.truncated} cell(s) over "
                    f"1 MiB, only the first 1 MiB of each was scanned",
                }
            )
        note = header_only_note(st)
        if note and label not in table_entities:
            dm.notes.append({"source": source, "table": table, "note": f"column {label!r}: {note}"})
    if masked_names:
        dm.notes.append(
            {
                "source": source,
                "table": table,
                "note": f"{masked_names} column name(s) hold personal data and are shown masked "
                "(a file without a header row?)",
            }
        )
    for n in notes or []:
        dm.notes.append({"source": source, "table": table, "note": n})
    combo = combinations(table_entities)
    if combo is not None:
        dm.combinations.append({"source": source, "table": table, **combo})
    dm.tables.append(
        {
            "source": source,
            "table": table,
            "rows_scanned": clf.rows,
            "columns": len(clf.columns),
            "pi_columns": len(table_entities),
            "sensitive_columns": sum(
                1 for ents in table_entities.values() if any(taxonomy.is_sensitive(e) for e in ents)
            ),
            "method": method,
        }
    )


__all__ = ["BATCH_ROWS", "ROW_KEYS", "DataMap", "ProgressFn", "TableScan", "add_table_result", "map_table"]

"""SQL databases by SQLAlchemy URL (SQLite, PostgreSQL with psycopg 3, MySQL/MariaDB with PyMySQL).

* Read only: PostgreSQL sessions run with ``default_transaction_read_only``, MySQL sessions with
  ``SET SESSION TRANSACTION READ ONLY``; SQLite files are opened by URI with ``mode=ro`` (the path
  percent-encoded, so ``#`` or ``?`` in a name cannot cut the URI short and a missing file is never
  created). Only SELECT statements (and PostgreSQL's ``COPY (SELECT ...) TO STDOUT``) are issued.
* Bounded waits (``ReadLimits.timeout_s``, ``--timeout``): the connection, including the server's first
  reply, on every driver; then PyMySQL's read timeout on every reply, PostgreSQL's ``statement_timeout``
  on every sampling statement plus TCP keepalives and ``tcp_user_timeout`` against a dead peer, and
  SQLite's busy timeout on a locked file.
* Walks every schema (database on MySQL), table and view the user can see, narrowed by ``include`` and
  ``exclude`` patterns on ``schema.table`` before anything is reflected; a table it may not read is
  reported as skipped, and the scan goes on. Identifiers are quoted by the dialect, so a table named with
  ``"`` or a column named with a backtick is read like any other.
* Samples by default: ``TABLESAMPLE SYSTEM`` on PostgreSQL tables; on MySQL/MariaDB and SQLite a bounded
  random sample of key ranges (index seeks at random points of an integer primary key / rowid); views are
  read up to ``sample_rows`` rows. ``full`` streams every row through a server-side cursor in batches.
* Text cells are cut on the server to 1 MiB + 1 character, so a 100 MB cell never crosses the wire whole;
  binary columns are not read.
* Messages never carry the URL's password or the data a driver quotes (``piguard.sources.redact``).
"""

from __future__ import annotations

import io
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from piguard.detect.columns import MAX_CELL_CHARS
from piguard.sources.datamap import BATCH_ROWS, TableScan
from piguard.sources.limits import ReadLimits
from piguard.sources.paths import display_path
from piguard.sources.redact import describe_error, parse_url, redact_url, url_identifiers, url_secrets
from piguard.sources.selection import schema_selected, table_selected

SYSTEM_SCHEMAS = {
    "information_schema", "pg_catalog", "pg_toast", "mysql", "performance_schema", "sys",
}  # fmt: skip
SQL_BATCH_ROWS = 50_000
COPY_BLOCK_BYTES = 32 << 20
# Random key ranges read per table when sampling by primary key.
SAMPLE_RANGES = 20
APPLICATION_NAME = "piguard-scan"
SQLITE_MAGIC = b"SQLite format 3\x00"
# The extra that installs each backend's driver (the core install reads SQLite only).
_DRIVER_HINT = {
    "postgresql": "pip install 'piguard[db]' (psycopg)",
    "mysql": "pip install 'piguard[db]' (PyMySQL)",
    "mariadb": "pip install 'piguard[db]' (PyMySQL)",
}


def redact(url: str) -> str:
    """The URL as reports show it: password hidden by SQLAlchemy's own renderer."""
    return redact_url(url)


def is_sqlite_file(path: str) -> bool:
    """A regular file that starts with SQLite's header (whatever its name)."""
    try:
        p = Path(path)
        if not p.is_file():
            return False
        with p.open("rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def sqlite_engine(path: str, limits: ReadLimits | None = None) -> Engine:
    """An engine on an existing SQLite file, opened read-only by URI; never creates a file."""
    limits = limits or ReadLimits.from_env()
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError("no such SQLite file (it is never created)")
    if not p.is_file():
        raise ValueError("not a regular file")
    # Path.as_uri percent-encodes '#', '?', '%' and bytes that are not UTF-8; SQLite decodes them back.
    uri = p.absolute().as_uri() + "?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=limits.timeout_s, check_same_thread=False)

    return sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool)


def make_engine(url: str, limits: ReadLimits | None = None) -> Engine:
    """An engine whose every session is read only and whose every wait is bounded."""
    limits = limits or ReadLimits.from_env()
    # As the user meant it: a password holding an unencoded '@' is still the password (redact.parse_url).
    u = parse_url(url) or sa.make_url(url)
    backend = u.get_backend_name()
    timeout = limits.timeout_s
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        db = u.database or ""
        if not db or db == ":memory:":
            raise ValueError("an in-memory SQLite database holds nothing to scan")
        if u.query and not Path(db).exists():
            raise FileNotFoundError(
                "no such SQLite file (it is never created); a '?' in a file name is written %3F in a URL, "
                "or give the file's path instead of a URL"
            )
        return sqlite_engine(db, limits)
    if backend == "postgresql":
        ms = int(timeout * 1000)
        connect_args = {
            # libpq counts whole seconds and treats values under 2 as 2.
            "connect_timeout": max(2, round(timeout)),
            "options": f"-c default_transaction_read_only=on -c statement_timeout={ms}",
            "application_name": APPLICATION_NAME,
            "keepalives": 1,
            "keepalives_idle": max(1, int(timeout)),
            "keepalives_interval": max(1, int(timeout / 3)),
            "keepalives_count": 3,
            "tcp_user_timeout": ms,
        }
    elif backend in ("mysql", "mariadb"):
        # PyMySQL reads the server's greeting under read_timeout: without it a server that accepts and
        # never answers holds the scan for good.
        connect_args = {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
    try:
        eng = sa.create_engine(u, connect_args=connect_args, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        hint = _DRIVER_HINT.get(backend)
        raise ModuleNotFoundError(
            f"the {backend} driver ({exc.name}) is not installed" + (f": {hint}" if hint else "")
        ) from None

    if backend in ("mysql", "mariadb"):

        @sa.event.listens_for(eng, "connect")
        def _read_only(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            cur.close()

    return eng


def iter_sql_tables(
    url: str,
    *,
    full: bool,
    sample_rows: int,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    limits: ReadLimits | None = None,
    sqlite_path: str | None = None,
) -> Iterator[TableScan | dict[str, str]]:
    """The tables of the database at ``url`` (or of the SQLite file ``sqlite_path``), lazily."""
    source = display_path(sqlite_path) if sqlite_path else redact_url(url)
    secrets = () if sqlite_path else url_secrets(url)
    known = [display_path(sqlite_path)] if sqlite_path else list(url_identifiers(url))
    try:
        eng = sqlite_engine(sqlite_path, limits) if sqlite_path else make_engine(url, limits)
    except Exception as exc:
        why = describe_error(exc, secrets=secrets, keep=known)
        yield {"source": source, "table": "*", "reason": f"cannot open the database: {why}"}
        return
    try:
        try:
            with eng.connect() as conn:
                tables = _list_tables(conn, include, exclude)
        except Exception as exc:
            why = describe_error(exc, secrets=secrets, keep=known)
            yield {"source": source, "table": "*", "reason": f"cannot connect: {why}"}
            return
        for schema, name, kind in tables:
            qualified = f"{schema}.{name}" if schema else name
            if not table_selected(qualified, include, exclude):
                continue
            ts = TableScan(
                source,
                qualified,
                "full" if full else "sample",
                lambda: iter(()),
                expected_rows=None if full else sample_rows,
                identifiers=[name, schema or "", *known],
                secrets=secrets,
            )
            ts.batches = _batches(
                eng, schema, name, kind, full=full, sample_rows=sample_rows, scan=ts,
                stall_s=(limits or ReadLimits.from_env()).timeout_s,
            )  # fmt: skip
            yield ts
    finally:
        # The generator is drained by the caller before this runs.
        eng.dispose()


def _list_tables(
    conn: Connection, include: Sequence[str] | None, exclude: Sequence[str] | None
) -> list[tuple[str | None, str, str]]:
    insp = sa.inspect(conn)
    backend = conn.dialect.name
    out: list[tuple[str | None, str, str]] = []
    if backend == "sqlite":
        schemas: list[str | None] = [None]
    else:
        schemas = [
            s
            for s in insp.get_schema_names()
            if s.lower() not in SYSTEM_SCHEMAS and schema_selected(s, include, exclude)
        ]
    for schema in schemas:
        for t in sorted(insp.get_table_names(schema=schema)):
            out.append((schema, t, "table"))
        for v in sorted(insp.get_view_names(schema=schema)):
            out.append((schema, v, "view"))
        if backend == "postgresql":
            try:
                for v in sorted(insp.get_materialized_view_names(schema=schema)):
                    out.append((schema, v, "matview"))
            except NotImplementedError:
                pass
    return out


def _is_binary(col_type: sa.types.TypeEngine[Any]) -> bool:
    return isinstance(col_type, sa.LargeBinary | sa.types._Binary) or type(col_type).__name__.upper() in {
        "BYTEA", "BLOB", "LONGBLOB", "MEDIUMBLOB", "TINYBLOB", "VARBINARY", "BINARY", "BIT",
    }  # fmt: skip


def _keep_type(col_type: sa.types.TypeEngine[Any]) -> bool:
    """Numbers and dates are read as they are; everything else is read as text, cut to 1 MiB."""
    return isinstance(col_type, sa.Integer | sa.Numeric | sa.Float | sa.Date | sa.DateTime | sa.Boolean)


def _batches(  # type: ignore[no-untyped-def]
    eng: Engine,
    schema: str | None,
    name: str,
    kind: str,
    *,
    full: bool,
    sample_rows: int,
    scan: TableScan,
    stall_s: float,
):
    def run() -> Iterator[pl.DataFrame]:
        with eng.connect() as conn:
            table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
            if conn.dialect.name in ("mysql", "mariadb"):
                table = _mysql_true_names(conn, table)
            scan.identifiers.extend(c.name for c in table.columns)
            binary = [c.name for c in table.columns if _is_binary(c.type)]
            for b in binary:  # an empty binary column: the classifier reports it as not scanned
                yield pl.DataFrame({b: pl.Series(b, [], dtype=pl.Binary)})
            names = [c.name for c in table.columns if c.name not in binary]
            if not names:
                return
            for stmt, method in _statements(conn, table, names, kind, full=full, sample_rows=sample_rows):
                scan.method = method
                if full and conn.dialect.name == "postgresql":
                    scan.method = "full (COPY ... TO STDOUT, batches)"
                    yield from _pg_copy(conn, stmt, table, names, stall_s=stall_s)
                    continue
                res = conn.execution_options(stream_results=True, yield_per=SQL_BATCH_ROWS).execute(stmt)
                for part in res.partitions(SQL_BATCH_ROWS):
                    yield _frame(names, part)
            conn.rollback()

    return run


def _mysql_true_names(conn: Connection, table: sa.Table) -> sa.Table:
    """SQLAlchemy 2.0/2.1 reflects MySQL columns from SHOW CREATE TABLE without undoing its escaping, so a
    column named ``sh`ouji`` comes back as ``sh``ouji`` and every SELECT naming it fails. The names in
    information_schema are the true ones: where a reflected name is not among them and its unescaped form
    is, the table is rebuilt with the true name (same types)."""
    if not any("``" in c.name for c in table.columns):
        return table
    true = set(
        conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = COALESCE(:s, DATABASE()) AND table_name = :t"
            ),
            {"s": table.schema, "t": table.name},
        ).scalars()
    )
    cols = []
    for c in table.columns:
        real = (
            c.name.replace("``", "`") if c.name not in true and c.name.replace("``", "`") in true else c.name
        )
        cols.append(sa.Column(real, c.type, primary_key=c.primary_key))
    return sa.Table(table.name, sa.MetaData(), *cols, schema=table.schema)


class CopyStalled(RuntimeError):
    """A full PostgreSQL read sent nothing for longer than the read timeout."""


def _pg_copy(
    conn: Connection, stmt: sa.Select[Any], table: sa.Table, names: list[str], *, stall_s: float
) -> Iterator[pl.DataFrame]:
    """A full PostgreSQL read through ``COPY (SELECT ...) TO STDOUT`` in text format, parsed by polars in
    blocks: several times faster than materializing Python tuples. Text format escapes newlines inside
    values, so every row is one line and a block can be cut at any newline. COPY TO is allowed in a
    read-only transaction."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    raw = conn.connection.driver_connection
    casts = {}
    for n in names:
        t = table.c[n].type
        if isinstance(t, sa.Integer):
            casts[n] = pl.Int64
        elif isinstance(t, sa.Numeric | sa.Float):
            casts[n] = pl.Float64

    def parse(block: bytes) -> pl.DataFrame:
        df = pl.read_csv(
            io.BytesIO(block),
            separator="\t",
            has_header=False,
            new_columns=names,
            infer_schema=False,
            quote_char=None,
            null_values="\\N",
            encoding="utf8-lossy",
        )
        # Text format escapes backslashes; the few escaped values keep a doubled backslash, which no
        # detector cares about.
        return df.with_columns(pl.col(n).cast(t, strict=False) for n, t in casts.items())

    parts: list[bytes] = []
    size = 0
    with raw.cursor() as cur:
        # One COPY reads the whole table and may rightly take longer than --timeout: lift the statement
        # timeout for this transaction only. A dead peer is still caught by the TCP timeouts.
        cur.execute("SET LOCAL statement_timeout = 0")
    # A live server can still stop sending (a view that waits on a lock or sleeps): the TCP timeouts do
    # not fire, so a watchdog cancels the COPY when no data arrived for stall_s seconds. Parsing a block
    # is our time, not the server's, so the clock restarts after each one.
    last = [time.monotonic()]
    stalled = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(min(1.0, stall_s / 4)):
            if time.monotonic() - last[0] > stall_s:
                stalled.set()
                raw.cancel_safe(timeout=stall_s)
                return

    watchdog = threading.Thread(target=watch, name="piguard-copy-watchdog", daemon=True)
    watchdog.start()
    try:
        with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT") as cp:  # type: ignore[union-attr]
            for data in cp:
                last[0] = time.monotonic()
                parts.append(bytes(data))
                size += len(data)
                if size >= COPY_BLOCK_BYTES:
                    block = b"".join(parts)
                    cut = block.rfind(b"\n") + 1
                    last[0] = float("inf")  # the clock stops while the block is parsed and classified
                    yield parse(block[:cut])
                    last[0] = time.monotonic()
                    parts, size = [block[cut:]], len(block) - cut
    except Exception as exc:
        if stalled.is_set():
            raise CopyStalled(
                f"the server sent no rows for {stall_s:g} s (--timeout); the read was cancelled"
            ) from None
        raise exc
    finally:
        done.set()
    if size:
        yield parse(b"".join(parts))


def _frame(names: list[str], rows: list[Any]) -> pl.DataFrame:
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    data: dict[str, pl.Series] = {}
    for n, values in zip(names, cols, strict=True):
        try:
            data[n] = pl.Series(n, values, strict=False)
        except Exception:  # exotic driver types (ranges, custom objects): their text is what we scan
            data[n] = pl.Series(n, [None if v is None else str(v) for v in values], dtype=pl.String)
    return pl.DataFrame(data)


def _columns(src: Any, names: list[str]) -> list[Any]:
    """Select list over ``src`` (a table or its TABLESAMPLE alias)."""
    out = []
    for n in names:
        c = src.c[n]
        if _keep_type(c.type):
            out.append(c.label(n))
        else:
            out.append(sa.func.substr(sa.cast(c, sa.String()), 1, MAX_CELL_CHARS + 1).label(n))
    return out


def _statements(
    conn: Connection, table: sa.Table, names: list[str], kind: str, *, full: bool, sample_rows: int
) -> Iterator[tuple[sa.Select[Any], str]]:
    backend = conn.dialect.name
    cols = _columns(table, names)
    if full:
        yield sa.select(*cols), "full (server-side cursor, batches)"
        return
    if kind != "table":
        yield sa.select(*cols).limit(sample_rows), f"{kind}: first {sample_rows} rows"
        return
    if backend == "postgresql":
        est = _pg_estimate(conn, table)
        if est <= sample_rows * 2:
            yield sa.select(*cols).limit(sample_rows), f"up to {sample_rows} rows (about {est} in the table)"
            return
        # SYSTEM samples whole pages: fast on huge tables. Ask for three times the rows, then cut.
        pct = min(100.0, 300.0 * sample_rows / est)
        sampled = sa.tablesample(table, sa.func.system(pct), name="piguard_sample")
        method = f"TABLESAMPLE SYSTEM ({pct:.3g}%) of about {est} rows, at most {sample_rows}"
        yield sa.select(*_columns(sampled, names)).limit(sample_rows), method
        return
    # MySQL/MariaDB and SQLite: random key ranges when there is an integer key, else a bounded scan.
    key = _int_key(table, backend)
    if key is None:
        yield sa.select(*cols).limit(sample_rows), f"first {sample_rows} rows (no integer key to sample by)"
        return
    lo, hi = conn.execute(sa.select(sa.func.min(key), sa.func.max(key)).select_from(table)).one()
    if lo is None:
        return
    if hi - lo + 1 <= sample_rows * 2:
        yield sa.select(*cols).limit(sample_rows), f"up to {sample_rows} rows"
        return
    rng = random.Random(0)
    per = max(1, sample_rows // SAMPLE_RANGES)
    method = f"{SAMPLE_RANGES} random ranges of {per} rows by {key.name} in [{lo}, {hi}]"
    for start in sorted(rng.randint(lo, hi) for _ in range(SAMPLE_RANGES)):
        yield sa.select(*cols).where(key >= start).order_by(key).limit(per), method


def _pg_estimate(conn: Connection, table: sa.Table) -> int:
    # The dialect's own quoting: a name holding '"' is doubled, as to_regclass expects.
    qualified = conn.dialect.identifier_preparer.format_table(table)
    row = conn.execute(
        sa.text(
            "SELECT reltuples::bigint, pg_relation_size(c.oid) / current_setting('block_size')::int "
            "FROM pg_class c WHERE c.oid = to_regclass(:q)"
        ),
        {"q": qualified},
    ).one_or_none()
    if row is None:
        return 0
    tuples, pages = row
    if tuples is not None and tuples > 0:
        return int(tuples)
    # Never analysed: assume narrow rows (about 100 a page) so the sample errs on the large side.
    return int(pages or 0) * 100


def _int_key(table: sa.Table, backend: str) -> Any:
    pk = list(table.primary_key.columns)
    if len(pk) == 1 and isinstance(pk[0].type, sa.Integer):
        return pk[0]
    if backend == "sqlite":
        return sa.literal_column("rowid")
    return None


__all__ = [
    "BATCH_ROWS",
    "is_sqlite_file",
    "iter_sql_tables",
    "make_engine",
    "redact",
    "schema_selected",
    "sqlite_engine",
    "table_selected",
]  # fmt: skip

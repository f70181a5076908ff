"""``piguard scan``: find personal information in files, directories, tables and databases."""

from __future__ import annotations

import contextlib
import io
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any

import typer

# Only what the options need is imported here: `piguard --help` and a scan import the rest when they run
# (the detectors' libraries are imported by the detectors that use them).
from piguard.detect import DEFAULT_MIN_CONFIDENCE
from piguard.sources.limits import DEFAULT_TIMEOUT_S

if TYPE_CHECKING:
    from piguard.pipeline import FileEvent, ScanOptions
    from piguard.report import JsonlWriter, JsonWriter, SarifWriter, ScanSummary
    from piguard.sources.limits import ReadLimits

    Writer = JsonlWriter | JsonWriter | SarifWriter

EXIT_OK, EXIT_MATCHED, EXIT_ERROR, EXIT_SKIPPED = 0, 1, 2, 3


class Format(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    sarif = "sarif"
    html = "html"


class FailOn(StrEnum):
    never = "never"
    sensitive = "sensitive"
    any = "any"


# Files that are text and never a table (logs, notes): a scan of only these does not load the data map
# (polars). Anything else (a directory, a URL, .csv, .json, .parquet ...) is offered to the data map.
_PLAIN_TEXT = {".log", ".txt", ".out", ".text", ".md", ".markdown", ".rst", ".html", ".htm", ".xml"}


def _table_api(targets: list[str] | None = None) -> ModuleType | None:
    """The data-map part (tables and databases), when installed and when a target may be a table."""
    import importlib

    if targets is not None and all(_plain_text_file(t) for t in targets):
        return None
    try:
        return importlib.import_module("piguard.sources.tables")
    except ModuleNotFoundError as exc:
        if exc.name != "piguard.sources.tables":
            raise
        return None


def _plain_text_file(target: str) -> bool:
    p = Path(target)
    name = p.name.lower()
    for packed in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(packed)
    return "://" not in target and Path(name).suffix in _PLAIN_TEXT and p.is_file()


def _fail(msg: str) -> typer.Exit:
    from piguard.detect.messages import mask_message  # a message may quote an argument holding an ID

    typer.echo(f"piguard scan: {mask_message(msg)}", err=True)
    return typer.Exit(EXIT_ERROR)


def scan(
    targets: list[str] = typer.Argument(
        ..., help="Files, directories, or database URLs (sqlite:///x.db, postgresql+psycopg://...)."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the report here instead of stdout."
    ),
    entities: str | None = typer.Option(
        None, "--entities", "-e", help="Comma-separated entity ids to look for."
    ),
    min_confidence: float = typer.Option(
        DEFAULT_MIN_CONFIDENCE, "--min-confidence", min=0.0, max=1.0, help="Lowest confidence reported."
    ),
    fail_on: FailOn = typer.Option(
        FailOn.never, "--fail-on", help="Exit 1 when sensitive (or any) personal information is found."
    ),
    detectors: list[Path] = typer.Option(
        [], "--detectors", help="YAML file of extra detectors (repeatable)."
    ),
    models: list[Path] = typer.Option(
        [],
        "--model",
        help="Adapted model directory (piguard model train); replaces the detectors for its entities.",
    ),
    include_non_personal: bool = typer.Option(
        False, "--include-non-personal", help="Also report organisation identifiers (CN_USCC)."
    ),
    unmasked: bool = typer.Option(
        False,
        "--unmasked",
        help="Include RAW values in json/jsonl output. Handle the output as personal data.",
    ),
    full: bool = typer.Option(False, "--full", help="Tables: read every row instead of a sample."),
    sample_rows: int = typer.Option(10000, "--sample-rows", min=1, help="Tables: rows sampled per table."),
    engine: str = typer.Option("polars", "--engine", help="Tables: polars (one machine) or spark."),
    workers: int = typer.Option(0, "--workers", min=0, help="Worker processes for files (0: one per core)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on a terminal."),
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT_S,
        "--timeout",
        min=0.1,
        help="Databases: seconds to connect, and to wait for a reply.",
    ),
    include: list[str] = typer.Option(
        [], "--include", help="Tables: only schema.table names matching this pattern (repeatable; crm.*)."
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Tables: skip schema.table names matching this pattern (repeatable)."
    ),
    max_decompressed: str = typer.Option(
        "2G", "--max-decompressed", help="Largest size a .gz or .xlsx may inflate to (e.g. 500M, 8G)."
    ),
    max_ratio: float = typer.Option(
        100.0, "--max-ratio", min=1.0, help="Largest compression ratio of a .gz or .xlsx (judged past 4 MiB)."
    ),
) -> None:
    """Scan for personal information. Exit codes: 0 clean, 1 --fail-on matched, 2 usage or fatal error,
    3 finished but some inputs were skipped."""
    from piguard import taxonomy
    from piguard.detect import DetectorConfigError, load_detector_file
    from piguard.pipeline import ScanOptions
    from piguard.report import ScanSummary
    from piguard.report.output import OutputPathError, is_an_input, open_report
    from piguard.sources.files import STDIN, Skip, iter_paths
    from piguard.sources.limits import LimitError, ReadLimits, parse_size

    if engine not in ("polars", "spark"):
        # Checked up front: a table scan would fail on it and only note the table as skipped (exit 3).
        raise _fail(f"--engine must be polars or spark, not {engine!r}")
    ents: frozenset[str] | None = None
    if entities:
        ents = frozenset(e.strip() for e in entities.split(",") if e.strip())
        known = set(taxonomy.entities())
        extra: set[str] = set()
        for d in detectors:
            try:
                extra.update(det.entity for det in load_detector_file(d))
            except DetectorConfigError as exc:
                raise _fail(str(exc)) from None
        bad = sorted(ents - known - extra)
        if bad:
            raise _fail(f"unknown entity {', '.join(bad)}; valid: {', '.join(sorted(known))}")
    for d in detectors:
        try:
            load_detector_file(d)
        except DetectorConfigError as exc:
            raise _fail(str(exc)) from None
    for m in models:
        from piguard.detect.adapted import ModelError, load_model

        try:
            load_model(str(m.resolve()))
        except ModelError as exc:
            raise _fail(str(exc)) from None

    try:
        limits = ReadLimits(timeout, parse_size(max_decompressed), max_ratio)
    except LimitError as exc:
        raise _fail(str(exc)) from None
    limits.export()  # the scan's worker processes read the same bounds

    tables = _table_api(targets)
    table_targets: list[str] = []
    file_targets: list[str] = []
    lake_dirs: list[str] = []
    for t in targets:
        if tables is not None and tables.is_table_target(t):
            table_targets.append(t)
            if Path(t).is_dir():
                lake_dirs.append(t)
        elif "://" in t:
            from piguard.sources.redact import redact_url  # (SQLAlchemy's URL parser: loaded only here)

            raise _fail(f"{redact_url(t)}: not a supported database URL")
        else:
            file_targets.append(t)

    opts = ScanOptions(
        entities=ents,
        min_confidence=min_confidence,
        include_non_personal=include_non_personal,
        detector_files=tuple(str(d) for d in detectors),
        model_dirs=tuple(str(m.resolve()) for m in models),
        with_values=unmasked,
        workers=workers,
    )
    summary = ScanSummary()
    walk_skips: list[Skip] = []
    files = list(iter_paths(file_targets, walk_skips))
    summary.skipped.extend(walk_skips)
    text_files = files
    if tables is not None:
        # Binary table formats are mapped column by column, not read as text.
        table_targets.extend(f for f in files if tables.is_table_target(f))
        text_files = [f for f in files if not tables.is_table_target(f)]
        table_targets.extend(f for f in text_files if tables.is_tabular_file(f))
        # A directory holding Parquet is mapped as datasets (with its CSV, JSON and Excel files as tables of
        # their own); the rest of what it holds is scanned as any other file: logs and notes as text, CSV and
        # JSON as text too, SQLite files as databases.
        for f in iter_paths(lake_dirs, walk_skips):
            if f.lower().endswith(".parquet"):
                continue
            files.append(f)
            if not tables.is_table_target(f):
                text_files.append(f)
            elif not tables.is_tabular_file(f):
                table_targets.append(f)

    if output is not None and (clash := is_an_input(output, files)) is not None:
        raise _fail(f"the report {output} would overwrite the input {clash}; write it elsewhere")
    with contextlib.ExitStack() as stack:
        # The report streams into a temporary file renamed over OUTPUT only when complete: a failed run
        # leaves the previous report intact.
        try:
            out = stack.enter_context(open_report(output))
        except OutputPathError as exc:
            raise _fail(str(exc)) from None
        writer = _writer(fmt, out)
        # Standard input is read once, in this process, after the files (never handed to a worker).
        stdin = [f for f in text_files if f == STDIN][:1]
        _scan_text_files(writer, [f for f in text_files if f != STDIN], opts, summary, progress)
        if stdin:
            _scan_text_files(writer, stdin, opts, summary, progress)
        maps = _scan_table_targets(
            tables, table_targets, summary, full=full, sample_rows=sample_rows, engine=engine,
            include=include, exclude=exclude, limits=limits, progress=progress,
        )  # fmt: skip
        datamap_rows = [row for dm in maps for row in dm.rows]
        _render(out, fmt, output, writer, summary, maps)
    if fmt != Format.table:
        for s in summary.skipped:
            typer.echo(f"skipped {s.path}: {s.reason}", err=True)

    sensitive = summary.sensitive_findings + sum(1 for r in datamap_rows if r.get("sensitive"))
    anything = summary.findings + len(datamap_rows)
    if (fail_on == FailOn.sensitive and sensitive) or (fail_on == FailOn.any and anything):
        raise typer.Exit(EXIT_MATCHED)
    if summary.skipped:
        raise typer.Exit(EXIT_SKIPPED)


def _writer(fmt: Format, out: IO[bytes]) -> JsonlWriter | JsonWriter | SarifWriter | None:
    """Streaming writers; the table and HTML renderers work from the summary at the end."""
    from piguard.report import JsonlWriter, JsonWriter, SarifWriter

    if fmt == Format.jsonl:
        return JsonlWriter(out)
    if fmt == Format.json:
        return JsonWriter(out)
    if fmt == Format.sarif:
        return SarifWriter(out)
    return None


def _scan_text_files(
    writer: Writer | None, text_files: list[str], opts: ScanOptions, summary: ScanSummary, progress: bool
) -> None:
    from piguard.pipeline import scan_paths
    from piguard.sources.files import Skip

    bar: Any = None
    if progress and len(text_files) > 1:  # (rich is imported only when a bar may be shown)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        err = Console(stderr=True)
        if err.is_terminal:
            bar = Progress(
                TextColumn("scanning"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
    task = bar.add_task("scan", total=len(text_files)) if bar is not None else None
    with bar if bar is not None else contextlib.nullcontext():
        for ev in scan_paths(text_files, opts):
            if isinstance(ev, Skip):
                summary.skipped.append(ev)
                continue
            _account(summary, ev)
            if writer is not None:
                for batch in ev.batches:
                    writer.write(ev.path, batch)
            if ev.done and bar is not None:
                bar.advance(task)


def _scan_table_targets(
    tables: ModuleType | None,
    targets: list[str],
    summary: ScanSummary,
    *,
    full: bool,
    sample_rows: int,
    engine: str,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    limits: ReadLimits | None = None,
    progress: bool = False,
) -> list[Any]:
    """One ``DataMap`` per table target (see ``piguard.sources.tables``); failures become skip notes."""
    from piguard.sources.files import Skip

    maps: list[Any] = []
    if tables is None:
        return maps
    from piguard.sources.redact import mask_message, redact_url  # SQLAlchemy's URL parser: tables only

    for t in dict.fromkeys(targets):
        try:
            with _table_progress(progress) as on_table:
                dm = tables.scan_tables(
                    t, full=full, sample_rows=sample_rows, engine=engine, include=include or None,
                    exclude=exclude or None, limits=limits, progress=on_table,
                )  # fmt: skip
        except Exception as exc:  # the data map reports its own skips; this is the last guard
            reason = f"table scan failed: {type(exc).__name__}: {mask_message(str(exc))}"
            summary.skipped.append(Skip(redact_url(t) if "://" in t else t, reason))
            continue
        maps.append(dm)
        for s in dm.skipped:
            summary.skipped.append(Skip(f"{s.get('source')}:{s.get('table')}", str(s.get("reason"))))
    return maps


def _render(
    out: IO[bytes],
    fmt: Format,
    output: Path | None,
    writer: Writer | None,
    summary: ScanSummary,
    maps: list[Any],
) -> None:
    datamap_rows = [row for dm in maps for row in dm.rows]
    combinations = [c for dm in maps for c in getattr(dm, "combinations", [])]
    if writer is not None:
        # The data map's parts are always present (empty lists when no table was mapped), so a reader need
        # not tell "none" from "not reported": rows, combinations, the evidence behind each share
        # (piguard.sources.datamap), and the tables' notes (e.g. a column name that held an identifier,
        # masked).
        extra: dict[str, Any] = {
            "sources": datamap_rows,
            "combinations": combinations,
            "evidence": [e for dm in maps for e in getattr(dm, "evidence", [])],
            "table_notes": [n for dm in maps for n in getattr(dm, "notes", [])],
        }
        writer.close(summary, extra if fmt == Format.json else None)
    elif fmt == Format.html and len(maps) == 1 and summary.files_scanned == 0:
        # Only a table or database: its own page, with tables scanned, evidence and charts.
        from piguard.report.datamap_html import render_datamap_html

        out.write(render_datamap_html(maps[0]).encode("utf-8", "surrogateescape"))
    elif fmt == Format.html:
        from piguard.report.html import render_html

        out.write(render_html(summary, datamap_rows).encode("utf-8", "surrogateescape"))
    else:
        from rich.console import Console

        from piguard.report.table import render_table

        if output is None:
            render_table(summary, Console(), datamap_rows)
            return
        text = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape", write_through=True)
        render_table(summary, Console(file=text), datamap_rows)
        text.detach()


@contextlib.contextmanager
def _table_progress(enabled: bool) -> Any:
    """A bar per table on stderr, only on a terminal: rows read of rows expected (the sample size, or the
    table's estimate). Yields the callback ``scan_tables`` takes, or None."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = Console(stderr=True)
    if not (enabled and err.is_terminal):
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    )  # fmt: skip
    tasks: dict[int, Any] = {}

    def on_table(ts: Any, rows: int, done: bool) -> None:
        task = tasks.get(id(ts))
        if task is None:
            task = tasks[id(ts)] = bar.add_task(ts.table, total=ts.expected_rows)
        bar.update(task, completed=rows)
        if done:
            bar.remove_task(task)
            tasks.pop(id(ts), None)

    with bar:
        yield on_table


def _account(summary: ScanSummary, ev: FileEvent) -> None:
    from piguard.sources.files import Skip

    for batch in ev.batches:
        summary.add_batch(ev.path, batch)
    if ev.done:
        if ev.skip is not None:
            summary.skipped.append(ev.skip)
        else:
            summary.files_scanned += 1
            summary.bytes_scanned += ev.bytes
            summary.encodings[ev.encoding] += 1
        if ev.note:
            summary.notes.append(Skip(ev.path, ev.note))


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)

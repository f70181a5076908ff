"""``piguard app audit APP.apk|DIR``: audit apps against the 2019 method's items and the 2021 necessary scope.

The module is not named app.py: importing piguard.cli.app would replace the package's ``app`` (the Typer root)
with the submodule."""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import typer

app_cli = typer.Typer(
    help="Audit Android apps: APK facts, privacy policy, the 2019 method and the 2021 scope.",
    no_args_is_help=True,
)
FORMATS = ("table", "json", "html", "sarif")


def _audit_one(apk: str, policy: str | None, app_type: str | None, workers: int) -> dict[str, Any]:
    """Runs in a worker process for a directory; returns the JSON document or an error, never raises."""
    from piguard.apps import AppInputError, audit

    try:
        res = audit(apk, policy=policy, app_type=app_type, workers=workers)
    except AppInputError as exc:
        return {"path": apk, "error": str(exc)}
    except MemoryError:
        return {"path": apk, "error": f"{apk}: too large to audit in memory"}
    except Exception as exc:  # a malformed DEX can break androguard in many ways; the batch goes on
        return {"path": apk, "error": f"{apk}: androguard could not read the code ({type(exc).__name__})"}
    doc = res.as_dict()
    doc["_flows_yaml"] = res.flows_yaml()
    return doc


def _apks(target: Path) -> list[Path]:
    if target.is_dir():
        return sorted(p for p in target.rglob("*.apk") if p.is_file())
    return [target]


@app_cli.command("audit")
def audit_cmd(
    target: Path = typer.Argument(..., help="An APK, or a directory of APKs (audited in parallel)."),
    policy: Path = typer.Option(None, "--policy", "-p", help="The privacy policy: .txt, .html or .pdf."),
    app_type: str = typer.Option(
        None, "--type", "-t", help="2021 app type: number 1-39 or name (e.g. 12 or 网络借贷类)."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json | html | sarif"),
    output: Path = typer.Option(None, "--output", "-o", help="Write the report to this file (atomically)."),
    emit_flows: Path = typer.Option(
        None, "--emit-flows", help="Write the flows file the audit built (for `piguard check`)."
    ),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Worker processes (default: CPU count, at most 4)."),
    fail_on: str = typer.Option("never", "--fail-on", help="violation | never: exit 1 on any violation."),
) -> None:
    """Audit an APK (and its policy) against the 2019 method's 31 items and the 2021 necessary scope."""
    from piguard._fs import OutputPathError, atomic_write_text
    from piguard.apps import render
    from piguard.apps.apk import default_workers

    if fmt not in FORMATS:
        typer.echo(f"piguard app audit: --format {fmt!r} is not valid; valid: {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    if fail_on not in ("violation", "never"):
        typer.echo(
            f"piguard app audit: --fail-on {fail_on!r} is not valid; valid: violation, never", err=True
        )
        raise typer.Exit(2)
    try:
        import androguard  # noqa: F401
    except ImportError:
        typer.echo("piguard app audit: needs androguard: pip install 'piguard[apps]'", err=True)
        raise typer.Exit(2) from None
    if not target.exists():
        typer.echo(f"piguard app audit: {target}: no such file or directory", err=True)
        raise typer.Exit(2)
    apks = _apks(target)
    if not apks:
        typer.echo(f"piguard app audit: {target}: no .apk files", err=True)
        raise typer.Exit(2)
    workers = jobs or default_workers()
    pol = str(policy) if policy else None
    docs: list[dict[str, Any]] = []
    if len(apks) == 1:
        docs.append(_audit_one(str(apks[0]), pol, app_type, workers))
    else:
        from rich.progress import Progress

        with (
            Progress(transient=True, disable=not sys.stderr.isatty()) as bar,
            ProcessPoolExecutor(max_workers=min(workers, len(apks))) as pool,
        ):
            task = bar.add_task("auditing", total=len(apks))
            futs = {pool.submit(_audit_one, str(a), pol, app_type, 1): a for a in apks}
            for fut in as_completed(futs):
                docs.append(fut.result())
                bar.advance(task)
        docs.sort(key=lambda d: d.get("path") or d["app"]["path"])
    errors = [d for d in docs if "error" in d]
    for d in errors:
        typer.echo(f"piguard app audit: {d['error']}", err=True)
    good = [d for d in docs if "error" not in d]
    flows_texts = [d.pop("_flows_yaml") for d in good]
    try:
        if emit_flows is not None and good:
            if len(good) == 1:
                atomic_write_text(emit_flows, flows_texts[0])
            else:
                emit_flows.mkdir(parents=True, exist_ok=True)
                for d, text in zip(good, flows_texts, strict=True):
                    atomic_write_text(emit_flows / (Path(d["app"]["path"]).stem + ".flows.yaml"), text)
        text = render.render(good, fmt, errors=errors)
        if output is not None:
            atomic_write_text(output, text)
        else:
            sys.stdout.write(text)
    except (OutputPathError, OSError) as exc:
        typer.echo(f"piguard app audit: {exc}", err=True)
        raise typer.Exit(2) from None
    if not good:
        raise typer.Exit(2)
    if fail_on == "violation" and any(it["verdict"] == "violation" for d in good for it in d["items"]):
        raise typer.Exit(1)
    if errors:
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    app.add_typer(app_cli, name="app")

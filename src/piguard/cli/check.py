"""``piguard check FLOWS.yaml``: decide every declared flow (allow / warn / deny) with cited reasons."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from piguard.ledger import Ledger, LedgerError
from piguard.rules import Engine, FlowsError, load_flows, render, summary


def check(
    flows_file: Path = typer.Argument(..., help="Flows file (YAML), see docs/rules.md."),
    ledger: str = typer.Option(
        None,
        "--ledger",
        envvar="PIGUARD_LEDGER",
        help="Ledger URL or SQLite path, to resolve consent references.",
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json | html"),
    output: Path = typer.Option(None, "--output", "-o", help="Write the report to this file."),
    fail_on: str = typer.Option("deny", "--fail-on", help="deny | warn | never: which verdict makes exit 1."),
    trust: list[Path] = typer.Option(
        [], "--trust", help="Trusted keys (.pub or a directory) for flows that name a dataset passport."
    ),
    revocations: list[Path] = typer.Option([], "--revocations", help="Signed passport revocation lists."),
) -> None:
    """Check declared flows against PIPL, the 2019 app method and the 2021 necessary-information scope."""
    if fmt not in ("table", "json", "html"):
        typer.echo(f"piguard check: --format {fmt!r} is not valid; valid: table, json, html", err=True)
        raise typer.Exit(2)
    if fail_on not in ("deny", "warn", "never"):
        typer.echo(f"piguard check: --fail-on {fail_on!r} is not valid; valid: deny, warn, never", err=True)
        raise typer.Exit(2)
    led = None
    try:
        extra = {}
        if ledger:
            led = Ledger.open(ledger, create=False)
            extra = led.declared_purposes()
        doc = load_flows(flows_file, extra)
        passports = None
        if trust:
            from piguard.passport.check import PassportSetupError, checker

            try:
                passports = checker(trust, revocations)
            except PassportSetupError as exc:
                typer.echo(f"piguard check: {exc}", err=True)
                raise typer.Exit(2) from None
        decisions = Engine(led, passports).evaluate(doc)
    except FlowsError as exc:
        for line in exc.errors:
            typer.echo(f"piguard check: {line}", err=True)
        raise typer.Exit(2) from None
    except LedgerError as exc:
        typer.echo(f"piguard check: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        if led is not None:
            led.close()
    if fmt == "json":
        out = render.to_json(decisions, controller=doc.controller, app_type=doc.app_type) + "\n"
    elif fmt == "html":
        out = render.to_html(decisions, controller=doc.controller, source=str(flows_file))
    else:
        out = None
    if output is not None:
        text = out
        if text is None:
            from rich.console import Console

            con = Console(record=True, width=160, file=open(os.devnull, "w"))  # noqa: SIM115
            con.print(render.to_table(decisions, title=f"piguard check {flows_file}"))
            text = con.export_text()
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(text, "utf-8")
        os.replace(tmp, output)
    elif out is not None:
        sys.stdout.write(out)
    else:
        from rich.console import Console

        Console().print(render.to_table(decisions, title=f"piguard check {flows_file}"))
    s = summary(decisions)
    if fmt == "table" or output is not None:
        typer.echo(
            f"{len(decisions)} flows: {s['allow']} allow, {s['warn']} warn, {s['deny']} deny", err=True
        )
    if (fail_on == "deny" and s["deny"]) or (fail_on == "warn" and (s["deny"] or s["warn"])):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("check")(check)

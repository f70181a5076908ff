"""``piguard check FLOWS.yaml``: decide every declared flow (allow / warn / deny) with cited reasons."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from sqlalchemy.exc import SQLAlchemyError

from piguard._fs import OutputPathError, atomic_write_text
from piguard.detect.messages import mask_message
from piguard.ledger import Ledger, LedgerError
from piguard.rules import Engine, FlowsError, load_flows, render, summary


def _say(message: str) -> None:
    typer.echo(mask_message(f"piguard check: {message}"), err=True)


def _verified(led: Ledger) -> None:
    """Decisions rest on the ledger's consents: a ledger that fails verification (rows the audit log does
    not explain, an altered or rolled-back log) or cannot be authenticated is refused, not read."""
    res = led.verify()
    if res.ok:
        return
    if res.unauthenticated:
        raise LedgerError(f"cannot verify ledger {led.url}, refusing to decide on it: {res.problem}")
    raise LedgerError(
        f"ledger {led.url} fails verification, refusing to decide on it: {res.problem} "
        "(see 'piguard ledger verify')"
    )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


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
    ledger_key_file: str = typer.Option(
        None,
        "--ledger-key-file",
        help="The ledger key that authenticates its audit log (default $PIGUARD_LEDGER_KEY, "
        "$PIGUARD_LEDGER_KEY_FILE, or LEDGER.db.key beside a SQLite ledger).",
    ),
) -> None:
    """Check declared flows against PIPL, the 2019 app method and the 2021 necessary-information scope."""
    if fmt not in ("table", "json", "html"):
        _say(f"--format {fmt[:40]!r} is not valid; valid: table, json, html")
        raise typer.Exit(2)
    if fail_on not in ("deny", "warn", "never"):
        _say(f"--fail-on {fail_on[:40]!r} is not valid; valid: deny, warn, never")
        raise typer.Exit(2)
    if output is not None and _same_file(output, flows_file):
        _say(f"--output {output} is the flows file itself; write the report elsewhere")
        raise typer.Exit(2)
    led = None
    try:
        extra = {}
        if ledger:
            led = Ledger.open(ledger, create=False, migrate=False, key_file=ledger_key_file)
            _verified(led)
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
            _say(line)
        raise typer.Exit(2) from None
    except LedgerError as exc:
        _say(str(exc))
        raise typer.Exit(2) from None
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        _say(f"database error: {(str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]}")
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
        try:
            atomic_write_text(output, text)  # a reader never sees half a report, a failed run keeps the old
        except (OutputPathError, OSError) as exc:
            _say(str(exc) if isinstance(exc, OutputPathError) else f"cannot write {output}: {exc.strerror}")
            raise typer.Exit(2) from None
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

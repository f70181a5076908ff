"""``piguard ledger``: create, inspect and verify the ledger; declare purposes, provenance and activities."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from piguard.cli.consent import LEDGER_OPT, actor, ledger_url
from piguard.ledger import Ledger, LedgerError

ledger_app = typer.Typer(
    help="The ledger: provenance, purposes, activities and the audit log.", no_args_is_help=True
)


@contextmanager
def _opened(url: str | None) -> Iterator[Ledger]:
    """The ledger at ``url``, closed afterwards; a ledger error becomes one line on stderr and exit 2."""
    try:
        led = Ledger.open(ledger_url(url))
    except LedgerError as exc:
        typer.echo(f"piguard ledger: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        yield led
    except LedgerError as exc:
        typer.echo(f"piguard ledger: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        led.close()


@ledger_app.command("init")
def init(ledger: str = LEDGER_OPT) -> None:
    """Create the ledger (or migrate it to this piguard's schema)."""
    with _opened(ledger) as led:
        typer.echo(f"ledger {led.url} at schema {led.schema_revision()}")


@ledger_app.command("status")
def status(ledger: str = LEDGER_OPT) -> None:
    """Row counts and schema revision."""
    with _opened(ledger) as led:
        typer.echo(json.dumps({"schema": led.schema_revision(), **led.counts()}))


@ledger_app.command("verify")
def verify(ledger: str = LEDGER_OPT) -> None:
    """Recompute the audit log's hash chain; exit 1 if any entry was altered, removed or reordered."""
    with _opened(ledger) as led:
        res = led.verify()
    if res.ok:
        typer.echo(f"ok: {res.entries} audit entries, head {res.head_hash}")
        return
    typer.echo(f"TAMPERED: {res.problem} ({res.entries} entries verified before it)", err=True)
    raise typer.Exit(1)


@ledger_app.command("audit")
def audit(
    object_id: str = typer.Option(None, "--object", help="Only entries about this object id."),
    ledger: str = LEDGER_OPT,
) -> None:
    """Print audit entries as JSON lines."""
    with _opened(ledger) as led:
        for e in led.audit_entries(object_id):
            typer.echo(json.dumps(e, ensure_ascii=False))


@ledger_app.command("purpose")
def purpose(
    purpose_id: str = typer.Argument(...),
    zh: str = typer.Option(..., "--zh"),
    en: str = typer.Option(..., "--en"),
    data: list[str] = typer.Option(..., "--data", help="Entity id or class the purpose needs (repeat)."),
    alone_insufficient: bool = typer.Option(
        False, "--alone-insufficient", help="Cannot justify collection alone."
    ),
    push: bool = typer.Option(False, "--push", help="Information push or marketing."),
    ledger: str = LEDGER_OPT,
) -> None:
    """Declare a purpose and the entity categories it needs (PIPL Art. 6)."""
    with _opened(ledger) as led:
        led.declare_purpose(
            purpose_id,
            zh=zh,
            en=en,
            categories=data,
            alone_insufficient=alone_insufficient,
            push=push,
            actor=actor(),
        )
    typer.echo(f"declared purpose {purpose_id}")


@ledger_app.command("provenance")
def provenance(
    dataset_id: str = typer.Argument(...),
    dataset: str = typer.Option(..., "--dataset", help="Dataset name or location."),
    method: str = typer.Option(
        ..., "--method", help="collected_from_subject | crawled_public | received_from_supplier | derived"
    ),
    legal_basis: str = typer.Option(..., "--legal-basis", help="PIPL Art. 13 basis, e.g. consent"),
    source: str = typer.Option(..., "--source", help="Who the data came from."),
    data: list[str] = typer.Option([], "--data", help="Entity ids or classes in the dataset (repeat)."),
    upstream: list[str] = typer.Option([], "--upstream", help="Upstream provenance record id (repeat)."),
    content_hash: str = typer.Option(None, "--content-hash"),
    ledger: str = LEDGER_OPT,
) -> None:
    """Record where a dataset came from and on what legal basis (PIPL Art. 13)."""
    with _opened(ledger) as led:
        led.record_provenance(
            dataset_id,
            dataset=dataset,
            method=method,
            legal_basis=legal_basis,
            source_identity=source,
            categories=data,
            upstream=upstream,
            content_hash=content_hash,
            actor=actor(),
        )
    typer.echo(f"recorded provenance {dataset_id}")


@ledger_app.command("activity")
def activity(
    activity_id: str = typer.Argument(...),
    name: str = typer.Option(..., "--name"),
    kind: str = typer.Option(
        ..., "--activity", help="collect | use | provide | publish | transfer_abroad | ..."
    ),
    purpose_id: str = typer.Option(..., "--purpose"),
    data: list[str] = typer.Option(..., "--data"),
    legal_basis: str = typer.Option(..., "--legal-basis"),
    recipient: str = typer.Option(None, "--recipient"),
    ledger: str = LEDGER_OPT,
) -> None:
    """Record a processing activity (record of processing, PIPL Art. 55-56)."""
    with _opened(ledger) as led:
        led.record_activity(
            activity_id,
            name=name,
            activity=kind,
            purpose_id=purpose_id,
            categories=data,
            legal_basis=legal_basis,
            recipient=recipient,
            actor=actor(),
        )
    typer.echo(f"recorded activity {activity_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")

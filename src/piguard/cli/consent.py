"""``piguard consent record|withdraw|show``: consents in the ledger, keyed by pseudonymous subject ids."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from piguard.ledger import Ledger, LedgerError, load_key, pseudonym

DEFAULT_LEDGER = "piguard-ledger.db"
consent_app = typer.Typer(
    help="Record, withdraw and show consents (PIPL Art. 14-15, 29, 31).", no_args_is_help=True
)

LEDGER_OPT = typer.Option(
    None, "--ledger", help=f"Ledger URL or SQLite path (default $PIGUARD_LEDGER or ./{DEFAULT_LEDGER})."
)


def ledger_url(url: str | None) -> str:
    return url or os.environ.get("PIGUARD_LEDGER") or DEFAULT_LEDGER


def actor() -> str:
    """Who the audit log names for a change made from the command line."""
    return os.environ.get("USER", "piguard")


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"piguard consent: {exc}", err=True)
    return typer.Exit(2)


def _subject(
    led: Ledger, subject: str | None, subject_id: str | None, key_file: str | None, create: bool
) -> str:
    if bool(subject) == bool(subject_id):
        raise LedgerError(
            "give --subject PSEUDONYM or --subject-id IDENTIFIER (use '-' to read it from stdin)"
        )
    if subject:
        return subject
    raw = sys.stdin.readline().strip() if subject_id == "-" else str(subject_id)
    if not raw:
        raise LedgerError("empty subject identifier")
    return pseudonym(raw, load_key(led.url, key_file, create=create))


@consent_app.command("record")
def record(
    kind: str = typer.Option(..., "--kind", help="none | bundled | explicit | separate | guardian"),
    purpose: list[str] = typer.Option(..., "--purpose", help="Purpose id (repeat)."),
    data: list[str] = typer.Option(..., "--data", help="Entity id or class the consent covers (repeat)."),
    recipient: list[str] = typer.Option([], "--recipient", help="Named recipient covered (repeat)."),
    subject: str = typer.Option(None, "--subject", help="The subject's pseudonymous id (s_...)."),
    subject_id: str = typer.Option(
        None, "--subject-id", help="A raw identifier, pseudonymised with the key."
    ),
    consent_id: str = typer.Option(None, "--id", help="Consent id (default: generated)."),
    policy_version: str = typer.Option(None, "--policy-version"),
    policy_file: Path = typer.Option(
        None, "--policy-file", help="Privacy policy text; its SHA-256 is stored."
    ),
    channel: str = typer.Option(None, "--channel", help="e.g. app, web, paper"),
    key_file: str = typer.Option(None, "--key-file", help="HMAC key file for --subject-id."),
    ledger: str = LEDGER_OPT,
) -> None:
    """Record a consent. Prints the consent id and the subject's pseudonym (never the raw identifier)."""
    try:
        led = Ledger.open(ledger_url(ledger))
        try:
            sid = _subject(led, subject, subject_id, key_file, create=True)
            policy = policy_file.read_bytes() if policy_file else None
            cid = led.record_consent(
                subject_id=sid,
                kind=kind,
                purposes=purpose,
                categories=data,
                recipients=recipient,
                consent_id=consent_id,
                policy_version=policy_version,
                policy_text=policy,
                channel=channel,
                actor=actor(),
            )
        finally:
            led.close()
    except (LedgerError, OSError) as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps({"consent": cid, "subject": sid}))


@consent_app.command("withdraw")
def withdraw(consent_id: str = typer.Argument(..., help="Consent id."), ledger: str = LEDGER_OPT) -> None:
    """Withdraw a consent: later checks that rely on it are denied (PIPL Art. 15, 47)."""
    try:
        led = Ledger.open(ledger_url(ledger))
        try:
            led.withdraw_consent(consent_id, actor=actor())
        finally:
            led.close()
    except LedgerError as exc:
        raise _fail(exc) from None
    typer.echo(f"withdrawn {consent_id}")


@consent_app.command("show")
def show(
    consent_id: str = typer.Argument(None, help="Consent id."),
    subject: str = typer.Option(None, "--subject", help="All consents of this pseudonymous subject."),
    subject_id: str = typer.Option(None, "--subject-id", help="All consents of this raw identifier."),
    key_file: str = typer.Option(None, "--key-file"),
    history: bool = typer.Option(False, "--history", help="Include the audit entries of each consent."),
    ledger: str = LEDGER_OPT,
) -> None:
    """Show a consent (or a subject's consents) as JSON."""
    try:
        led = Ledger.open(ledger_url(ledger))
        try:
            if consent_id:
                c = led.consent(consent_id)
                if c is None:
                    raise LedgerError(f"consent {consent_id!r} is not in the ledger")
                rows = [c]
            else:
                rows = led.subject_consents(_subject(led, subject, subject_id, key_file, create=False))
            if history:
                for r in rows:
                    r["history"] = led.audit_entries(r["id"])
        finally:
            led.close()
    except LedgerError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps(rows if not consent_id else rows[0], ensure_ascii=False, indent=1))


def register(app: typer.Typer) -> None:
    app.add_typer(consent_app, name="consent")

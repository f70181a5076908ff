"""``piguard consent record|withdraw|show``: consents in the ledger, keyed by pseudonymous subject ids."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy.exc import SQLAlchemyError

from piguard.detect.messages import mask_message
from piguard.ledger import Ledger, LedgerError, is_pseudonym
from piguard.rules.flows import FlowsError, read_capped

DEFAULT_LEDGER = "piguard-ledger.db"
MAX_POLICY_BYTES = 16 * 1024 * 1024
consent_app = typer.Typer(
    help="Record, withdraw and show consents (PIPL Art. 14-15, 29, 31).", no_args_is_help=True
)

LEDGER_OPT = typer.Option(
    None, "--ledger", help=f"Ledger URL or SQLite path (default $PIGUARD_LEDGER or ./{DEFAULT_LEDGER})."
)
KEY_FILE_OPT = typer.Option(
    None,
    "--key-file",
    help="Ledger key file (default $PIGUARD_LEDGER_KEY, $PIGUARD_LEDGER_KEY_FILE, or LEDGER.db.key beside "
    "a SQLite ledger): pseudonymises subjects and authenticates the audit log.",
)


def ledger_url(url: str | None) -> str:
    return url or os.environ.get("PIGUARD_LEDGER") or DEFAULT_LEDGER


def actor() -> str:
    """Who the audit log names for a change made from the command line."""
    return os.environ.get("USER", "piguard")


def say(verb: str, message: str) -> None:
    """One line on stderr, with whatever identifier it quotes masked."""
    typer.echo(mask_message(f"piguard {verb}: {message}"), err=True)


def note_key(verb: str, led: Ledger | None) -> None:
    """Tell the user when a key file was created, and where: losing it loses every pseudonym and the
    ability to verify the log, so it must not appear silently."""
    if led is not None and led.created_key_file is not None:
        say(
            verb,
            f"created ledger key file {led.created_key_file} (mode 0600). Back it up and keep it off the "
            "database host: it pseudonymises subjects and authenticates the audit log",
        )


@contextmanager
def opened(
    verb: str, url: str | None, key_file: str | None = None, *, create: bool = True, migrate: bool = True
) -> Iterator[Ledger]:
    """The ledger at ``url``, closed afterwards. Reading verbs pass ``create=False, migrate=False``: they open
    an existing ledger only, never create a file or tables, never migrate. Ledger, file and database errors
    become one masked line and exit 2."""
    led: Ledger | None = None
    try:
        led = Ledger.open(ledger_url(url), create=create, migrate=migrate, key_file=key_file)
        yield led
    except (LedgerError, FlowsError) as exc:
        say(verb, str(exc))
        raise typer.Exit(2) from None
    except OSError as exc:
        say(verb, f"{exc.strerror or type(exc).__name__}{f': {exc.filename}' if exc.filename else ''}")
        raise typer.Exit(2) from None
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]
        say(verb, f"database error in ledger {led.url if led else ''}: {first}")
        raise typer.Exit(2) from None
    finally:
        note_key(verb, led)
        if led is not None:
            led.close()


def _subject(led: Ledger, subject: str | None, subject_id: str | None, create: bool) -> str:
    if bool(subject) == bool(subject_id):
        raise LedgerError(
            "give --subject PSEUDONYM or --subject-id IDENTIFIER (use '-' to read it from stdin)"
        )
    if subject:
        if not is_pseudonym(subject):
            # The value is not echoed: a raw identifier typed here is exactly what must not be printed.
            raise LedgerError(
                "--subject must be a pseudonym exactly as 'consent record' prints it (s_ and 40 hex "
                "digits); for a raw identifier use --subject-id - and type it on stdin"
            )
        return subject
    raw = sys.stdin.readline(4096).strip() if subject_id == "-" else str(subject_id)
    if not raw:
        raise LedgerError("empty subject identifier")
    return led.pseudonymise(raw, create=create)


@consent_app.command("record")
def record(
    kind: str = typer.Option(..., "--kind", help="none | bundled | explicit | separate | guardian"),
    purpose: list[str] = typer.Option(..., "--purpose", help="Purpose id (repeat)."),
    data: list[str] = typer.Option(..., "--data", help="Entity id or class the consent covers (repeat)."),
    recipient: list[str] = typer.Option([], "--recipient", help="Named recipient covered (repeat)."),
    subject: str = typer.Option(None, "--subject", help="The subject's pseudonym (s_ and 40 hex digits)."),
    subject_id: str = typer.Option(
        None, "--subject-id", help="A raw identifier, pseudonymised with the key ('-': read from stdin)."
    ),
    consent_id: str = typer.Option(None, "--id", help="Consent id (default: generated)."),
    policy_version: str = typer.Option(
        None, "--policy-version", help="Version of the privacy policy the person agreed to."
    ),
    policy_file: Path = typer.Option(
        None, "--policy-file", help="Privacy policy text; its SHA-256 is stored."
    ),
    channel: str = typer.Option(None, "--channel", help="e.g. app, web, paper"),
    key_file: str = KEY_FILE_OPT,
    ledger: str = LEDGER_OPT,
) -> None:
    """Record a consent. Prints the consent id and the subject's pseudonym (never the raw identifier)."""
    with opened("consent", ledger, key_file) as led:
        sid = _subject(led, subject, subject_id, create=True)
        policy = read_capped(policy_file, MAX_POLICY_BYTES, "policy file") if policy_file else None
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
    typer.echo(json.dumps({"consent": cid, "subject": sid}))


@consent_app.command("withdraw")
def withdraw(
    consent_id: str = typer.Argument(..., help="Consent id."),
    key_file: str = KEY_FILE_OPT,
    ledger: str = LEDGER_OPT,
) -> None:
    """Withdraw a consent: later checks that rely on it are denied (PIPL Art. 15, 47)."""
    with opened("consent", ledger, key_file, create=False) as led:
        led.withdraw_consent(consent_id, actor=actor())
    typer.echo(mask_message(f"withdrawn {consent_id}"))


@consent_app.command("show")
def show(
    consent_id: str = typer.Argument(None, help="Consent id."),
    subject: str = typer.Option(None, "--subject", help="All consents of this subject pseudonym."),
    subject_id: str = typer.Option(None, "--subject-id", help="All consents of this raw identifier."),
    key_file: str = KEY_FILE_OPT,
    history: bool = typer.Option(False, "--history", help="Include the audit entries of each consent."),
    ledger: str = LEDGER_OPT,
) -> None:
    """Show a consent (or a subject's consents) as JSON."""
    with opened("consent", ledger, key_file, create=False, migrate=False) as led:
        if consent_id:
            c = led.consent(consent_id)
            if c is None:
                raise LedgerError(f"consent {consent_id!r} is not in the ledger")
            rows = [c]
        else:
            rows = led.subject_consents(_subject(led, subject, subject_id, create=False))
        if history:
            for r in rows:
                r["history"] = led.audit_entries(r["id"], "consent")
    typer.echo(json.dumps(rows if not consent_id else rows[0], ensure_ascii=False, indent=1))


def register(app: typer.Typer) -> None:
    app.add_typer(consent_app, name="consent")

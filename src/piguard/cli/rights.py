"""``piguard rights``: staff accounts, the request queue, decisions, deadlines and receipts from the command
line (the same service the web portal and API use)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import typer

from piguard._fs import read_regular_bytes
from piguard.cli.consent import LEDGER_OPT, ledger_url

rights_app = typer.Typer(
    help="Data-subject requests: staff, queue, decisions, receipts.", no_args_is_help=True
)
staff_app = typer.Typer(help="Staff accounts (agent, admin, service).", no_args_is_help=True)
rights_app.add_typer(staff_app, name="staff")


@rights_app.callback()
def _needs_the_web_extra() -> None:
    # Checked before any rights verb runs: `rights due` and `staff add` (argon2) imported them unguarded and
    # ended in "internal error (ModuleNotFoundError)" instead of naming the extra. --help needs no extra.
    from importlib import util

    if "--help" in sys.argv[1:]:  # click has consumed the subcommand's arguments by now
        return

    for module in ("argon2", "chinese_calendar"):
        if util.find_spec(module) is None:
            raise _fail(f"needs the web extra (pip install 'piguard[web]'): {module}")


STORES_OPT = typer.Option(
    None, "--stores", help="stores.yaml (needed to carry out deletions and corrections)."
)
KEY_OPT = typer.Option(None, "--signing-key", help="The controller's Ed25519 key that signs receipts.")
KEYFILE_OPT = typer.Option(None, "--key-file", help="The ledger's pseudonym key file.")


def _fail(msg: str) -> typer.Exit:
    from piguard.detect.messages import mask_message  # a message may quote an argument holding an ID

    typer.echo(f"piguard rights: {mask_message(msg)}", err=True)
    return typer.Exit(2)


@contextmanager
def _service(
    ledger: str | None, stores: str | None = None, signing_key: str | None = None, key_file: str | None = None
) -> Iterator[Any]:
    try:
        from piguard.rights import RightsError
        from piguard.web.config import ConfigError, ServeConfig, build_service
    except ImportError as exc:
        raise _fail(f"needs the web extra (pip install 'piguard[web]'): {exc.name}") from None
    try:
        svc = build_service(ServeConfig(ledger_url(ledger), stores, None, None, signing_key, key_file))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    try:
        yield svc
    except RightsError as exc:
        raise _fail(str(exc)) from None
    finally:
        svc.ledger.close()


def _echo(obj: Any) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, default=str))


@staff_app.command("add")
def staff_add(
    name: str = typer.Argument(...),
    role: str = typer.Option(..., "--role", help="agent | admin | service (service: preferences API only)"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read a dashboard password from stdin."
    ),
    ledger: str = LEDGER_OPT,
    key_file: str = KEYFILE_OPT,
) -> None:
    """Create a staff account and print its API token once (only a digest is stored)."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password_stdin and not password:
        raise _fail("empty password on stdin")
    with _service(ledger, key_file=key_file) as svc:
        token = svc.add_staff(name, role, password, actor=_actor())
    typer.echo(token)


@staff_app.command("list")
def staff_list(ledger: str = LEDGER_OPT, key_file: str = KEYFILE_OPT) -> None:
    """Staff accounts as JSON lines: name, role, whether a dashboard password is set, disabled."""
    from sqlalchemy import select

    from piguard.rights import tables

    with _service(ledger, key_file=key_file) as svc, svc.engine.connect() as conn:
        for r in conn.execute(select(tables.staff).order_by(tables.staff.c.name)):
            _echo(
                {
                    "name": r.name,
                    "role": r.role,
                    "password": r.password_hash is not None,
                    "disabled": r.disabled_at is not None,
                }
            )


@rights_app.command("list")
def list_requests(
    status: str = typer.Option(
        None,
        "--status",
        help="awaiting_verification | verified | in_progress | completed | refused | expired",
    ),
    type_: str = typer.Option(
        None, "--type", help="Request type: access, copy, correction, deletion, complaint, ..."
    ),
    overdue: bool = typer.Option(False, "--overdue", help="Open requests past their due date."),
    due_soon: bool = typer.Option(False, "--due-soon", help="Open requests due within 3 working days."),
    open_only: bool = typer.Option(False, "--open", help="Verified or in progress."),
    ledger: str = LEDGER_OPT,
    key_file: str = KEYFILE_OPT,
) -> None:
    """The queue as JSON lines, earliest due first."""
    with _service(ledger, key_file=key_file) as svc:
        for r in svc.queue(
            status=status, type_=type_, overdue=overdue, due_soon=due_soon, open_only=open_only
        ):
            _echo(r)


@rights_app.command("show")
def show(request_id: str, ledger: str = LEDGER_OPT, key_file: str = KEYFILE_OPT) -> None:
    """One request as staff see it (type, status, due date, details, outcome), as JSON."""
    with _service(ledger, key_file=key_file) as svc:
        _echo(svc.request_for_staff(request_id))


@rights_app.command("decide")
def decide(
    request_id: str,
    decision: str = typer.Argument(..., help="approve | refuse"),
    staff: str = typer.Option(..., "--as", help="The deciding staff account (agent or admin)."),
    reason: str = typer.Option(None, "--reason", help="Refusal reason code (piguard rights reasons)."),
    answer: str = typer.Option(None, "--answer", help="Text for the person."),
    ledger: str = LEDGER_OPT,
    stores: str = STORES_OPT,
    signing_key: str = KEY_OPT,
    key_file: str = KEYFILE_OPT,
) -> None:
    """Approve (carry out; a deletion ends in a signed receipt) or refuse with a reason citing the law."""
    from sqlalchemy import select

    from piguard.rights import Staff, tables

    with _service(ledger, stores, signing_key, key_file) as svc:
        with svc.engine.connect() as conn:
            row = conn.execute(select(tables.staff).where(tables.staff.c.name == staff)).first()
        if row is None or row.disabled_at is not None:
            raise _fail(f"no active staff account {staff}")
        out = svc.decide(request_id, decision, Staff(row.name, row.role), reason, answer)
    _echo(out)
    if out["status"] == "in_progress":
        raise typer.Exit(1)


@rights_app.command("reasons")
def reasons(type_: str = typer.Option(None, "--type", help="Only reasons for this request type.")) -> None:
    """Refusal reasons and the articles they cite."""
    from piguard.rights import refusal_reasons
    from piguard.rights.catalog import REQUEST_TYPES

    if type_ is not None and type_ not in REQUEST_TYPES:
        raise _fail(f"--type {type_!r} is not a request type; valid: {', '.join(REQUEST_TYPES)}")
    for r in refusal_reasons().values():
        if type_ is None or type_ in r.applies_to:
            _echo({**r.as_dict(), "applies_to": list(r.applies_to)})


@rights_app.command("due")
def due(
    verified: str = typer.Argument(None, help="Verification date YYYY-MM-DD (default: today, China time)."),
    days: int = typer.Option(15, "--days", min=1, max=365, help="Working days allowed."),
) -> None:
    """The due date: DAYS working days after VERIFIED on the official calendar."""
    from datetime import UTC, datetime

    from piguard.rights import add_working_days
    from piguard.rights.service import CHINA

    try:
        start = date.fromisoformat(verified) if verified else datetime.now(UTC).astimezone(CHINA).date()
    except ValueError:
        raise _fail(f"verification date {verified!r} is not YYYY-MM-DD") from None
    d = add_working_days(start, days)
    _echo(
        {
            "verified": start.isoformat(),
            "working_days": days,
            "due": d.day.isoformat(),
            "provisional": d.provisional,
        }
    )


@rights_app.command("verify-receipt")
def verify_receipt_cmd(
    receipt: Path = typer.Argument(..., help="A receipt JSON file (or the request's outcome)."),
    public_key: Path = typer.Option(..., "--key", help="The controller's public key (.pub)."),
) -> None:
    """Check a deletion or correction receipt's signature; exit 1 if it does not verify."""
    from piguard.keys import KeyFileError, load_public_key
    from piguard.rights import ReceiptError, verify_receipt

    try:
        doc = json.loads(read_regular_bytes(receipt).decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8, bad JSON, a huge number
        raise _fail(f"receipt {receipt} cannot be read as JSON ({type(exc).__name__})") from None
    if isinstance(doc, dict) and "receipt" in doc:
        doc = doc["receipt"]
    elif isinstance(doc, dict) and isinstance(doc.get("outcome"), dict) and "receipt" in doc["outcome"]:
        doc = doc["outcome"]["receipt"]
    try:
        verify_receipt(doc, load_public_key(public_key))
    except KeyFileError as exc:
        raise _fail(str(exc)) from None
    except ReceiptError as exc:
        typer.echo(f"INVALID: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"ok: receipt for {doc['request']} signed by {doc['key_id']}")


@rights_app.command("purge")
def purge(ledger: str = LEDGER_OPT, key_file: str = KEYFILE_OPT) -> None:
    """Wipe sealed identifiers past their download period, expire stale codes, recompute provisional dues."""
    with _service(ledger, key_file=key_file) as svc:
        n = svc.purge()
        m = svc.refresh_deadlines()
    _echo({"wiped": n, "deadlines_refreshed": m})


def _actor() -> str:
    import os

    return os.environ.get("USER", "piguard")


def register(app: typer.Typer) -> None:
    app.add_typer(rights_app, name="rights")

"""``piguard ledger``: create, inspect and verify the ledger; declare purposes, provenance and activities;
sign checkpoints of its audit log."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from piguard._fs import OutputPathError, atomic_write_text
from piguard.cli.consent import KEY_FILE_OPT, LEDGER_OPT, actor, opened, say
from piguard.detect.messages import mask_message
from piguard.keys import KeyFileError, load_signing_key, load_trust
from piguard.ledger import KEY_ENV, KEY_FILE_ENV, Checkpoint, LedgerError, VerifyResult, read_checkpoint

ledger_app = typer.Typer(
    help="The ledger: provenance, purposes, activities, the audit log and its checkpoints.",
    no_args_is_help=True,
)


@ledger_app.command("init")
def init(key_file: str = KEY_FILE_OPT, ledger: str = LEDGER_OPT) -> None:
    """Create the ledger (or migrate it to this piguard's schema) and, for a SQLite ledger, its key file."""
    with opened("ledger", ledger, key_file) as led:
        ik = led.integrity_key(create=True)
        typer.echo(f"ledger {led.url} at schema {led.schema_revision()}")
        if ik is None:
            say(
                "ledger",
                f"no ledger key: writing needs one (${KEY_ENV}, ${KEY_FILE_ENV} or --key-file); keep it off "
                "the database host",
            )
        else:
            src = led.key_source
            typer.echo(f"ledger key: {src.origin if src else 'argument'} (key id {ik.key_id})")


@ledger_app.command("seal")
def seal(key_file: str = KEY_FILE_OPT, ledger: str = LEDGER_OPT) -> None:
    """Vouch once for audit entries written before schema 0002 (they carry no MAC).

    Verifies them (chain and replay), then appends one keyed entry whose MAC covers them. Do it right after
    upgrading a ledger from schema 0001, and only if you trust the database until now."""
    with opened("ledger", ledger, key_file, create=False) as led:
        if led.seal(actor=actor()):
            typer.echo("sealed: the audit entries written before schema 0002 are now authenticated")
        else:
            typer.echo("nothing to seal: every audit entry is authenticated")


@ledger_app.command("status")
def status(ledger: str = LEDGER_OPT) -> None:
    """Row counts and schema revision."""
    with opened("ledger", ledger, create=False, migrate=False) as led:
        typer.echo(json.dumps({"schema": led.schema_revision(), **led.counts()}))


def _checkpoints(paths: list[Path], trust: list[Path]) -> list[Checkpoint]:
    if not paths:
        return []
    if not trust:
        raise LedgerError("--checkpoint needs --trust: the public key (or a directory of keys) that signs it")
    try:
        store = load_trust(trust)
    except KeyFileError as exc:
        raise LedgerError(str(exc)) from None
    return [read_checkpoint(p, store) for p in paths]


def _problems(res: VerifyResult) -> tuple[str, ...]:
    return res.problems or ((res.problem,) if res.problem else ())


def _report(res: VerifyResult, fmt: str) -> None:
    if fmt == "json":
        typer.echo(
            json.dumps(
                {
                    "ok": res.ok,
                    "status": "ok" if res.ok else "unauthenticated" if res.unauthenticated else "tampered",
                    "entries": res.entries,
                    "head": res.head_hash,
                    "authenticated": res.authenticated,
                    "key_id": res.key_id,
                    "checkpoints": list(res.checkpoints),
                    "problems": [mask_message(p) for p in _problems(res)],
                },
                ensure_ascii=False,
            )
        )
        return
    if res.ok:
        if res.entries == 0:
            how = "an empty log"
        elif res.key_id:
            how = f"authenticated with ledger key {res.key_id}"
        else:
            how = "authenticated by the signed checkpoint"
        cps = f"; checkpoints at {', '.join(map(str, res.checkpoints))} match" if res.checkpoints else ""
        typer.echo(f"ok: {res.entries} audit entries, head {res.head_hash} ({how}{cps}); tables match")
        return
    if res.unauthenticated:
        say("ledger verify", f"NOT AUTHENTICATED: {res.problem}")
        return
    problems = _problems(res)
    where = f" ({res.entries} entries verified before it)" if res.bad_seq is not None else ""
    typer.echo(mask_message(f"TAMPERED: {problems[0]}{where}"), err=True)
    for p in problems[1:]:
        typer.echo(mask_message(f"TAMPERED: {p}"), err=True)


@ledger_app.command("verify")
def verify(
    checkpoint: list[Path] = typer.Option(
        [], "--checkpoint", help="A signed checkpoint ('piguard ledger checkpoint') the log must contain."
    ),
    trust: list[Path] = typer.Option(
        [], "--trust", help="Public key file (.pub) or directory of them that checkpoints must be signed by."
    ),
    fmt: str = typer.Option("text", "--format", "-f", help="text | json"),
    key_file: str = KEY_FILE_OPT,
    ledger: str = LEDGER_OPT,
) -> None:
    """Prove the ledger: re-hash, authenticate and replay the audit log against every table.

    Checkpoints given with --checkpoint must be contained in the log. Exit 0 ok; 1 tampered (or entries
    without a MAC); 2 cannot verify (no key, missing ledger, bad checkpoint)."""
    if fmt not in ("text", "json"):
        say("ledger verify", f"--format {fmt[:40]!r} is not valid; valid: text, json")
        raise typer.Exit(2)
    with opened("ledger verify", ledger, key_file, create=False, migrate=False) as led:
        res = led.verify(_checkpoints(checkpoint, trust))
    _report(res, fmt)
    if res.ok:
        return
    if res.unauthenticated and res.key_id is None:
        raise typer.Exit(2)  # no key: nothing was found wrong, but nothing could be proven either
    raise typer.Exit(1)


@ledger_app.command("checkpoint")
def checkpoint(
    signing_key: Path = typer.Option(
        ..., "--signing-key", help="The controller's Ed25519 private key (piguard.keys, PKCS#8 .key file)."
    ),
    output: Path = typer.Option(None, "--output", "-o", help="Write the checkpoint here (default stdout)."),
    key_file: str = KEY_FILE_OPT,
    ledger: str = LEDGER_OPT,
) -> None:
    """Verify the ledger, then sign its chain head with the controller's key.

    Keep the checkpoint off the database host: a later 'ledger verify --checkpoint FILE --trust KEY.pub'
    shows whether the log was rolled back or rewritten since."""
    try:
        key = load_signing_key(signing_key)
    except KeyFileError as exc:
        say("ledger", str(exc))
        raise typer.Exit(2) from None
    with opened("ledger", ledger, key_file, create=False, migrate=False) as led:
        doc = led.checkpoint(key)
        text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
        if output is None:
            typer.echo(text, nl=False)
        else:
            try:
                atomic_write_text(output, text)
            except OutputPathError as exc:
                raise LedgerError(str(exc)) from None
            typer.echo(f"checkpoint at entry {doc['seq']} signed by {doc['signer']} written to {output}")


@ledger_app.command("audit")
def audit(
    object_id: str = typer.Option(None, "--object", help="Only entries about this object id."),
    ledger: str = LEDGER_OPT,
) -> None:
    """Print audit entries as JSON lines."""
    with opened("ledger", ledger, create=False, migrate=False) as led:
        for e in led.audit_entries(object_id):
            typer.echo(json.dumps(e, ensure_ascii=False))


@ledger_app.command("purpose")
def purpose(
    purpose_id: str = typer.Argument(...),
    zh: str = typer.Option(..., "--zh", help="The purpose in Chinese, as shown to people."),
    en: str = typer.Option(..., "--en", help="The purpose in English."),
    data: list[str] = typer.Option(..., "--data", help="Entity id or class the purpose needs (repeat)."),
    alone_insufficient: bool = typer.Option(
        False, "--alone-insufficient", help="Cannot justify collection alone."
    ),
    push: bool = typer.Option(False, "--push", help="Information push or marketing."),
    key_file: str = KEY_FILE_OPT,
    ledger: str = LEDGER_OPT,
) -> None:
    """Declare a purpose and the entity categories it needs (PIPL Art. 6)."""
    with opened("ledger", ledger, key_file) as led:
        led.declare_purpose(
            purpose_id,
            zh=zh,
            en=en,
            categories=data,
            alone_insufficient=alone_insufficient,
            push=push,
            actor=actor(),
        )
    typer.echo(mask_message(f"declared purpose {purpose_id}"))


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
    content_hash: str = typer.Option(None, "--content-hash", help="SHA-256 of the dataset's content."),
    key_file: str = KEY_FILE_OPT,
    ledger: str = LEDGER_OPT,
) -> None:
    """Record where a dataset came from and on what legal basis (PIPL Art. 13)."""
    with opened("ledger", ledger, key_file) as led:
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
    typer.echo(mask_message(f"recorded provenance {dataset_id}"))


@ledger_app.command("activity")
def activity(
    activity_id: str = typer.Argument(...),
    name: str = typer.Option(..., "--name", help="What the activity is called in the record."),
    kind: str = typer.Option(
        ..., "--activity", help="collect | use | provide | publish | transfer_abroad | ..."
    ),
    purpose_id: str = typer.Option(..., "--purpose", help="A known purpose id (see ledger purpose)."),
    data: list[str] = typer.Option(..., "--data", help="Entity ids or classes processed (repeat)."),
    legal_basis: str = typer.Option(..., "--legal-basis", help="PIPL Art. 13 basis, e.g. consent"),
    recipient: str = typer.Option(None, "--recipient", help="Who receives the data, for provide flows."),
    key_file: str = KEY_FILE_OPT,
    ledger: str = LEDGER_OPT,
) -> None:
    """Record a processing activity (record of processing, PIPL Art. 55-56)."""
    with opened("ledger", ledger, key_file) as led:
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
    typer.echo(mask_message(f"recorded activity {activity_id}"))


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")

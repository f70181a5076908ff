"""``piguard passport``: keys, issuing, verifying and revoking dataset passports; record inclusion proofs.

Exit codes of ``verify`` and ``verify-record``: 0 accept, 1 reject, 2 unusable input (the passport, a key
or a list cannot be read at all). Every message names its input and never holds a key or a raw value.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from piguard._fs import OutputPathError, atomic_write_text
from piguard.keys import (
    PASSPHRASE_ENV,
    KeyFileError,
    SigningKey,
    TrustStore,
    generate,
    load_signing_key,
    load_trust,
)

passport_app = typer.Typer(
    help="Dataset passports: signed statements of what a delivery is, where it came from and what it may be "
    "used for, verified against the delivered bytes.",
    no_args_is_help=True,
)

TRUST_OPT = typer.Option(
    ..., "--trust", help="Trusted public keys: a .pub file or a directory of them (repeatable)."
)
FORMATS = ("table", "json", "html")


def _fail(verb: str, message: str, code: int = 2) -> typer.Exit:
    from piguard.detect.messages import mask_message  # a message may quote an argument holding an ID

    typer.echo(f"piguard passport {verb}: {mask_message(message)}", err=True)
    return typer.Exit(code)


def _ask_passphrase() -> bytes:
    return typer.prompt("Passphrase for the private key", hide_input=True, err=True).encode("utf-8")


def _signing_key(verb: str, path: Path) -> SigningKey:
    try:
        return load_signing_key(path, _ask_passphrase if sys.stdin.isatty() else None)
    except KeyFileError as exc:
        raise _fail(verb, str(exc)) from None


def _trust(verb: str, sources: list[Path]) -> TrustStore:
    try:
        return load_trust([str(s) for s in sources])
    except KeyFileError as exc:
        raise _fail(verb, str(exc)) from None


def _opt(p: Path | None) -> str | None:
    return None if p is None else str(p)


def parse_expiry(text: str) -> datetime:
    """``2026-12-31`` (00:00 UTC that day), an ISO 8601 time with zone, or ``+90d`` from now."""
    m = re.fullmatch(r"\+(\d{1,5})d", text.strip())
    if m:
        return datetime.now(UTC).replace(microsecond=0) + timedelta(days=int(m.group(1)))
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--expires {text!r}: expected YYYY-MM-DD, an ISO 8601 time or +DAYSd") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@passport_app.command("keygen")
def keygen(
    out: Path = typer.Option(
        ..., "--out", help="Writes OUT.key (mode 0600) and OUT.pub, as ssh-keygen does."
    ),
    owner: str = typer.Option(
        None, "--owner", help="Owner name written in the .pub line (e.g. the company)."
    ),
    passphrase: bool = typer.Option(
        False,
        "--passphrase",
        help=f"Encrypt the private key: asks for a passphrase (or reads ${PASSPHRASE_ENV}).",
    ),
) -> None:
    """Create an Ed25519 key pair; $PIGUARD_PASSPHRASE, when set, encrypts the private key too."""
    secret: bytes | None = None
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        secret = env.encode("utf-8")
    elif passphrase:
        if not sys.stdin.isatty():
            raise _fail("keygen", f"--passphrase needs a terminal to ask on, or set ${PASSPHRASE_ENV}")
        first = typer.prompt("New passphrase", hide_input=True, err=True)
        if first != typer.prompt("Repeat it", hide_input=True, err=True):
            raise _fail("keygen", "the passphrases differ; nothing was written")
        if not first:
            raise _fail("keygen", "an empty passphrase does not encrypt; leave out --passphrase instead")
        secret = first.encode("utf-8")
    try:
        key = generate(out, owner=owner, passphrase=secret)
    except KeyFileError as exc:
        raise _fail("keygen", str(exc)) from None
    pub = key.public.path
    priv = pub.with_suffix(".key") if pub else out
    typer.echo(f"{priv} (private, mode 0600{', encrypted' if secret else ''})")
    typer.echo(f"{pub} (public)")
    typer.echo(f"key id {key.key_id}")


@passport_app.command("issue")
def issue_cmd(
    data: list[Path] = typer.Argument(..., help="Delivered files and directories."),
    key: Path = typer.Option(..., "--key", help="The issuer's private key (NAME.key)."),
    out: Path = typer.Option(..., "--out", help="Write the passport (DSSE envelope, JSON) here."),
    purpose: list[str] = typer.Option(..., "--purpose", help="A permitted purpose id (repeatable)."),
    recipient: list[str] = typer.Option(
        ..., "--recipient", help="A permitted recipient name, or '*' (repeatable)."
    ),
    issuer: str = typer.Option(None, "--issuer", help="The controller's name (default: the key's owner)."),
    state: str = typer.Option("raw", "--state", help="raw | pseudonymized | anonymized"),
    deid_report: Path = typer.Option(None, "--deid-report", help="The 'piguard deid --report' JSON."),
    deid_config: Path = typer.Option(None, "--deid-config", help="The deid config, for hierarchy digests."),
    hierarchies: Path = typer.Option(None, "--hierarchies", help="ARX hierarchy files, for their digests."),
    ledger: str = typer.Option(None, "--ledger", envvar="PIGUARD_LEDGER", help="Ledger URL or SQLite path."),
    provenance: str = typer.Option(
        None, "--provenance", help="The dataset's provenance record id in the ledger."
    ),
    crawl: Path = typer.Option(None, "--crawl", help="A crawl's output directory (crawled data)."),
    subjects: Path = typer.Option(
        None, "--subjects", help="Table listing the data's subjects (consent coverage)."
    ),
    subject_column: str = typer.Option(
        None, "--subject-column", help="Its column of identifiers or s_ pseudonyms."
    ),
    expires: str = typer.Option(
        None, "--expires", help="YYYY-MM-DD, ISO 8601 time or +DAYSd (default +365d)."
    ),
    upstream: list[Path] = typer.Option(
        [], "--upstream", help="An upstream passport (chain of custody; repeatable)."
    ),
    sampled: bool = typer.Option(False, "--sampled", help="Scan a sample instead of every record (faster)."),
) -> None:
    """Scan the data, gather provenance and consent, refuse what the bytes contradict, sign the passport."""
    from piguard.passport import IssueError, IssueRequest, issue

    try:
        exp = parse_expiry(expires) if expires else None
    except ValueError as exc:
        raise _fail("issue", str(exc)) from None
    req = IssueRequest(
        data=[str(d) for d in data], key=_signing_key("issue", key), out=str(out), purposes=purpose,
        recipients=recipient, issuer=issuer, state=state, deid_report=_opt(deid_report),
        deid_config=_opt(deid_config), hierarchies_dir=_opt(hierarchies),
        ledger=ledger, provenance_id=provenance, crawl_dir=_opt(crawl),
        subjects=_opt(subjects), subject_column=subject_column, expires=exp,
        upstream=[str(u) for u in upstream], sampled_scan=sampled,
    )  # fmt: skip
    try:
        issued = issue(req)
    except IssueError as exc:
        raise _fail("issue", str(exc)) from None
    pred = issued.statement["predicate"]
    typer.echo(f"{issued.path}: passport {issued.id}")
    typer.echo(
        f"  {len(pred['dataset']['files'])} file(s), {pred['dataset']['records']} records; "
        f"state {pred['declaredState']['state']}; "
        f"{len(pred['inventory']['entries'])} personal-information column(s); expires {pred['expiresAt']}"
    )
    for n in issued.notes:
        typer.echo(f"  note: {n}")


def _emit(verb: str, text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        atomic_write_text(output, text)
    except (OutputPathError, OSError) as exc:
        raise _fail(verb, f"cannot write {output}: {getattr(exc, 'strerror', None) or exc}") from None


def _render(verdict, fmt: str) -> str:  # type: ignore[no-untyped-def]
    from piguard.passport import render

    return {"json": render.to_json, "html": render.to_html}.get(fmt, render.to_text)(verdict)


def _options(verb: str, trust: list[Path], revocations: list[Path], **kw):  # type: ignore[no-untyped-def]
    from piguard.passport import RevocationError, VerifyOptions, load_revocations

    store = _trust(verb, trust)
    try:
        revs = load_revocations([str(r) for r in revocations], store)
    except RevocationError as exc:
        raise _fail(verb, str(exc)) from None
    return VerifyOptions(trust=store, revocations=revs, **kw)


@passport_app.command("verify")
def verify_cmd(
    data: list[Path] = typer.Argument(..., help="The delivered files and directories."),
    passport: Path = typer.Option(..., "--passport", help="The passport (JSON) to verify."),
    trust: list[Path] = TRUST_OPT,
    purpose: list[str] = typer.Option([], "--purpose", help="Your purpose: must be permitted (repeatable)."),
    recipient: str = typer.Option(None, "--recipient", help="Your name as recipient: must be permitted."),
    full: bool = typer.Option(False, "--full", help="Re-scan every record (default: a sample)."),
    revocations: list[Path] = typer.Option(
        [], "--revocations", help="A signed revocation list (repeatable)."
    ),
    upstream: list[Path] = typer.Option(
        [], "--upstream", help="Upstream passports to check the chain (repeatable)."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json | html"),
    output: Path = typer.Option(None, "--output", "-o", help="Write the report here instead of stdout."),
) -> None:
    """Verify a passport against the data: prints accept or reject and one line per reason."""
    from piguard.passport import verify

    if fmt not in FORMATS:
        raise _fail("verify", f"--format {fmt!r} is not valid; valid: {', '.join(FORMATS)}")
    opts = _options("verify", trust, revocations, purposes=purpose, recipient=recipient, full=full,
                    upstream_files=[str(u) for u in upstream])  # fmt: skip
    v = verify(str(passport), [str(d) for d in data], opts)
    _emit("verify", _render(v, fmt), output)
    if output is not None:
        typer.echo("accept" if v.accepted else "reject", err=True)
    raise typer.Exit(v.exit_code)


@passport_app.command("revoke")
def revoke_cmd(
    passport: list[Path] = typer.Argument(None, help="Passports to revoke."),
    key: Path = typer.Option(..., "--key", help="The issuer's private key (signs the list)."),
    list_file: Path = typer.Option(..., "--list", help="The revocation list to create or extend."),
    ids: list[str] = typer.Option([], "--id", help="A passport id (sha256:...) to revoke (repeatable)."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the list)."),
) -> None:
    """Add passports to a signed revocation list (verifiers pass it with --revocations)."""
    from piguard.passport import RevocationError, revoke
    from piguard.passport.envelope import EnvelopeError, parse_envelope
    from piguard.passport.verify import read_passport_file

    sk = _signing_key("revoke", key)
    targets = list(ids)
    for i in targets:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", i):
            raise _fail("revoke", "an --id is not a passport id (sha256: and 64 hex digits)")
    for p in passport or []:
        try:
            targets.append(parse_envelope(read_passport_file(str(p)), f"passport {p}").id)
        except EnvelopeError as exc:
            raise _fail("revoke", str(exc)) from None
    if not targets:
        raise _fail("revoke", "name a passport file or --id sha256:...")
    try:
        n = revoke(str(list_file), targets, sk, reason)
    except (RevocationError, OutputPathError, OSError) as exc:
        raise _fail("revoke", str(exc)) from None
    for t in targets:
        typer.echo(f"revoked {t}")
    typer.echo(f"{list_file}: {n} revoked passport(s), signed by {sk.key_id}")


@passport_app.command("prove-record")
def prove_record_cmd(
    data: Path = typer.Argument(..., help="The data file holding the record."),
    passport: Path = typer.Option(..., "--passport", help="The passport describing the file."),
    row: int = typer.Option(..., "--row", help="Record number, from 1 (after a CSV/TSV header)."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Write the proof here (mode 0600; default stdout)."
    ),
) -> None:
    """Give a Merkle inclusion proof of one record (it carries that record, so keep it private)."""
    import json

    from piguard.passport import ProofError, prove_record, write_proof

    try:
        proof = prove_record(str(data), str(passport), row)
        if output is None:
            sys.stdout.write(json.dumps(proof, ensure_ascii=False, indent=2) + "\n")
        else:
            write_proof(proof, str(output))
            typer.echo(
                f"{output}: proof of record {row} of {proof['file']} ({len(proof['auditPath'])} hashes)"
            )
    except ProofError as exc:
        raise _fail("prove-record", str(exc)) from None
    except (OutputPathError, OSError) as exc:
        raise _fail(
            "prove-record", f"cannot write {output}: {getattr(exc, 'strerror', None) or exc}"
        ) from None


@passport_app.command("verify-record")
def verify_record_cmd(
    proof: Path = typer.Argument(..., help="A proof from prove-record."),
    passport: Path = typer.Option(..., "--passport", help="The passport the proof refers to."),
    trust: list[Path] = TRUST_OPT,
    revocations: list[Path] = typer.Option(
        [], "--revocations", help="A signed revocation list (repeatable)."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json | html"),
) -> None:
    """Check a record inclusion proof against a trusted passport: accept (0), reject (1), unusable (2)."""
    from piguard.passport import ProofError, read_proof, verify_record

    if fmt not in FORMATS:
        raise _fail("verify-record", f"--format {fmt!r} is not valid; valid: {', '.join(FORMATS)}")
    opts = _options("verify-record", trust, revocations)
    try:
        doc = read_proof(str(proof))
    except ProofError as exc:
        typer.echo(f"reject\n  unusable: {exc}")
        raise typer.Exit(2) from None
    v = verify_record(doc, str(passport), opts)
    sys.stdout.write(_render(v, fmt))
    raise typer.Exit(v.exit_code)


def register(app: typer.Typer) -> None:
    app.add_typer(passport_app, name="passport")

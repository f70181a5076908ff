"""``piguard joint``: private set intersection, consortium counts and federated training between members.

Every verb refuses to run (exit 2) without ``--purpose`` and ``--legal-basis``, checks the run's flows with
the rule engine, and with ``--ledger`` writes each run to the audit log with its set sizes only.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer

from piguard._fs import OutputPathError, atomic_write_bytes, atomic_write_text

joint_app = typer.Typer(
    help="Compute together without sharing raw data (PSI, counts, federated models).", no_args_is_help=True
)


@joint_app.callback()
def _needs_the_joint_extra() -> None:
    # Checked before any joint verb runs: piguard.joint imports PyNaCl at once, so a missing extra ended in
    # "internal error (ModuleNotFoundError)" instead of naming it. A verb's --help needs no extra.
    from piguard._extras import MissingExtra, require

    if "--help" in sys.argv[1:]:  # click has consumed the subcommand's arguments by now
        return

    try:
        for module in ("nacl", "phe", "starlette", "uvicorn", "httpx"):
            require(module, "joint", "this command")
    except MissingExtra as exc:
        typer.echo(f"piguard joint: {exc}", err=True)
        raise typer.Exit(2) from None


psi_app = typer.Typer(help="Private set intersection between two members.", no_args_is_help=True)
joint_app.add_typer(psi_app, name="psi")
count_app = typer.Typer(help="Consortium count: how many members hold each applicant.", no_args_is_help=True)
joint_app.add_typer(count_app, name="count")
train_app = typer.Typer(help="Vertical federated logistic regression (Paillier).", no_args_is_help=True)
joint_app.add_typer(train_app, name="train")
score_app = typer.Typer(help="Joint scoring with a federated model.", no_args_is_help=True)
joint_app.add_typer(score_app, name="score")

T = TypeVar("T")

PURPOSE = typer.Option(None, "--purpose", help="Declared purpose id (required; see docs/rules.md).")
BASIS = typer.Option(
    None, "--legal-basis", help="PIPL Art. 13 legal basis (required), e.g. consent, contract."
)
CONSENT = typer.Option(
    None, "--consent", help="Kind of consent held for these subjects: none, explicit, separate."
)
CONSENT_REF = typer.Option(None, "--consent-ref", help="A consent id in the ledger that covers this run.")
LEDGER = typer.Option(None, "--ledger", help="Ledger URL or SQLite path: check consents, log the run.")
KEY = typer.Option(..., "--key", help="Your private key (from `piguard passport keygen`).")
TRUST = typer.Option(..., "--trust", help="Directory of the partners' public keys (*.pub).")


def _port(default: int) -> Any:
    # Bounded here: a port past 65535 reached the socket layer as an OverflowError (an internal error).
    return typer.Option(
        default, "--port", min=0, max=65535, help="TCP port (0 picks a free one and prints it)."
    )


IDS = typer.Option(..., "--ids", help="CSV/TSV file with the identifiers.")
COLUMN = typer.Option(..., "--column", help="Column holding the identifiers.")
ID_TYPE = typer.Option("auto", "--id-type", help="auto, cn_resident_id, phone, bank_card or email.")


def _fail(verb: str, exc: Exception) -> typer.Exit:
    from piguard.detect.messages import mask_message
    from piguard.sources.redact import redact_urls

    # A partner URL may carry a password, and an error may quote an identifier: neither is printed raw.
    typer.echo(f"piguard joint {verb}: {mask_message(redact_urls(str(exc)))}", err=True)
    return typer.Exit(2)


@contextmanager
def _errors(verb: str) -> Iterator[None]:
    """Named errors become one line and exit 2 (bad input, refusal, peer trouble)."""
    from piguard.joint.errors import JointError  # imported here: `piguard --help` stays fast
    from piguard.keys import KeyFileError
    from piguard.ledger import LedgerError

    try:
        yield
    except (JointError, KeyFileError, LedgerError, OutputPathError) as exc:
        raise _fail(verb, exc) from None


def _keys(key: Path, trust: Path) -> tuple[Any, Any]:
    from piguard.keys import load_signing_key, load_trust

    return load_signing_key(key), load_trust(trust)


def _ledger(url: str | None) -> Any:
    if not url:
        return None
    from piguard.ledger import Ledger

    return Ledger.open(url)


def _declare(
    purpose: str | None, basis: str | None, consent: str | None, consent_ref: str | None, led: Any
) -> Any:
    from piguard.joint.lawful import declare

    return declare(purpose, basis, consent=consent, consent_ref=consent_ref, ledger=led)


def _read_ids(ids: Path, column: str, id_type: str) -> tuple[Any, Any]:
    from piguard.joint.identifiers import normalise, read_table

    frame = read_table(ids, column)
    return frame, normalise(frame[column], id_type)


def _echo_json(obj: Any, err: bool = False) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, sort_keys=True), err=err)


def _with_ledger(url: str | None, fn: Callable[[Any], T]) -> T:
    led = _ledger(url)
    try:
        return fn(led)
    finally:
        if led is not None:
            led.close()


# --- psi ----------------------------------------------------------------------------------------------------
@psi_app.command("serve")
def psi_serve(
    ids: Path = IDS,
    column: str = COLUMN,
    port: int = _port(8765),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    key: Path = KEY,
    trust: Path = TRUST,
    purpose: str = PURPOSE,
    legal_basis: str = BASIS,
    consent: str = CONSENT,
    consent_ref: str = CONSENT_REF,
    ledger: str = LEDGER,
    id_type: str = ID_TYPE,
    max_ids: int = typer.Option(1_000_000, "--max-ids", min=1, help="Most identifiers one query may hold."),
    min_ids: int = typer.Option(1, "--min-ids", min=0, help="Fewest identifiers one query may hold."),
    max_queries: int = typer.Option(
        20, "--max-queries-per-day", min=0, help="Queries per partner per UTC day."
    ),
    limits_file: Path = typer.Option(None, "--limits", help="YAML with per-partner limits (docs/joint.md)."),
    state: Path = typer.Option(
        None, "--state", help="JSON file keeping the daily query counts across restarts."
    ),
    once: bool = typer.Option(False, "--once", help="Exit after one completed query."),
    engine: str = typer.Option(
        "ecdh",
        "--engine",
        help="ecdh (piguard's, both modes), or SecretFlow's rr22, "
        "kkrt, spu-ecdh (intersection only; they need spu, see docs/joint.md).",
    ),
    spu_python: str = typer.Option(None, "--spu-python", help="Interpreter with SecretFlow's spu installed."),
) -> None:
    """Serve this member's identifiers for PSI queries from trusted partners."""
    from piguard.joint.lawful import audit, check
    from piguard.joint.limits import Limit, Limits
    from piguard.joint.psi import PsiServer, RunRecord
    from piguard.joint.transport import JointServer

    with _errors("psi serve"):
        led = _ledger(ledger)
        decl = _declare(purpose, legal_basis, consent, consent_ref, led)
        me, trusted = _keys(key, trust)
        _frame, norm = _read_ids(ids, column, id_type)
        check(decl, entities=norm.by_type, partner="PSI partners", learns_members=False, ledger=led)
        for w in decl.warnings:
            typer.echo(f"piguard joint psi serve: warning: {w}", err=True)
        limits = Limits.load(limits_file, Limit(max_ids, min_ids, max_queries), state)
        server_ref: list[Any] = []

        def on_run(rec: RunRecord) -> None:
            sizes = {
                "own set": rec.own_set_size,
                "partner set": rec.partner_set_size,
                "complete": rec.complete,
            }
            out = {"run": "psi", **rec.as_dict(), "invalid_dropped": norm.invalid}
            out.pop("intersection_size", None)  # the serving side never learns it
            if led is not None:
                out["ledger_activity"] = audit(led, "psi-serve", decl, sizes, norm.by_type, rec.partner)
            _echo_json(out, err=True)
            if once and rec.complete and server_ref:
                server_ref[0].stop()

        if engine == "ecdh":
            proto: Any = PsiServer(
                norm.unique, purpose=decl.purpose, legal_basis=decl.legal_basis, limits=limits, on_run=on_run
            )
        else:
            from piguard.joint.sf_psi import ENGINES, SpuPsiServer

            if engine not in ENGINES:
                raise _input_error(f"--engine {engine!r} is not valid; valid: ecdh, {', '.join(ENGINES)}")
            proto = SpuPsiServer(
                norm.unique,
                purpose=decl.purpose,
                legal_basis=decl.legal_basis,
                limits=limits,
                on_run=on_run,
                python=spu_python,
                link_host=host,
            )
        srv = JointServer(proto, me, trusted)
        _echo_json({"input": norm.summary()}, err=True)

        def ready(bound: int) -> None:
            typer.echo(f"listening on http://{host}:{bound}", err=True)
            sys.stderr.flush()

        server_ref.append(srv)
        srv.serve(host, port, ready=ready)


@psi_app.command("query")
def psi_query(
    url: str = typer.Argument(..., help="The serving member, e.g. http://10.0.0.5:8765"),
    ids: Path = IDS,
    column: str = COLUMN,
    cardinality: bool = typer.Option(False, "--cardinality", help="Learn only the intersection's size."),
    key: Path = KEY,
    trust: Path = TRUST,
    purpose: str = PURPOSE,
    legal_basis: str = BASIS,
    consent: str = CONSENT,
    consent_ref: str = CONSENT_REF,
    ledger: str = LEDGER,
    id_type: str = ID_TYPE,
    out: Path = typer.Option(
        ..., "--out", help="Intersection rows as CSV, or with --cardinality a JSON object."
    ),
    engine: str = typer.Option(
        "auto", "--engine", help="auto (what the server runs), ecdh, rr22, kkrt, spu-ecdh."
    ),
    spu_python: str = typer.Option(None, "--spu-python", help="Interpreter with SecretFlow's spu installed."),
    link_host: str = typer.Option("127.0.0.1", "--link-host", help="Address the SecretFlow link listens on."),
) -> None:
    """Intersect this member's identifiers with a partner's; learn the rows in common, or only how many."""
    from piguard.joint.lawful import audit, check
    from piguard.joint.psi import query

    with _errors("psi query"):
        led = _ledger(ledger)
        try:
            decl = _declare(purpose, legal_basis, consent, consent_ref, led)
            me, trusted = _keys(key, trust)
            if out.parent and not out.parent.is_dir():
                raise OutputPathError(f"cannot write {out}: directory {out.parent} does not exist")
            t0 = time.perf_counter()
            frame, norm = _read_ids(ids, column, id_type)
            t_norm = time.perf_counter() - t0
            learns = not cardinality

            def on_partner(peer: Any) -> None:
                # The recipient is known once the partner's signed welcome arrived, before any identifier
                # (even blinded) leaves: consents in the ledger are matched against that name.
                check(
                    decl,
                    entities=norm.by_type,
                    partner=peer.owner or peer.key_id,
                    learns_members=learns,
                    ledger=led,
                )
                for w in decl.warnings:
                    typer.echo(f"piguard joint psi query: warning: {w}", err=True)

            if decl.consent_ref is None:  # refuse early, before contacting anyone, when the basis cannot hold
                check(decl, entities=norm.by_type, partner=url, learns_members=learns, ledger=led)
            keys = norm.unique
            chosen = _engine_of(url) if engine == "auto" else engine
            if chosen == "ecdh":
                res = query(
                    url,
                    keys,
                    me=me,
                    trust=trusted,
                    purpose=decl.purpose,
                    legal_basis=decl.legal_basis,
                    cardinality=cardinality,
                    on_partner=on_partner,
                )
            elif cardinality:
                raise _input_error(f"the server runs {chosen}; --cardinality needs a server on --engine ecdh")
            else:
                from piguard.joint import sf_psi

                res = sf_psi.query(
                    url,
                    keys,
                    me=me,
                    trust=trusted,
                    purpose=decl.purpose,
                    legal_basis=decl.legal_basis,
                    engine=chosen,
                    python=spu_python,
                    link_host=link_host,
                    on_partner=on_partner,
                )
            report: dict[str, Any] = {
                "mode": res.mode,
                "intersection_size": res.intersection_size,
                "own_set_size": res.own_set_size,
                "partner_set_size": res.partner_set_size,
                "invalid_dropped": norm.invalid,
                "empty_dropped": norm.empty,
                "rows": norm.rows,
                "partner": res.partner,
                "partner_key_id": res.partner_key_id,
                "timings": {"normalise": round(t_norm, 3), **res.timings},
            }
            if cardinality:
                atomic_write_text(out, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
            else:
                _write_rows(out, frame, norm.keys, {keys[i] for i in res.matched or []})
            if led is not None:
                sizes = {
                    "own set": res.own_set_size,
                    "partner set": res.partner_set_size,
                    "intersection": res.intersection_size,
                    "invalid dropped": norm.invalid,
                }
                report["ledger_activity"] = audit(
                    led, f"psi-query-{res.mode}", decl, sizes, norm.by_type, res.partner
                )
            _echo_json(report)
        finally:
            if led is not None:
                led.close()


def _engine_of(url: str) -> str:
    """Which engine a PSI server runs (its health route names its protocol and engine)."""
    import httpx

    from piguard.joint.errors import PeerError

    try:
        health = httpx.get(url.rstrip("/") + "/joint/v1/health", timeout=15, trust_env=False).json()
        proto = health["protocol"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        raise PeerError(f"{url}: not a piguard PSI server, or it cannot be reached") from None
    if proto == "ecdh-psi-x25519":
        return "ecdh"
    if proto == "spu-psi":
        return str(health.get("engine") or "rr22")
    raise PeerError(f"{url} runs {proto!r}, not PSI")


def _write_rows(out: Path, frame: Any, keys: Any, matched: set[str]) -> None:
    """The querier's own rows whose identifier is in the intersection (all columns), written atomically."""
    import io

    import polars as pl

    mask = keys.is_in(pl.Series(list(matched), dtype=pl.String).implode()).fill_null(False)
    buf = io.BytesIO()
    frame.filter(mask).write_csv(buf)
    atomic_write_bytes(out, buf.getvalue(), mode=0o600)


# --- count --------------------------------------------------------------------------------------------------
def _run_logger(led: Any, decl: Any, kind: str, entities: Any, server_ref: list[Any], once: bool) -> Any:
    from piguard.joint.lawful import audit

    def on_run(rec: Any) -> None:
        out = {"run": kind, **rec.as_dict()}
        out.pop("intersection_size", None)
        if led is not None:
            sizes = {"own": rec.own_set_size, "partner set": rec.partner_set_size, "complete": rec.complete}
            out["ledger_activity"] = audit(led, kind, decl, sizes, entities or ["PERSON"], rec.partner)
        _echo_json(out, err=True)
        if once and rec.complete and server_ref:
            server_ref[0].stop()

    return on_run


def _listen(srv: Any, host: str, port: int) -> None:
    def ready(bound: int) -> None:
        typer.echo(f"listening on http://{host}:{bound}", err=True)
        sys.stderr.flush()

    srv.serve(host, port, ready=ready)


@count_app.command("serve")
def count_serve(
    ids: Path = IDS,
    column: str = COLUMN,
    port: int = _port(8766),
    host: str = typer.Option("127.0.0.1", "--host"),
    key: Path = KEY,
    trust: Path = TRUST,
    purpose: str = PURPOSE,
    legal_basis: str = BASIS,
    consent: str = CONSENT,
    consent_ref: str = CONSENT_REF,
    ledger: str = LEDGER,
    id_type: str = ID_TYPE,
    max_ids: int = typer.Option(10_000, "--max-ids", min=1, help="Most applicants one query may hold."),
    max_queries: int = typer.Option(
        1000, "--max-queries-per-day", min=0, help="Queries per partner per UTC day."
    ),
    once: bool = typer.Option(False, "--once", help="Exit after one completed query."),
) -> None:
    """Answer consortium count queries as a member (e.g. over the applicants you hold an open loan for)."""
    from piguard.joint.count import MemberServer
    from piguard.joint.lawful import check
    from piguard.joint.limits import Limit, Limits
    from piguard.joint.transport import JointServer

    with _errors("count serve"):
        led = _ledger(ledger)
        decl = _declare(purpose, legal_basis, consent, consent_ref, led)
        me, trusted = _keys(key, trust)
        _frame, norm = _read_ids(ids, column, id_type)
        check(decl, entities=norm.by_type, partner="consortium querier", learns_members=False, ledger=led)
        ref: list[Any] = []
        proto = MemberServer(
            norm.unique,
            me=me,
            trust=trusted,
            purpose=decl.purpose,
            legal_basis=decl.legal_basis,
            limits=Limits(Limit(max_ids=max_ids, max_queries_per_day=max_queries)),
            on_run=_run_logger(led, decl, "count-member", norm.by_type, ref, once),
        )
        srv = JointServer(proto, me, trusted)
        ref.append(srv)
        _echo_json({"input": norm.summary()}, err=True)
        _listen(srv, host, port)


@count_app.command("aggregate")
def count_aggregate(
    roster: Path = typer.Option(..., "--roster", help="Directory of the consortium members' public keys."),
    port: int = _port(8767),
    host: str = typer.Option("127.0.0.1", "--host"),
    key: Path = KEY,
    trust: Path = TRUST,
    purpose: str = PURPOSE,
    legal_basis: str = BASIS,
    ledger: str = LEDGER,
    once: bool = typer.Option(False, "--once", help="Exit after one completed query."),
) -> None:
    """Be the consortium's non-colluding aggregator: sum the members' sealed answers, return counts only."""
    from piguard.joint.count import AggregatorServer
    from piguard.joint.transport import JointServer
    from piguard.keys import load_trust

    with _errors("count aggregate"):
        led = _ledger(ledger)
        decl = _declare(purpose, legal_basis, None, None, led)
        me, trusted = _keys(key, trust)
        ref: list[Any] = []
        proto = AggregatorServer(
            load_trust(roster),
            purpose=decl.purpose,
            legal_basis=decl.legal_basis,
            on_run=_run_logger(led, decl, "count-aggregate", None, ref, once),
        )
        srv = JointServer(proto, me, trusted)
        ref.append(srv)
        _listen(srv, host, port)


@count_app.command("query")
def count_query(
    aggregator: str = typer.Option(..., "--aggregator", help="The aggregator's URL."),
    member: list[str] = typer.Option(..., "--member", help="A member's URL (repeat for each member)."),
    ids: Path = typer.Option(None, "--ids", help="CSV/TSV of applicants (or use --applicant)."),
    column: str = typer.Option(None, "--column", help="Column holding the applicants' identifiers."),
    applicant: str = typer.Option(None, "--applicant", help="One applicant's identifier; '-' reads stdin."),
    key: Path = KEY,
    trust: Path = TRUST,
    purpose: str = PURPOSE,
    legal_basis: str = BASIS,
    consent: str = CONSENT,
    consent_ref: str = CONSENT_REF,
    ledger: str = LEDGER,
    id_type: str = ID_TYPE,
    out: Path = typer.Option(None, "--out", help="Write the applicants' rows with a members_holding column."),
) -> None:
    """How many consortium members hold each applicant (e.g. an open loan), and nothing more."""
    import polars as pl

    from piguard.joint.count import query
    from piguard.joint.identifiers import normalise
    from piguard.joint.lawful import audit, check

    with _errors("count query"):
        led = _ledger(ledger)
        try:
            decl = _declare(purpose, legal_basis, consent, consent_ref, led)
            me, trusted = _keys(key, trust)
            if (ids is None) == (applicant is None):
                raise _input_error("give --ids FILE --column COL, or --applicant VALUE")
            if applicant is not None:
                value = sys.stdin.readline().strip() if applicant == "-" else applicant
                frame = pl.DataFrame({"applicant": [value]})
                norm = normalise(frame["applicant"], id_type)
            else:
                if not column:
                    raise _input_error("--ids needs --column")
                frame, norm = _read_ids(ids, column, id_type)
            check(decl, entities=norm.by_type, partner=aggregator, learns_members=False, ledger=led)
            keys = norm.unique
            res = query(
                aggregator,
                member,
                keys,
                me=me,
                trust=trusted,
                purpose=decl.purpose,
                legal_basis=decl.legal_basis,
            )
            by_key = dict(zip(keys, res.counts, strict=True))
            holding = [by_key.get(k) if k is not None else None for k in norm.keys.to_list()]
            report: dict[str, Any] = {
                "applicants": norm.rows,
                "valid": len(keys),
                "invalid_dropped": norm.invalid,
                "members": res.members,
                "member_set_sizes": res.member_set_sizes,
                "timings": res.timings,
            }
            if applicant is not None:
                report["members_holding"] = holding[0]
            if out is not None:
                import io

                buf = io.BytesIO()
                frame.with_columns(members_holding=pl.Series(holding, dtype=pl.Int64)).write_csv(buf)
                atomic_write_bytes(out, buf.getvalue(), mode=0o600)
            if led is not None:
                sizes = {"applicants": len(keys), "members": res.members}
                report["ledger_activity"] = audit(led, "count-query", decl, sizes, norm.by_type, aggregator)
            _echo_json(report)
        finally:
            if led is not None:
                led.close()


# --- train / score ------------------------------------------------------------------------------------------
FEATURES = typer.Option(None, "--features", help="Comma-separated feature columns (default: all others).")
DATA = typer.Option(None, "--data", help="Taxonomy entity the features hold, for the rule check (repeat).")


def _table(
    ids: Path, column: str, id_type: str, exclude: list[str], features: str | None
) -> tuple[Any, Any, list[str]]:
    """Distinct identifiers (first row of each) with their rows, and the feature columns."""
    import polars as pl

    frame, norm = _read_ids(ids, column, id_type)
    frame = frame.with_columns(_key=norm.keys).filter(pl.col("_key").is_not_null())
    frame = frame.unique(subset="_key", keep="first", maintain_order=True)
    cols = (
        [c.strip() for c in features.split(",")]
        if features
        else [c for c in frame.columns if c not in (column, "_key", *exclude)]
    )
    if not cols:
        raise _input_error(f"identifier file {ids} has no feature columns")
    return frame, norm, cols


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=1) + "\n", mode=0o600)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise _input_error(f"{what} {path} cannot be read as JSON ({type(exc).__name__})") from None


@train_app.command("serve")
def train_serve(
    ids: Path = IDS,
    column: str = COLUMN,
    features: str = FEATURES,
    model_out: Path = typer.Option(..., "--model-out", help="Where to write this party's model part (JSON)."),
    port: int = _port(8768),
    host: str = typer.Option("127.0.0.1", "--host"),
    key: Path = KEY,
    trust: Path = TRUST,
    purpose: str = PURPOSE,
    legal_basis: str = BASIS,
    consent: str = CONSENT,
    consent_ref: str = CONSENT_REF,
    ledger: str = LEDGER,
    id_type: str = ID_TYPE,
    data: list[str] = DATA,
    once: bool = typer.Option(True, "--once/--keep-serving", help="Exit after one completed training."),
) -> None:
    """Take part in training as the data provider (features, no labels)."""
    from piguard.joint.lawful import check
    from piguard.joint.limits import Limit, Limits
    from piguard.joint.transport import JointServer
    from piguard.joint.vfl import Encoding, TrainServer

    with _errors("train serve"):
        led = _ledger(ledger)
        decl = _declare(purpose, legal_basis, consent, consent_ref, led)
        me, trusted = _keys(key, trust)
        frame, norm, cols = _table(ids, column, id_type, [], features)
        entities = [*norm.by_type, *(data or [])]
        check(decl, entities=entities, partner="training partner", learns_members=True, ledger=led)
        enc = Encoding.fit(frame, cols)
        ref: list[Any] = []

        def on_model(part: dict[str, Any]) -> None:
            _write_json(model_out, part)

        proto = TrainServer(
            frame["_key"].to_list(),
            enc.transform(frame),
            enc,
            purpose=decl.purpose,
            legal_basis=decl.legal_basis,
            on_model=on_model,
            limits=Limits(Limit(max_ids=10**7)),
            on_run=_run_logger(led, decl, "train-provider", entities, ref, once),
        )
        srv = JointServer(proto, me, trusted)
        ref.append(srv)
        _echo_json({"input": norm.summary(), "features": enc.names}, err=True)
        _listen(srv, host, port)


@train_app.command("run")
def train_run(
    url: str = typer.Argument(..., help="The data provider's URL."),
    ids: Path = IDS,
    column: str = COLUMN,
    label: str = typer.Option(..., "--label", help="Label column (the outcome to predict)."),
    positive: str = typer.Option(..., "--positive", help="Label value of the positive class, e.g. '>50K'."),
    features: str = FEATURES,
    model_out: Path = typer.Option(..., "--model-out", help="Where to write this party's model part (JSON)."),
    epochs: int = typer.Option(3, "--epochs", min=1, max=1000),
    batch: int = typer.Option(512, "--batch", min=1, max=100_000),
    lr: float = typer.Option(0.5, "--lr"),
    l2: float = typer.Option(0.0, "--l2"),
    momentum: float = typer.Option(0.9, "--momentum", min=0.0, max=0.99),
    key_bits: int = typer.Option(
        2048, "--key-bits", help="Paillier modulus size (2048 or more in production)."
    ),
    key: Path = KEY,
    trust: Path = TRUST,
    purpose: str = PURPOSE,
    legal_basis: str = BASIS,
    consent: str = CONSENT,
    consent_ref: str = CONSENT_REF,
    ledger: str = LEDGER,
    id_type: str = ID_TYPE,
    data: list[str] = DATA,
) -> None:
    """Train as the lender (labels and some features) with a data provider; neither sees the other's data."""
    import numpy as np

    from piguard.joint.lawful import audit, check
    from piguard.joint.vfl import Encoding, train

    with _errors("train run"):
        led = _ledger(ledger)
        try:
            decl = _declare(purpose, legal_basis, consent, consent_ref, led)
            me, trusted = _keys(key, trust)
            frame, norm, cols = _table(ids, column, id_type, [label], features)
            if label not in frame.columns:
                raise _input_error(f"identifier file {ids} has no label column {label!r}")
            y = (frame[label].cast(str).str.strip_chars() == positive).to_numpy().astype(np.float64)
            if y.sum() == 0 or y.sum() == len(y):
                raise _input_error(
                    f"label column {label!r} has no positive or no negative rows ({positive!r})"
                )
            entities = [*norm.by_type, *(data or [])]
            check(decl, entities=entities, partner=url, learns_members=True, ledger=led)
            enc = Encoding.fit(frame, cols)
            model = train(
                url,
                frame["_key"].to_list(),
                enc.transform(frame),
                y,
                enc,
                me=me,
                trust=trusted,
                purpose=decl.purpose,
                legal_basis=decl.legal_basis,
                epochs=epochs,
                batch=batch,
                lr=lr,
                l2=l2,
                momentum=momentum,
                key_bits=key_bits,
                log=lambda e: _echo_json(e, err=True),
            )
            part = {**model.to_dict(), "label": label, "positive": positive}
            _write_json(model_out, part)
            report = {
                "aligned": model.aligned,
                "rows": norm.rows,
                "invalid_dropped": norm.invalid,
                "features": len(enc.names),
                "history": model.history,
                "model": str(model_out),
            }
            if led is not None:
                sizes = {"own set": len(frame), "aligned": model.aligned, "epochs": epochs}
                report["ledger_activity"] = audit(led, "train", decl, sizes, entities, url)
            _echo_json(report)
        finally:
            if led is not None:
                led.close()


@score_app.command("serve")
def score_serve(
    ids: Path = IDS,
    column: str = COLUMN,
    model: Path = typer.Option(..., "--model", help="This provider's model part from 'joint train serve'."),
    port: int = _port(8769),
    host: str = typer.Option("127.0.0.1", "--host"),
    key: Path = KEY,
    trust: Path = TRUST,
    purpose: str = PURPOSE,
    legal_basis: str = BASIS,
    consent: str = CONSENT,
    consent_ref: str = CONSENT_REF,
    ledger: str = LEDGER,
    id_type: str = ID_TYPE,
    data: list[str] = DATA,
) -> None:
    """Answer joint scoring requests with this provider's partial score."""
    from piguard.joint.lawful import check
    from piguard.joint.transport import JointServer
    from piguard.joint.vfl import Encoding, ScoreServer

    with _errors("score serve"):
        led = _ledger(ledger)
        decl = _declare(purpose, legal_basis, consent, consent_ref, led)
        me, trusted = _keys(key, trust)
        part = _read_json(model, "model part")
        enc = Encoding.from_dict(part["encoding"])
        frame, norm, _cols = _table(ids, column, id_type, [], ",".join([*enc.numeric, *enc.categories]))
        entities = [*norm.by_type, *(data or [])]
        check(decl, entities=entities, partner="scoring partner", learns_members=False, ledger=led)
        ref: list[Any] = []
        proto = ScoreServer(
            frame["_key"].to_list(),
            enc.transform(frame),
            part,
            purpose=decl.purpose,
            legal_basis=decl.legal_basis,
            on_run=_run_logger(led, decl, "score-provider", entities, ref, False),
        )
        srv = JointServer(proto, me, trusted)
        ref.append(srv)
        _listen(srv, host, port)


@score_app.command("query")
def score_query(
    url: str = typer.Argument(..., help="The data provider's URL."),
    ids: Path = IDS,
    column: str = COLUMN,
    model: Path = typer.Option(..., "--model", help="The lender's model part from 'joint train run'."),
    out: Path = typer.Option(..., "--out", help="The applicants' rows with a score column (CSV)."),
    key: Path = KEY,
    trust: Path = TRUST,
    purpose: str = PURPOSE,
    legal_basis: str = BASIS,
    consent: str = CONSENT,
    consent_ref: str = CONSENT_REF,
    ledger: str = LEDGER,
    id_type: str = ID_TYPE,
    data: list[str] = DATA,
) -> None:
    """Score applicants jointly: the lender's part plus the provider's, never the provider's features."""
    import io

    import polars as pl

    from piguard.joint.lawful import audit, check
    from piguard.joint.vfl import Encoding, score

    with _errors("score query"):
        led = _ledger(ledger)
        try:
            decl = _declare(purpose, legal_basis, consent, consent_ref, led)
            me, trusted = _keys(key, trust)
            part = _read_json(model, "model part")
            enc = Encoding.from_dict(part["encoding"])
            frame, norm, _cols = _table(ids, column, id_type, [], ",".join([*enc.numeric, *enc.categories]))
            entities = [*norm.by_type, *(data or [])]
            check(decl, entities=entities, partner=url, learns_members=False, ledger=led)
            scores = score(
                url,
                frame["_key"].to_list(),
                enc.transform(frame),
                part,
                me=me,
                trust=trusted,
                purpose=decl.purpose,
                legal_basis=decl.legal_basis,
            )
            buf = io.BytesIO()
            frame.drop("_key").with_columns(score=pl.Series(scores).fill_nan(None)).write_csv(buf)
            atomic_write_bytes(out, buf.getvalue(), mode=0o600)
            report = {
                "scored": int((~pl.Series(scores).is_nan()).sum()),
                "not_held_by_provider": int(pl.Series(scores).is_nan().sum()),
                "invalid_dropped": norm.invalid,
            }
            if led is not None:
                report["ledger_activity"] = audit(
                    led, "score", decl, {"applicants": len(frame)}, entities, url
                )
            _echo_json(report)
        finally:
            if led is not None:
                led.close()


def _input_error(msg: str) -> Exception:
    from piguard.joint.errors import InputError

    return InputError(msg)


def register(app: typer.Typer) -> None:
    app.add_typer(joint_app, name="joint")

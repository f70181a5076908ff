"""Issuing a passport: hash and re-scan the data, gather the ledger's provenance and consent coverage and the
de-identification report's models, refuse claims the bytes contradict, then sign the statement."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from piguard._fs import OutputPathError, atomic_write_text, read_regular_bytes
from piguard.keys import SigningKey
from piguard.ledger import Ledger, LedgerError, load_key
from piguard.passport import claims, dataset, envelope, records
from piguard.passport.predicate import (
    MERKLE_ALGORITHM,
    PREDICATE_TYPE,
    PREDICATE_TYPE_PREFIX,
    STATES,
    format_time,
)

DEFAULT_VALIDITY = timedelta(days=365)


class IssueError(ValueError):
    """The passport cannot be issued as asked; the message says why and names the input (never a value)."""


@dataclass
class IssueRequest:
    data: list[str]
    key: SigningKey
    out: str
    purposes: list[str]
    recipients: list[str]
    issuer: str | None = None
    state: str = "raw"
    deid_report: str | None = None
    deid_config: str | None = None
    hierarchies_dir: str | None = None
    ledger: str | None = None
    provenance_id: str | None = None
    crawl_dir: str | None = None
    subjects: str | None = None
    subject_column: str | None = None
    expires: datetime | None = None
    upstream: list[str] = field(default_factory=list)
    sampled_scan: bool = False  # the inventory and cell scan read every record unless asked to sample
    now: datetime | None = None


@dataclass
class Issued:
    path: str
    id: str
    statement: dict[str, Any]
    notes: list[str]


def _read_report(path: str) -> dict[str, Any]:
    try:
        rep = json.loads(read_regular_bytes(path).decode("utf-8"))
    except OSError as exc:
        raise IssueError(f"de-identification report {path}: cannot read ({exc.strerror})") from None
    except (ValueError, RecursionError):
        raise IssueError(f"de-identification report {path} is not JSON") from None
    if not isinstance(rep, dict) or not isinstance(rep.get("models"), dict) or "levels" not in rep:
        raise IssueError(f"{path} is not a 'piguard deid --report' file (models, levels)")
    return rep


def _refuse_beyond_report(req: IssueRequest, report: dict[str, Any] | None) -> None:
    """A passport may not claim more than the de-identification run found it may claim: deid sets
    ``declared_state`` after re-scanning its own output (keyed pseudonyms are linkable, so a table holding
    them is pseudonymized, never anonymized: PIPL Art. 73), and the bytes alone cannot show a verifier that a
    column of hex strings is a pseudonym."""
    said = (report or {}).get("declared_state")
    if said not in STATES or STATES.index(req.state) <= STATES.index(said):
        return
    reasons = [str(r) for r in (report or {}).get("state_reasons") or []]
    why = f": {reasons[0]}" if reasons else ""
    raise IssueError(
        f"refusing to issue '{req.state}': the de-identification report {req.deid_report} says '{said}'{why}"
    )


def _declared_models(rep: dict[str, Any] | None) -> dict[str, Any]:
    if rep is None:
        return {"k": None, "lDiversity": [], "tCloseness": [], "suppressionLimit": 0.0}
    m = rep["models"]
    k = (m.get("k_anonymity") or {}).get("k")
    ldiv = []
    for d in m.get("l_diversity") or []:
        item = {"column": d["column"], "l": int(d["l"]), "variant": d.get("variant", "distinct")}
        if item["variant"] == "recursive":
            item["c"] = float(d.get("c", 1.0))
        ldiv.append(item)
    tclose = [
        {"column": d["column"], "t": float(d["t"]), "distance": d.get("distance", "equal")}
        for d in m.get("t_closeness") or []
    ]
    return {"k": int(k) if k else None, "lDiversity": ldiv, "tCloseness": tclose,
            "suppressionLimit": float(m.get("suppression_limit", 0.0))}  # fmt: skip


def _hierarchy_digests(
    rep: dict[str, Any] | None, quasi: list[str], req: IssueRequest
) -> list[dict[str, str]]:
    """Per quasi-identifier: the digest the report gives, else of the ARX file or the auto builder's spec
    named in the de-identification config (or found in --hierarchies DIR)."""
    out: dict[str, dict[str, str]] = {}
    given = (rep or {}).get("hierarchies")
    if isinstance(given, dict):
        for col, v in given.items():
            digest = v.get("sha256") if isinstance(v, dict) else v
            if isinstance(digest, str) and len(digest) == 64:
                out[col] = {"column": col, "sha256": digest, "source": "report"}
    specs: dict[str, Any] = {}
    base = Path(".")
    dirs = [Path(req.hierarchies_dir)] if req.hierarchies_dir else []
    if req.deid_config:
        import yaml

        try:
            doc = yaml.safe_load(read_regular_bytes(req.deid_config).decode("utf-8")) or {}
        except (OSError, ValueError, RecursionError, yaml.YAMLError) as exc:
            raise IssueError(
                f"de-identification config {req.deid_config}: cannot read ({type(exc).__name__})"
            ) from None
        if not isinstance(doc, dict):
            raise IssueError(f"de-identification config {req.deid_config} is not a mapping")
        base = Path(
            req.deid_config
        ).parent  # the config's paths are relative to it, as piguard deid reads them
        specs = dict(doc.get("hierarchies") or {})
        if doc.get("hierarchy_dir"):
            dirs.append(base / str(doc["hierarchy_dir"]))
    for col in quasi:
        if col in out:
            continue
        spec = specs.get(col)
        if isinstance(spec, dict):
            canon = json.dumps(spec, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            out[col] = {
                "column": col,
                "sha256": hashlib.sha256(canon.encode("utf-8")).hexdigest(),
                "source": "auto",
            }
            continue
        candidates = [base / spec] if isinstance(spec, str) else []
        for d in dirs:
            if d.is_dir():
                candidates += [d / f"{col}.csv", *sorted(d.glob(f"*_hierarchy_{col}.csv"))]
        found = next((c for c in candidates if c.is_file()), None)
        if found is not None:
            out[col] = {"column": col, "sha256": records.file_sha256(found), "source": "file"}
    return [out[c] for c in quasi if c in out]


def _parse_upstream(path: str) -> dict[str, Any]:
    try:
        data = read_regular_bytes(path)
    except OSError as exc:
        raise IssueError(f"upstream passport {path}: cannot read ({exc.strerror})") from None
    try:
        env = envelope.parse_envelope(data, f"upstream passport {path}")
        st = envelope.parse_statement(env.payload)
    except envelope.EnvelopeError as exc:
        raise IssueError(str(exc)) from None
    if env.payload_type != envelope.IN_TOTO_PAYLOAD_TYPE or not str(st["predicateType"]).startswith(
        PREDICATE_TYPE_PREFIX
    ):
        raise IssueError(f"upstream passport {path} is not a piguard dataset passport")
    return {"name": Path(path).name, "digest": {"sha256": env.id.removeprefix("sha256:")}}


def _known_purposes(ledger: Any) -> set[str]:
    from piguard.rules import packs

    known = set(packs.purposes())
    if ledger is not None:
        known |= set(ledger.declared_purposes())
    return known


def _refuse_contradictions(
    req: IssueRequest, hashed: list[dataset.HashedFile], inv: claims.Inventory, models: dict[str, Any],
    quasi: list[str],
) -> None:  # fmt: skip
    """IssueError when the bytes contradict the declared state: direct identifiers in data declared
    pseudonymized or anonymized (by column, then record by record), or a k or l the table does not meet."""
    full = not req.sampled_scan
    if req.state != "raw":
        direct = [r for r in inv.rows if r.identifier == "direct"]
        if direct:
            r = direct[0]
            raise IssueError(
                f"refusing to issue '{req.state}': {r.file} column {claims.shown(r.column)} holds {r.entity} "
                f"(share {r.share:.0%}; e.g. {', '.join(r.examples_masked) or 'masked'})"
            )
        for h in hashed:
            cs = claims.scan_cells(h.name, h.hashes.path, h.hashes.format, h.hashes.records, full=full)
            if cs.hits:
                hit = cs.hits[0]
                where = f" column {claims.shown(hit.column)}" if hit.column else ""
                more = f"{len(cs.hits)}{'+' if len(cs.hits) >= 20 else ''}"
                raise IssueError(
                    f"refusing to issue '{req.state}': {h.name} record {hit.record}{where} holds a "
                    f"{hit.entity} ({hit.masked}); {more} found"
                )
    if not quasi:
        return
    l_models = [(d["column"], d["l"], d["variant"], d.get("c", 1.0)) for d in models["lDiversity"]]
    for h in hashed:
        try:
            mc = claims.check_models(h.hashes.path, h.hashes.format, quasi, l_models)
        except claims.ClaimsError as exc:
            raise IssueError(str(exc)) from None
        if models["k"] is not None and mc.k is not None and mc.k < models["k"]:
            raise IssueError(
                f"refusing to claim k={models['k']}: {h.name} has an equivalence class of {mc.k} "
                f"on {', '.join(quasi)}"
            )
        bad = {m: n for m, n in mc.l_failures.items() if n}
        if bad:
            m, n = next(iter(bad.items()))
            raise IssueError(f"refusing to claim l-diversity {m}: {n} classes of {h.name} fail it")


def _from_ledger(
    req: IssueRequest, ledger: Ledger, inv: claims.Inventory, notes: list[str]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The provenance record and the consent coverage of the data's subjects (LedgerError passes up)."""
    from piguard.passport import ledgerinfo

    provenance = consent = None
    if req.provenance_id:
        provenance = ledgerinfo.provenance(ledger, req.provenance_id, req.crawl_dir)
        if provenance["method"] == "crawled_public" and provenance["crawl"] is None:
            notes.append("provenance says crawled_public but no --crawl DIR was given: no crawl summary")
    if req.subjects and req.subject_column:
        fmt = records.file_format(req.subjects)
        try:
            values = claims.read_columns(req.subjects, fmt, [req.subject_column])[req.subject_column]
        except claims.ClaimsError as exc:
            raise IssueError(f"--subjects: {exc}") from None
        consent = ledgerinfo.consent_coverage(
            ledger, load_key(ledger.url), (v for v in values.to_list() if v is not None),
            purposes=req.purposes, recipients=req.recipients, entities=sorted({r.entity for r in inv.rows}),
        )  # fmt: skip
    return provenance, consent


def issue(req: IssueRequest) -> Issued:
    """Build, check and sign a passport for ``req.data``; write it to ``req.out`` atomically."""
    notes: list[str] = []
    now = (req.now or datetime.now(UTC)).replace(microsecond=0)
    expires = req.expires or now + DEFAULT_VALIDITY
    if expires <= now:
        raise IssueError(f"--expires {format_time(expires)} is not in the future")
    if req.state not in STATES:
        raise IssueError(f"--state {req.state!r} is not valid; valid: {', '.join(STATES)}")
    if not req.purposes:
        raise IssueError("name at least one permitted purpose (--purpose)")
    if not req.recipients:
        raise IssueError("name at least one permitted recipient (--recipient NAME, or '*' for any)")
    issuer = req.issuer or req.key.public.owner
    if not issuer:
        raise IssueError("name the issuer (--issuer, or an owner name in the key's .pub file)")
    if (req.provenance_id or req.subjects) and not req.ledger:
        raise IssueError("--provenance and --subjects read the ledger: pass --ledger URL")
    if bool(req.subjects) != bool(req.subject_column):
        raise IssueError("--subjects FILE and --subject-column COLUMN go together")
    out_path = Path(req.out)
    try:
        files = dataset.collect(req.data)
    except dataset.DatasetError as exc:
        raise IssueError(str(exc)) from None
    if any(Path(p).resolve() == out_path.resolve() for _, p in files):
        raise IssueError(f"--out {req.out} is one of the data files")

    report = _read_report(req.deid_report) if req.deid_report else None
    try:
        models = _declared_models(report)
    except (KeyError, TypeError, ValueError):
        raise IssueError(f"de-identification report {req.deid_report}: its models are malformed") from None
    _refuse_beyond_report(req, report)
    quasi = [str(q) for q in (report or {}).get("levels", {})]
    sensitive = list(dict.fromkeys(d["column"] for d in models["lDiversity"] + models["tCloseness"]))
    if req.state == "anonymized" and (models["k"] is None or not quasi):
        raise IssueError(
            "an 'anonymized' passport needs the de-identification report (--deid-report) "
            "with k and quasi-identifiers"
        )

    ledger = None
    try:
        if req.ledger:
            ledger = Ledger.open(req.ledger, create=False)
        unknown = [p for p in req.purposes if p not in _known_purposes(ledger)]
        if unknown:
            raise IssueError(
                f"unknown purpose {unknown[0]!r}; valid: {', '.join(sorted(_known_purposes(ledger)))}"
            )
        hashed = dataset.hash_files(files)
        inv = claims.inventory(
            [(h.name, h.hashes.path, h.hashes.format, h.hashes.records) for h in hashed],
            full=not req.sampled_scan,
        )
        if inv.problems:
            raise IssueError(f"cannot map {inv.problems[0]}")
        _refuse_contradictions(req, hashed, inv, models, quasi)
        provenance, consent = _from_ledger(req, ledger, inv, notes) if ledger is not None else (None, None)
    except LedgerError as exc:
        raise IssueError(str(exc)) from None
    finally:
        if ledger is not None:
            ledger.close()

    upstream = [_parse_upstream(p) for p in req.upstream]
    predicate: dict[str, Any] = {
        "issuer": {"name": issuer, "keyId": req.key.key_id},
        "issuedAt": format_time(now),
        "expiresAt": format_time(expires),
        "dataset": {
            "records": sum(h.hashes.records for h in hashed),
            "merkle": {"algorithm": MERKLE_ALGORITHM, "layerMaxNodes": dataset.LAYER_MAX_NODES},
            "files": [h.entry() for h in hashed],
        },
        "inventory": {
            "method": inv.method,
            "rowsScanned": inv.rows_scanned,
            "entries": [r.as_dict() for r in inv.rows],
        },
        "declaredState": {
            "state": req.state,
            "deidReport": None if report is None else {
                "sha256": records.file_sha256(str(req.deid_report)),
                "suppressedRows": int(report.get("suppressed_rows", 0)),
                "minClassSize": int(report.get("min_class_size", 0)),
                "equivalenceClasses": int(report.get("equivalence_classes", 0)),
            },
            "models": models,
            "quasiIdentifiers": quasi,
            "sensitiveAttributes": sensitive,
            "hierarchies": _hierarchy_digests(report, quasi, req),
        },
        "provenance": provenance,
        "consent": consent,
        "permitted": {
            "purposes": list(dict.fromkeys(req.purposes)),
            "recipients": list(dict.fromkeys(req.recipients)),
        },
        "upstream": upstream,
    }  # fmt: skip
    statement = {
        "_type": envelope.STATEMENT_TYPE,
        "subject": [{"name": h.name, "digest": {"sha256": h.hashes.sha256}} for h in hashed],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
    payload = envelope.canonical_json(statement)
    env = envelope.sign(payload, envelope.IN_TOTO_PAYLOAD_TYPE, req.key)
    try:
        atomic_write_text(out_path, json.dumps(env, indent=2) + "\n")
    except (OutputPathError, OSError) as exc:
        raise IssueError(f"cannot write {out_path}: {getattr(exc, 'strerror', None) or exc}") from None
    return Issued(str(out_path), envelope.digest_id(payload), statement, notes)

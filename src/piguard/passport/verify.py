"""Verifying a passport against the delivered bytes: signature by a trusted key, validity period,
revocation, every file's digest, record count and Merkle root (naming the first differing record), the
claims re-tested on the data, the verifier's purpose and recipient, and the upstream chain.

Verdicts: accept (exit 0); reject (exit 1) with one reason per failed check; unusable (exit 2) when the
passport or the verifier's own inputs cannot be read at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from piguard._fs import read_regular_bytes
from piguard.keys import PublicKey, TrustStore
from piguard.passport import claims, dataset, envelope, merkle
from piguard.passport.predicate import (
    PREDICATE_TYPE,
    PREDICATE_TYPE_PREFIX,
    Predicate,
    PredicateError,
    format_time,
    parse_predicate,
)
from piguard.passport.revocation import Revocations

CLOCK_SKEW = timedelta(minutes=5)
MAX_UPSTREAM_DEPTH = 32
# Codes that mean "the verifier could not evaluate the passport at all" (exit 2).
UNUSABLE = frozenset(("malformed", "unknown-predicate", "data"))


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    file: str | None = None
    record: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.file is not None:
            d["file"] = self.file
        if self.record is not None:
            d["record"] = self.record
        return d


@dataclass
class Verdict:
    passport: str
    id: str | None = None
    reasons: list[Reason] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # what was verified and held
    notes: list[str] = field(default_factory=list)  # what was not checked, and why
    timings: dict[str, float] = field(default_factory=dict)
    predicate: Predicate | None = None
    signer: PublicKey | None = None
    subjects: dict[str, str] = field(default_factory=dict)  # name -> SHA-256 from the statement

    @property
    def accepted(self) -> bool:
        return not self.reasons

    @property
    def unusable(self) -> bool:
        return any(r.code in UNUSABLE for r in self.reasons)

    @property
    def exit_code(self) -> int:
        return 0 if self.accepted else 2 if self.unusable else 1

    def fail(self, code: str, message: str, file: str | None = None, record: int | None = None) -> None:
        self.reasons.append(Reason(code, message, file, record))

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": "accept" if self.accepted else "reject",
            "passport": self.passport,
            "id": self.id,
            "issuer": None if self.predicate is None else {
                "name": self.predicate.issuer_name, "keyId": self.predicate.issuer_key_id,
            },
            "reasons": [r.as_dict() for r in self.reasons],
            "checks": self.checks,
            "notes": self.notes,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
        }  # fmt: skip


@dataclass
class VerifyOptions:
    trust: TrustStore
    purposes: list[str] = field(default_factory=list)
    recipient: str | None = None
    full: bool = False
    revocations: Revocations = field(default_factory=Revocations)
    upstream_files: list[str] = field(default_factory=list)
    now: datetime | None = None
    sample: int = claims.DEFAULT_SAMPLE
    check_claims: bool = True


def read_passport_file(path: str) -> bytes:
    """The passport's bytes; OSError becomes EnvelopeError('malformed', ...) naming the file."""
    try:
        return read_regular_bytes(path)
    except FileNotFoundError:
        raise envelope.EnvelopeError("malformed", f"passport {path} does not exist") from None
    except OSError as exc:
        raise envelope.EnvelopeError(
            "malformed", f"passport {path} cannot be read ({exc.strerror})"
        ) from None


def open_passport(data: bytes, source: str, opts: VerifyOptions, v: Verdict) -> Predicate | None:
    """The checks that need only the passport: structure, signature, predicate, validity, revocation. Adds
    reasons to ``v``; returns the predicate when it could be read from an authenticated payload."""
    try:
        env = envelope.parse_envelope(data, source)
    except envelope.EnvelopeError as exc:
        v.fail(exc.code, str(exc))
        return None
    v.id = env.id
    if env.payload_type != envelope.IN_TOTO_PAYLOAD_TYPE:
        v.fail(
            "malformed", f"{source}: payloadType is {env.payload_type!r}, not {envelope.IN_TOTO_PAYLOAD_TYPE}"
        )
        return None
    sig = envelope.check_signature(env, opts.trust)
    if not sig.ok:
        v.fail(sig.code, sig.message)
        return None  # nothing in an unauthenticated payload is read
    v.signer = sig.key
    v.checks.append(sig.message)
    try:
        st = envelope.parse_statement(env.payload)
    except envelope.EnvelopeError as exc:
        v.fail(exc.code, f"{source}: {exc}")
        return None
    ptype = st["predicateType"]
    if ptype != PREDICATE_TYPE:
        known = (
            "a newer version of the piguard passport"
            if str(ptype).startswith(PREDICATE_TYPE_PREFIX)
            else "not a piguard passport"
        )
        v.fail(
            "unknown-predicate", f"predicate type {ptype!r} is {known}; this piguard reads {PREDICATE_TYPE}"
        )
        return None
    try:
        pred = parse_predicate(st["predicate"])
    except PredicateError as exc:
        v.fail("malformed", str(exc))
        return None
    v.predicate = pred
    assert sig.key is not None
    if pred.issuer_key_id != sig.key.key_id:
        v.fail(
            "issuer-mismatch",
            f"the predicate names issuer key {pred.issuer_key_id} but {sig.key.key_id} signed it",
        )
    subjects = {s["name"]: s["digest"]["sha256"] for s in st["subject"]}
    if set(subjects) != {f.name for f in pred.files} or len(subjects) != len(st["subject"]):
        v.fail("malformed", f"{source}: the statement's subjects and the predicate's files differ")
    v.subjects = subjects
    now = opts.now or datetime.now(UTC)
    if now > pred.expires_at:
        v.fail("expired", f"the passport expired at {format_time(pred.expires_at)}")
    elif pred.issued_at > now + CLOCK_SKEW:
        v.fail("not-yet-valid", f"the passport is dated {format_time(pred.issued_at)}, in the future")
    else:
        v.checks.append(f"valid from {format_time(pred.issued_at)} until {format_time(pred.expires_at)}")
    rev = opts.revocations.find(env.id, sig.key.key_id)
    if rev is not None:
        why = f": {rev.reason}" if rev.reason else ""
        v.fail("revoked", f"the issuer revoked this passport at {rev.at}{why}")
    elif len(opts.revocations):
        v.checks.append("not on the revocation lists given")
    else:
        v.notes.append("revocation not checked (no --revocations list given)")
    return pred


def _check_files(
    pred: Predicate, data: list[str], opts: VerifyOptions, v: Verdict
) -> list[tuple[str, str, str, int]]:
    """Digests, record counts and Merkle roots; returns (name, path, format, records) of every file given
    (files the passport does not list are re-scanned too: what they hold is part of the delivery)."""
    try:
        given = dataset.collect(data)
    except dataset.DatasetError as exc:
        v.fail("data", str(exc))
        return []
    expected = {f.name: f for f in pred.files}
    for n in sorted(set(expected) - {n for n, _ in given}):
        v.fail("missing-file", f"{n} is in the passport but was not delivered", file=n)
    for n, _ in given:
        if n not in expected:
            v.fail("extra-file", f"{n} was delivered but is not in the passport", file=n)
    t0 = time.perf_counter()
    hashed = dataset.hash_files(given, layer_max_nodes=pred.layer_max_nodes)
    v.timings["hash"] = time.perf_counter() - t0
    subjects = v.subjects
    out = []
    for h in hashed:
        out.append((h.name, h.hashes.path, h.hashes.format, h.hashes.records))
        f = expected.get(h.name)
        if f is None:
            continue
        ok = True
        if h.hashes.sha256 != subjects.get(h.name):
            v.fail(
                "digest",
                f"{h.name}: SHA-256 {h.hashes.sha256[:16]}... is not the passport's "
                f"{subjects.get(h.name, '')[:16]}...",
                file=h.name,
            )
            ok = False
        if h.hashes.records != f.records:
            v.fail(
                "records", f"{h.name}: {h.hashes.records} records, the passport says {f.records}", file=h.name
            )
            ok = False
        if merkle.root_of(f.layer) != bytes.fromhex(f.merkle_root):
            v.fail("malformed", f"passport: the layer of {h.name} does not hash to its Merkle root")
            continue
        if h.root.hex() != f.merkle_root:
            ok = False
            nodes = h.hashes.leaves
            for _ in range(f.layer_level):
                nodes = merkle.level_up(nodes)
            j = merkle.first_difference(f.layer, nodes)
            span = 1 << f.layer_level
            if j is None:  # cannot happen when the roots differ; kept so a message is never lost
                v.fail("merkle", f"{h.name}: the Merkle root differs", file=h.name)
            elif span == 1:
                v.fail(
                    "merkle",
                    f"{h.name}: record {j + 1} is the first that differs from the passport",
                    file=h.name,
                    record=j + 1,
                )
            else:
                first = j * span + 1
                v.fail(
                    "merkle",
                    f"{h.name}: the first difference lies in records {first}-{first + span - 1} "
                    f"(the passport keeps one hash per {span} records)",
                    file=h.name, record=first,
                )  # fmt: skip
        if ok:
            v.checks.append(f"{h.name}: SHA-256, {h.hashes.records} records and Merkle root match")
    return out


def _check_claims(
    pred: Predicate, present: list[tuple[str, str, str, int]], opts: VerifyOptions, v: Verdict
) -> None:
    mode = "every record" if opts.full else f"a sample of up to {opts.sample} records per file"
    t0 = time.perf_counter()
    inv = claims.inventory(present, full=opts.full, sample_rows=opts.sample)
    v.timings["rescan"] = time.perf_counter() - t0
    for prob in inv.problems:
        v.fail("scan", f"cannot re-scan {prob}")
    declared = {(e.file, e.column, e.entity) for e in pred.inventory}
    undeclared = [r for r in inv.rows if (r.file, r.column, r.entity) not in declared]
    for r in undeclared:
        col = f" column {claims.shown(r.column)}" if r.column else ""
        ex = f" (e.g. {', '.join(r.examples_masked)})" if r.examples_masked else ""
        v.fail(
            "undeclared-pi",
            f"{r.file}{col} holds {r.entity} (share {r.share:.1%}){ex}, not in the passport's inventory",
            file=r.file,
        )
    if not undeclared and not inv.problems:
        v.checks.append(
            f"no undeclared personal information (re-scanned {inv.rows_scanned} rows, {inv.method})"
        )
    if pred.state != "raw":
        for r in inv.rows:
            if r.identifier == "direct":
                v.fail(
                    "direct-identifier",
                    f"{r.file} column {claims.shown(r.column)} holds {r.entity} (share {r.share:.1%}) "
                    f"in data declared {pred.state}",
                    file=r.file,
                )
        t0 = time.perf_counter()
        found = False
        for name, path, fmt, n in present:
            cs = claims.scan_cells(name, path, fmt, n, full=opts.full, sample=opts.sample)
            for hit in cs.hits[:5]:
                col = f" column {claims.shown(hit.column)}" if hit.column else ""
                v.fail(
                    "direct-identifier",
                    f"{name} record {hit.record}{col} holds a {hit.entity} ({hit.masked}) "
                    f"in data declared {pred.state}",
                    file=name, record=hit.record,
                )  # fmt: skip
                found = True
            if not opts.full and cs.records_scanned < cs.records_total:
                v.notes.append(
                    f"{name}: identifiers looked for in {cs.records_scanned} of {cs.records_total} records "
                    "(--full reads all)"
                )
        v.timings["cells"] = time.perf_counter() - t0
        if not found:
            v.checks.append(f"no direct identifiers in data declared {pred.state} ({mode})")
    if pred.quasi:
        t0 = time.perf_counter()
        l_models = list(pred.l_diversity)
        for name, path, fmt, _ in present:
            try:
                mc = claims.check_models(path, fmt, list(pred.quasi), l_models)
            except claims.ClaimsError as exc:
                v.fail("k-anonymity", f"{name}: {exc}", file=name)
                continue
            if pred.k is not None and mc.k is not None and mc.k < pred.k:
                v.fail(
                    "k-anonymity",
                    f"{name}: smallest class on {', '.join(pred.quasi)} holds {mc.k} records; "
                    f"the passport claims k={pred.k}",
                    file=name,
                )
            elif pred.k is not None:
                v.checks.append(
                    f"{name}: k={mc.k} on {', '.join(pred.quasi)} "
                    f"(claimed {pred.k}; {mc.suppressed} suppressed)"
                )
            for spec, failing in mc.l_failures.items():
                column, variant, lval = spec.split(":")
                if failing:
                    v.fail(
                        "l-diversity",
                        f"{name}: {failing} classes fail {variant} {lval}-diversity on {column} "
                        f"(smallest has {mc.l_measured.get(column)} distinct values)",
                        file=name,
                    )
                else:
                    v.checks.append(f"{name}: {variant} {lval}-diversity on {column} holds")
        v.timings["models"] = time.perf_counter() - t0


def _check_use(pred: Predicate, opts: VerifyOptions, v: Verdict) -> None:
    """PIPL Arts. 14 and 23: the recipient processes only within the purposes and for the recipients the
    passport (and the consents behind it) permit."""
    for p in opts.purposes:
        if p not in pred.purposes:
            v.fail(
                "purpose",
                f"purpose {p!r} is not permitted (permitted: {', '.join(pred.purposes)}; PIPL Art. 14, 23)",
            )
        else:
            v.checks.append(f"purpose {p!r} is permitted")
    if not opts.purposes:
        v.notes.append("purpose not checked (pass --purpose)")
    if opts.recipient is not None:
        if not pred.permits_recipient(opts.recipient):
            v.fail(
                "recipient",
                f"recipient {opts.recipient!r} is not permitted "
                f"(permitted: {', '.join(pred.recipients)}; PIPL Art. 23)",
            )
        else:
            v.checks.append(f"recipient {opts.recipient!r} is permitted")
    else:
        v.notes.append("recipient not checked (pass --recipient)")


def _load_upstream_pool(files: list[str], v: Verdict) -> dict[str, tuple[str, bytes]]:
    pool: dict[str, tuple[str, bytes]] = {}
    for f in files:
        try:
            data = read_passport_file(f)
            env = envelope.parse_envelope(data, f"upstream passport {f}")
        except envelope.EnvelopeError as exc:
            v.fail("upstream", str(exc))
            continue
        pool[env.id] = (f, data)
    return pool


def _check_upstream(pred: Predicate, opts: VerifyOptions, v: Verdict, pool: dict[str, tuple[str, bytes]],
                    path: tuple[str, ...]) -> None:  # fmt: skip
    """Each upstream passport, by digest: found, authentic, valid, not revoked, and its own upstream in turn.
    Its data is not delivered, so its data checks are not run."""
    for name, sha in pred.upstream:
        uid = f"sha256:{sha}"
        label = f"upstream {name or uid[:19]} ({uid[:19]}...)"
        if uid in path:
            v.fail("upstream", f"{label}: the chain of custody loops back to it")
            continue
        if len(path) >= MAX_UPSTREAM_DEPTH:
            v.fail("upstream", f"{label}: the chain is deeper than {MAX_UPSTREAM_DEPTH} passports")
            continue
        if uid not in pool:
            v.fail("upstream-missing", f"{label} was not supplied (pass it with --upstream FILE)")
            continue
        upath, data = pool[uid]
        sub = Verdict(upath)
        upred = open_passport(data, f"upstream passport {upath}", opts, sub)
        if upred is not None:
            _check_upstream(upred, opts, sub, pool, (*path, uid))
        for r in sub.reasons:
            v.fail("upstream", f"{label}: {r.code}: {r.message}")
        if sub.accepted:
            v.checks.append(f"{label} verified (signature, validity, revocation, its own upstream)")


def verify(passport_path: str, data: list[str], opts: VerifyOptions) -> Verdict:
    """Verify a passport file against the data files and directories ``data``."""
    v = Verdict(passport_path)
    t0 = time.perf_counter()
    try:
        raw = read_passport_file(passport_path)
    except envelope.EnvelopeError as exc:
        v.fail(exc.code, str(exc))
        return v
    pred = open_passport(raw, f"passport {passport_path}", opts, v)
    if pred is None or v.unusable:
        return v
    present = _check_files(pred, data, opts, v)
    if v.unusable:
        return v
    if opts.check_claims and present:
        _check_claims(pred, present, opts, v)
    _check_use(pred, opts, v)
    if pred.upstream:
        pool = _load_upstream_pool(opts.upstream_files, v)
        _check_upstream(pred, opts, v, pool, (str(v.id),))
    if pred.consent is not None:
        c = pred.consent
        v.notes.append(
            f"consent (as the issuer's ledger recorded it): {c.get('covered')} of {c.get('subjects')} "
            "subjects "
            f"covered ({float(c.get('coveredShare', 0)):.1%}), {c.get('withdrawn')} withdrawn, "
            f"{c.get('notInLedger')} not in the ledger"
        )
    v.timings["total"] = time.perf_counter() - t0
    return v


def verify_envelope(passport_path: str, opts: VerifyOptions) -> Verdict:
    """Only the checks that need no data (signature, validity, revocation, use, upstream)."""
    v = Verdict(passport_path)
    try:
        raw = read_passport_file(passport_path)
    except envelope.EnvelopeError as exc:
        v.fail(exc.code, str(exc))
        return v
    pred = open_passport(raw, f"passport {passport_path}", opts, v)
    if pred is not None and not v.unusable:
        _check_use(pred, opts, v)
        if pred.upstream:
            _check_upstream(pred, opts, v, _load_upstream_pool(opts.upstream_files, v), (str(v.id),))
    return v

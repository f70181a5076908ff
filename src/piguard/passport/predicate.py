"""The passport predicate (v1): what a supplier signs about a dataset. Its JSON Schema is published in
``piguard/schemas/passport-predicate-v1.schema.json``; this module reads a predicate strictly (the tests
hold the two to the same verdicts), so the verifier only ever works with typed, checked values."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PREDICATE_TYPE = "https://piguard.dev/attestations/dataset-passport/v1"
PREDICATE_TYPE_PREFIX = "https://piguard.dev/attestations/dataset-passport/"
MERKLE_ALGORITHM = "rfc9162-sha256"
STATES = ("raw", "pseudonymized", "anonymized")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_KEY_ID = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")


class PredicateError(ValueError):
    """A predicate that does not follow the v1 schema; the message names the field."""


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class FileEntry:
    name: str
    format: str
    bytes: int
    records: int
    merkle_root: str
    layer_level: int
    layer: bytes  # concatenated 32-byte node hashes

    @property
    def layer_nodes(self) -> int:
        return len(self.layer) // 32


@dataclass(frozen=True)
class InventoryEntry:
    file: str
    column: str
    entity: str
    share: float
    sensitive: bool
    identifier: str


@dataclass(frozen=True)
class Predicate:
    raw: dict[str, Any]
    issuer_name: str
    issuer_key_id: str
    issued_at: datetime
    expires_at: datetime
    files: tuple[FileEntry, ...]
    layer_max_nodes: int
    inventory: tuple[InventoryEntry, ...]
    inventory_method: str
    state: str
    quasi: tuple[str, ...]
    k: int | None
    l_diversity: tuple[tuple[str, int, str, float], ...]  # (column, l, variant, c)
    purposes: tuple[str, ...]
    recipients: tuple[str, ...]
    upstream: tuple[tuple[str, str], ...]  # (name, sha256 of the upstream's payload)
    consent: dict[str, Any] | None
    provenance: dict[str, Any] | None

    def permits_recipient(self, name: str) -> bool:
        return "*" in self.recipients or name in self.recipients


class _Reader:
    def __init__(self) -> None:
        self.where: list[str] = []

    def fail(self, key: str, what: str) -> PredicateError:
        path = ".".join([*self.where, key]) if key else ".".join(self.where) or "predicate"
        return PredicateError(f"passport predicate field {path}: {what}")

    def obj(self, d: Any, key: str) -> dict[str, Any]:
        v = d.get(key) if isinstance(d, dict) else None
        if not isinstance(v, dict):
            raise self.fail(key, "missing or not an object")
        return v

    def opt_obj(self, d: dict[str, Any], key: str) -> dict[str, Any] | None:
        if key not in d:
            raise self.fail(key, "missing (null when not known)")
        v = d[key]
        if v is not None and not isinstance(v, dict):
            raise self.fail(key, "not an object or null")
        return v

    def str_(
        self, d: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None, max_len: int = 1000
    ) -> str:
        v = d.get(key)
        if not isinstance(v, str) or not v or len(v) > max_len:
            raise self.fail(key, "missing or not a non-empty string")
        if pattern is not None and not pattern.match(v):
            raise self.fail(key, "not in the expected form")
        return v

    def int_(self, d: dict[str, Any], key: str, minimum: int = 0, nullable: bool = False) -> int:
        v = d.get(key)
        if v is None and nullable and key in d:
            return None  # type: ignore[return-value]
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            raise self.fail(key, f"missing or not a whole number >= {minimum}")
        return v

    def num(self, d: dict[str, Any], key: str, lo: float, hi: float | None = None) -> float:
        v = d.get(key)
        if not isinstance(v, int | float) or isinstance(v, bool) or v < lo or (hi is not None and v > hi):
            raise self.fail(key, "missing or out of range")
        return float(v)

    def bool_(self, d: dict[str, Any], key: str) -> bool:
        v = d.get(key)
        if not isinstance(v, bool):
            raise self.fail(key, "missing or not true/false")
        return v

    def choice(self, d: dict[str, Any], key: str, valid: tuple[str, ...]) -> str:
        v = d.get(key)
        if v not in valid:
            raise self.fail(key, f"must be one of {', '.join(valid)}")
        return str(v)

    def list_(self, d: dict[str, Any], key: str, min_items: int = 0) -> list[Any]:
        v = d.get(key)
        if not isinstance(v, list) or len(v) < min_items:
            raise self.fail(key, "missing or not a list" + (f" of at least {min_items}" if min_items else ""))
        return v

    def strings(self, d: dict[str, Any], key: str, min_items: int = 0) -> tuple[str, ...]:
        items = self.list_(d, key, min_items)
        if any(not isinstance(s, str) or not s or len(s) > 300 for s in items) or len(set(items)) != len(
            items
        ):
            raise self.fail(key, "must be distinct non-empty strings")
        return tuple(items)


def _closed(r: _Reader, d: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(d) - allowed)
    if extra:
        raise r.fail(extra[0], "unknown field (additional fields are not allowed in v1)")


def parse_predicate(d: Any) -> Predicate:
    """Read a v1 predicate; PredicateError names the first field that does not follow the schema."""
    r = _Reader()
    if not isinstance(d, dict):
        raise r.fail("", "not an object")
    _closed(r, d, {"issuer", "issuedAt", "expiresAt", "dataset", "inventory", "declaredState", "provenance",
                   "consent", "permitted", "upstream"})  # fmt: skip
    issuer = r.obj(d, "issuer")
    r.where = ["issuer"]
    _closed(r, issuer, {"name", "keyId"})
    issuer_name = r.str_(issuer, "name", max_len=300)
    key_id = r.str_(issuer, "keyId", _KEY_ID)
    r.where = []
    issued = parse_time(r.str_(d, "issuedAt", _TIME))
    expires = parse_time(r.str_(d, "expiresAt", _TIME))

    ds = r.obj(d, "dataset")
    r.where = ["dataset"]
    _closed(r, ds, {"records", "merkle", "files"})
    total = r.int_(ds, "records")
    mk = r.obj(ds, "merkle")
    if mk.get("algorithm") != MERKLE_ALGORITHM:
        raise r.fail("merkle.algorithm", f"must be {MERKLE_ALGORITHM}")
    max_nodes = r.int_(mk, "layerMaxNodes", 1)
    files: list[FileEntry] = []
    names: set[str] = set()
    for i, f in enumerate(r.list_(ds, "files", 1)):
        r.where = ["dataset", f"files[{i}]"]
        if not isinstance(f, dict):
            raise r.fail("", "not an object")
        _closed(r, f, {"name", "format", "bytes", "records", "merkleRoot", "layer"})
        name = r.str_(f, "name")
        if name in names:
            raise r.fail("name", "repeats another file's name")
        names.add(name)
        lay = r.obj(f, "layer")
        r.where.append("layer")
        _closed(r, lay, {"level", "nodes", "hashes"})
        level = r.int_(lay, "level")
        nodes = r.int_(lay, "nodes")
        try:
            raw_layer = base64.b64decode(str(lay.get("hashes", "")), validate=True)
        except (binascii.Error, ValueError):
            raise r.fail("hashes", "not base64") from None
        if len(raw_layer) != 32 * nodes or level > 63:
            raise r.fail("hashes", "does not hold 'nodes' 32-byte hashes")
        r.where.pop()
        records = r.int_(f, "records")
        if nodes != -(-records // (1 << level)) or nodes > max_nodes:
            raise r.fail("layer", "its level and node count do not fit the record count")
        files.append(
            FileEntry(name, r.choice(f, "format", ("csv", "tsv", "jsonl", "parquet", "blocks")),
                      r.int_(f, "bytes"), records, r.str_(f, "merkleRoot", _HEX64), level, raw_layer)
        )  # fmt: skip
    r.where = ["dataset"]
    if total != sum(f.records for f in files):
        raise r.fail("records", "is not the sum of the files' records")

    inv = r.obj(d, "inventory")
    r.where = ["inventory"]
    _closed(r, inv, {"method", "rowsScanned", "entries"})
    method = r.choice(inv, "method", ("full", "sampled"))
    r.int_(inv, "rowsScanned")
    entries: list[InventoryEntry] = []
    for i, e in enumerate(r.list_(inv, "entries")):
        r.where = ["inventory", f"entries[{i}]"]
        if not isinstance(e, dict):
            raise r.fail("", "not an object")
        _closed(r, e, {"file", "column", "entity", "share", "sensitive", "identifier"})
        col = e.get("column")
        if not isinstance(col, str):
            raise r.fail("column", "not a string")
        entries.append(
            InventoryEntry(r.str_(e, "file"), col, r.str_(e, "entity", max_len=100), r.num(e, "share", 0, 1),
                           r.bool_(e, "sensitive"), r.choice(e, "identifier", ("direct", "quasi", "none")))
        )  # fmt: skip

    st = r.obj(d, "declaredState")
    r.where = ["declaredState"]
    _closed(
        r, st, {"state", "deidReport", "models", "quasiIdentifiers", "sensitiveAttributes", "hierarchies"}
    )
    state = r.choice(st, "state", STATES)
    r.opt_obj(st, "deidReport")
    models = r.obj(st, "models")
    r.where.append("models")
    _closed(r, models, {"k", "lDiversity", "tCloseness", "suppressionLimit"})
    k = r.int_(models, "k", 1, nullable=True)
    ldiv: list[tuple[str, int, str, float]] = []
    for i, ld in enumerate(r.list_(models, "lDiversity")):
        r.where = ["declaredState", "models", f"lDiversity[{i}]"]
        if not isinstance(ld, dict):
            raise r.fail("", "not an object")
        _closed(r, ld, {"column", "l", "variant", "c"})
        c = ld.get("c", 1.0)
        if not isinstance(c, int | float) or isinstance(c, bool):
            raise r.fail("c", "not a number")
        variant = r.choice(ld, "variant", ("distinct", "entropy", "recursive"))
        ldiv.append((r.str_(ld, "column"), r.int_(ld, "l", 1), variant, float(c)))
    r.where = ["declaredState", "models"]
    r.list_(models, "tCloseness")
    r.num(models, "suppressionLimit", 0, 1)
    r.where = ["declaredState"]
    quasi = r.strings(st, "quasiIdentifiers")
    r.strings(st, "sensitiveAttributes")
    r.list_(st, "hierarchies")
    if state == "anonymized" and (k is None or not quasi):
        raise r.fail("models.k", "an 'anonymized' claim needs k and its quasi-identifiers")

    r.where = []
    prov = r.opt_obj(d, "provenance")
    consent = r.opt_obj(d, "consent")
    perm = r.obj(d, "permitted")
    r.where = ["permitted"]
    _closed(r, perm, {"purposes", "recipients"})
    purposes = r.strings(perm, "purposes", 1)
    recipients = r.strings(perm, "recipients", 1)
    r.where = []
    ups: list[tuple[str, str]] = []
    for i, u in enumerate(r.list_(d, "upstream")):
        r.where = [f"upstream[{i}]"]
        if not isinstance(u, dict):
            raise r.fail("", "not an object")
        _closed(r, u, {"name", "digest"})
        name = u.get("name")
        if not isinstance(name, str):
            raise r.fail("name", "not a string")
        ups.append((name, r.str_(r.obj(u, "digest"), "sha256", _HEX64)))
    return Predicate(
        raw=d, issuer_name=issuer_name, issuer_key_id=key_id, issued_at=issued, expires_at=expires,
        files=tuple(files), layer_max_nodes=max_nodes, inventory=tuple(entries), inventory_method=method,
        state=state, quasi=quasi, k=k, l_diversity=tuple(ldiv), purposes=purposes, recipients=recipients,
        upstream=tuple(ups), consent=consent, provenance=prov,
    )  # fmt: skip

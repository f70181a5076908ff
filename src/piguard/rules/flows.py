"""The flows file: a controller's declared processing flows, validated with line numbers.

Every error names the file and line and, where the value comes from a closed list, the valid choices. All
errors in a file are reported at once so a user fixes them in one pass. Values quoted in errors are cut to
a readable length and masked by the detectors (a flow id that is an ID number shows as ``1101****1233``).

A flows file is untrusted input: it is read with a size cap, only from a regular file, and its YAML may use
few aliases whose expansion is bounded (a 1.6 KB "billion laughs" file would otherwise take gigabytes).
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from piguard import taxonomy
from piguard.detect.messages import mask_message
from piguard.rules import packs

ACTIVITIES = ("collect", "use", "provide", "publish", "transfer_abroad", "retain", "automated_decision")
CONSENT_KINDS = ("none", "bundled", "explicit", "separate", "guardian")
RECIPIENT_KINDS = ("self", "processor", "third_party", "public", "abroad")
# PIPL Art. 13 para. 1, items 1-7.
LEGAL_BASES = (
    "consent", "contract", "hr", "legal_duty", "emergency", "news_public_interest", "public_disclosed",
    "other_law",
)  # fmt: skip
TRANSFER_MECHANISMS = ("security_assessment", "certification", "standard_contract", "none")
SOURCE_KINDS = ("subject", "public", "supplier", "derived")
CHANNELS = ("server", "sdk", "third_party_app")
APP_FACTS: dict[str, type] = {
    "privacy_policy": bool, "policy_prompt_on_first_run": bool, "clicks_to_policy": int,
    "policy_in_simplified_chinese": bool, "collects_before_consent": bool, "consent_preticked": bool,
    "withdraw_channel": bool, "permissions_all_at_once": bool, "deletion_and_cancellation": bool,
    "request_response_days": int, "complaint_channel": bool,
    "change_notice_declared": bool, "deletion_conditions_unreasonable": bool,
}  # fmt: skip
FLOW_KEYS = (
    "id", "activity", "data", "purpose", "subjects", "legal_basis", "consent", "recipient", "anonymized",
    "pseudonymized", "retention", "opt_out", "significant_impact", "optional", "transfer_mechanism",
    "entrustment_contract", "impact_assessment", "source", "disclosed", "purpose_shown_at_request", "notes",
    "passport",
)  # fmt: skip
TOP_KEYS = ("controller", "app_type", "app", "flows", "version")
MAX_FLOWS_BYTES = 16 * 1024 * 1024
# YAML anchors and aliases: a few are convenient, more are how alias bombs are built.
MAX_ALIASES = 100
MAX_ALIAS_EXPANSION = 100_000  # nodes aliases may add beyond those written in the file
MAX_INT_DIGITS = 64
_INT_TAG = "tag:yaml.org,2002:int"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
SUBJECT_PSEUDONYM = re.compile(r"s_[0-9a-f]{40}")


class FlowsError(ValueError):
    """The flows file is invalid; ``errors`` holds one line per problem, each with file and line. Every
    line is masked on the way in, so no caller can print a raw identifier from it."""

    def __init__(self, errors: list[str]) -> None:
        errors = [mask_message(e) for e in errors]
        super().__init__("\n".join(errors))
        self.errors = errors


def _show(value: Any, limit: int = 60) -> str:
    """A value as errors quote it: repr, masked, then cut to ``limit`` characters (masked first, so a cut
    never leaves part of an identifier the detectors would no longer recognise)."""
    if isinstance(value, dict | list):
        return f"a {type(value).__name__}"
    r = repr(value)
    if len(r) <= limit:
        return r
    return f"{mask_message(r[: limit * 4])[:limit]}... ({len(r)} characters)"


@dataclass(slots=True)
class Flow:
    id: str
    activity: str
    data: tuple[str, ...]
    purposes: tuple[str, ...]
    line: int = 0
    minors_under_14: bool = False
    legal_basis: str | None = None
    consent_kind: str | None = None
    consent_ref: str | None = None
    consent_subject: str | None = None
    recipient_kind: str = "self"
    recipient_name: str | None = None
    channel: str = "server"
    anonymized: bool = False
    pseudonymized: bool = False
    retention_days: int | None = None
    retention_until: str | None = None
    retention_expired: bool | None = None
    opt_out: bool | None = None
    significant_impact: bool = False
    optional: bool | None = None
    transfer_mechanism: str = "none"
    entrustment_contract: bool = False
    impact_assessment: bool = False
    source_kind: str = "subject"
    source_provenance: str | None = None
    subject_refused: bool = False
    disclosed: bool | None = None
    purpose_shown_at_request: bool | None = None
    passport: str | None = None  # a dataset passport (path, relative to the flows file's directory)
    passport_data: tuple[str, ...] = ()  # the delivered data to verify it against (same)


@dataclass(slots=True)
class FlowsDoc:
    controller: str
    app_type: int | None
    app: dict[str, Any]
    flows: list[Flow]
    path: str = "<flows>"
    extra_purposes: dict[str, packs.Purpose] = field(default_factory=dict)


class _LDict(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of each key's value."""

    line: int = 0
    lines: dict[Any, int]


class _LList(list):  # type: ignore[type-arg]
    line: int = 0
    lines: list[int]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _map(loader: _Loader, node: yaml.MappingNode) -> _LDict:
    loader.flatten_mapping(node)
    d = _LDict()
    d.line = node.start_mark.line + 1
    d.lines = {}
    for knode, vnode in node.value:
        key = loader.construct_object(knode, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a scalar", knode.start_mark
            )
        if key in d:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", knode.start_mark)
        d[key] = loader.construct_object(vnode, deep=True)
        d.lines[key] = vnode.start_mark.line + 1
    return d


def _seq(loader: _Loader, node: yaml.SequenceNode) -> _LList:
    out = _LList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    out.lines = [n.start_mark.line + 1 for n in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _seq)


def _choices(values: Iterable[str]) -> str:
    return ", ".join(values)


class _Checker:
    def __init__(self, path: str, purposes: dict[str, packs.Purpose]) -> None:
        self.path = path
        self.errors: list[str] = []
        self.purposes = purposes
        self.entities = taxonomy.entities()
        self.classes = taxonomy.classes()

    def err(self, line: int, msg: str) -> None:
        self.errors.append(f"{self.path}:{line}: {msg}")

    def line_of(self, m: Any, key: str) -> int:
        if isinstance(m, _LDict):
            return m.lines.get(key, m.line)
        return 0

    def choice(
        self, m: _LDict, key: str, valid: tuple[str, ...], where: str, default: str | None
    ) -> str | None:
        if key not in m or m[key] is None:
            return default
        v = m[key]
        if not isinstance(v, str) or v not in valid:
            line = self.line_of(m, key)
            self.err(line, f"{where}.{key}: {_show(v)} is not valid; valid: {_choices(valid)}")
            return default
        return v

    def boolean(self, m: _LDict, key: str, where: str, default: bool | None) -> bool | None:
        if key not in m or m[key] is None:
            return default
        v = m[key]
        if not isinstance(v, bool):
            self.err(self.line_of(m, key), f"{where}.{key}: {_show(v)} is not valid; valid: true, false")
            return default
        return v

    def mapping(self, m: _LDict, key: str, where: str) -> _LDict | None:
        v = m.get(key)
        if v is None:
            return None
        if not isinstance(v, dict):
            self.err(self.line_of(m, key), f"{where}.{key}: expected a mapping, got {type(v).__name__}")
            return None
        return v  # type: ignore[return-value]

    def keys(self, m: _LDict, valid: tuple[str, ...], where: str) -> None:
        for k in m:
            if k not in valid:
                self.err(self.line_of(m, k), f"{where}: unknown key {_show(k)}; valid: {_choices(valid)}")

    def data(self, m: _LDict, where: str) -> tuple[str, ...]:
        v = m.get("data")
        line = self.line_of(m, "data")
        if v is None:
            self.err(m.line, f"{where}: missing 'data' (taxonomy entity ids or classes)")
            return ()
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list) or not items:
            self.err(line, f"{where}.data: expected a non-empty list of entity ids or classes")
            return ()
        out: list[str] = []
        lines = getattr(items, "lines", [line] * len(items))
        for item, ln in zip(items, lines, strict=False):
            if isinstance(item, str) and item in self.entities:
                out.append(item)
            elif isinstance(item, str) and item in self.classes:
                out.extend(self.classes[item])
            else:
                self.err(
                    ln,
                    f"{where}.data: unknown entity or class {_show(item)}; valid classes: "
                    f"{_choices(sorted(self.classes))}; valid ids: {_choices(sorted(self.entities))}",
                )
        return tuple(dict.fromkeys(out))

    def purpose(self, m: _LDict, where: str) -> tuple[str, ...]:
        v = m.get("purpose")
        line = self.line_of(m, "purpose")
        if v is None:
            self.err(m.line, f"{where}: missing 'purpose'")
            return ()
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list) or not items:
            self.err(line, f"{where}.purpose: expected a purpose id or a list of them")
            return ()
        lines = getattr(items, "lines", [line] * len(items))
        out = []
        for item, ln in zip(items, lines, strict=False):
            if isinstance(item, str) and item in self.purposes:
                out.append(item)
            else:
                valid = _choices(self.purposes)
                self.err(ln, f"{where}.purpose: unknown purpose {_show(item)}; valid: {valid}")
        return tuple(out)

    def flow(self, m: Any, index: int, line: int, seen: dict[str, int]) -> Flow | None:
        where = f"flows[{index}]"
        if not isinstance(m, dict):
            self.err(line, f"{where}: expected a mapping with id, activity, data, purpose, ...")
            return None
        self.keys(m, FLOW_KEYS, where)
        fid = m.get("id")
        if not isinstance(fid, str | int) or isinstance(fid, bool) or str(fid) == "":
            self.err(m.line, f"{where}: missing or invalid 'id' (a short text)")
            fid = f"#{index}"
        fid = str(fid)
        if fid in seen:
            self.err(
                self.line_of(m, "id"), f"{where}: duplicate flow id {_show(fid)} (first at line {seen[fid]})"
            )
        seen[fid] = self.line_of(m, "id")
        where = f"flow {_show(fid)}"
        activity = self.choice(m, "activity", ACTIVITIES, where, None)
        if "activity" not in m:
            self.err(m.line, f"{where}: missing 'activity'; valid: {_choices(ACTIVITIES)}")
        f = Flow(
            id=fid, activity=activity or "use", data=self.data(m, where), purposes=self.purpose(m, where)
        )
        f.line = m.line
        subjects = self.mapping(m, "subjects", where)
        if subjects is not None:
            self.keys(subjects, ("minors_under_14", "description", "count"), f"{where}.subjects")
            f.minors_under_14 = bool(self.boolean(subjects, "minors_under_14", f"{where}.subjects", False))
        f.legal_basis = self.choice(m, "legal_basis", LEGAL_BASES, where, None)
        consent = m.get("consent")
        if isinstance(consent, str):
            f.consent_kind = self.choice(m, "consent", CONSENT_KINDS, where, None)
        elif consent is not None:
            c = self.mapping(m, "consent", where)
            if c is not None:
                self.keys(c, ("kind", "ref", "subject"), f"{where}.consent")
                f.consent_kind = self.choice(c, "kind", CONSENT_KINDS, f"{where}.consent", None)
                for key in ("ref", "subject"):
                    v = c.get(key)
                    if v is not None and (not isinstance(v, str | int) or isinstance(v, bool)):
                        self.err(self.line_of(c, key), f"{where}.consent.{key}: expected an id")
                    elif key == "subject" and v is not None and not SUBJECT_PSEUDONYM.fullmatch(str(v)):
                        self.err(
                            self.line_of(c, key),
                            f"{where}.consent.subject: expected a subject pseudonym (s_ and 40 hex digits, "
                            "as 'piguard consent record' prints it); a raw identifier does not belong here",
                        )
                    elif v is not None:
                        setattr(f, f"consent_{key}", str(v))
                if f.consent_ref and f.consent_subject:
                    self.err(c.line, f"{where}.consent: give 'ref' or 'subject', not both")
        rec = m.get("recipient")
        if isinstance(rec, str):
            f.recipient_kind = self.choice(m, "recipient", RECIPIENT_KINDS, where, "self") or "self"
        elif rec is not None:
            r = self.mapping(m, "recipient", where)
            if r is not None:
                self.keys(r, ("kind", "name", "channel", "country"), f"{where}.recipient")
                f.recipient_kind = (
                    self.choice(r, "kind", RECIPIENT_KINDS, f"{where}.recipient", "self") or "self"
                )
                name = r.get("name")
                f.recipient_name = str(name) if name is not None else None
                f.channel = self.choice(r, "channel", CHANNELS, f"{where}.recipient", "server") or "server"
        if f.activity in ("provide", "publish", "transfer_abroad") and f.recipient_kind == "self":
            # The activity implies who receives; a missing recipient would hide Art. 23/25/39.
            f.recipient_kind = {"provide": "third_party", "publish": "public", "transfer_abroad": "abroad"}[
                f.activity
            ]
        for key in ("anonymized", "pseudonymized", "significant_impact", "entrustment_contract",
                    "impact_assessment"):  # fmt: skip
            setattr(f, key, bool(self.boolean(m, key, where, False)))
        for key in ("opt_out", "optional", "disclosed", "purpose_shown_at_request"):
            setattr(f, key, self.boolean(m, key, where, None))
        if f.opt_out is not None and f.activity != "automated_decision":
            self.err(self.line_of(m, "opt_out"), f"{where}.opt_out: only for activity automated_decision")
        f.transfer_mechanism = (
            self.choice(m, "transfer_mechanism", TRANSFER_MECHANISMS, where, "none") or "none"
        )
        ret = m.get("retention")
        if ret is not None:
            r = self.mapping(m, "retention", where)
            if r is not None:
                self.keys(r, ("days", "until", "expired"), f"{where}.retention")
                days = r.get("days")
                if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 0):
                    self.err(self.line_of(r, "days"), f"{where}.retention.days: expected a whole number >= 0")
                else:
                    f.retention_days = days
                until = r.get("until")
                f.retention_until = str(until) if until is not None else None
                f.retention_expired = self.boolean(r, "expired", f"{where}.retention", None)
                if f.retention_days is None and f.retention_until is None:
                    self.err(r.line, f"{where}.retention: give 'days' or 'until'")
        src = m.get("source")
        if src is not None:
            s = self.mapping(m, "source", where)
            if s is not None:
                self.keys(s, ("kind", "provenance", "subject_refused", "name"), f"{where}.source")
                f.source_kind = (
                    self.choice(s, "kind", SOURCE_KINDS, f"{where}.source", "subject") or "subject"
                )
                prov = s.get("provenance")
                f.source_provenance = str(prov) if prov is not None else None
                f.subject_refused = bool(self.boolean(s, "subject_refused", f"{where}.source", False))
        self.passport(m, f, where)
        return f

    def passport(self, m: _LDict, f: Flow, where: str) -> None:
        """``passport: FILE`` or ``passport: {file: FILE, data: [PATH, ...]}``; paths are relative to the
        flows file's directory."""
        v = m.get("passport")
        if v is None:
            return
        base = Path(self.path).parent if self.path != "<flows>" else Path(".")
        if isinstance(v, str) and v:
            f.passport = str(base / v)
            return
        p = self.mapping(m, "passport", where)
        if p is None:
            return
        self.keys(p, ("file", "data"), f"{where}.passport")
        file, data = p.get("file"), p.get("data")
        items = [data] if isinstance(data, str) else data
        paths_ok = isinstance(items, list) and all(isinstance(d, str) and d for d in items)
        if not isinstance(file, str) or not file:
            self.err(p.line, f"{where}.passport: missing 'file' (the passport JSON)")
        elif items is not None and not paths_ok:
            self.err(self.line_of(p, "data"), f"{where}.passport.data: expected a path or a list of paths")
        else:
            f.passport = str(base / file)
            f.passport_data = tuple(str(base / d) for d in items or ())


def _check_nodes(root: yaml.Node, path: str, loader: Any) -> None:
    """Refuse what would make constructing the document explode: many aliases, aliases that expand to a
    huge tree, recursive aliases, and integers too long to be counts (Python refuses 4,300+ digits)."""
    aliases = 0
    seen: set[int] = set()
    stack: list[yaml.Node] = [root]
    while stack:  # iterative: a deeply nested file must not exhaust the Python stack here
        node = stack.pop()
        if id(node) in seen:
            aliases += 1
            if aliases > MAX_ALIASES:
                line = node.start_mark.line + 1
                msg = f"more than {MAX_ALIASES} YAML aliases; write the values out"
                raise FlowsError([f"{path}:{line}: {msg}"])
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _INT_TAG and len(node.value) > MAX_INT_DIGITS:
                line = node.start_mark.line + 1
                raise FlowsError([f"{path}:{line}: a number of {len(node.value)} characters is too long"])
            if node.tag == _TIMESTAMP_TAG:
                try:
                    loader.construct_yaml_timestamp(node)
                except (ValueError, OverflowError):
                    line = node.start_mark.line + 1
                    raise FlowsError([f"{path}:{line}: not a valid date or time"]) from None
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
    if aliases:
        _check_expansion(root, len(seen), path)


def _check_expansion(root: yaml.Node, written: int, path: str) -> None:
    """Count the nodes the document has once aliases are expanded (memoised post-order walk)."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    limit = written + MAX_ALIAS_EXPANSION

    def children(n: yaml.Node) -> list[yaml.Node]:
        if isinstance(n, yaml.SequenceNode):
            return list(n.value)
        if isinstance(n, yaml.MappingNode):
            return [x for kv in n.value for x in kv]
        return []

    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(size[id(c)] for c in children(node))
            if total > limit:
                msg = f"YAML aliases add more than {MAX_ALIAS_EXPANSION:,} values (an alias bomb?)"
                raise FlowsError([f"{path}: {msg}"])
            size[key] = total
            continue
        if key in size:
            continue
        if key in on_path:
            line = node.start_mark.line + 1
            raise FlowsError([f"{path}:{line}: recursive YAML alias (it refers to a value that contains it)"])
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children(node) if id(c) not in size)


def _load_yaml(text: str, path: str) -> Any:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, path, loader)
        return loader.construct_document(node)
    except FlowsError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise FlowsError([f"{path}:{line}: malformed YAML: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise FlowsError([f"{path}: malformed YAML: {type(exc).__name__}"]) from None
    except RecursionError:
        raise FlowsError([f"{path}: malformed YAML: nested too deeply"]) from None
    except (ValueError, OverflowError, TypeError) as exc:
        # A scalar the constructor cannot turn into a value (an impossible date, ...): named, never raw.
        raise FlowsError([f"{path}: malformed YAML: a value cannot be read ({type(exc).__name__})"]) from None
    finally:
        loader.dispose()


def parse_flows(
    text: str, path: str = "<flows>", extra_purposes: dict[str, packs.Purpose] | None = None
) -> FlowsDoc:
    """Parse and validate a flows document; raise FlowsError listing every problem."""
    raw = _load_yaml(text, path)
    if not isinstance(raw, dict):
        raise FlowsError([f"{path}:1: expected a mapping with controller, app_type, flows"])
    all_purposes = {**packs.purposes(), **(extra_purposes or {})}
    ck = _Checker(path, all_purposes)
    ck.keys(raw, TOP_KEYS, "top level")
    controller = raw.get("controller")
    if not isinstance(controller, str) or not controller.strip():
        ck.err(
            ck.line_of(raw, "controller") or 1, "missing 'controller' (the personal information processor)"
        )
        controller = ""
    app_type: int | None = None
    if raw.get("app_type") is not None:
        names = packs.app_type_names()
        v = raw["app_type"]
        app_type = names.get(str(v).strip()) if not isinstance(v, bool) else None
        if app_type is None:
            valid = ", ".join(f"{t.no} {t.zh}" for t in packs.app_types().values())
            line = ck.line_of(raw, "app_type")
            ck.err(line, f"app_type: {_show(v)} is not one of the 39 types; valid: {valid}")
    app: dict[str, Any] = {}
    appm = ck.mapping(raw, "app", "top level")
    if appm is not None:
        ck.keys(appm, tuple(APP_FACTS), "app")
        for k, typ in APP_FACTS.items():
            if k in appm and appm[k] is not None:
                v = appm[k]
                if typ is bool and not isinstance(v, bool):
                    ck.err(ck.line_of(appm, k), f"app.{k}: {_show(v)} is not valid; valid: true, false")
                elif typ is int and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                    ck.err(ck.line_of(appm, k), f"app.{k}: expected a whole number >= 0")
                else:
                    app[k] = v
    flows_raw = raw.get("flows")
    flows: list[Flow] = []
    if not isinstance(flows_raw, list) or not flows_raw:
        ck.err(ck.line_of(raw, "flows") or 1, "missing 'flows' (a non-empty list)")
    else:
        seen: dict[str, int] = {}
        lines = getattr(flows_raw, "lines", [0] * len(flows_raw))
        for i, (item, ln) in enumerate(zip(flows_raw, lines, strict=False)):
            f = ck.flow(item, i, ln, seen)
            if f is not None:
                flows.append(f)
    if ck.errors:
        raise FlowsError(ck.errors)
    return FlowsDoc(
        controller=controller, app_type=app_type, app=app, flows=flows, path=path,
        extra_purposes=dict(extra_purposes or {}),
    )  # fmt: skip


def read_capped(path: Path, limit: int, what: str) -> bytes:
    """Read a regular file of at most ``limit`` bytes; FlowsError names the file otherwise. A FIFO or a
    device would block or never end, and a file's size can change between stat and read, so both the type
    and the bytes actually read are checked."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise FlowsError([f"{path}: cannot read {what}: {kind}"])
        if st.st_size > limit:
            raise FlowsError([f"{path}: {what} larger than {limit // 2**20} MiB"])
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise FlowsError([f"{path}: cannot read {what} ({exc.strerror or type(exc).__name__})"]) from None
    if len(data) > limit:
        raise FlowsError([f"{path}: {what} larger than {limit // 2**20} MiB"])
    return data


def load_flows(path: str | Path, extra_purposes: dict[str, packs.Purpose] | None = None) -> FlowsDoc:
    p = Path(path)
    data = read_capped(p, MAX_FLOWS_BYTES, "flows file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FlowsError([f"{p}: not UTF-8 text (byte {exc.start})"]) from None
    return parse_flows(text, str(p), extra_purposes)

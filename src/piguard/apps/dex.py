"""Code facts from an APK's DEX files, read with androguard: classes, a call graph, sensitive-API call sites.

One DEX file is scanned per call of ``scan_dex`` (a process pool runs several at once for a large APK); the
results are merged into one ``CodeFacts``, on which ``reachable`` walks from the entry points that run before
any screen can show (Application, ContentProviders) or on the first screen (the launcher activity).

The call graph is an over-approximation made for evidence, not proof: a call resolves by class and method
name (any overload) up the superclass chain, and constructing an object of an app class counts as a call to
its usual callback methods (Runnable.run, Handler.handleMessage, ...), since SDKs start work on threads.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

# Dalvik opcodes (https://source.android.com/docs/core/runtime/dalvik-bytecode).
_INVOKE = frozenset(range(0x6E, 0x73)) | frozenset(range(0x74, 0x79))
_SGET = frozenset(range(0x60, 0x67))
_CONST_STRING = frozenset((0x1A, 0x1B))
_NEW_INSTANCE = 0x22
# Calls into the platform or language runtime never lead back into app code; leaving them out keeps the
# graph small (sensitive platform calls are recorded separately).
_PLATFORM = (
    "Landroid/", "Ljava/", "Ljavax/", "Ldalvik/", "Lkotlin/", "Lkotlinx/", "Landroidx/", "Lorg/json/",
    "Lorg/xml/", "Lorg/w3c/", "Lsun/", "Lorg/apache/http/",
)  # fmt: skip
CALLBACKS = frozenset((
    "run", "call", "handleMessage", "doInBackground", "onPostExecute", "onReceive", "onLocationChanged",
    "invoke", "accept", "apply", "onNext", "onSuccess", "onComplete", "onResult", "execute",
))  # fmt: skip
POLICY_WORDS = ("隐私政策", "隐私协议", "隐私条款", "privacy policy", "privacy_policy", "privacypolicy")


@dataclass(frozen=True)
class ApiKind:
    kind: str
    en: str
    zh: str
    entities: tuple[str, ...]


@dataclass(frozen=True)
class ApiIndex:
    kinds: dict[str, ApiKind]
    methods: dict[str, str]  # "Lcls;->name" -> kind
    fields: dict[str, str]  # "Lcls;->FIELD" -> kind
    uris: tuple[tuple[str, str], ...]  # (uri prefix, kind)


@cache
def api_index() -> ApiIndex:
    doc = yaml.safe_load(
        resources.files("piguard.apps").joinpath("data/sensitive_apis.yaml").read_text("utf-8")
    )
    kinds, methods, fields, uris = {}, {}, {}, []
    for kind, spec in doc["apis"].items():
        kinds[kind] = ApiKind(kind, spec["en"], spec["zh"], tuple(spec.get("entities") or ()))
        for m in spec.get("methods") or ():
            methods[m] = kind
        for f in spec.get("fields") or ():
            fields[f] = kind
        for u in spec.get("uris") or ():
            uris.append((u, kind))
    return ApiIndex(kinds, methods, fields, tuple(uris))


@dataclass
class DexScan:
    """What one DEX file holds, in plain picklable types (it crosses a process boundary)."""

    name: str
    size: int
    superclass: dict[str, str] = field(default_factory=dict)
    edges: dict[str, list[str]] = field(default_factory=dict)
    creates: dict[str, list[str]] = field(default_factory=dict)
    sensitive: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # method -> [(kind, api)]
    policy_strings: int = 0
    methods: int = 0
    instructions: int = 0


def _quiet_androguard() -> None:
    # androguard logs through loguru at DEBUG/INFO by default; its messages may quote app strings.
    try:
        from loguru import logger

        logger.disable("androguard")
    except ImportError:  # pragma: no cover - loguru comes with androguard
        logging.getLogger("androguard").setLevel(logging.ERROR)


def scan_dex(name: str, data: bytes) -> DexScan:
    """Parse one DEX file with androguard and collect its classes, calls and sensitive-API uses."""
    _quiet_androguard()
    from androguard.core.dex import DEX

    idx = api_index()
    dex = DEX(data)
    out = DexScan(name=name, size=len(data))
    api_methods, api_fields, uris = idx.methods, idx.fields, idx.uris
    method_cache: dict[int, str] = {}
    for cls in dex.get_classes():
        cname = cls.get_name()
        out.superclass[cname] = cls.get_superclassname()
        if cname.startswith(_PLATFORM):
            # Bundled androidx/kotlin code: calls into it are not followed (see _PLATFORM), so decoding it
            # would only cost time (it is often a third of a real app's DEX).
            continue
        for m in cls.get_methods():
            out.methods += 1
            if m.get_code() is None:
                continue
            key = f"{cname}->{m.get_name()}"
            calls: list[str] = []
            creates: list[str] = []
            hits: list[tuple[str, str]] = []
            strings: list[str] = []
            for ins in m.get_instructions():
                out.instructions += 1
                op = ins.OP  # get_op_value() without the call: this loop runs once per instruction
                if op in _INVOKE:
                    ref = ins.get_ref_kind()
                    target = method_cache.get(ref)
                    if target is None:
                        c, n, _ = dex.get_cm_method(ref)
                        target = method_cache[ref] = f"{c}->{n}"
                    kind = api_methods.get(target)
                    if kind is not None:
                        hits.append((kind, target))
                    elif not target.startswith(_PLATFORM):
                        calls.append(target)
                elif op in _SGET:
                    c, _, n = dex.get_cm_field(ins.get_ref_kind())
                    kind = api_fields.get(f"{c}->{n}")
                    if kind is not None:
                        hits.append((kind, f"{c}->{n}"))
                elif op in _CONST_STRING:
                    s = ins.get_raw_string()
                    if s.startswith("content://"):
                        for prefix, kind in uris:
                            if s.startswith(prefix):
                                hits.append((kind, s))
                                break
                    elif len(s) < 64:
                        strings.append(s)
                elif op == _NEW_INSTANCE:
                    t = dex.get_cm_type(ins.get_ref_kind())
                    if not t.startswith(_PLATFORM):
                        creates.append(t)
            if strings:
                low = [s.lower() for s in strings]
                out.policy_strings += sum(1 for s in low if any(w in s for w in POLICY_WORDS))
                if "android_id" not in strings:
                    # Settings.Secure.getString reads many settings; only the Android ID is an identifier.
                    hits = [h for h in hits if not h[1].startswith("Landroid/provider/Settings$")]
            else:
                hits = [h for h in hits if not h[1].startswith("Landroid/provider/Settings$")]
            if calls:
                out.edges[key] = list(dict.fromkeys(calls))
            if creates:
                out.creates[key] = list(dict.fromkeys(creates))
            if hits:
                out.sensitive[key] = list(dict.fromkeys(hits))
    return out


@dataclass
class CodeFacts:
    """The merged view of every DEX file in an APK."""

    dex_files: list[tuple[str, int]] = field(default_factory=list)
    superclass: dict[str, str] = field(default_factory=dict)
    edges: dict[str, list[str]] = field(default_factory=dict)
    creates: dict[str, list[str]] = field(default_factory=dict)
    sensitive: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    policy_strings: int = 0
    methods: int = 0
    instructions: int = 0
    _defined: dict[str, set[str]] | None = None

    @classmethod
    def merge(cls, scans: list[DexScan]) -> CodeFacts:
        out = cls()
        for s in scans:
            out.dex_files.append((s.name, s.size))
            out.superclass.update(s.superclass)
            out.edges.update(s.edges)
            out.creates.update(s.creates)
            out.sensitive.update(s.sensitive)
            out.policy_strings += s.policy_strings
            out.methods += s.methods
            out.instructions += s.instructions
        return out

    @property
    def classes(self) -> list[str]:
        return list(self.superclass)

    def _methods_of(self) -> dict[str, set[str]]:
        if self._defined is None:
            d: dict[str, set[str]] = {}
            for key in (*self.edges, *self.sensitive, *self.creates):
                c, _, n = key.partition("->")
                d.setdefault(c, set()).add(n)
            self._defined = d
        return self._defined

    def resolve(self, target: str) -> str | None:
        """The method a call lands in: the named class or the nearest superclass that has code for it."""
        defined = self._methods_of()
        c, _, n = target.partition("->")
        for _ in range(32):  # inheritance depth bound: guards against cycles in malformed DEX files
            if n in defined.get(c, ()):
                return f"{c}->{n}"
            sup = self.superclass.get(c)
            if not sup:
                return None
            c = sup
        return None

    def callees(self, key: str) -> list[str]:
        out = []
        for t in self.edges.get(key, ()):
            r = self.resolve(t)
            if r is not None:
                out.append(r)
        defined = self._methods_of()
        for c in self.creates.get(key, ()):
            out.extend(f"{c}->{n}" for n in defined.get(c, ()) if n in CALLBACKS)
        return out

    def reachable(self, entries: list[str], max_methods: int = 2_000_000) -> dict[str, str | None]:
        """Methods reachable from ``entries``, each with its caller on a shortest path (None for entries)."""
        parent: dict[str, str | None] = {}
        queue: deque[str] = deque()
        for e in entries:
            r = self.resolve(e)
            if r is not None and r not in parent:
                parent[r] = None
                queue.append(r)
        while queue and len(parent) < max_methods:
            m = queue.popleft()
            for c in self.callees(m):
                if c not in parent:
                    parent[c] = m
                    queue.append(c)
        return parent


def java_name(key: str) -> str:
    """``Lcom/a/B$C;->run`` as ``com.a.B$C.run``."""
    c, _, n = key.partition("->")
    c = c[1:-1].replace("/", ".") if c.startswith("L") and c.endswith(";") else c
    return f"{c}.{n}" if n else c


def dex_class(name: str) -> str:
    """``com.a.B`` as ``Lcom/a/B;``."""
    return "L" + name.replace(".", "/") + ";"


def path_to(parent: dict[str, str | None], key: str, limit: int = 12) -> list[str]:
    out = [key]
    while (p := parent.get(out[-1])) is not None and len(out) < limit:
        out.append(p)
    return [java_name(k) for k in reversed(out)]


def describe(kind: str) -> dict[str, Any]:
    k = api_index().kinds[kind]
    return {"kind": k.kind, "en": k.en, "zh": k.zh, "entities": list(k.entities)}

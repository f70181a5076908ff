"""APK facts: the manifest through androguard, third-party SDKs by class-package prefix, sensitive-API use and
whether it is reachable before any consent screen could show.

Every input check happens before androguard sees the file, so a bad file gives a named ``AppInputError``
instead of a parser's traceback: not a zip, a corrupt or truncated zip, a zip bomb, no manifest.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from piguard.apps import dex as dexmod

MAX_APK_BYTES = 2 * 1024**3
MAX_UNCOMPRESSED = 4 * 1024**3  # all entries together
MAX_ENTRY_RATIO = 200  # an entry that inflates 200-fold and past 64 MiB is a bomb, not a DEX file
MAX_DEX_BYTES = 512 * 1024**2
PARALLEL_DEX_BYTES = 8 * 1024**2  # below this, a process pool costs more than it saves
_DEX_NAME = re.compile(r"^classes\d*\.dex$")
_POLICY_FILE = re.compile(r"(privacy|policy|yinsi|隐私)[^/]*\.(html?|txt)$", re.I)
APPLICATION_ENTRY_METHODS = ("<clinit>", "<init>", "attachBaseContext", "onCreate")
LAUNCHER_ENTRY_METHODS = ("<clinit>", "<init>", "onCreate", "onStart", "onResume")


class AppInputError(ValueError):
    """The file cannot be audited as an APK; the message names the file and the reason."""


@dataclass(frozen=True)
class Sdk:
    id: str
    name: str
    name_zh: str
    vendor: str
    category: str
    prefixes: tuple[str, ...]
    entities: tuple[str, ...]
    policy: str
    exodus: tuple[int, ...]


@cache
def sdk_catalogue() -> tuple[Sdk, ...]:
    doc = yaml.safe_load(resources.files("piguard.apps").joinpath("data/sdks.yaml").read_text("utf-8"))
    return tuple(
        Sdk(s["id"], s["name"], s["name_zh"], s["vendor"], s["category"], tuple(s["prefixes"]),
            tuple(s["entities"]), s["policy"], tuple(s.get("exodus") or ()))
        for s in doc["sdks"]
    )  # fmt: skip


@cache
def permission_map() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(resources.files("piguard.apps").joinpath("data/permissions.yaml").read_text("utf-8"))
    return {p["permission"]: p for p in doc["permissions"]}


@cache
def packer_signatures() -> tuple[tuple[str, tuple[str, ...]], ...]:
    doc = yaml.safe_load(resources.files("piguard.apps").joinpath("data/packers.yaml").read_text("utf-8"))
    return tuple((p["name"], tuple(p["files"])) for p in doc["packers"])


@cache
def _prefix_pattern() -> tuple[re.Pattern[str], dict[str, Sdk]]:
    """One regex over all SDK prefixes in DEX form (``Lcom/umeng/analytics``), longest first."""
    by_prefix: dict[str, Sdk] = {}
    for s in sdk_catalogue():
        for p in s.prefixes:
            by_prefix["L" + p.rstrip(".").replace(".", "/")] = s
    alts = sorted(by_prefix, key=len, reverse=True)
    # A prefix ends at a package or class boundary: com.qq.e. must not match com.qq.eagle.
    pat = re.compile("^(" + "|".join(re.escape(a) for a in alts) + r")(?=[/;$])")
    return pat, by_prefix


def find_sdks(classes: list[str]) -> list[dict[str, Any]]:
    """SDKs whose prefixes match class names (DEX form), with the number and a sample of matching classes."""
    pat, by_prefix = _prefix_pattern()
    hits: dict[str, list[str]] = {}
    for c in classes:
        m = pat.match(c)
        if m:
            hits.setdefault(by_prefix[m.group(1)].id, []).append(c)
    out = []
    for s in sdk_catalogue():
        if s.id in hits:
            cls = hits[s.id]
            out.append({
                "id": s.id, "name": s.name, "name_zh": s.name_zh, "vendor": s.vendor, "category": s.category,
                "entities": list(s.entities), "policy": s.policy, "exodus": list(s.exodus),
                "classes": len(cls), "example_class": dexmod.java_name(cls[0]),
            })  # fmt: skip
    return out


@dataclass
class ApkFacts:
    path: str
    sha256: str
    size: int
    package: str
    version_name: str | None
    version_code: str | None
    min_sdk: int | None
    target_sdk: int | None
    application_class: str | None
    launcher_activity: str | None
    permissions: list[dict[str, Any]]
    components: dict[str, list[str]]
    sdks: list[dict[str, Any]]
    sensitive_apis: list[dict[str, Any]]
    dex: list[dict[str, Any]]
    classes: int
    packer: str | None
    obfuscated: bool
    bundled_policies: list[str]
    policy_strings: int
    notes: list[str] = field(default_factory=list)

    @property
    def dex_bytes(self) -> int:
        return sum(d["bytes"] for d in self.dex)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "sha256": self.sha256, "bytes": self.size, "package": self.package,
            "version": self.version_name, "version_code": self.version_code, "min_sdk": self.min_sdk,
            "target_sdk": self.target_sdk, "application_class": self.application_class,
            "launcher_activity": self.launcher_activity, "permissions": self.permissions,
            "components": self.components, "sdks": self.sdks, "sensitive_apis": self.sensitive_apis,
            "dex": self.dex, "classes": self.classes, "packer": self.packer, "obfuscated": self.obfuscated,
            "bundled_policies": self.bundled_policies, "notes": self.notes,
        }  # fmt: skip


def _check_zip(path: Path) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    try:
        st = path.stat()
    except OSError as exc:
        raise AppInputError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if not path.is_file():
        raise AppInputError(f"{path}: not a file")
    if st.st_size > MAX_APK_BYTES:
        raise AppInputError(f"{path}: larger than {MAX_APK_BYTES // 1024**3} GiB")
    if st.st_size == 0:
        raise AppInputError(f"{path}: empty file, not an APK")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head.startswith(b"PK"):
            raise AppInputError(f"{path}: corrupt or truncated zip archive (no central directory)") from None
        raise AppInputError(f"{path}: not an APK (not a zip archive)") from None
    except OSError as exc:
        raise AppInputError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    infos = zf.infolist()
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 64 * 1024**2 and ratio > MAX_ENTRY_RATIO:
            zf.close()
            raise AppInputError(
                f"{path}: zip bomb refused: entry {info.filename!r} inflates {ratio:.0f}-fold "
                f"to {info.file_size // 1024**2} MiB"
            )
    if total > MAX_UNCOMPRESSED:
        zf.close()
        raise AppInputError(f"{path}: zip bomb refused: entries inflate to {total // 1024**3} GiB")
    names = {i.filename for i in infos}
    if "AndroidManifest.xml" not in names:
        zf.close()
        raise AppInputError(f"{path}: not an APK (zip archive without AndroidManifest.xml)")
    return zf, infos


def _read_dex(path: Path, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> list[tuple[str, bytes]]:
    out = []
    for info in sorted(
        (i for i in infos if _DEX_NAME.match(i.filename)), key=lambda i: _dex_order(i.filename)
    ):
        if info.file_size > MAX_DEX_BYTES:
            raise AppInputError(f"{path}: {info.filename} larger than {MAX_DEX_BYTES // 1024**2} MiB")
        try:
            data = zf.read(info)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise AppInputError(f"{path}: corrupt zip entry {info.filename} ({type(exc).__name__})") from None
        if not data.startswith(b"dex\n"):
            raise AppInputError(f"{path}: {info.filename} is not a DEX file")
        out.append((info.filename, data))
    return out


def _dex_order(name: str) -> int:
    digits = name[len("classes") : -len(".dex")]
    return int(digits) if digits else 1


def _scan_all(dexes: list[tuple[str, bytes]], workers: int) -> dexmod.CodeFacts:
    total = sum(len(d) for _, d in dexes)
    if workers > 1 and len(dexes) > 1 and total >= PARALLEL_DEX_BYTES:
        # Largest first so the pool's last task is a small one.
        order = sorted(dexes, key=lambda d: -len(d[1]))
        with ProcessPoolExecutor(max_workers=min(workers, len(dexes))) as pool:
            scans = list(pool.map(dexmod.scan_dex, [n for n, _ in order], [d for _, d in order]))
        scans.sort(key=lambda s: _dex_order(s.name))
    else:
        scans = [dexmod.scan_dex(n, d) for n, d in dexes]
    return dexmod.CodeFacts.merge(scans)


def _looks_obfuscated(classes: list[str]) -> bool:
    """Most app classes named with one or two letters (ProGuard/R8's a.b.c) means names tell little."""
    if len(classes) < 20:
        return False
    short = sum(1 for c in classes if len(c.rstrip(";").rsplit("/", 1)[-1]) <= 2)
    return short / len(classes) > 0.5


def _permissions(requested: list[str]) -> list[dict[str, Any]]:
    pm = permission_map()
    out = []
    for p in dict.fromkeys(requested):
        row = pm.get(p)
        out.append({
            "name": p,
            "protection": row["protection"] if row else None,
            "dangerous": bool(row and "dangerous" in row["protection"]),
            "group": row["group"] if row else None,
            "entities": list(row["entities"]) if row else [],
            "pi_en": row["pi_en"] if row else None,
            "pi_zh": row["pi_zh"] if row else None,
            "cite": row["cite"] if row else None,
        })  # fmt: skip
    return out


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _full_class(package: str, name: str | None) -> str | None:
    if not name:
        return None
    if name.startswith("."):
        return package + name
    return name if "." in name else f"{package}.{name}"


def _entry_points(
    facts: dexmod.CodeFacts, app_class: str | None, providers: list[str], launcher: str | None
) -> dict[str, list[str]]:
    early: list[str] = []
    if app_class:
        early += [f"{dexmod.dex_class(app_class)}->{m}" for m in APPLICATION_ENTRY_METHODS]
    for p in providers:  # ContentProvider.onCreate runs before Application.onCreate (SDK auto-init)
        early += [f"{dexmod.dex_class(p)}->{m}" for m in ("<clinit>", "<init>", "onCreate", "attachInfo")]
    first = [f"{dexmod.dex_class(launcher)}->{m}" for m in LAUNCHER_ENTRY_METHODS] if launcher else []
    return {"application": early, "launcher": first}


def _sensitive_uses(
    facts: dexmod.CodeFacts, entries: dict[str, list[str]], sdks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    early = facts.reachable(entries["application"])
    first = facts.reachable(entries["launcher"])
    pat, by_prefix = _prefix_pattern()
    by_kind: dict[str, dict[str, Any]] = {}
    for method, hits in facts.sensitive.items():
        cls = method.partition("->")[0]
        m = pat.match(cls)
        sdk = by_prefix[m.group(1)].name if m else None
        for kind, api in hits:
            entry = by_kind.setdefault(kind, {**dexmod.describe(kind), "apis": set(), "callers": [],
                                              "reachable": None})  # fmt: skip
            entry["apis"].add(dexmod.java_name(api))
            caller = {"method": dexmod.java_name(method), "sdk": sdk}
            if len(entry["callers"]) < 20:
                entry["callers"].append(caller)
            reach = None
            if method in early:
                reach = {
                    "from": "application", "confidence": "medium",
                    "path": dexmod.path_to(early, method),
                    "note": "static call path from code that runs at app start (Application or a "
                    "ContentProvider) before any screen can show; a consent check on the path cannot be "
                    "excluded statically",
                }  # fmt: skip
            elif method in first:
                reach = {
                    "from": "launcher", "confidence": "low", "path": dexmod.path_to(first, method),
                    "note": "static call path from the launcher activity's start-up; a consent screen shown "
                    "there first cannot be excluded statically",
                }  # fmt: skip
            rank = {None: 0, "launcher": 1, "application": 2}
            cur = entry["reachable"]
            if reach and rank[reach["from"]] > rank[cur["from"] if cur else None]:
                entry["reachable"] = reach
    out = []
    for kind in dexmod.api_index().kinds:
        if kind in by_kind:
            e = by_kind[kind]
            e["apis"] = sorted(e["apis"])
            out.append(e)
    return out


def _find_packer(names: set[str]) -> str | None:
    bases = {n.rsplit("/", 1)[-1] for n in names}
    for name, files in packer_signatures():
        for f in files:
            if any(b == f or b.startswith(f) for b in bases) or any(n.endswith("/" + f) for n in names):
                return name
    return None


def read_apk(path: str | Path, *, workers: int = 1) -> ApkFacts:
    """Facts about one APK; ``AppInputError`` for a file that is not a readable APK."""
    dexmod._quiet_androguard()
    from androguard.core.apk import APK

    p = Path(path)
    zf, infos = _check_zip(p)
    try:
        dexes = _read_dex(p, zf, infos)
        names = {i.filename for i in infos}
    finally:
        zf.close()
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    try:
        apk = APK(str(p))
    except Exception as exc:  # androguard raises many types for malformed manifests
        raise AppInputError(f"{p}: unreadable manifest ({type(exc).__name__})") from None
    if not apk.is_valid_APK():
        raise AppInputError(f"{p}: not an APK (androguard could not read its manifest)")
    package = apk.get_package() or ""
    notes: list[str] = []
    if not dexes:
        notes.append("no classes.dex: the APK carries no Dalvik code (resource-only or packed)")
    facts = _scan_all(dexes, workers)
    app_class = _full_class(package, apk.get_attribute_value("application", "name"))
    launcher = _full_class(package, apk.get_main_activity())
    providers = [c for c in (_full_class(package, x) for x in apk.get_providers()) if c]
    classes = facts.classes
    packer = _find_packer(names)
    if app_class and dexmod.dex_class(app_class) not in facts.superclass and dexes:
        notes.append(f"the Application class {app_class} is not in the DEX files: code is loaded at run time")
        packer = packer or "unknown (Application class missing from DEX)"
    if packer:
        notes.append(f"packed by {packer}: SDKs, sensitive APIs and reachability are incomplete")
    obfuscated = _looks_obfuscated(classes)
    if obfuscated:
        notes.append("most class names are one or two letters (obfuscated); SDKs are still found by package")
    sdks = find_sdks(classes)
    entries = _entry_points(facts, app_class, providers, launcher)
    sensitive = _sensitive_uses(facts, entries, sdks)
    return ApkFacts(
        path=str(p), sha256=h.hexdigest(), size=p.stat().st_size, package=package,
        version_name=apk.get_androidversion_name(), version_code=apk.get_androidversion_code(),
        min_sdk=_int(apk.get_min_sdk_version()), target_sdk=_int(apk.get_target_sdk_version()),
        application_class=app_class, launcher_activity=launcher,
        permissions=_permissions(apk.get_permissions()),
        components={
            "activities": list(apk.get_activities()), "services": list(apk.get_services()),
            "receivers": list(apk.get_receivers()), "providers": list(apk.get_providers()),
        },
        sdks=sdks, sensitive_apis=sensitive,
        dex=[{"name": n, "bytes": s} for n, s in facts.dex_files], classes=len(classes), packer=packer,
        obfuscated=obfuscated, bundled_policies=sorted(n for n in names if _POLICY_FILE.search(n)),
        policy_strings=facts.policy_strings, notes=notes,
    )  # fmt: skip


def read_bundled(path: str | Path, name: str, limit: int = 8 * 1024**2) -> bytes:
    """The bytes of one file inside the APK (a bundled privacy policy)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
        if info.file_size > limit:
            raise AppInputError(f"{path}: {name} larger than {limit // 1024**2} MiB")
        return zf.read(info)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))

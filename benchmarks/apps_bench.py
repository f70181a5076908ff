"""App audit benchmark: the policy classifier against a baseline and the CAPP-130 authors' figures, audit
speed on a large APK, and the SDK catalogue's coverage against Exodus Privacy's tracker list.

    python benchmarks/apps_bench.py [--capp130-dir DIR] [--exodus-json FILE] [--dex-mb 24] [--apk-mb 50]

1. Classifier: 5-fold cross-validation (seed 0) on the CAPP-130 topic-identification dev split in the team's
   shared data (3,043 sentences): piguard's model (``piguard.apps.train.Config()``) beside a TF-IDF +
   logistic-regression baseline, micro and macro F1 and F1 per label. The CAPP-130 authors publish test-split
   F1 for models trained on the 14,190-sentence train split (README Table 3, RoBERTa best: micro 0.819, macro
   0.841); ``--capp130-dir`` (a checkout of EnlightenedAI/CAPP-130's
   CAPP_130_Corpus/Subdataset/Extraction/topic_identification_dataset) adds that exact protocol.
2. Speed: a synthetic APK of ``--apk-mb`` MB holding ``--dex-mb`` MB of DEX code (classes that call each other
   and the sensitive APIs, assembled by Debian's smali) and incompressible native libraries for the rest, as
   large real apps are built; audited with 2 workers; seconds per MB of DEX.
3. SDK coverage: the catalogue's SDKs that Exodus Privacy's tracker list also has (the ``exodus`` ids in
   src/piguard/apps/data/sdks.yaml), and which it lacks; ``--exodus-json`` recomputes the overlap from a
   tracker-list file.
Writes benchmarks/results/apps.json with the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PIGUARD_SHARED_DIR") or ROOT.parent / "shared")
DEV = SHARED / "data" / "apps" / "privacy-policies" / "capp130_topic_identification_dev.txt"
REAL_APKS = SHARED / "data" / "apps" / "apk"
RESULTS = ROOT / "benchmarks" / "results" / "apps.json"
SMALI_JAR = "/usr/share/java/smali.jar"
# EnlightenedAI/CAPP-130 README, Table 3 "Evaluation Metrics with F1 for Classification Models" (topic).
PUBLISHED = {
    "source": "Zhu et al., CAPP-130 (NeurIPS 2023 Datasets and Benchmarks), "
    "github.com/EnlightenedAI/CAPP-130 README Table 3 (commit 0210825); trained on the 14,190-sentence "
    "train split, scored on the 3,035-sentence test split",
    "RoBERTa": {"micro_f1": 0.819, "macro_f1": 0.841},
    "BERT": {"micro_f1": 0.802, "macro_f1": 0.820},
    "mBERT": {"micro_f1": 0.809, "macro_f1": 0.821},
    "SBERT": {"micro_f1": 0.781, "macro_f1": 0.794},
    "PERT": {"micro_f1": 0.801, "macro_f1": 0.812},
    "ERNIE": {"micro_f1": 0.807, "macro_f1": 0.821},
}


def classifier(capp130_dir: Path | None) -> dict[str, Any]:
    from piguard.apps import train

    out: dict[str, Any] = {"published": PUBLISHED}
    texts, y = train.read_corpus(DEV)
    for name, cfg in (("baseline_tfidf_lr", train.BASELINE), ("piguard", train.Config())):
        t = time.perf_counter()
        r = train.cross_validate(texts, y, cfg, folds=5, seed=0)
        r["seconds"] = round(time.perf_counter() - t, 1)
        r["config"] = cfg.__dict__
        out.setdefault("cv5_dev_split", {"sentences": len(texts), "file": str(DEV.relative_to(SHARED))})[
            name
        ] = r
        print(f"5-fold CV on {len(texts)} dev sentences, {name}: micro F1 {r['micro_f1']:.3f}, "
              f"macro F1 {r['macro_f1']:.3f} ({r['seconds']} s)")  # fmt: skip
    if capp130_dir is not None:
        tr_x, tr_y = train.read_corpus(capp130_dir / "train.txt")
        te_x, te_y = train.read_corpus(capp130_dir / "test.txt")
        split: dict[str, Any] = {"train": len(tr_x), "test": len(te_x)}
        for name, cfg in (("baseline_tfidf_lr", train.BASELINE), ("piguard", train.Config())):
            t = time.perf_counter()
            model = train.fit(tr_x, tr_y, cfg)
            pred = (model.scores(te_x) >= model.thresholds).astype(np.int8)
            r = train.f1_report(te_y, pred)
            r["seconds"] = round(time.perf_counter() - t, 1)
            split[name] = r
            print(
                f"official train -> test, {name}: micro F1 {r['micro_f1']:.3f}, macro F1 {r['macro_f1']:.3f}"
            )
        out["official_train_test"] = split
    return out


def _smali_class(i: int, n_classes: int, rng: random.Random) -> str:
    """One class of ten methods; each calls methods of other classes, some call sensitive APIs."""
    lines = [f".class public Lbench/p{i % 97}/C{i};", ".super Ljava/lang/Object;", ""]
    for m in range(10):
        lines += [f".method public static m{m}(I)I", "    .registers 4"]
        for k in range(6):
            j = rng.randrange(n_classes)
            lines.append(f'    const-string v1, "bench string {i}-{m}-{k} {rng.random():.6f}"')
            lines.append(f"    invoke-static {{p0}}, Lbench/p{j % 97}/C{j};->m{rng.randrange(10)}(I)I")
            lines.append("    move-result v0")
            lines.append("    add-int/lit8 p0, v0, 0x1")
        if m == 0 and i % 50 == 0:
            lines.append("    const/4 v2, 0x0")
            lines.append(
                "    invoke-virtual {v2}, "
                "Landroid/telephony/TelephonyManager;->getDeviceId()Ljava/lang/String;"
            )
        lines += ["    return p0", ".end method", ""]
    return "\n".join(lines)


def build_large_apk(work: Path, dex_mb: float, apk_mb: float, seed: int = 0) -> Path:
    """An APK with about ``dex_mb`` MB of DEX in several files, padded to ``apk_mb`` MB with native libs."""
    if shutil.which("java") is None or not Path(SMALI_JAR).exists():
        raise SystemExit("needs Java and Debian's smali (apt-get install apktool)")
    rng = random.Random(seed)
    per_dex = 1500  # classes per DEX file (about 5 MB): 15,000 methods, under the 65,536 limit
    # Calibrate: one DEX of per_dex classes, then as many as the target needs.
    dexes: list[Path] = []
    total = 0.0
    n = 0
    while total < dex_mb * 1e6:
        src = work / f"smali{n}"
        src.mkdir()
        base = n * per_dex
        for i in range(base, base + per_dex):
            (src / f"C{i}.smali").write_text(_smali_class(i, base + per_dex, rng), "utf-8")
        out = work / f"classes{n + 2}.dex"  # classes.dex is the test app's own code (its Application)
        subprocess.run(["java", "-jar", SMALI_JAR, "a", "-o", str(out), str(src)], check=True)
        shutil.rmtree(src)
        dexes.append(out)
        total += out.stat().st_size
        n += 1
    lender = ROOT / "tests" / "apps" / "fixtures" / "lender" / "AndroidManifest.xml"
    base_apk = work / "manifest.apk"
    src = work / "lender"
    shutil.copytree(lender.parent, src)
    m = src / "AndroidManifest.xml"
    m.write_text(m.read_text("utf-8").replace("@TARGET_SDK@", "28"), "utf-8")
    subprocess.run(["apktool", "b", "-q", "-p", str(work / "fw"), "-o", str(base_apk), str(src)], check=True)
    apk = work / "large.apk"
    with zipfile.ZipFile(base_apk) as zin, zipfile.ZipFile(apk, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        for d in dexes:
            zout.write(d, d.name)
    size = apk.stat().st_size
    pad = int(apk_mb * 1e6 - size)
    if pad > 0:
        with zipfile.ZipFile(apk, "a", zipfile.ZIP_STORED) as zout:
            lib = 0
            while pad > 0:
                chunk = min(pad, 8_000_000)
                zout.writestr(f"lib/arm64-v8a/libbench{lib}.so", rng.randbytes(chunk))
                pad -= chunk
                lib += 1
    return apk


def speed(dex_mb: float, apk_mb: float, workers: int) -> dict[str, Any]:
    from piguard.apps import audit

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="piguard-apps-bench-") as tmp:
        t = time.perf_counter()
        apk = build_large_apk(Path(tmp), dex_mb, apk_mb)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        res = audit(apk, app_type=12, workers=workers)
        secs = time.perf_counter() - t
        d = res.as_dict()["app"]
        dex_bytes = sum(x["bytes"] for x in d["dex"])
        out["large_apk"] = {
            "apk_mb": round(apk.stat().st_size / 1e6, 1), "dex_mb": round(dex_bytes / 1e6, 1),
            "dex_files": len(d["dex"]), "classes": d["classes"], "workers": workers,
            "seconds": round(secs, 1),
            "seconds_per_dex_mb": round(secs / (dex_bytes / 1e6), 2), "build_seconds": round(build_s, 1),
            "sensitive_api_kinds": [s["kind"] for s in d["sensitive_apis"]], "target_seconds": 30,
        }  # fmt: skip
        print(f"large APK {out['large_apk']['apk_mb']} MB ({out['large_apk']['dex_mb']} MB DEX in "
              f"{len(d['dex'])} files): audited in {secs:.1f} s with {workers} workers, "
              f"{out['large_apk']['seconds_per_dex_mb']} s per MB of DEX")  # fmt: skip
    real = []
    for p in sorted(REAL_APKS.glob("*.apk")):
        t = time.perf_counter()
        try:
            r = audit(p, workers=1).as_dict()["app"]
        except ValueError as exc:
            real.append({"apk": p.name, "error": str(exc).split(": ", 1)[-1]})
            continue
        secs = time.perf_counter() - t
        real.append({"apk": p.name, "dex_mb": round(sum(x["bytes"] for x in r["dex"]) / 1e6, 2),
                     "seconds": round(secs, 2)})  # fmt: skip
    out["real_apks"] = real
    return out


def coverage(exodus_json: Path | None) -> dict[str, Any]:
    from piguard.apps.apk import sdk_catalogue

    cat = sdk_catalogue()
    out: dict[str, Any] = {
        "exodus_source": "Exodus Privacy tracker list (ETIP) as snapshotted in whyorean/AuroraStore@3ab3943 "
        "app/src/main/assets/exodus_trackers.json: 432 trackers",
        "catalogue_sdks": len(cat),
        "in_exodus": sum(1 for s in cat if s.exodus),
        "exodus_trackers_matched": len({i for s in cat for i in s.exodus}),
        "not_in_exodus": sorted(f"{s.name} [{s.category}]" for s in cat if not s.exodus),
        "by_category": {},
    }
    for s in cat:
        c = out["by_category"].setdefault(s.category, {"sdks": 0, "in_exodus": 0})
        c["sdks"] += 1
        c["in_exodus"] += bool(s.exodus)
    if exodus_json is not None:
        doc = json.loads(exodus_json.read_text("utf-8"))
        trackers = doc[0] if isinstance(doc, list) else doc.get("trackers", doc)
        sigs = [(t["id"], [x.strip(".") for x in t["code_signature"].split("|") if len(x.strip(".")) > 3])
                for t in trackers.values()]  # fmt: skip

        def under(a: str, b: str) -> bool:
            return a == b or a.startswith(b + ".")

        matched = {i for i, ss in sigs for s in cat for p in s.prefixes for x in ss
                   if under(x, p.rstrip(".")) or under(p.rstrip("."), x)}  # fmt: skip
        out["recomputed_from"] = str(exodus_json)
        out["exodus_trackers_total"] = len(trackers)
        out["exodus_trackers_matched_recomputed"] = len(matched)
    print(
        f"SDK catalogue: {out['catalogue_sdks']} SDKs, {out['in_exodus']} also in Exodus's list "
        f"({out['exodus_trackers_matched']} tracker entries); {len(out['not_in_exodus'])} not in it"
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capp130-dir", type=Path, help="CAPP-130 topic_identification_dataset (train/test)")
    ap.add_argument("--exodus-json", type=Path, help="an Exodus tracker-list JSON to recompute the overlap")
    ap.add_argument("--dex-mb", type=float, default=24.0)
    ap.add_argument("--apk-mb", type=float, default=50.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip", choices=["classifier", "speed", "coverage"], action="append", default=[])
    args = ap.parse_args()
    if not DEV.exists():
        print(f"needs the shared data: {DEV}", file=sys.stderr)
        return 2
    result: dict[str, Any] = {"load_before": os.getloadavg()}
    # Each section records the load it ran under (sections may come from separate runs).
    if "coverage" not in args.skip:
        result["sdk_coverage"] = coverage(args.exodus_json)
    if "classifier" not in args.skip:
        load = os.getloadavg()
        result["classifier"] = classifier(args.capp130_dir)
        result["classifier"]["load_before_after"] = [load, os.getloadavg()]
    if "speed" not in args.skip:
        load = os.getloadavg()
        result["speed"] = speed(args.dex_mb, args.apk_mb, args.workers)
        result["speed"]["load_before_after"] = [load, os.getloadavg()]
    result["load_after"] = os.getloadavg()
    result["cpu_count"] = os.cpu_count()
    old = json.loads(RESULTS.read_text("utf-8")) if RESULTS.exists() else {}
    old.update(result)
    from piguard._fs import atomic_write_text

    atomic_write_text(RESULTS, json.dumps(old, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""k-anonymity, l-diversity and t-closeness on Adult and cup, with 0 % and 5 % suppression: piguard's time
and optimum, and ARX's beside it in the same run.

    python benchmarks/deid_grid.py [--arx OUT_DIR] [--repeat 3] [--only adult] [--metric loss]

Quasi-identifiers are every attribute with an ARX hierarchy file except the sensitive one (Adult:
occupation, cup: RAMNTALL), as in ARX's own test suite; the hierarchies are ARX's. Per dataset, the models
are k=5, k=100, distinct 5-diversity, entropy 5-diversity, recursive (4,5)-diversity, 0.2 equal-distance
t-closeness with k=5 and 0.2 hierarchical t-closeness with k=5, each with 0 % and 5 % suppression, under
ARX's Loss metric (or ``--metric``). Times are in-process: encoding (distinct tuples, level codes) plus
search; the best of ``--repeat`` runs is reported with the median.

With ``--arx DIR`` (built by benchmarks/arx/build.sh from an ARX checkout) each configuration also runs in
ARX 3.9 (``ArxRun.java``, one JVM per configuration; ARX's own timer around ``anonymize``), and the optimum
is compared: same score (relative 1e-9) and same transformation.

cup is evaluation-only data (../shared/data/anon/cup): it is read from there and never copied.
Writes benchmarks/results/deid_grid.json with the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from piguard.deid import Lattice, Models, load_hierarchy_dir
from piguard.deid.errors import DeidError
from piguard.deid.models import LDiversity, TCloseness

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("PIGUARD_SHARED_DIR") or HERE.parent.parent / "shared")
SENSITIVE = {"adult": "occupation", "cup": "RAMNTALL"}


def configs(sens: str) -> dict[str, tuple[Models, list[str]]]:
    """name -> (piguard models without suppression, ArxRun model arguments)."""
    return {
        "k5": (Models(k=5), ["k:5"]),
        "k100": (Models(k=100), ["k:100"]),
        "distinct-l5": (Models(l_diversity=[LDiversity(sens, 5)]), [f"l-distinct:{sens}:5"]),
        "entropy-l5": (Models(l_diversity=[LDiversity(sens, 5, "entropy")]), [f"l-entropy:{sens}:5"]),
        "recursive-c4-l5": (
            Models(l_diversity=[LDiversity(sens, 5, "recursive", 4.0)]),
            [f"l-recursive:{sens}:4:5"],
        ),
        "k5-t0.2-equal": (Models(k=5, t_closeness=[TCloseness(sens, 0.2)]), ["k:5", f"t-equal:{sens}:0.2"]),
        "k5-t0.2-hierarchical": (
            Models(k=5, t_closeness=[TCloseness(sens, 0.2, "hierarchical")]),
            ["k:5", f"t-hierarchical:{sens}:0.2"],
        ),
    }


def arx_run(
    arx: Path,
    dataset: str,
    supp: float,
    metric: str,
    sens: str,
    models: list[str],
    repeat: int,
    timeout: float,
) -> dict:
    cp = (arx / "classpath").read_text().strip()
    d = SHARED / "data" / "anon" / dataset
    cmd = ["java", "-Xmx4g", "-cp", cp, "ArxRun", str(d / f"{dataset}.csv"), str(d), str(supp), metric, sens]
    cmd += [str(repeat), *models]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"ARX did not finish within {timeout} s", "timed_out": True, "wall_s": timeout}
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or ["?"])[-1][:200], "wall_s": round(wall, 2)}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    ms = out.pop("ms")
    out["score"] = float(out["score"]) if out["score"] is not None else None
    out.update(
        best_ms=round(min(ms), 1), median_ms=round(statistics.median(ms), 1), jvm_wall_s=round(wall, 2)
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arx", type=Path, help="directory made by benchmarks/arx/build.sh")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--arx-repeat", type=int, default=1, help="ARX runs per configuration (one JVM)")
    ap.add_argument("--arx-timeout", type=float, default=900.0, help="seconds before an ARX run is given up")
    ap.add_argument("--only", default="adult,cup")
    ap.add_argument("--metric", default="loss")
    ap.add_argument("--out", default=str(HERE / "results" / "deid_grid.json"))
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    rows = []
    for dataset in args.only.split(","):
        d = SHARED / "data" / "anon" / dataset
        if not d.exists():
            print(f"{dataset}: {d} not found, skipped")
            continue
        df = pl.read_csv(d / f"{dataset}.csv", separator=";", infer_schema=False)
        sens = SENSITIVE[dataset]
        hier = load_hierarchy_dir(d, df.columns)
        qis = [c for c in df.columns if c in hier and c != sens]
        cols = {c: df[c] for c in df.columns}
        for name, (base, arx_models) in configs(sens).items():
            for supp in (0.0, 0.05):
                models = Models(
                    k=base.k, l_diversity=base.l_diversity, t_closeness=base.t_closeness, suppression=supp
                )
                times, res, err = [], None, None
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    try:
                        res = Lattice(cols, hier, qis, models, args.metric).search()
                    except DeidError as exc:
                        err = str(exc)
                    times.append(time.perf_counter() - t0)
                row: dict = {
                    "dataset": dataset,
                    "config": name,
                    "suppression": supp,
                    "metric": args.metric,
                    "best_s": round(min(times), 3),
                    "median_s": round(statistics.median(times), 3),
                }
                if res is not None:
                    row.update(
                        levels=list(res.levels),
                        score=res.score,
                        suppressed=res.suppressed_rows,
                        checked=res.checked,
                        lattice_size=res.lattice_size,
                        proven_optimal=res.proven_optimal,
                    )
                else:
                    row["error"] = err
                if args.arx:
                    a = arx_run(
                        args.arx,
                        dataset,
                        supp,
                        args.metric,
                        sens,
                        arx_models,
                        args.arx_repeat,
                        args.arx_timeout,
                    )
                    row["arx"] = a
                    if res is None:
                        row["same_optimum"] = a.get("score") is None and "error" not in a
                    elif a.get("score") is not None:
                        rel = abs(res.score - a["score"]) / max(abs(a["score"]), 1e-12)
                        row["same_optimum"] = rel <= 1e-9 and list(res.levels) == a["transformation"]
                        row["same_score"] = rel <= 1e-9
                    else:
                        row["same_optimum"] = False
                rows.append(row)
                arx_txt = ""
                if "arx" in row:
                    a = row["arx"]
                    arx_txt = f" | ARX {a.get('best_ms', '?')} ms {a.get('transformation')}"
                    arx_txt += f" same={row['same_optimum']}"
                print(
                    f"{dataset:5s} {name:22s} supp {supp:4.2f} piguard {row['best_s']:7.2f} s (median "
                    f"{row['median_s']:6.2f}) levels {row.get('levels')} checked {row.get('checked')}"
                    + arx_txt,
                    flush=True,
                )
    ran = [r for r in rows if "levels" in r or "error" in r]
    summary = {
        "configurations": len(ran),
        "slowest_best_s": max((r["best_s"] for r in ran), default=0.0),
        "over_10_s": [f"{r['dataset']}/{r['config']}/{r['suppression']}" for r in ran if r["best_s"] > 10],
    }
    # Peak resident memory of this whole process (every configuration above ran in it).
    summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.arx:
        summary["same_optimum_as_arx"] = sum(bool(r.get("same_optimum")) for r in ran)
        summary["same_score_as_arx"] = sum(bool(r.get("same_score", r.get("same_optimum"))) for r in ran)
    payload = {
        "benchmark": "deid_grid",
        "command": "python benchmarks/deid_grid.py " + " ".join(sys.argv[1:]),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1m_start": round(load_start, 2),
            "load_average_1m_end": round(os.getloadavg()[0], 2),
        },
        "summary": summary,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

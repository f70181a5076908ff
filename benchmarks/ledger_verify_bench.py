"""What proving the ledger costs: ``Ledger.verify`` (re-hash, authenticate every entry, replay the log against
every table) and ``piguard check`` end to end (which verifies before it decides), on ledgers of N consents.

    .venv/bin/python benchmarks/ledger_verify_bench.py                          # SQLite, 100k and 1M consents
    .venv/bin/python benchmarks/ledger_verify_bench.py --backend postgresql --sizes 100000

Each ledger is built by bulk import (benchmarks/rules_bench.py's consents: 1 in 17 withdrawn), then measured
in a fresh process so peak memory is the verifier's own. Finally one withdrawal is undone with SQL and
verify must say so. Writes benchmarks/results/ledger_verify.json with the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ledger_verify.json"
PG_URL = os.environ.get("PIGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FLOWS = """controller: bench
flows:
  - id: deliver
    activity: provide
    data: [PERSON, CN_RESIDENT_ID, CREDIT_RECORD]
    purpose: data_supply
    legal_basis: consent
    consent: {ref: c0000001}
    recipient: {kind: third_party, name: 某风控数据服务公司}
    impact_assessment: true
    disclosed: true
"""

# Runs in a child process: verify once, print wall, CPU and peak RSS.
CHILD = """
import json, resource, sys, time
from piguard.ledger import Ledger
led = Ledger.open(sys.argv[1], create=False, migrate=False)
t, c = time.perf_counter(), time.process_time()
r = led.verify()
print(json.dumps({"ok": r.ok, "entries": r.entries, "problem": r.problem,
                  "wall_s": round(time.perf_counter() - t, 2), "cpu_s": round(time.process_time() - c, 2),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def build(url: str, n: int) -> float:
    sys.path.insert(0, str(HERE))
    from piguard.ledger import Ledger
    from rules_bench import consent_rows

    led = Ledger.open(url)
    have = led.counts()["consents"]
    if have == n:
        led.close()
        return 0.0
    if have:
        raise SystemExit(f"{url} holds {have} consents, not {n}")
    t = time.perf_counter()
    led.bulk_import_consents(consent_rows(n), batch=50_000)
    led.close()
    return time.perf_counter() - t


def measure(url: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, url], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def check_cli(url: str, tmp: Path) -> dict:
    flows = tmp / "bench-flows.yaml"
    flows.write_text(FLOWS, "utf-8")
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run(
        [sys.executable, "-c", "from piguard.cli import main; main()", "check", str(flows), "--ledger", url,
         "-f", "json"],
        capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    flows.unlink()
    return {"exit": res.returncode, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--keep", action="store_true", help="keep the ledgers (benchmarks/data) for another run")
    args = ap.parse_args()
    from sqlalchemy import create_engine, text

    data = HERE / "data"
    data.mkdir(exist_ok=True)
    if args.backend == "postgresql" and "PIGUARD_LEDGER_KEY" not in os.environ:
        os.environ["PIGUARD_LEDGER_KEY"] = "ledger-verify-bench-key"
    runs = []
    for n in args.sizes:
        schema = None
        if args.backend == "sqlite":
            db = data / f"verify_{n}.db"
            url = f"sqlite:///{db}"
        else:
            schema = f"piguard_verify_bench_{n}"
            with create_engine(PG_URL).begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
        load_before = os.getloadavg()[0]
        build_s = build(url, n)
        v = measure(url)
        assert v["ok"], v
        c = check_cli(url, data)
        from piguard.ledger import Ledger

        led = Ledger.open(url)
        with led.engine.begin() as conn:  # undo a withdrawal (c0000000 is withdrawn), as issue 30 did
            conn.execute(text("UPDATE ledger_consents SET withdrawn_at = NULL WHERE id = 'c0000000'"))
        t = time.perf_counter()
        bad = led.verify()
        tamper_s = time.perf_counter() - t
        led.close()
        run = {
            "backend": args.backend, "consents": n, "audit_entries": v["entries"],
            "build_seconds": round(build_s, 1) if build_s else None,
            "verify_wall_seconds": v["wall_s"], "verify_cpu_seconds": v["cpu_s"],
            "verify_peak_rss_mb": v["peak_rss_mb"],
            "check_cli_wall_seconds": c["wall_s"], "check_cli_cpu_seconds": c["cpu_s"],
            "check_cli_exit": c["exit"],
            "tampering_detected": (not bad.ok) and "'c0000000'" in (bad.problem or ""),
            "tampered_verify_seconds": round(tamper_s, 2),
            "load_average": round(max(load_before, os.getloadavg()[0]), 1),
        }  # fmt: skip
        print(json.dumps(run))
        runs.append(run)
        if args.backend == "sqlite" and not args.keep:
            for p in data.glob(f"verify_{n}.db*"):
                p.unlink()
        elif schema and not args.keep:
            with create_engine(PG_URL).begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.backend] = {
        "runs": runs, "cpu": os.cpu_count(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"python benchmarks/ledger_verify_bench.py --backend {args.backend} --sizes "
        + " ".join(map(str, args.sizes)),
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, RESULTS)


if __name__ == "__main__":
    main()

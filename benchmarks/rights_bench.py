"""Rights requests at scale on PostgreSQL (issue 26 targets).

Builds a ledger of 100,000 subjects and 1,000,000 consents, and three registered stores of 1,000,000 rows
each (a CRM keyed by the raw phone number, orders keyed by the ledger's keyed pseudonym and restricted on
deletion, and an event log keyed by phone, deleted), every store in a PostgreSQL schema of its own. Then:

- access: a verified access request executed (every store, consents, provenance) and its copy produced;
  target p95 < 300 ms;
- deletion: an approved deletion across the three stores, each in its own transaction, re-queried, with
  the signed receipt and audit entries; target < 1 s;
- status reads: `piguard serve` in its own process (uvicorn) against an async httpx load generator in this
  one, on the same 2 cores; target >= 500 requests/s with p99 < 100 ms.

    .venv/bin/python benchmarks/rights_bench.py                  # full size (about 5-10 minutes)
    .venv/bin/python benchmarks/rights_bench.py --subjects 10000 --consents 100000 --rows 100000  # smoke

Results: benchmarks/results/rights.json (with the machine's load average before and after).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import create_engine, text

from piguard.keys import generate
from piguard.ledger import Ledger, pseudonym
from piguard.rights import Limits, OutboxDelivery, RightsService, Staff, load_stores

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "rights.json"
PG_URL = os.environ.get("PIGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
KEY = bytes.fromhex("5e" * 32)
PURPOSES = ["data_supply", "credit_assessment", "risk_control", "loan_application", "marketing"]
WIDE = Limits(
    codes_per_contact=(10**9, 60),
    codes_per_contact_day=(10**9, 60),
    submits_per_client=(10**9, 60),
    verifies_per_client=(10**9, 60),
)


def phone(i: int) -> str:
    return str(13800000000 + i)


def schema_url(base: str, schema: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def ms(xs: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(pct(xs, 50) * 1000, 2),
        "p95_ms": round(pct(xs, 95) * 1000, 2),
        "p99_ms": round(pct(xs, 99) * 1000, 2),
        "max_ms": round(max(xs) * 1000, 2),
        "n": len(xs),
    }


def consent_rows(subjects: int, consents: int) -> Iterator[dict[str, Any]]:
    given = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(consents):
        s = i % subjects
        yield {
            "id": f"c{i:08d}",
            "subject_id": pseudonym(phone(s), KEY),
            "kind": "separate",
            "purposes": [PURPOSES[i % 5], PURPOSES[(i + 2) % 5]],
            "recipients": ["某商业银行股份有限公司"],
            "categories": ["PERSON", "PHONE_NUMBER"],
            "given_at": given,
            "withdrawn_at": None,
        }


def copy_rows(
    raw_url: str, schema: str, ddl: str, table: str, cols: str, lines: Iterable[str], index: str
) -> float:
    t0 = time.perf_counter()
    with psycopg.connect(raw_url) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(ddl)
        with conn.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
            buf = io.StringIO()
            for n, line in enumerate(lines, 1):
                buf.write(line)
                if n % 50_000 == 0:
                    cp.write(buf.getvalue())
                    buf = io.StringIO()
            cp.write(buf.getvalue())
        conn.execute(index)
        conn.execute(f"ANALYZE {table}")
    return time.perf_counter() - t0


def build_stores(raw: str, subjects: int, rows: int, schemas: list[str]) -> dict:
    timings = {}
    pseudo = [pseudonym(phone(i), KEY) for i in range(subjects)]
    crm, orders, events = schemas
    timings["crm"] = copy_rows(
        raw,
        crm,
        "CREATE TABLE contacts (id BIGINT PRIMARY KEY, mobile TEXT, name TEXT, address TEXT)",
        "contacts",
        "id, mobile, name, address",
        (f"{r}\t{phone(r % subjects)}\t用户{r % subjects}\t某市某区某路 {r} 号\n" for r in range(rows)),
        "CREATE INDEX ON contacts (mobile)",
    )
    timings["orders"] = copy_rows(
        raw,
        orders,
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, buyer TEXT, item TEXT, amount NUMERIC(10,2), "
        "restricted BOOLEAN NOT NULL DEFAULT FALSE)",
        "orders",
        "id, buyer, item, amount",
        (f"{r}\t{pseudo[r % subjects]}\t商品{r % 97}\t{r % 1000}.50\n" for r in range(rows)),
        "CREATE INDEX ON orders (buyer)",
    )
    timings["events"] = copy_rows(
        raw,
        events,
        "CREATE TABLE events (id BIGINT PRIMARY KEY, who TEXT, what TEXT, at TIMESTAMPTZ)",
        "events",
        "id, who, what, at",
        (
            f"{r}\t{phone(r % subjects)}\tlogin\t2026-11-{1 + r % 28:02d}T08:00:00+08:00\n"
            for r in range(rows)
        ),
        "CREATE INDEX ON events (who)",
    )
    return {k: round(v, 1) for k, v in timings.items()}


def write_stores(base: str, schemas: list[str]) -> Path:
    crm, orders, events = schemas
    path = Path(tempfile.mkdtemp(prefix="rights-bench-")) / "stores.yaml"
    path.write_text(
        f"""stores:
  - name: crm
    url: "{schema_url(base, crm)}"
    tables:
      - {{table: contacts, key: mobile, identifier: phone, correctable: {{name: name, address: address}}}}
  - name: orders
    url: "{schema_url(base, orders)}"
    tables:
      - {{table: orders, key: buyer, identifier: phone, match: pseudonym, deletion: {{restrict: restricted}}}}
  - name: events
    url: "{schema_url(base, events)}"
    tables: [{{table: events, key: who, identifier: phone}}]
""",
        encoding="utf-8",
    )
    return path


def code_of(outbox: Path, rid: str) -> str:
    import re

    return re.search(r"(\d{6})", (outbox / f"{rid}.txt").read_text(encoding="utf-8")).group(1)


def opened(svc: RightsService, outbox: Path, type_: str, i: int) -> tuple[str, str, float]:
    rid = svc.submit(type_, {"kind": "phone", "value": phone(i)})["id"]
    t0 = time.perf_counter()
    token = svc.verify(rid, code_of(outbox, rid))["token"]
    return rid, token, time.perf_counter() - t0


async def load(base: str, pairs: list[tuple[str, str]], seconds: float, concurrency: int) -> dict:
    lat: list[float] = []
    errors = 0
    async with httpx.AsyncClient(
        base_url=base, limits=httpx.Limits(max_connections=concurrency), timeout=10
    ) as client:

        async def worker(seed: int, until: float, record: bool) -> None:
            nonlocal errors
            rnd = random.Random(seed)
            while time.perf_counter() < until:
                rid, token = pairs[rnd.randrange(len(pairs))]
                t0 = time.perf_counter()
                r = await client.get(f"/api/v1/requests/{rid}", headers={"Authorization": f"Bearer {token}"})
                if record:
                    lat.append(time.perf_counter() - t0)
                    errors += r.status_code != 200

        warm = time.perf_counter() + 3
        await asyncio.gather(*(worker(i, warm, False) for i in range(concurrency)))
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(100 + i, t0 + seconds, True) for i in range(concurrency)))
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "requests": len(lat),
        "errors": errors,
        "seconds": round(wall, 2),
        "per_second": round(len(lat) / wall, 1),
        **ms(lat),
        "concurrency": concurrency,
        "client_cpu_s": round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 2),
    }


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WRK_LUA = """
local pairs_ = {%s}
local i = 0
request = function()
  i = i + 1
  local p = pairs_[(i %% #pairs_) + 1]
  return wrk.format("GET", "/api/v1/requests/" .. p[1], {["Authorization"] = "Bearer " .. p[2]})
end
done = function(summary, latency, requests)
  io.write(string.format("WRK %%d %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    summary.errors.status))
end
"""


def wrk_load(base: str, pairs: list[tuple[str, str]], seconds: float, concurrency: int) -> dict | None:
    """The same reads from wrk (C, one thread): the server's capacity when the client costs almost nothing."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    script = Path(tempfile.mkdtemp(prefix="rights-wrk-")) / "reads.lua"
    script.write_text(WRK_LUA % ",".join(f'{{"{r}","{t}"}}' for r, t in pairs), encoding="utf-8")
    res = subprocess.run(
        [exe, "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "-s", str(script), base],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("WRK ")), None)
    if line is None:
        return {"error": res.stderr.strip()[-300:]}
    n, dur_us, p50, p95, p99, mx, bad = (int(x) for x in line.split()[1:])
    return {
        "requests": n,
        "errors": bad,
        "seconds": round(dur_us / 1e6, 2),
        "per_second": round(n / (dur_us / 1e6), 1),
        "p50_ms": round(p50 / 1000, 2),
        "p95_ms": round(p95 / 1000, 2),
        "p99_ms": round(p99 / 1000, 2),
        "max_ms": round(mx / 1000, 2),
        "concurrency": concurrency,
        "client": "wrk 1 thread",
    }


def status_reads(
    ledger_url: str, pairs: list[tuple[str, str]], seconds: float, concurrency: int, http: str, workers: int
) -> list[dict]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PIGUARD_LEDGER_KEY": KEY.hex(),
        "PIGUARD_SERVE_CONFIG": json.dumps({"ledger": ledger_url}),
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "piguard.web.config:app_from_env",
        "--factory",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--http",
        http,
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    runs = []
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        cpu0 = proc_cpu(proc.pid)
        out = asyncio.run(load(base, pairs, seconds, concurrency))
        if workers == 1:  # (with several workers the requests are served by child processes)
            out["server_cpu_ms_per_request"] = round((proc_cpu(proc.pid) - cpu0) * 1000 / out["requests"], 2)
        out["client_cpu_ms_per_request"] = round(out.pop("client_cpu_s") * 1000 / out["requests"], 2)
        runs.append({"client": "httpx async (this process)", **out})
        w = wrk_load(base, pairs, seconds, concurrency)
        if w is not None:
            runs.append(w)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for r in runs:
        r.update(http=http, workers=workers, access_log=False)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--postgres", default=PG_URL)
    ap.add_argument("--subjects", type=int, default=100_000)
    ap.add_argument("--consents", type=int, default=1_000_000)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows in each of the three stores")
    ap.add_argument("--access-samples", type=int, default=200)
    ap.add_argument("--deletions", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--keep", action="store_true", help="keep the schemas (their tag is printed)")
    ap.add_argument(
        "--reuse", metavar="TAG", help="measure again on the schemas a --keep run left (no build)"
    )
    args = ap.parse_args()
    # A ledger on PostgreSQL needs the key that authenticates its audit log; the benchmark's ledger is
    # thrown away, so a fresh key will do (the server process inherits it).
    if not os.environ.get("PIGUARD_LEDGER_KEY") and not os.environ.get("PIGUARD_LEDGER_KEY_FILE"):
        os.environ["PIGUARD_LEDGER_KEY"] = os.urandom(32).hex()

    load_before = os.getloadavg()
    tag = args.reuse or uuid.uuid4().hex[:8]
    schemas = [f"rights_bench_{tag}_{n}" for n in ("ledger", "crm", "orders", "events")]
    admin = create_engine(args.postgres)
    if not args.reuse:
        with admin.begin() as c:
            for s in schemas:
                c.execute(text(f'CREATE SCHEMA "{s}"'))
    raw = args.postgres.replace("postgresql+psycopg://", "postgresql://")
    results: dict = {
        "benchmark": "rights",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before]},
        "size": {
            "subjects": args.subjects,
            "consents": args.consents,
            "rows_per_store": args.rows,
            "stores": 3,
        },
    }
    try:
        ledger_url = schema_url(args.postgres, schemas[0])
        led = Ledger.open(ledger_url)
        if args.reuse:
            results["build"] = {"reused": tag}
        else:
            t0 = time.perf_counter()
            led.bulk_import_consents(consent_rows(args.subjects, args.consents))
            results["build"] = {"consents_s": round(time.perf_counter() - t0, 1)}
            results["build"]["stores_s"] = build_stores(raw, args.subjects, args.rows, schemas[1:])
        assert led.counts()["consents"] == args.consents, "the ledger does not hold --consents consents"
        stores_path = write_stores(args.postgres, schemas[1:])
        print(f"built: {results['build']}", flush=True)

        outbox = stores_path.parent / "outbox"
        outbox.mkdir()
        signing = generate(stores_path.parent / "controller")
        svc = RightsService(led, KEY, load_stores(stores_path), OutboxDelivery(outbox), signing, WIDE)
        # A reused build lost earlier runs' deleted people: sample only people whose rows are all there.
        rnd = random.Random(26 if not args.reuse else time.time_ns())
        per_person = 3 * args.rows // args.subjects
        crm = svc.stores[0]
        people: list[int] = []
        with crm.reader().connect() as conn:
            while len(people) < args.access_samples + args.deletions:
                i = rnd.randrange(args.subjects)
                n = conn.execute(text("SELECT count(*) FROM contacts WHERE mobile = :m"), {"m": phone(i)})
                if i not in people and n.scalar_one() == args.rows // args.subjects:
                    people.append(i)

        executed, copies = [], []
        for i in people[: args.access_samples]:
            rid, token, took = opened(svc, outbox, "access", i)
            executed.append(took)
            subject = svc.subject_for(token)
            t0 = time.perf_counter()
            data = json.loads(svc.copy(rid, subject, "json")[0])
            copies.append(time.perf_counter() - t0)
            assert sum(len(r) for t in data["held"].values() for r in t.values()) == per_person
            assert len(data["consents"]) == args.consents // args.subjects
        both = [a + b for a, b in zip(executed, copies, strict=True)]
        results["access"] = {
            "verify_and_execute": ms(executed),
            "copy_json": ms(copies),
            "answered": ms(both),
            "rows_per_person": per_person,
            "consents_per_person": args.consents // args.subjects,
            "target_p95_ms": 300,
            "met": pct(both, 95) < 0.3,
        }
        print(f"access: {results['access']['answered']}", flush=True)

        staff = Staff("bench", "agent")
        deletions = []
        for i in people[args.access_samples :]:
            rid, _, _ = opened(svc, outbox, "deletion", i)
            t0 = time.perf_counter()
            out = svc.decide(rid, "approve", staff)
            deletions.append(time.perf_counter() - t0)
            receipt = out["outcome"]["receipt"]
            assert out["status"] == "completed" and receipt["complete"], out
            assert sum(s["rows_affected"] for s in receipt["stores"]) == per_person
        results["deletion"] = {**ms(deletions), "stores": 3, "target_ms": 1000, "met": max(deletions) < 1.0}
        print(f"deletion: {results['deletion']}", flush=True)

        # Complaints wait for staff, so verifying one executes nothing: the reads below are pure status reads.
        pairs: list[tuple[str, str]] = []
        for n in range(300):
            rid = svc.submit(
                "complaint", {"kind": "phone", "value": phone(n)}, {"category": "C6", "text": "bench"}
            )["id"]
            pairs.append((rid, svc.verify(rid, code_of(outbox, rid))["token"]))
        led.close()
        runs = []
        for http, workers in (("httptools", 1), ("h11", 1), ("httptools", 2)):
            for r in status_reads(ledger_url, pairs, args.seconds, args.concurrency, http, workers):
                print(f"status reads: {r}", flush=True)
                runs.append(r)

        def met(client: str) -> bool:
            return any(
                r["per_second"] >= 500 and r["p99_ms"] < 100 for r in runs if r["client"].startswith(client)
            )

        results["status_reads"] = {
            "runs": runs,
            "target_per_second": 500,
            "target_p99_ms": 100,
            "met_with_httpx_client": met("httpx"),
            "met_with_wrk_client": met("wrk"),
        }
    finally:
        if not (args.keep or args.reuse):
            with admin.begin() as c:
                for s in schemas:
                    c.execute(text(f'DROP SCHEMA IF EXISTS "{s}" CASCADE'))
        else:
            print(f"kept schemas {', '.join(schemas)}: measure again with --reuse {tag}")
        admin.dispose()
    results["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

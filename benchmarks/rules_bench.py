"""Flow checks per second against a ledger of 1 million consents (goal: >= 20,000/s on SQLite).

Builds (or reuses) a ledger with N consents by bulk import, then checks flows files whose flows refer to
random consents in it (by consent id, and some by subject), end to end: ledger look-ups, facts, all rule
packs, decisions. YAML parsing of a flows file is timed separately.

    .venv/bin/python benchmarks/rules_bench.py                       # SQLite, 1M consents, 200k checks
    .venv/bin/python benchmarks/rules_bench.py --backend postgresql  # same on the local PostgreSQL
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from sqlalchemy import create_engine, text

from piguard.ledger import Ledger
from piguard.rules import Engine, Flow, FlowsDoc, parse_flows, summary

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "rules.json"
PG_URL = os.environ.get("PIGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PURPOSES = ["data_supply", "credit_assessment", "risk_control", "loan_application", "marketing"]
DATA = [
    ["PERSON", "CN_RESIDENT_ID", "CREDIT_RECORD"], ["PHONE_NUMBER"], ["PERSON", "BANK_CARD"],
    ["PERSON", "PHONE_NUMBER", "INCOME"], ["CONTACT_LIST", "PRECISE_LOCATION"],
]  # fmt: skip
KINDS = ["separate", "separate", "explicit", "bundled", "guardian"]
RECIPIENTS = ["某商业银行股份有限公司", "某风控数据服务公司", "百行征信有限公司"]


def consent_rows(n: int, seed: int = 7):  # type: ignore[no-untyped-def]
    rnd = random.Random(seed)
    given = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(n):
        yield {
            "id": f"c{i:07d}",
            "subject_id": f"s_{i // 4:040x}",
            "kind": KINDS[i % 5],
            "purposes": rnd.sample(PURPOSES, 2),
            "recipients": [RECIPIENTS[i % 3]],
            "categories": DATA[i % 5] + DATA[(i + 1) % 5],
            "given_at": given,
            "withdrawn_at": given if i % 17 == 0 else None,
        }


def make_flows(n: int, n_consents: int, seed: int) -> list[Flow]:
    rnd = random.Random(seed)
    flows = []
    for i in range(n):
        c = rnd.randrange(n_consents)
        activity = ("provide", "use", "collect", "retain", "automated_decision")[i % 5]
        f = Flow(id=f"f{i}", activity=activity, data=tuple(DATA[c % 5]), purposes=(PURPOSES[i % 5],))
        f.legal_basis = "consent"
        if i % 10 == 0:
            f.consent_subject = f"s_{c // 4:040x}"
        else:
            f.consent_ref = f"c{c:07d}"
        if activity == "provide":
            f.recipient_kind, f.recipient_name = "third_party", RECIPIENTS[i % 3]
        if activity == "automated_decision":
            f.opt_out, f.significant_impact = bool(i % 2), True
        f.retention_days = 365
        f.impact_assessment = bool(i % 3)
        flows.append(f)
    return flows


def build(url: str, n: int) -> tuple[Ledger, float, bool]:
    led = Ledger.open(url)
    have = led.counts()["consents"]
    if have == n:
        return led, 0.0, True
    if have:
        raise SystemExit(f"{url} holds {have} consents, not {n}; remove it or pass another --db")
    t = time.perf_counter()
    led.bulk_import_consents(consent_rows(n), batch=50_000)
    if led.dialect == "postgresql":
        with led.engine.begin() as conn:
            conn.execute(text("ANALYZE ledger_consents"))
            conn.execute(text("ANALYZE ledger_subjects"))
    return led, time.perf_counter() - t, False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--consents", type=int, default=1_000_000)
    ap.add_argument("--checks", type=int, default=200_000)
    ap.add_argument("--file-flows", type=int, default=10_000, help="flows per checked document")
    ap.add_argument("--db", default=str(ROOT / "data" / "rules_ledger_1m.db"), help="SQLite ledger file")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema afterwards")
    args = ap.parse_args()

    schema = None
    if args.backend == "sqlite":
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{args.db}"
    else:
        schema = f"piguard_rules_bench_{args.consents}"
        with create_engine(PG_URL).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"

    led, build_s, reused = build(url, args.consents)
    print(f"ledger {args.backend}: {led.counts()['consents']:,} consents "
          f"({'reused' if reused else f'built in {build_s:.1f} s'})")  # fmt: skip
    verify_t = time.perf_counter()
    ver = led.verify()
    verify_s = time.perf_counter() - verify_t
    assert ver.ok, ver.problem

    engine = Engine(led)
    # Warm-up (imports, caches, connection pool), not timed.
    engine.evaluate(FlowsDoc("bench", None, {}, make_flows(1000, args.consents, 0)))
    docs = [
        FlowsDoc("bench", None, {}, make_flows(args.file_flows, args.consents, seed))
        for seed in range(1, args.checks // args.file_flows + 1)
    ]
    totals = {"allow": 0, "warn": 0, "deny": 0}
    load_before = os.getloadavg()[0]
    t, cpu = time.perf_counter(), time.process_time()
    for doc in docs:
        for k, v in summary(engine.evaluate(doc)).items():
            totals[k] += v
    elapsed, cpu_s = time.perf_counter() - t, time.process_time() - cpu
    checks = sum(len(d.flows) for d in docs)
    rate = checks / elapsed
    load = max(load_before, os.getloadavg()[0])
    print(
        f"{checks:,} flow checks in {elapsed:.2f} s = {rate:,.0f} checks/s wall clock "
        f"({checks / cpu_s:,.0f} per CPU-second; load average {load:.1f} on {os.cpu_count()} cores)  "
        f"verdicts {totals}"
    )

    # Parsing and validating a YAML flows file (the CLI path), measured on its own.
    sample = [
        {"id": f"f{i}", "activity": "provide", "data": ["PERSON", "CREDIT_RECORD"], "purpose": "data_supply",
         "legal_basis": "consent", "consent": {"ref": f"c{i:07d}"},
         "recipient": {"kind": "third_party", "name": RECIPIENTS[0]}}
        for i in range(args.file_flows)
    ]  # fmt: skip
    text_doc = yaml.safe_dump({"controller": "bench", "flows": sample}, allow_unicode=True)
    t = time.perf_counter()
    parsed = parse_flows(text_doc, "bench.yaml")
    parse_s = time.perf_counter() - t
    t = time.perf_counter()
    engine.evaluate(parsed)
    e2e_s = time.perf_counter() - t + parse_s
    print(f"YAML parse+validate: {len(parsed.flows) / parse_s:,.0f} flows/s; "
          f"parse + check end to end: {len(parsed.flows) / e2e_s:,.0f} flows/s")  # fmt: skip
    print(f"ledger verify: {ver.entries:,} audit entries in {verify_s:.2f} s")

    result = {
        "backend": args.backend,
        "consents": args.consents,
        "checks": checks,
        "flows_per_document": args.file_flows,
        "checks_per_second": round(rate),
        "checks_per_cpu_second": round(checks / cpu_s),
        "load_average_during_run": round(load, 1),
        "goal_checks_per_second": 20_000,
        "meets_goal": rate >= 20_000,
        "verdicts": totals,
        "ledger_build_seconds": None if reused else round(build_s, 1),
        "yaml_parse_flows_per_second": round(len(parsed.flows) / parse_s),
        "yaml_end_to_end_flows_per_second": round(len(parsed.flows) / e2e_s),
        "verify_seconds": round(verify_s, 2),
        "cpu": os.cpu_count(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"python benchmarks/rules_bench.py --backend {args.backend} --consents {args.consents} "
        f"--checks {args.checks}",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    all_results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    all_results[args.backend] = result
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(all_results, indent=1) + "\n")
    os.replace(tmp, RESULTS)
    led.close()
    if schema and not args.keep:
        with create_engine(PG_URL).begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()

"""Distributed mode: two worker processes share one queue (scrapy-redis) and one per-host rate (Redis)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from itertools import pairwise
from pathlib import Path

from siteserver import SiteServer, html, text

from schema_check import assert_valid

PIGUARD = str(Path(sys.executable).parent / "piguard")
UA = "piguard-testbot/1.0 (+https://example.org/piguard-testbot)"
PAGES = [f"/p{i}" for i in range(12)]
DELAY = 0.25


def test_two_workers_share_queue_and_host_rate(tmp_path: Path, redis_url: str) -> None:
    import redis

    key = f"piguard-test-{uuid.uuid4().hex[:12]}"
    routes = {"/robots.txt": text(200, f"User-agent: *\nCrawl-delay: {DELAY}\n")}
    routes.update({p: html(f"page {p} 电话 13812345678") for p in PAGES})
    out = tmp_path / "out"
    try:
        with SiteServer(routes) as srv:
            urls = [srv.base + p for p in PAGES]
            procs = [
                subprocess.Popen(
                    [
                        PIGUARD,
                        "crawl",
                        *urls,
                        "--out",
                        str(out),
                        "--user-agent",
                        UA,
                        "--min-delay",
                        "0",
                        "--no-follow",
                        "--redis",
                        redis_url,
                        "--redis-key",
                        key,
                        "--worker",
                        w,
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for w in ("w1", "w2")
            ]
            results = [p.communicate(timeout=90) for p in procs]
            hits = [h for h in srv.log if h.path in PAGES]
    finally:
        client = redis.Redis.from_url(redis_url)
        for k in client.scan_iter(f"{key}:*"):
            client.delete(k)
    for (_stdout, stderr), p in zip(results, procs, strict=True):
        assert p.returncode == 0 and "Traceback" not in stderr, stderr[-2000:]
    # Each page fetched exactly once by the pair (shared queue and seen-set).
    assert sorted(h.path for h in hits) == sorted(PAGES)
    # The host's Crawl-delay held across both workers (shared pacer keyed by host).
    gaps = [b.t - a.t for a, b in pairwise(sorted(hits, key=lambda h: h.t))]
    assert min(gaps) >= DELAY - 0.03, gaps
    stored = []
    for w in ("w1", "w2"):
        prov = out / f"provenance-{w}.jsonl"
        records = [json.loads(x) for x in prov.read_text().splitlines()] if prov.exists() else []
        stored += [r["url"] for r in records]
        assert (out / f"summary-{w}.json").exists()
        for r in records:
            assert_valid("crawl-provenance", r, f"{prov.name}: {r['outcome']}")
        saved = json.loads((out / f"summary-{w}.json").read_text())
        assert_valid("crawl-summary", saved, f"summary-{w}.json")
    assert sorted(u.removeprefix(srv.base) for u in stored) == sorted(PAGES)
    assert not any("13812345678" in p.read_text() for p in (out / "pages").glob("*.txt"))

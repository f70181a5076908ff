"""Crawl overhead: plain Scrapy vs piguard crawl over a 10,000-page loopback site.

The site is served by a real HTTP/1.1 server (asyncio, keep-alive, pages pre-rendered in memory) in its own
process on 127.0.0.1. Both crawlers run the same link-following spider at the same concurrency, each in its
own process, and each stores every page:

* plain       -- Scrapy defaults (ROBOTSTXT_OBEY with Protego), a pipeline that writes each body to a file;
* piguard     -- piguard's middlewares (RFC 9309 robots, pacing, protection, TDM signals) and pipeline
  (visible text, PI filter on the structured entities, atomic page files, provenance JSONL, summary);
* plain-tuned -- plain, given the Scrapy settings piguard changes from Scrapy's defaults for speed
  (``PIGUARD_DEFAULTS``: CONCURRENT_ITEMS), so piguard's own cost can be read like for like.

The target (piguard at most 10% slower than plain Scrapy) is read against ``plain``; ``overhead_vs_tuned``
says how much of the margin comes from the settings rather than from piguard's code.

Politeness delays are set to zero for both (the site's robots.txt sets no Crawl-delay): this measures the
code's cost, not the waiting. Rounds alternate plain/piguard; the median pages/s of each is reported.

    .venv/bin/python benchmarks/crawl_bench.py [--pages 10000] [--rounds 3] [--concurrency 8]

Writes benchmarks/results/crawl.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "crawl.json"
UA = "piguard-bench/1.0 (+https://example.org/piguard-bench)"

_WORDS_EN = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "data",
    "service",
    "product",
    "customer",
    "order",
    "report",
    "market",
    "city",
    "team",
    "project",
]
_WORDS_ZH = list("我们的产品服务客户订单报告市场城市团队项目数据平台用户信息发布更新通知新闻")


def build_site(n: int, seed: int = 7) -> dict[str, bytes]:
    """n pages, ~3 KB of mixed zh/en text each; one in five has a phone, an e-mail or an ID number."""
    rnd = random.Random(seed)
    per_index = 100
    n_index = (n + per_index - 1) // per_index
    pages: dict[str, bytes] = {}
    pages["/robots.txt"] = b"User-agent: *\nDisallow: /admin\n"
    root_links = "".join(f'<a href="/i/{j}">index {j}</a> ' for j in range(n_index))
    pages["/"] = f"<html><body><h1>site</h1>{root_links}</body></html>".encode()
    for j in range(n_index):
        links = "".join(
            f'<li><a href="/p/{k}">page {k}</a></li>'
            for k in range(j * per_index, min(n, (j + 1) * per_index))
        )
        pages[f"/i/{j}"] = f"<html><body><ul>{links}</ul></body></html>".encode()
    for k in range(n):
        paras = []
        for _ in range(6):
            en = " ".join(rnd.choice(_WORDS_EN) for _ in range(40))
            zh = "".join(rnd.choice(_WORDS_ZH) for _ in range(60))
            paras.append(f"<p>{en} {zh}</p>")
        if k % 5 == 0:
            pi = rnd.choice(
                [
                    f"联系电话 1381234{k % 10000:04d}",
                    f"email: user{k}@example.com",
                    "身份证 11010519491231002X",
                ]
            )
            paras.insert(3, f"<p>{pi}</p>")
        nav = "".join(f'<a href="/p/{rnd.randrange(n)}">related</a> ' for _ in range(3))
        pages[f"/p/{k}"] = (
            "<html><head><title>page</title><style>p{margin:0}</style><script>var x=1;</script></head>"
            f"<body><nav>{nav}</nav>{''.join(paras)}</body></html>"
        ).encode()
    return pages


def serve(n: int, port_q: Any) -> None:
    """Minimal HTTP/1.1 keep-alive server over pre-rendered responses."""
    site = build_site(n)
    responses = {
        path.encode(): (
            b"HTTP/1.1 200 OK\r\nContent-Type: "
            + (b"text/plain" if path.endswith(".txt") else b"text/html; charset=utf-8")
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        for path, body in site.items()
    }
    not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while b"\r\n\r\n" in self.buf:
                head, self.buf = self.buf.split(b"\r\n\r\n", 1)
                path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
                self.t.write(responses.get(path, not_found))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Proto, "127.0.0.1", 0, backlog=1024)
        port_q.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


# --- child processes: one crawl each --------------------------------------------------------------------
def _child(mode: str, base: str, out: str, concurrency: int, entities: str) -> None:
    import scrapy
    from scrapy.crawler import CrawlerProcess
    from scrapy.linkextractors import LinkExtractor

    common = {
        "LOG_LEVEL": "ERROR",
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "USER_AGENT": UA,
    }
    if mode in ("plain", "plain-tuned"):

        class PlainPipeline:
            def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
                name = str(abs(hash(item["url"]))) + ".html"
                with open(os.path.join(out, name), "wb") as fh:
                    fh.write(item["body"])
                return {"url": item["url"]}

        class PlainSpider(scrapy.Spider):
            name = "plain"
            start_urls = (base + "/",)
            links = LinkExtractor()

            def parse(self, response: Any) -> Any:
                yield {"url": response.url, "body": response.body}
                for link in self.links.extract_links(response):
                    yield response.follow(link.url, callback=self.parse)

        sys.modules["__main__"].PlainPipeline = PlainPipeline  # type: ignore[attr-defined]
        settings = {**common, "ROBOTSTXT_OBEY": True, "ITEM_PIPELINES": {"__main__.PlainPipeline": 100}}
        if mode == "plain-tuned":
            from piguard.crawl.settings import PIGUARD_DEFAULTS

            settings.update(PIGUARD_DEFAULTS)
        process = CrawlerProcess(settings)
        crawler = process.create_crawler(PlainSpider)
        process.crawl(crawler)
    else:
        from piguard.crawl.runner import crawl_in_process, crawl_settings

        settings = crawl_settings(
            Path(out),
            UA,
            min_delay=0,
            max_depth=10,
            pi_entities=entities,
            log_level="ERROR",
            extra={
                **common,
                "PIGUARD_FSYNC": mode == "piguard-fsync",
                **json.loads(os.environ.get("PIGUARD_BENCH_EXTRA", "{}")),
            },
        )
        crawler = None
    import resource

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    if mode in ("plain", "plain-tuned"):
        process.start()
    else:
        crawler = crawl_in_process([base + "/"], settings)  # the code path `piguard crawl` runs
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru.ru_utime + ru.ru_stime) - (ru0.ru_utime + ru0.ru_stime)  # the crawl only, all threads
    stats = crawler.stats.get_stats()
    elapsed = (stats["finish_time"] - stats["start_time"]).total_seconds()
    print(
        json.dumps(
            {
                "responses": stats.get("response_received_count", 0),
                "items": stats.get("item_scraped_count", 0),
                "seconds": elapsed,
                "cpu_seconds": round(cpu, 3),
            }
        )
    )


def run_child(mode: str, base: str, concurrency: int, entities: str) -> dict[str, Any]:
    from piguard.crawl.runner import worker_env

    out = tempfile.mkdtemp(prefix=f"crawlbench-{mode}-")
    try:
        res = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--base",
                base,
                "--out",
                out,
                "--concurrency",
                str(concurrency),
                "--entities",
                entities,
            ],
            env=worker_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(res.stdout.strip().splitlines()[-1])
        if not mode.startswith("plain"):
            summary = json.loads((Path(out) / "summary.json").read_text())
            r["pages_stored"] = summary["pages_stored"]
            r["pi_removed_by_entity"] = summary["pi_removed_by_entity"]
            prov = [json.loads(x) for x in (Path(out) / "provenance.jsonl").read_text().splitlines()]
            costs = [p["pi"]["filter_seconds"] for p in prov if p.get("pi")]
            r["pi_filter_ms_per_page_median"] = round(statistics.median(costs) * 1000, 3) if costs else None
        r["pages_per_s"] = round(r["responses"] / r["seconds"], 1)
        r["pages_per_cpu_s"] = round(r["responses"] / r["cpu_seconds"], 1)
        return r
    finally:
        shutil.rmtree(out, ignore_errors=True)


def scan_cost(entities: str) -> dict[str, float]:
    """The PI filter alone: ms per page, one call per page vs batches of 64 (same pages as the site)."""
    from piguard.crawl.pifilter import PiPolicy, filter_texts
    from piguard.crawl.signals import html_text

    site = build_site(640)
    texts = [html_text(site[f"/p/{k}"].decode()) for k in range(640)]
    pol = PiPolicy.parse(None, entities)
    filter_texts(texts[:2], pol)
    t0 = time.perf_counter()
    for t in texts[:64]:
        filter_texts([t], pol)
    single = (time.perf_counter() - t0) / 64
    t0 = time.perf_counter()
    for i in range(0, 640, 64):
        filter_texts(texts[i : i + 64], pol)
    batched = (time.perf_counter() - t0) / 640
    t0 = time.perf_counter()
    for k in range(640):
        html_text(site[f"/p/{k}"].decode())
    extract = (time.perf_counter() - t0) / 640
    return {
        "single_ms": round(single * 1000, 3),
        "batch64_ms": round(batched * 1000, 3),
        "html_text_ms": round(extract * 1000, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--entities", default="structured")
    ap.add_argument("--modes", default="plain,piguard,plain-tuned")
    ap.add_argument("--child")
    ap.add_argument("--base")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.base, args.out, args.concurrency, args.entities)
        return

    load_start = os.getloadavg()
    q: Any = mp.Queue()
    server = mp.Process(target=serve, args=(args.pages, q), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{q.get(timeout=60)}"
    modes = args.modes.split(",")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    try:
        for rnd in range(args.rounds):
            for mode in modes if rnd % 2 == 0 else list(reversed(modes)):
                r = run_child(mode, base, args.concurrency, args.entities)
                runs[mode].append(r)
                print(
                    f"round {rnd + 1} {mode:14s} {r['responses']:6d} responses {r['seconds']:7.2f} s "
                    f"{r['pages_per_s']:8.1f} pages/s, cpu {r['cpu_seconds']:6.1f} s "
                    f"= {r['pages_per_cpu_s']:6.1f} pages/cpu-s",
                    flush=True,
                )
    finally:
        server.terminate()
    med = {m: statistics.median(r["pages_per_s"] for r in rs) for m, rs in runs.items()}
    result: dict[str, Any] = {
        "site_pages": args.pages,
        "site_responses_expected": args.pages + (args.pages + 99) // 100 + 1,
        "concurrency": args.concurrency,
        "pi_entities": args.entities,
        "rounds": args.rounds,
        "median_pages_per_s": med,
        "runs": runs,
        "pi_filter_cost": scan_cost(args.entities),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_start": load_start,
            "load_avg_at_end": os.getloadavg(),
        },
    }
    if "plain" in med and "piguard" in med:
        result["overhead_ratio"] = round(med["plain"] / med["piguard"] - 1, 4)
        cpu = {m: statistics.median(r["cpu_seconds"] for r in rs) for m, rs in runs.items()}
        result["median_cpu_seconds"] = cpu
        result["cpu_overhead_ratio"] = round(cpu["piguard"] / cpu["plain"] - 1, 4)
        print(
            f"CPU seconds (median): plain {cpu['plain']:.1f}, piguard {cpu['piguard']:.1f} "
            f"({result['cpu_overhead_ratio'] * 100:+.1f}%)"
        )
        print(
            f"overhead piguard vs plain Scrapy: {result['overhead_ratio'] * 100:+.1f}% "
            f"(plain {med['plain']:.1f} pages/s, piguard {med['piguard']:.1f} pages/s)"
        )
    if "plain-tuned" in med and "piguard" in med:
        result["overhead_vs_tuned"] = round(med["plain-tuned"] / med["piguard"] - 1, 4)
        cpu_t = statistics.median(r["cpu_seconds"] for r in runs["plain-tuned"])
        cpu_p = statistics.median(r["cpu_seconds"] for r in runs["piguard"])
        result["cpu_overhead_vs_tuned"] = round(cpu_p / cpu_t - 1, 4)
        print(
            f"overhead piguard vs plain Scrapy with piguard's Scrapy settings: "
            f"{result['overhead_vs_tuned'] * 100:+.1f}% (plain-tuned {med['plain-tuned']:.1f} pages/s; "
            f"CPU {result['cpu_overhead_vs_tuned'] * 100:+.1f}%)"
        )
    print("PI filter cost per page:", result["pi_filter_cost"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

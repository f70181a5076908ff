"""Run a crawl without a Scrapy project (used by ``piguard crawl``). One crawl per process: Twisted's
reactor cannot be restarted, so callers that crawl repeatedly run each crawl in a child process."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from piguard.crawl.middleware import check_user_agent
from piguard.crawl.pifilter import PiPolicy
from piguard.crawl.settings import piguard_settings


def crawl_settings(
    out: Path,
    user_agent: str,
    *,
    max_pages: int = 0,
    min_delay: float = 1.0,
    timeout: float = 30,
    max_bytes: int = 16 * 1024 * 1024,
    licence: str | None = None,
    pi_policy: str | None = None,
    pi_entities: str | None = None,
    redis_url: str | None = None,
    worker: str | None = None,
    max_depth: int = 3,
    redis_key: str = "piguard",
    log_level: str = "WARNING",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    check_user_agent(user_agent)
    PiPolicy.parse(pi_policy, pi_entities)  # validate before anything starts
    s = piguard_settings(
        None,
        user_agent=user_agent,
        out=str(out),
        redis_url=redis_url,
        DOWNLOAD_DELAY=min_delay,
        PIGUARD_MIN_DELAY=min_delay,
        AUTOTHROTTLE_START_DELAY=max(min_delay, 0.01),
        DOWNLOAD_TIMEOUT=timeout,
        DOWNLOAD_MAXSIZE=max_bytes,
        DEPTH_LIMIT=max_depth,
        CLOSESPIDER_PAGECOUNT=max_pages,
        PIGUARD_TDM_LICENCE=licence,
        PIGUARD_PI_POLICY=pi_policy,
        PIGUARD_PI_ENTITIES=pi_entities,
        PIGUARD_WORKER_ID=worker,
        LOG_LEVEL=log_level,
        TELNETCONSOLE_ENABLED=False,
        REMOTE_CONTROL_ENABLED=False,
    )
    if redis_url:
        s.update(
            SCHEDULER_QUEUE_KEY=f"{redis_key}:requests",
            SCHEDULER_DUPEFILTER_KEY=f"{redis_key}:dupefilter",
            PIGUARD_PACE_PREFIX=f"{redis_key}:pace",
        )
    s.update(extra or {})
    return s


# The crawl process's environment. Polars (the detector's engine) starts a thread pool as wide as the machine
# when imported; beside Twisted's reactor those threads take the cores the crawl needs: on 2 cores a
# 10,000-page loopback crawl ran ~40% faster with one polars thread (benchmarks/crawl_bench.py). A value
# the user already set wins.
WORKER_ENV = {"POLARS_MAX_THREADS": "1"}


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    for k, v in WORKER_ENV.items():
        env.setdefault(k, v)
    return env


def run_crawl(urls: list[str], settings: dict[str, Any], *, follow: bool = True) -> dict[str, Any]:
    """Crawl ``urls`` with ``settings`` (from :func:`crawl_settings`) in a child process with
    :data:`WORKER_ENV`, and return the crawl summary (``{"error": ...}`` when the crawl did not finish)."""
    job = {"urls": urls, "settings": settings, "follow": follow}
    res = subprocess.run(
        [sys.executable, "-m", "piguard.crawl.runner"], input=json.dumps(job), text=True, env=worker_env()
    )
    out = Path(settings["PIGUARD_OUT"])
    worker = settings.get("PIGUARD_WORKER_ID")
    summary_path = out / (f"summary-{worker}.json" if worker else "summary.json")
    if res.returncode != 0 or not summary_path.exists():
        return {"error": f"crawl process ended with code {res.returncode} without a summary (see the log)"}
    return json.loads(summary_path.read_text("utf-8"))


def crawl_in_process(urls: list[str], settings: dict[str, Any], *, follow: bool = True) -> Any:
    """Run the crawl in this process (once: Twisted's reactor cannot restart). Returns the Scrapy crawler."""
    from scrapy.crawler import CrawlerProcess

    from piguard.crawl.spider import SiteSpider

    logging.getLogger("scrapy").setLevel(settings.get("LOG_LEVEL", "WARNING"))
    process = CrawlerProcess(settings, install_root_handler=True)
    crawler = process.create_crawler(SiteSpider)
    process.crawl(crawler, start_urls=urls, max_depth=settings.get("DEPTH_LIMIT", 3), follow=follow)
    process.start()
    return crawler


if __name__ == "__main__":
    _job = json.loads(sys.stdin.read())
    crawl_in_process(_job["urls"], _job["settings"], follow=_job["follow"])

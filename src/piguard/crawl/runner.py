"""Run a crawl without a Scrapy project (used by ``piguard crawl``). One crawl per process: Twisted's
reactor cannot be restarted, so callers that crawl repeatedly run each crawl in a child process."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from piguard.crawl.middleware import check_user_agent
from piguard.crawl.pifilter import PiPolicy
from piguard.crawl.settings import piguard_settings
from piguard.crawl.state import CrawlConfigError, check_worker_id

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
# After SIGTERM/SIGINT the crawl closes gracefully (pages in the pipeline written, summary saved); a crawl
# that has not ended this many seconds later is killed.
STOP_GRACE_SECONDS = 30.0


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parseable as a URL: say nothing of it but its scheme
        return url.split(":", 1)[0] + "://..."


def check_redis(url: str, timeout: float = 5.0) -> None:
    """Fail before the crawl starts when the Redis server is unreachable or does not answer."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        client.ping()
    except (redis.RedisError, ValueError, OSError) as exc:
        raise CrawlConfigError(f"Redis at {_redacted(url)} is not usable ({type(exc).__name__})") from None


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
    check_worker_id(worker)
    PiPolicy.parse(pi_policy, pi_entities)  # validate before anything starts
    level = log_level.upper()
    if level not in LOG_LEVELS:
        raise CrawlConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}")
    if redis_url:
        check_redis(redis_url)
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
        LOG_LEVEL=level,
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
    :data:`WORKER_ENV`, and return the crawl summary (``{"error": ...}`` when the crawl did not finish).

    SIGTERM or SIGINT here is passed to the child once: it stops taking new requests, finishes writing and
    saves its summary (``"interrupted": true``); a child still running after :data:`STOP_GRACE_SECONDS`
    is killed. The child has its own session, so a terminal's Ctrl-C reaches it only through us (once)."""
    job = {"urls": urls, "settings": settings, "follow": follow}
    out = Path(settings["PIGUARD_OUT"])
    worker = settings.get("PIGUARD_WORKER_ID")
    summary_path = out / (f"summary-{worker}.json" if worker else "summary.json")
    with contextlib.suppress(FileNotFoundError):
        summary_path.unlink()  # a summary left by an earlier crawl must not pass for this one's
    proc = subprocess.Popen(
        [sys.executable, "-m", "piguard.crawl.runner"],
        stdin=subprocess.PIPE,
        text=True,
        env=worker_env(),
        start_new_session=True,
    )
    stopping: list[int] = []

    def _forward(signum: int, _frame: Any) -> None:
        if not stopping:
            stopping.append(signum)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)

    old = {sig: signal.signal(sig, _forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(json.dumps(job))
            proc.stdin.close()
        deadline: float | None = None
        while True:
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stopping and deadline is None:
                    deadline = time.monotonic() + STOP_GRACE_SECONDS
                if deadline is not None and time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    break
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if not summary_path.exists():
        why = "interrupted" if stopping else f"ended with code {proc.returncode}"
        return {"error": f"crawl process {why} without a summary (see {out / _log_name(worker)})"}
    summary = json.loads(summary_path.read_text("utf-8"))
    if stopping:
        summary["interrupted"] = True
    return summary


def _log_name(worker: str | None) -> str:
    return f"crawl-{worker}.log" if worker else "crawl.log"


def crawl_in_process(urls: list[str], settings: dict[str, Any], *, follow: bool = True) -> Any:
    """Run the crawl in this process (once: Twisted's reactor cannot restart). Returns the Scrapy crawler."""
    from scrapy.crawler import CrawlerProcess

    from piguard.crawl.spider import SiteSpider

    logging.getLogger("scrapy").setLevel(settings.get("LOG_LEVEL", "WARNING"))
    # As a setting, not the install_root_handler argument: Scrapy 2.13+ prints a deprecation warning for
    # that to the user's terminal on every crawl (older Scrapy installs the handler by default).
    process = CrawlerProcess({**settings, "LOG_INSTALL_ROOT_HANDLER": True})
    crawler = process.create_crawler(SiteSpider)
    process.crawl(crawler, start_urls=urls, max_depth=settings.get("DEPTH_LIMIT", 3), follow=follow)
    process.start()
    return crawler


def _child_main() -> int:
    job = json.loads(sys.stdin.read())
    settings = job["settings"]
    # Scrapy's log (warnings, and tracebacks of anything unexpected) goes to a file in the output directory;
    # the terminal gets the summary and one line per problem from the parent.
    settings.setdefault(
        "LOG_FILE", str(Path(settings["PIGUARD_OUT"]) / _log_name(settings.get("PIGUARD_WORKER_ID")))
    )
    try:
        crawl_in_process(job["urls"], settings, follow=job["follow"])
    except CrawlConfigError as exc:
        print(f"piguard crawl: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        logging.getLogger("piguard.crawl").exception("crawl failed")
        print(
            f"piguard crawl: the crawl failed ({type(exc).__name__}); see {settings['LOG_FILE']}",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())

"""Settings to add piguard's lawful crawling to an existing Scrapy project::

    # settings.py
    from piguard.crawl.settings import piguard_settings
    globals().update(piguard_settings(globals(), user_agent="mybot/1.0 (+https://example.org/bot)",
                                      out="crawl-out"))

or merge :data:`PIGUARD_SETTINGS` yourself and set ``PIGUARD_USER_AGENT``. In your spider's callbacks,
``yield page_item(response)`` (from :mod:`piguard.crawl`) for each page you want stored.
"""

from __future__ import annotations

from typing import Any

PIGUARD_SETTINGS: dict[str, Any] = {
    # Scrapy's own robots handling (Protego, 5xx -> allow all) is replaced by piguard's RFC 9309 middleware.
    "ROBOTSTXT_OBEY": False,
    "DOWNLOADER_MIDDLEWARES": {
        "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
        "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
        "piguard.crawl.middleware.PiguardMiddleware": 585,
        "piguard.crawl.middleware.PiguardPacingMiddleware": 950,
        "piguard.crawl.middleware.PiguardOutcomeMiddleware": 540,
    },
    "ITEM_PIPELINES": {"piguard.crawl.pipeline.PiguardPipeline": 100},
    # No cookies at all: nothing carried from one host (or one session) to another.
    "COOKIES_ENABLED": False,
    # Politeness: one request at a time per host, a minimum delay, AutoThrottle on.
    "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
    "DOWNLOAD_DELAY": 1.0,
    "PIGUARD_MIN_DELAY": 1.0,
    "AUTOTHROTTLE_ENABLED": True,
    "AUTOTHROTTLE_START_DELAY": 1.0,
    # 429 and 503 are protection (recorded, host held for Retry-After), never retried around.
    "RETRY_HTTP_CODES": [500, 502, 504, 522, 524, 408],
    "RETRY_TIMES": 2,
    "DOWNLOAD_TIMEOUT": 30,
    "DOWNLOAD_MAXSIZE": 16 * 1024 * 1024,
    "DOWNLOAD_WARNSIZE": 4 * 1024 * 1024,
    "REDIRECT_MAX_TIMES": 5,
    "PIGUARD_OUT": "piguard-crawl",
    "PIGUARD_PI_BATCH": 128,
    "PIGUARD_PI_BATCH_WAIT": 1.0,
    "PIGUARD_GC_FREEZE": True,
}

# Defaults that a project's own value wins over. CONCURRENT_ITEMS is how many of one response's outputs the
# item pipelines work on at once: Scrapy starts that many asyncio tasks per response (default 100), and page
# items wait for their PI-filter batch, so with the default ~12,000 idle tasks stayed alive through every
# batch and the cyclic garbage collector rescanned them (crawl_bench: ~0.8 ms a page). A page callback
# yields one page item; 16 leaves room for a spider's own items.
PIGUARD_DEFAULTS: dict[str, Any] = {"CONCURRENT_ITEMS": 16}

# Distributed mode: scrapy-redis shares the queue and the seen-set; piguard's pacer shares per-host rates.
DISTRIBUTED_SETTINGS: dict[str, Any] = {
    "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
    "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
    "SCHEDULER_PERSIST": True,
    "PIGUARD_PACER": "redis",
}


def piguard_settings(
    existing: dict[str, Any] | None = None,
    *,
    user_agent: str,
    out: str = "piguard-crawl",
    redis_url: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``existing`` with piguard's settings merged in (middleware and pipeline dicts merged, not replaced)."""
    base = {k: v for k, v in (existing or {}).items() if k.isupper()}
    merged = {**PIGUARD_DEFAULTS, **base}
    layers = [PIGUARD_SETTINGS]
    if redis_url:
        layers.append({**DISTRIBUTED_SETTINGS, "REDIS_URL": redis_url, "PIGUARD_REDIS_URL": redis_url})
    for layer in layers:
        for k, v in layer.items():
            if isinstance(v, dict) and isinstance(merged.get(k), dict):
                merged[k] = {**merged[k], **v}
            else:
                merged[k] = v
    merged.update({"PIGUARD_USER_AGENT": user_agent, "USER_AGENT": user_agent, "PIGUARD_OUT": out, **extra})
    return merged

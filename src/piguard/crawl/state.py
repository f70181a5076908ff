"""State one crawl shares between piguard's middlewares and pipeline: the page store and the host pacer.

The pacer decides when each host may next be contacted. ``LocalPacer`` keeps that in memory; ``RedisPacer``
keeps it in Redis so every worker of a distributed crawl shares one per-host rate (an atomic Lua script
reserves the next slot using the Redis server's clock, so workers' clocks do not matter).
"""

from __future__ import annotations

import re
import time
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from piguard.crawl.store import PageStore

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


class CrawlConfigError(ValueError):
    """The crawl is not configured to run lawfully (e.g. no honest user agent); it refuses to start."""


_WORKER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_worker_id(worker: str | None) -> str | None:
    """A worker id names files inside the output directory: letters, digits, '_', '.', '-' only."""
    if worker is None or _WORKER_ID.fullmatch(worker):
        return worker
    raise CrawlConfigError(
        "worker id must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
    )


class Pacer(Protocol):
    def reserve(self, host: str, interval: float) -> float:
        """Book the next slot for ``host``; returns how many seconds to wait before sending."""
        ...

    def hold(self, host: str, seconds: float) -> None:
        """Nothing may be sent to ``host`` for ``seconds`` (Retry-After)."""
        ...


class LocalPacer:
    def __init__(self) -> None:
        self._next: dict[str, float] = {}

    def reserve(self, host: str, interval: float) -> float:
        now = time.monotonic()
        start = max(now, self._next.get(host, 0.0))
        self._next[host] = start + interval
        return start - now

    def hold(self, host: str, seconds: float) -> None:
        self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + seconds)


_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(now, nxt)
local interval = tonumber(ARGV[1])
local ttl = math.ceil((start - now + interval) * 1000) + 60000
redis.call('SET', KEYS[1], string.format('%.6f', start + interval), 'PX', ttl)
return string.format('%.6f', start - now)
"""

_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local untl = now + tonumber(ARGV[1])
if untl > nxt then
  redis.call('SET', KEYS[1], string.format('%.6f', untl), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 60000)
end
return 1
"""


class RedisPacer:
    """Per-host pacing shared by all workers through one Redis key per host."""

    def __init__(self, url: str, prefix: str = "piguard:pace") -> None:
        import redis

        # Timeouts: a Redis server that accepts and never answers must fail the crawl, not hang it.
        self.client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
        self.prefix = prefix
        self._reserve = self.client.register_script(_RESERVE)
        self._hold = self.client.register_script(_HOLD)

    def reserve(self, host: str, interval: float) -> float:
        return float(self._reserve(keys=[f"{self.prefix}:{host}"], args=[interval]))

    def hold(self, host: str, seconds: float) -> None:
        self._hold(keys=[f"{self.prefix}:{host}"], args=[seconds])


class CrawlState:
    def __init__(self, store: PageStore, pacer: Pacer) -> None:
        self.store = store
        self.pacer = pacer
        # Hosts left alone for the rest of the crawl, with why (a Retry-After beyond the crawl's limit).
        self.abandoned: dict[str, str] = {}
        self.robots: dict[str, dict[str, Any]] = {}

    def robots_seen(self, origin: str, info: dict[str, Any]) -> None:
        self.robots[origin] = info
        self.store.extra["robots"] = self.robots


_STATES: weakref.WeakKeyDictionary[Any, CrawlState] = weakref.WeakKeyDictionary()


def state_for(crawler: Crawler) -> CrawlState:
    """The one CrawlState of ``crawler`` (made on first use from its settings)."""
    st = _STATES.get(crawler)
    if st is None:
        s = crawler.settings
        store = PageStore(
            s.get("PIGUARD_OUT", "piguard-crawl"),
            check_worker_id(s.get("PIGUARD_WORKER_ID") or None),
            fsync=s.getbool("PIGUARD_FSYNC", True),
        )
        if s.get("PIGUARD_PACER", "local") == "redis":
            url = s.get("PIGUARD_REDIS_URL") or s.get("REDIS_URL")
            if not url:
                raise CrawlConfigError("PIGUARD_PACER=redis needs PIGUARD_REDIS_URL (or REDIS_URL)")
            pacer: Pacer = RedisPacer(url, s.get("PIGUARD_PACE_PREFIX", "piguard:pace"))
        else:
            pacer = LocalPacer()
        st = CrawlState(store, pacer)
        _STATES[crawler] = st
    return st

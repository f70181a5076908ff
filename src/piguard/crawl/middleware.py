"""Scrapy downloader middlewares that keep a crawl lawful.

``PiguardMiddleware`` (order 585: after UserAgentMiddleware; sees responses after decompression):

* requires an honest user agent with a contact URL and sends it on every request; refuses proxies;
* fetches robots.txt itself (RFC 9309): redirects followed up to 5 hops, the first 500 KiB parsed,
  4xx -> allow all, 5xx / unreachable -> disallow all (fetched again later), cached at most 24 hours;
  a disallowed request is recorded and never sent;
* paces each host: max(minimum delay, Crawl-delay, Request-rate), doubled per consecutive 5xx, and held
  for Retry-After on 429/503 -- locally, or shared by all workers through Redis (distributed mode);
* records protection (401/403/429/503, login wall, CAPTCHA, paywall markup) and drops the response: it is
  never retried, re-requested with other headers, cookies, agents or proxies;
* records opt-out signals (TDMRep file/header/meta, X-Robots-Tag, meta robots) and drops pages reserved for
  text and data mining unless ``PIGUARD_TDM_LICENCE`` declares a licence.

``PiguardOutcomeMiddleware`` (order 540, below RetryMiddleware) records what finally happened to requests
that did not produce a page: HTTP errors after retries, timeouts, size caps, connection failures.
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from scrapy import signals
from scrapy.exceptions import IgnoreRequest, StopDownload
from scrapy.http import Request, Response, TextResponse
from scrapy.http.request import NO_CALLBACK
from twisted.internet.task import deferLater

from piguard.crawl.robots import RobotsTxt, product_token
from piguard.crawl.signals import (
    TdmRep,
    apply_tdmrep,
    page_signals,
    protection_from_markup,
    protection_from_status,
    retry_after_seconds,
    rules,
)
from piguard.crawl.state import CrawlConfigError, CrawlState, state_for

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

_REDIRECTS = (301, 302, 303, 307, 308)
_URL_RX = re.compile(r"https?://\S+|mailto:\S+|\S+@\S+\.\S+")


def check_user_agent(ua: str | None) -> str:
    """An honest user agent: our own product token (not a browser's) and a way to reach the operator."""
    from scrapy.settings.default_settings import USER_AGENT as SCRAPY_DEFAULT

    if not ua or not ua.strip():
        raise CrawlConfigError("a user agent with a contact URL is required (PIGUARD_USER_AGENT)")
    if ua == SCRAPY_DEFAULT:
        raise CrawlConfigError("set your own user agent with a contact URL; Scrapy's default names nobody")
    token = product_token(ua)
    if not token or token.lower() in ("mozilla", "opera"):
        raise CrawlConfigError(f"user agent must start with the crawler's own product token, not {ua[:40]!r}")
    first = re.split(r"[/\s]", ua.strip(), maxsplit=1)[0]
    if first != token:
        # RFC 9309 2.2.1: a product token is letters, '_' and '-'; a name with other characters would be cut
        # short when matched, and the crawler would obey another bot's group.
        raise CrawlConfigError(
            f"the crawler's name {first[:40]!r} is not an RFC 9309 product token (letters, '_' and '-' only)"
        )
    if not _URL_RX.search(ua):
        raise CrawlConfigError(
            f"user agent must carry a contact URL or e-mail, e.g. '{token}/1.0 (+https://...)'"
        )
    return ua


def record_outcome(state: CrawlState, request: Request, record: dict[str, Any]) -> None:
    """Write ``record`` to the provenance and mark ``request`` as accounted for (no second record)."""
    request.meta["piguard_recorded"] = True
    state.store.record(record)


def _is_public_address(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _origin(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


@dataclass
class RobotsEntry:
    parser: RobotsTxt
    verdict_kind: str  # 'parsed' | 'unavailable' (4xx: allow all) | 'unreachable' (5xx/network: disallow all)
    status: int | None
    fetched_at: float
    expires_at: float
    final_url: str
    error: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.verdict_kind,
            "status": self.status,
            "sha256": self.parser.sha256,
            "fetched_at": self.fetched_at,
            "final_url": self.final_url,
            "error": self.error,
            "truncated": self.parser.truncated,
        }


class PiguardMiddleware:
    INTERNAL_PRIORITY = 1000

    def __init__(self, crawler: Crawler) -> None:
        s = crawler.settings
        self.crawler = crawler
        self.user_agent = check_user_agent(s.get("PIGUARD_USER_AGENT") or s.get("USER_AGENT"))
        self.token = product_token(self.user_agent)
        self.state: CrawlState = state_for(crawler)
        r = rules()["robots"]
        self.max_redirects = int(r["max_redirects"])
        self.parse_limit = int(r["parse_limit_bytes"])
        self.cache_ttl = min(
            float(s.getfloat("PIGUARD_ROBOTS_CACHE_SECONDS", r["cache_max_seconds"])),
            float(r["cache_max_seconds"]),
        )
        self.error_ttl = float(s.getfloat("PIGUARD_ROBOTS_RETRY_SECONDS", r["error_retry_seconds"]))
        self.internal_timeout = s.getfloat("PIGUARD_ROBOTS_TIMEOUT", s.getfloat("DOWNLOAD_TIMEOUT", 30))
        self.min_delay = s.getfloat("PIGUARD_MIN_DELAY", 1.0)
        self.licence = s.get("PIGUARD_TDM_LICENCE") or None
        self.check_tdmrep = s.getbool("PIGUARD_TDMREP", True)
        self._robots: dict[str, RobotsEntry] = {}
        self._tdmrep: dict[str, tuple[TdmRep | None, float, str | None]] = {}
        self._pending: dict[str, Any] = {}
        self._received: dict[int, int] = {}
        # Private, loopback and link-local targets are refused unless allowed (a redirect or link to
        # localhost, a router or a cloud metadata address is not the public web): the start URLs' own hosts
        # are allowed, everything with PIGUARD_ALLOW_PRIVATE.
        self.allow_private = s.getbool("PIGUARD_ALLOW_PRIVATE", False)
        self._host_ok: dict[str, str | None] = {}
        crawler.signals.connect(self._bytes_received, signal=signals.bytes_received)
        crawler.signals.connect(self._dropped, signal=signals.request_dropped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PiguardMiddleware:
        return cls(crawler)

    def _dropped(self, request: Request, spider: Any = None) -> None:
        # The scheduler drops a redirect back to a URL already seen (a loop) without telling anyone.
        redirects = request.meta.get("redirect_urls")
        if redirects and not request.meta.get("piguard_recorded"):
            record_outcome(
                self.state,
                request,
                {
                    "url": redirects[0],
                    "final_url": request.url,
                    "outcome": "error",
                    "error": "redirect_loop",
                    "stored": False,
                },
            )

    # --- robots.txt and tdmrep.json ------------------------------------------------------------------
    def _bytes_received(self, data: bytes, request: Request, spider: Any = None) -> None:
        if not request.meta.get("piguard_limit"):
            return
        n = self._received.get(id(request), 0) + len(data)
        self._received[id(request)] = n
        if n > self.parse_limit:
            raise StopDownload(fail=False)  # keep what arrived: the first 500 KiB are parsed

    async def _fetch(self, url: str) -> tuple[int | None, bytes, str, str | None]:
        """GET an internal resource, following up to 5 redirects: (status, body, final url, error)."""
        from scrapy.utils.defer import maybe_deferred_to_future

        for _hop in range(self.max_redirects + 1):
            req = Request(
                url,
                callback=NO_CALLBACK,
                priority=self.INTERNAL_PRIORITY,
                dont_filter=True,
                headers={"User-Agent": self.user_agent},
                meta={
                    "piguard_internal": True,
                    "piguard_limit": True,
                    "dont_redirect": True,
                    "dont_retry": True,
                    "handle_httpstatus_all": True,
                    "download_maxsize": 0,
                    "download_timeout": self.internal_timeout,
                },
            )
            host = urlsplit(url).hostname or ""
            wait = self.state.pacer.reserve(host, self.min_delay)
            if wait > 0:
                await maybe_deferred_to_future(deferLater(_reactor(), wait, lambda: None))
            try:
                resp = await self.crawler.engine.download_async(req)
            except Exception as exc:  # network failure, timeout: the caller decides what it means
                return None, b"", url, type(exc).__name__
            finally:
                self._received.pop(id(req), None)
            loc = resp.headers.get(b"Location")
            if resp.status in _REDIRECTS and loc:
                url = urljoin(url, loc.decode("latin-1"))
                continue
            return resp.status, resp.body, resp.url, None
        return None, b"", url, "too_many_redirects"

    async def _robots_for(self, origin: str) -> RobotsEntry:
        from scrapy.utils.defer import maybe_deferred_to_future
        from twisted.internet.defer import Deferred

        now = time.time()
        entry = self._robots.get(origin)
        if entry is not None and entry.expires_at > now:
            return entry
        pending = self._pending.get(origin)
        if pending is not None:
            return await maybe_deferred_to_future(_chain(pending))
        d: Deferred[RobotsEntry] = Deferred()
        self._pending[origin] = d
        entry = None
        try:
            status, body, final, err = await self._fetch(origin + "/robots.txt")
            fetched = time.time()
            if status is not None and 200 <= status < 300:
                entry = RobotsEntry(
                    RobotsTxt(body, limit=self.parse_limit),
                    "parsed",
                    status,
                    fetched,
                    fetched + self.cache_ttl,
                    final,
                )
            elif status is not None and 400 <= status < 500:
                entry = RobotsEntry(
                    RobotsTxt(b""), "unavailable", status, fetched, fetched + self.cache_ttl, final
                )
            else:
                # 5xx, network failure, redirect loop, other statuses: complete disallow, try again later.
                entry = RobotsEntry(
                    RobotsTxt(b"User-agent: *\nDisallow: /\n"),
                    "unreachable",
                    status,
                    fetched,
                    fetched + self.error_ttl,
                    final,
                    err or f"status {status}",
                )
            self._robots[origin] = entry
            self.state.robots_seen(origin, entry.describe())
            if self.check_tdmrep and entry.verdict_kind != "unreachable":
                await self._load_tdmrep(origin, entry)
        except Exception as exc:  # never leave waiters hanging: an unexpected failure is "unreachable"
            now = time.time()
            entry = RobotsEntry(
                RobotsTxt(b"User-agent: *\nDisallow: /\n"),
                "unreachable",
                None,
                now,
                now + self.error_ttl,
                origin + "/robots.txt",
                type(exc).__name__,
            )
            self._robots[origin] = entry
        finally:
            self._pending.pop(origin, None)
        d.callback(entry)
        return entry

    async def _load_tdmrep(self, origin: str, robots: RobotsEntry) -> None:
        path = rules()["signals"]["well_known_tdmrep"]
        if not robots.parser.allowed(self.token, origin + path):
            self._tdmrep[origin] = (None, time.time(), "disallowed by robots.txt")
            return
        status, body, _final, err = await self._fetch(origin + path)
        rep, note = None, err
        if status is not None and 200 <= status < 300:
            try:
                rep = TdmRep(body)
            except (ValueError, UnicodeDecodeError) as exc:
                note = f"malformed tdmrep.json ({type(exc).__name__})"
        elif status is not None:
            note = f"status {status}"
        self._tdmrep[origin] = (rep, time.time(), note)

    # --- requests ------------------------------------------------------------------------------------
    def process_request(self, request: Request, spider: Any = None) -> Any:
        # Synchronous when robots.txt is cached (the common case); a coroutine when it must be fetched.
        if request.meta.get("piguard_internal"):
            return None
        request.headers[b"User-Agent"] = self.user_agent  # one honest agent, never rotated
        request.headers.pop(b"Cookie", None)
        base = {"url": request.url, "requested_at": time.time()}
        if request.meta.get("proxy"):
            self._refuse(request, base, "proxy not allowed")
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            self._refuse(request, base, f"scheme {parts.scheme}")
        redirected_from = request.meta.get("redirect_urls")
        if redirected_from:
            base["redirected_from"] = redirected_from[0]
            self._check_redirect_scope(request, base, parts.netloc)
        host = parts.hostname or ""
        abandoned = self.state.abandoned.get(host)
        if abandoned is not None:
            record_outcome(self.state, request, {**base, "outcome": "deferred", "reason": abandoned})
            raise IgnoreRequest(f"piguard: host {host} backed off for this crawl")
        origin = _origin(request.url)
        entry = self._robots.get(origin)
        if host not in self._host_ok or entry is None or entry.expires_at <= time.time():
            return self._decide_after_fetch(request, origin, host, base)
        self._check_host(request, host, base)
        self._decide(request, entry, base)
        return None

    def _refuse(self, request: Request, base: dict[str, Any], reason: str) -> None:
        record_outcome(self.state, request, {**base, "outcome": "refused", "reason": reason})
        raise IgnoreRequest(f"piguard: {reason}")

    def _start_hosts(self) -> set[str]:
        spider = getattr(self.crawler, "spider", None)
        hosts = set(getattr(spider, "allowed_hosts", ()) or ())
        hosts.update(urlsplit(u).netloc for u in getattr(spider, "start_urls", ()) or ())
        return hosts

    def _check_redirect_scope(self, request: Request, base: dict[str, Any], netloc: str) -> None:
        # A redirect is a new request: robots.txt of its origin is checked like any other (below), and a
        # spider that keeps to its hosts (``allowed_hosts``) is kept to them across redirects too.
        spider = getattr(self.crawler, "spider", None)
        allowed = getattr(spider, "allowed_hosts", None)
        if allowed and netloc not in allowed:
            self._refuse(request, base, f"redirect to {netloc} leaves the crawl's hosts")

    async def _resolve(self, host: str) -> None:
        """Decide once per host whether it may be contacted (``_host_ok[host]`` None) or why not.

        The name is resolved again when the request is sent; a host whose DNS answer changes in between
        (rebinding) is outside what this check sees."""
        from scrapy.utils.defer import maybe_deferred_to_future

        start_hosts = {urlsplit("//" + h).hostname for h in self._start_hosts()}
        if self.allow_private or host in start_hosts:
            self._host_ok[host] = None
            return
        try:
            addr = host if _is_ip(host) else await maybe_deferred_to_future(_reactor().resolve(host))
        except Exception:  # no such name: the download fails on its own and is recorded as an error
            self._host_ok[host] = None
            return
        self._host_ok[host] = (
            None
            if _is_public_address(addr)
            else f"{host} is a private or loopback address (allow with --allow-private)"
        )

    def _check_host(self, request: Request, host: str, base: dict[str, Any]) -> None:
        reason = self._host_ok.get(host)
        if reason is not None:
            self._refuse(request, base, reason)

    async def _decide_after_fetch(
        self, request: Request, origin: str, host: str, base: dict[str, Any]
    ) -> None:
        if host not in self._host_ok:
            await self._resolve(host)
        self._check_host(request, host, base)
        entry = await self._robots_for(origin)
        self._decide(request, entry, base)

    def _decide(self, request: Request, entry: RobotsEntry, base: dict[str, Any]) -> None:
        verdict = entry.parser.verdict(self.token, request.url)
        robots = {
            **entry.describe(),
            "allowed": verdict.allowed,
            "rule": None
            if verdict.rule is None
            else {"line": verdict.rule.line, "allow": verdict.rule.allow, "pattern": verdict.rule.pattern},
        }
        request.meta["piguard_robots"] = robots
        if not verdict.allowed:
            if entry.verdict_kind == "unreachable" and entry.status is None:
                # The host did not answer at all (refused, timed out, no such name): an error of this crawl,
                # not a site's decision; nothing was fetched.
                error = f"host unreachable ({entry.error})"
                record_outcome(
                    self.state, request, {**base, "outcome": "error", "error": error, "robots": robots}
                )
                raise IgnoreRequest(f"piguard: {error}")
            record_outcome(self.state, request, {**base, "outcome": "refused_robots", "robots": robots})
            raise IgnoreRequest("piguard: disallowed by robots.txt")
        cd, rr = entry.parser.delays(self.token)
        request.meta["piguard_interval"] = max(self.min_delay, cd or 0.0, rr or 0.0)

    # --- responses -----------------------------------------------------------------------------------
    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        if request.meta.get("piguard_internal"):
            return response
        status = response.status
        retry_after = None
        if status in rules()["protection"]["retry_after_statuses"]:
            retry_after = retry_after_seconds(response.headers.get(b"Retry-After"), time.time())
        html = response.text if isinstance(response, TextResponse) and _is_html(response) else None
        protection = protection_from_status(status)
        if protection is None and html is not None and 200 <= status < 300:
            protection = protection_from_markup(html)
        headers = {
            name: [v.decode("latin-1") for v in response.headers.getlist(name)]
            for name in ("x-robots-tag", "tdm-reservation", "tdm-policy")
            if name.encode() in response.headers
        }
        sig = page_signals(headers, html, self.token)
        tdm = self._tdmrep.get(_origin(request.url))
        apply_tdmrep(sig, tdm[0] if tdm else None, request.url)
        meta: dict[str, Any] = {
            "url": request.meta.get("redirect_urls", [request.url])[0],
            "final_url": response.url,
            "status": status,
            "fetched_at": request.meta.get("piguard_fetched_at"),
            "robots": request.meta.get("piguard_robots"),
            "signals": sig.as_dict(),
            "tdmrep_file": None if tdm is None else {"found": tdm[0] is not None, "note": tdm[2]},
            "protection": protection,
            "retry_after": retry_after,
            "tdm_licence": self.licence,
        }
        request.meta["piguard"] = meta
        if protection is not None:
            record_outcome(self.state, request, {**meta, "outcome": "protected", "stored": False})
            raise IgnoreRequest(f"piguard: protected ({protection}); not retried")
        if sig.reserved and not self.licence:
            record_outcome(self.state, request, {**meta, "outcome": "reserved", "stored": False})
            raise IgnoreRequest("piguard: reserved for text and data mining; no licence declared")
        return response


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _chain(d: Any) -> Any:
    """A new Deferred that fires with ``d``'s result, leaving ``d`` itself untouched for other waiters."""
    from twisted.internet.defer import Deferred

    out: Deferred[Any] = Deferred()

    def _fire(result: Any) -> Any:
        out.callback(result)
        return result

    d.addBoth(_fire)
    return out


def _is_html(response: Response) -> bool:
    ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
    return "html" in ctype or (not ctype and response.body.lstrip()[:1] == b"<")


class _HostSlot:
    """A counting semaphore whose uncontended acquire needs no Deferred."""

    def __init__(self, limit: int) -> None:
        self.free = limit
        self.waiters: list[Any] = []

    def try_acquire(self) -> bool:
        if self.free > 0:
            self.free -= 1
            return True
        return False

    def acquire(self) -> Any:
        from twisted.internet.defer import Deferred

        d: Deferred[None] = Deferred()
        self.waiters.append(d)
        return d

    def release(self) -> None:
        if self.waiters:
            self.waiters.pop(0).callback(None)  # hand the slot straight to the next waiter
        else:
            self.free += 1


class PiguardPacingMiddleware:
    """Per-host pacing at the edge of the downloader (order 950: last before the wire, first to see the raw
    response). At most CONCURRENT_REQUESTS_PER_DOMAIN requests per host at a time (piguard's default: one);
    each may start ``interval`` after the previous one started (reserved in the pacer, shared through Redis
    in distributed mode) and, with one at a time, after the previous one ended. A 5xx
    doubles the host's interval (exponential back-off); 429/503 hold the host for Retry-After."""

    def __init__(self, crawler: Crawler) -> None:
        s = crawler.settings
        self.crawler = crawler
        self.state = state_for(crawler)
        self.user_agent = check_user_agent(s.get("PIGUARD_USER_AGENT") or s.get("USER_AGENT"))
        self.min_delay = s.getfloat("PIGUARD_MIN_DELAY", 1.0)
        self.max_backoff = s.getfloat("PIGUARD_MAX_BACKOFF", 60.0)
        self.max_retry_after = min(
            s.getfloat("PIGUARD_MAX_RETRY_AFTER", 120.0),
            float(rules()["protection"]["max_retry_after_seconds"]),
        )
        self.per_host = max(1, s.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 1))
        self._locks: dict[str, Any] = {}
        self._fails: dict[str, int] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PiguardPacingMiddleware:
        return cls(crawler)

    def _interval(self, request: Request, host: str) -> float:
        interval = float(request.meta.get("piguard_interval", self.min_delay))
        fails = self._fails.get(host, 0)
        if fails:
            interval = min(max(interval, 0.5) * (2**fails), self.max_backoff)
        return interval

    def process_request(self, request: Request, spider: Any = None) -> Any:
        if request.meta.get("piguard_internal"):
            return None
        # Enforced again here, last before the wire, in case a later middleware rotated or added them.
        request.headers[b"User-Agent"] = self.user_agent
        for h in (b"Cookie", b"Proxy-Authorization"):
            request.headers.pop(h, None)
        if request.meta.get("proxy"):
            raise IgnoreRequest("piguard: proxies are not used")
        host = urlsplit(request.url).hostname or ""
        slot = self._locks.get(host)
        if slot is None:
            slot = self._locks[host] = _HostSlot(self.per_host)
        if slot.try_acquire():
            wait = self.state.pacer.reserve(host, self._interval(request, host))
            if wait <= 0:  # fast path: no waiting, no coroutine
                request.meta["piguard_lock"] = host
                request.meta["piguard_fetched_at"] = time.time()
                return None
            return self._send_after(request, host, slot, wait)
        return self._send_after(request, host, slot, None)

    async def _send_after(self, request: Request, host: str, slot: _HostSlot, wait: float | None) -> None:
        from scrapy.utils.defer import maybe_deferred_to_future

        request.meta["piguard_lock"] = host  # from here on, the slot is released on response or failure
        if wait is None:
            await maybe_deferred_to_future(slot.acquire())
            self._unless_stopping(request)
            wait = self.state.pacer.reserve(host, self._interval(request, host))
        if wait > 0:
            await maybe_deferred_to_future(deferLater(_reactor(), wait, lambda: None))
            self._unless_stopping(request)
        request.meta["piguard_fetched_at"] = time.time()

    def _unless_stopping(self, request: Request) -> None:
        # A graceful stop (SIGTERM, CLOSESPIDER_PAGECOUNT) waits for every request inside the downloader;
        # requests still queued for a host's slot are let go here instead of being sent one by one.
        engine = getattr(self.crawler, "engine", None)
        if engine is not None and not getattr(engine, "running", True):
            record_outcome(
                self.state, request, {"url": request.url, "outcome": "deferred", "reason": "crawl stopped"}
            )
            raise IgnoreRequest("piguard: crawl stopping")

    def _release(self, request: Request) -> None:
        host = request.meta.pop("piguard_lock", None)
        if host is None:
            return
        self.state.pacer.hold(host, self._interval(request, host))
        self._locks[host].release()

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        host = urlsplit(request.url).hostname or ""
        status = response.status
        if 500 <= status < 600:
            self._fails[host] = self._fails.get(host, 0) + 1
        elif 200 <= status < 400:
            self._fails.pop(host, None)
        if status in rules()["protection"]["retry_after_statuses"]:
            ra = retry_after_seconds(response.headers.get(b"Retry-After"), time.time())
            if ra is not None and ra > self.max_retry_after:
                # The host asks for more patience than this crawl has: leave it alone for the rest of the
                # crawl (its remaining URLs are recorded as deferred) rather than hold the crawl hostage.
                self.state.abandoned[host] = (
                    f"host asked to wait {ra:.0f} s (Retry-After on {status}), over this crawl's limit of "
                    f"{self.max_retry_after:.0f} s"
                )
            hold = min(ra if ra is not None else self.min_delay * 4, self.max_retry_after)
            self.state.pacer.hold(host, hold)
        self._release(request)
        return response

    def process_exception(self, request: Request, exception: BaseException, spider: Any = None) -> None:
        self._release(request)
        return None


class PiguardOutcomeMiddleware:
    """Records the final fate of requests that produced no page: HTTP errors after retries and failures."""

    def __init__(self, crawler: Crawler) -> None:
        self.state = state_for(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PiguardOutcomeMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        if request.meta.get("piguard_internal") or response.status < 400:
            return response
        allowed = request.meta.get("handle_httpstatus_all") or response.status in request.meta.get(
            "handle_httpstatus_list", ()
        )
        if not allowed and not request.meta.get("piguard_recorded"):
            meta = request.meta.get("piguard") or {"url": request.url, "status": response.status}
            record_outcome(self.state, request, {**meta, "outcome": "http_error", "stored": False})
        return response

    def process_exception(self, request: Request, exception: BaseException, spider: Any = None) -> None:
        if request.meta.get("piguard_internal") or isinstance(exception, IgnoreRequest):
            return None
        record_failure(self.state, request, exception)
        return None


def failure_kind(exception: BaseException) -> str:
    """A short, value-free name for why a request produced no page."""
    kind = type(exception).__name__
    text = str(exception).lower()
    cause = type(exception.__cause__).__name__ if exception.__cause__ is not None else ""
    if (
        kind in ("DownloadCancelledError", "CancelledError")
        or "MaxSize" in cause
        or any(w in text for w in ("max size", "maxsize", "larger than"))
    ):
        return "size_cap_exceeded"
    if "max redirections" in text or ("redirect" in text and "loop" in text):
        return "redirect_limit"
    if "non-http" in text or ("redirect" in text and "scheme" in text):
        return "redirect_not_http"
    if kind == "IgnoreRequest":
        return "ignored"
    return kind


def record_failure(state: CrawlState, request: Request, exception: BaseException) -> None:
    """Record a request that ended without a page, once (a middleware may already have recorded it)."""
    if request.meta.get("piguard_recorded") or request.meta.get("piguard_internal"):
        return
    redirects = request.meta.get("redirect_urls") or []
    record_outcome(
        state,
        request,
        {
            "url": redirects[0] if redirects else request.url,
            "final_url": request.url,
            "outcome": "error",
            "error": failure_kind(exception),
            "stored": False,
            "robots": request.meta.get("piguard_robots"),
            "fetched_at": request.meta.get("piguard_fetched_at"),
        },
    )


def _reactor() -> Any:
    # Imported on use: importing twisted.internet.reactor at module level would install the default
    # reactor before Scrapy installs the one its settings ask for.
    from twisted.internet import reactor

    return reactor

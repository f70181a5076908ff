"""``piguard crawl URL... --out DIR --user-agent "bot/1.0 (+https://...)"``: a lawful crawl without a Scrapy
project. Pages land in DIR/pages, provenance in DIR/provenance.jsonl, the summary in DIR/summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from piguard.crawl.pifilter import PolicyError
from piguard.crawl.state import CrawlConfigError


def crawl(
    urls: list[str] = typer.Argument(..., help="Start URLs (http or https)."),
    out: Path = typer.Option(..., "--out", help="Output directory (pages/, provenance.jsonl, summary.json)."),
    user_agent: str = typer.Option(
        ...,
        "--user-agent",
        help="Your crawler's honest user agent with a contact URL: 'bot/1.0 (+https://...)'.",
    ),
    max_pages: int = typer.Option(
        0, "--max-pages", min=0, help="Stop after this many responses (0: no limit)."
    ),
    max_depth: int = typer.Option(3, "--max-depth", min=0, help="Link depth to follow from the start URLs."),
    no_follow: bool = typer.Option(False, "--no-follow", help="Fetch only the given URLs."),
    min_delay: float = typer.Option(
        1.0, "--min-delay", min=0.0, help="Minimum seconds between requests to one host."
    ),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1, help="Seconds before a request is abandoned."),
    max_bytes: int = typer.Option(16 * 1024 * 1024, "--max-bytes", min=1, help="Size cap per response."),
    tdm_licence: str | None = typer.Option(
        None,
        "--tdm-licence",
        help="Licence that covers pages reserved for text and data mining (stored then).",
    ),
    pi_policy: str | None = typer.Option(
        None,
        "--pi-policy",
        help="Per-entity action, e.g. 'PHONE_NUMBER=drop,IP_ADDRESS=mask' (drop|mask|keep).",
    ),
    pi_entities: str | None = typer.Option(
        None, "--pi-entities", help="Which detectors run: 'all' (default), 'structured', or 'A,B,...'."
    ),
    redis_url: str | None = typer.Option(
        None, "--redis", help="Distributed mode: shared queue (scrapy-redis) and per-host rate in Redis."
    ),
    redis_key: str = typer.Option("piguard", "--redis-key", help="Distributed mode: Redis key prefix."),
    worker: str | None = typer.Option(None, "--worker", help="Worker id (distributed mode: file suffix)."),
    log_level: str = typer.Option(
        "WARNING", "--log-level", help="Log level of DIR/crawl.log: CRITICAL, ERROR, WARNING, INFO or DEBUG."
    ),
    allow_private: bool = typer.Option(
        False,
        "--allow-private",
        help="Also fetch private, loopback and link-local addresses that links or redirects lead to "
        "(the start URLs' own hosts are always allowed).",
    ),
    max_retry_after: float = typer.Option(
        120.0,
        "--max-retry-after",
        help="Longest Retry-After (seconds) to wait for; a host asking for more is left alone for the rest "
        "of the crawl and its URLs recorded as deferred.",
    ),
) -> None:
    """Crawl lawfully: RFC 9309 robots.txt, opt-out signals, no bypass, PI filtered before storing.

    Exit codes: 0 every URL decided without error, 2 usage or the crawl could not run, 3 finished with
    errors (unreachable hosts, timeouts, size caps: see errors_by_kind), 130 interrupted."""
    from piguard._extras import MissingExtra, require

    try:
        require("scrapy", "crawl", "piguard crawl")
    except MissingExtra as exc:
        typer.echo(f"piguard crawl: {exc}", err=True)
        raise typer.Exit(2) from None
    from piguard.crawl.runner import crawl_settings, run_crawl

    bad = [u for u in urls if not _http_url(u)]
    if bad:
        typer.echo(f"piguard crawl: not an http(s) URL with a host: {bad[0]}", err=True)
        raise typer.Exit(2)
    try:
        settings = crawl_settings(
            out,
            user_agent,
            max_pages=max_pages,
            min_delay=min_delay,
            timeout=timeout,
            max_bytes=max_bytes,
            licence=tdm_licence,
            pi_policy=pi_policy,
            pi_entities=pi_entities,
            redis_url=redis_url,
            worker=worker,
            max_depth=max_depth,
            redis_key=redis_key,
            log_level=log_level,
            extra={
                "PIGUARD_ALLOW_PRIVATE": allow_private,
                "PIGUARD_MAX_RETRY_AFTER": max(0.0, max_retry_after),
            },
        )
    except (CrawlConfigError, PolicyError) as exc:
        typer.echo(f"piguard crawl: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        typer.echo(f"piguard crawl: cannot create {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    summary = run_crawl(urls, settings, follow=not no_follow)
    summary.pop("robots", None)
    typer.echo(json.dumps(summary, ensure_ascii=False, indent=1))
    if "error" in summary:
        typer.echo(f"piguard crawl: {summary['error']}", err=True)
        raise typer.Exit(2)
    if summary.get("interrupted"):
        raise typer.Exit(130)
    if summary.get("errors"):
        kinds = ", ".join(f"{k} {v}" for k, v in summary.get("errors_by_kind", {}).items())
        typer.echo(
            f"piguard crawl: {summary['errors']} URL(s) failed ({kinds}); see provenance.jsonl", err=True
        )
        raise typer.Exit(3)


def _http_url(url: str) -> bool:
    """An http(s) URL the spider can split: 'https://[::1' passed a prefix test and then crashed the crawl
    process (urlsplit: Invalid IPv6 URL) with a traceback."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        _ = parts.port  # a port past 65535 raises here too
        return url.startswith(("http://", "https://")) and bool(parts.hostname)
    except ValueError:
        return False


def register(app: typer.Typer) -> None:
    app.command("crawl")(crawl)

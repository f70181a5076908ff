"""The crawler against real HTTP servers on 127.0.0.1; the servers' own access logs are the evidence.

Each crawl runs ``piguard crawl`` in a child process (Twisted's reactor cannot restart in-process).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from siteserver import Handler, SiteServer, html, text

from schema_check import assert_crawl_outputs_valid, assert_valid, schema_errors

PIGUARD = str(Path(sys.executable).parent / "piguard")
UA = "piguard-testbot/1.0 (+https://example.org/piguard-testbot)"
ROBOTS = "User-agent: *\nDisallow: /private\nDisallow: /*.php$\n\nUser-agent: otherbot\nDisallow: /\n"
PI_PAGE = "<p>客户电话 13812345678，邮箱 zhang.san@example.com，身份证 11010519491231002X</p>"


def crawl(
    urls: list[str], out: Path, *args: str, timeout: float = 60
) -> tuple[int, dict[str, Any], list[dict]]:
    cmd = [PIGUARD, "crawl", *urls, "--out", str(out), "--user-agent", UA, "--min-delay", "0", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert "Warning" not in res.stderr, res.stderr[-3000:]  # a library's deprecation notice reached users
    summary = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
    prov_file = out / "provenance.jsonl"
    prov = [json.loads(x) for x in prov_file.read_text().splitlines()] if prov_file.exists() else []
    assert_crawl_outputs_valid(out, summary, prov)  # src/piguard/schemas/crawl-*.schema.json
    return res.returncode, summary, prov


def by_path(prov: list[dict], base: str) -> dict[str, dict]:
    return {r["url"].removeprefix(base): r for r in prov}


def stored_texts(out: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((out / "pages").glob("*.txt")))


def _main_routes() -> dict[str, Any]:
    links = " ".join(
        f'<a href="{p}">{p}</a>'
        for p in (
            "/pi",
            "/private/secret",
            "/doc.php",
            "/login",
            "/captcha",
            "/paywall",
            "/401",
            "/403",
            "/429",
            "/503",
            "/tdm-meta",
            "/tdm-header",
            "/reserved/a",
            "/noai",
            "/noindex",
            "/gbk",
        )
    )
    return {
        "/robots.txt": text(200, ROBOTS),
        "/.well-known/tdmrep.json": (
            200,
            {"Content-Type": "application/json"},
            b'[{"location": "/reserved/*", "tdm-reservation": 1, '
            b'"tdm-policy": "https://example.org/policy"}]',
        ),
        "/": (200, {"Set-Cookie": "session=abc; Path=/"}, f"<html><body>{links}</body></html>".encode()),
        "/pi": html(PI_PAGE),
        "/private/secret": html("SECRET-PRIVATE"),
        "/doc.php": text(200, "SECRET-PDF"),
        "/login": html('<form action="/session/login"><input type="password" name="pw"></form>LOGIN-WALL'),
        "/captcha": html('<div class="g-recaptcha" data-sitekey="x"></div>CAPTCHA-PAGE'),
        "/paywall": html(
            '<script type="application/ld+json">{"isAccessibleForFree": false}</script>PAYWALLED'
        ),
        "/401": (401, {"WWW-Authenticate": "Basic"}, b"AUTH-REQUIRED"),
        "/403": (403, {}, b"FORBIDDEN"),
        "/429": (429, {"Retry-After": "1"}, b"RATE-LIMITED"),
        "/503": (503, {"Retry-After": "1"}, b"UNAVAILABLE"),
        "/tdm-meta": html("TDM-META-RESERVED", '<meta name="tdm-reservation" content="1">'),
        "/tdm-header": (
            200,
            {"Content-Type": "text/html", "tdm-reservation": "1"},
            b"<p>TDM-HEADER-RESERVED</p>",
        ),
        "/reserved/a": html("TDM-FILE-RESERVED"),
        "/noai": (200, {"Content-Type": "text/html", "X-Robots-Tag": "noai, noimageai"}, b"<p>NOAI-PAGE</p>"),
        "/noindex": html("NOINDEX-PAGE", '<meta name="robots" content="noindex">'),
        "/gbk": (200, {"Content-Type": "text/html; charset=gbk"}, "<p>中文页面 GBK-PAGE</p>".encode("gbk")),
    }


@pytest.fixture(scope="module")
def main_crawl(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("main") / "out"
    with SiteServer(_main_routes()) as srv:
        rc, summary, prov = crawl([srv.base + "/"], out)
        log = list(srv.log)
    return {"rc": rc, "summary": summary, "prov": prov, "log": log, "out": out, "base": srv.base}


def test_zero_requests_to_disallowed_urls(main_crawl: dict) -> None:
    paths = [h.path for h in main_crawl["log"]]
    assert main_crawl["rc"] == 0
    assert "/pi" in paths  # the crawl did run
    assert not [p for p in paths if p.startswith("/private") or p.endswith(".php")]
    refused = {
        r["url"].removeprefix(main_crawl["base"])
        for r in main_crawl["prov"]
        if r["outcome"] == "refused_robots"
    }
    assert refused == {"/private/secret", "/doc.php"}


def test_protected_pages_recorded_never_retried_never_stored(main_crawl: dict) -> None:
    paths = [h.path for h in main_crawl["log"]]
    recs = by_path(main_crawl["prov"], main_crawl["base"])
    expected = {
        "/login": "login_wall",
        "/captcha": "captcha",
        "/paywall": "paywall",
        "/401": "auth_required",
        "/403": "forbidden",
        "/429": "rate_limited",
        "/503": "unavailable",
    }
    for path, kind in expected.items():
        assert paths.count(path) == 1, f"{path} requested {paths.count(path)} times"
        assert recs[path]["outcome"] == "protected" and recs[path]["protection"] == kind
        assert recs[path]["stored"] is False
    assert recs["/429"]["retry_after"] == 1.0
    # Retry-After honoured: nothing else went to the host for a second after the 429 and after the 503.
    log = main_crawl["log"]
    for path in ("/429", "/503"):
        i = next(i for i, h in enumerate(log) if h.path == path)
        if i + 1 < len(log):
            assert log[i + 1].t - log[i].t >= 0.95, path
    stored = stored_texts(main_crawl["out"])
    for marker in ("LOGIN-WALL", "CAPTCHA-PAGE", "PAYWALLED", "AUTH-REQUIRED", "FORBIDDEN", "RATE-LIMITED"):
        assert marker not in stored
    assert main_crawl["summary"]["protected"] == 7


def test_tdm_reserved_pages_not_stored(main_crawl: dict) -> None:
    recs = by_path(main_crawl["prov"], main_crawl["base"])
    assert recs["/tdm-meta"]["signals"]["tdm_source"] == "meta"
    assert recs["/tdm-header"]["signals"]["tdm_source"] == "header"
    assert recs["/reserved/a"]["signals"]["tdm_source"] == "tdmrep.json"
    assert recs["/reserved/a"]["signals"]["tdm_policy"] == "https://example.org/policy"
    assert recs["/noai"]["signals"]["robots_directives"] == ["noai", "noimageai"]
    for p in ("/tdm-meta", "/tdm-header", "/reserved/a", "/noai"):
        assert recs[p]["outcome"] == "reserved" and not recs[p]["stored"]
    stored = stored_texts(main_crawl["out"])
    for marker in ("TDM-META-RESERVED", "TDM-HEADER-RESERVED", "TDM-FILE-RESERVED", "NOAI-PAGE"):
        assert marker not in stored
    # noindex is recorded but is not a mining reservation: the page is stored.
    assert recs["/noindex"]["outcome"] == "stored" and recs["/noindex"]["signals"]["robots_directives"] == [
        "noindex"
    ]
    assert main_crawl["summary"]["reserved"] == 4


def test_pi_masked_at_ingest_and_counted_without_values(main_crawl: dict) -> None:
    rec = by_path(main_crawl["prov"], main_crawl["base"])["/pi"]
    page = (main_crawl["out"] / rec["path"]).read_text()
    assert (
        "13812345678" not in page and "zhang.san@example.com" not in page and "11010519491231002X" not in page
    )
    assert "138****5678" in page
    assert rec["pi"]["masked"] == {"CN_RESIDENT_ID": 1, "EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}
    everything = "".join(p.read_text(errors="replace") for p in main_crawl["out"].rglob("*") if p.is_file())
    assert "13812345678" not in everything and "zhang.san@example.com" not in everything
    assert main_crawl["summary"]["pi_removed_by_entity"]["PHONE_NUMBER"] == 1


def test_provenance_fields_and_robots_hash(main_crawl: dict) -> None:
    rec = by_path(main_crawl["prov"], main_crawl["base"])["/pi"]
    body = (main_crawl["out"] / rec["path"]).read_bytes()
    assert rec["robots"]["sha256"] == hashlib.sha256(ROBOTS.encode()).hexdigest()
    assert rec["robots"]["allowed"] is True and rec["status"] == 200
    assert rec["stored_sha256"] == hashlib.sha256(body).hexdigest()
    assert len(rec["content_sha256"]) == 64 and rec["fetched_at"] > 0
    assert rec["final_url"].endswith("/pi")
    gbk = by_path(main_crawl["prov"], main_crawl["base"])["/gbk"]
    assert "中文页面" in (main_crawl["out"] / gbk["path"]).read_text()


def test_honest_client_one_agent_no_cookies(main_crawl: dict) -> None:
    assert {h.user_agent for h in main_crawl["log"]} == {UA}
    assert all(h.cookie is None for h in main_crawl["log"])  # the Set-Cookie from / is never sent back
    assert not list(main_crawl["out"].rglob(".*.tmp"))  # no half-written files left


def test_outputs_match_their_schemas_and_broken_ones_do_not(main_crawl: dict) -> None:
    """crawl() validated every output against src/piguard/schemas/crawl-*.schema.json; here the schemas are
    shown to catch a broken record or summary (a copy of this crawl's, spoiled one way at a time)."""
    prov, summary = main_crawl["prov"], main_crawl["summary"]
    assert {r["outcome"] for r in prov} >= {"stored", "refused_robots", "protected", "reserved"}
    saved = json.loads((main_crawl["out"] / "summary.json").read_text())
    assert_valid("crawl-summary", saved)
    assert set(saved["robots"]) == {main_crawl["base"]}  # summary.json keeps robots.txt per origin
    stored = next(r for r in prov if r["outcome"] == "stored")
    protected = next(r for r in prov if r["outcome"] == "protected")
    spoiled_records = [
        {k: v for k, v in stored.items() if k != "path"},  # a stored page whose file is not named
        {**protected, "path": stored["path"]},  # a page on disk for a record that says not stored
        {**protected, "protection": None},
        {**stored, "outcome": "harvested"},
        {**stored, "content_sha256": "not-a-hash"},
        {**stored, "pi": {**stored["pi"], "masked": {"PHONE_NUMBER": "13812345678"}}},  # a value, not a count
        {k: v for k, v in stored.items() if k != "url"},
    ]
    for record in spoiled_records:
        assert schema_errors("crawl-provenance", record), record
    spoiled_summaries = [
        {k: v for k, v in summary.items() if k != "pi_policy"},
        {**summary, "errors": -1},
        {**summary, "protected_by_kind": {"bypassed": 1}},
        {**summary, "pi_policy": {**summary["pi_policy"], "overrides": {"PHONE_NUMBER": "publish"}}},
        {**summary, "error": ""},
    ]
    for doc in spoiled_summaries:
        assert schema_errors("crawl-summary", doc), doc


def _hang(h: Handler) -> None:
    time.sleep(4)  # longer than the crawl's --timeout


def _huge(h: Handler) -> None:
    # Streams without a Content-Length, far past the crawl's 64 KiB cap (a stand-in for a 1 GB body).
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Connection", "close")
    h.end_headers()
    chunk = b"<p>" + b"x" * 1021 + b"</p>"
    try:
        for _ in range(4096):
            h.wfile.write(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass


def _robots_edge_sites() -> dict[str, dict[str, Any]]:
    redirects: dict[str, Any] = {f"/r{i}": (301, {"Location": f"/r{i + 1}"}, b"") for i in range(1, 5)}
    big = (
        b"User-agent: *\nDisallow: /secret\n\xff\xfe garbage \x00\n" + b"# filler line\n" * 250_000
    )  # ~3.5 MB
    big += b"Disallow: /late\n"  # beyond 500 KiB: not parsed
    return {
        "r503": {"/robots.txt": text(503, "down"), "/": html('<a href="/a">a</a>'), "/a": html("a")},
        "r404": {
            "/robots.txt": text(404, "none"),
            "/": html('<a href="/private/a">a</a>'),
            "/private/a": html("ok"),
        },
        "redirect": {
            **redirects,
            "/robots.txt": (301, {"Location": "/r1"}, b""),
            "/r5": text(200, "User-agent: *\nDisallow: /blocked\n"),
            "/": html('<a href="/blocked">b</a><a href="/ok">o</a>'),
            "/ok": html("ok"),
            "/blocked": html("no"),
        },
        "loop": {
            "/robots.txt": (302, {"Location": "/loop"}, b""),
            "/loop": (302, {"Location": "/robots.txt"}, b""),
            "/": html("never"),
        },
        "big": {
            "/robots.txt": (200, {"Content-Type": "text/plain"}, big),
            "/": html('<a href="/secret/x">s</a><a href="/late">l</a>'),
            "/late": html("late"),
        },
        "unanswered": {"/robots.txt": _hang, "/": html("never")},
        "flaky": {"/robots.txt": text(200, ""), "/": (500, {}, b"<p>server error</p>")},
        "edge": {
            "/robots.txt": text(200, "User-agent: *\nAllow: /\n"),
            "/": html('<a href="/slow">s</a><a href="/fast">f</a><a href="/huge">h</a><a href="/bad">b</a>'),
            "/slow": _hang,
            "/fast": html("fast"),
            "/huge": _huge,
            "/bad": (
                200,
                {"Content-Type": "text/html; charset=utf-8"},
                b"<p>\xff\xfe broken <b><i></p></div>",
            ),
        },
    }


@pytest.fixture(scope="module")
def edge_crawl(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One crawl over seven servers (seven origins), each misbehaving in its own way."""
    out = tmp_path_factory.mktemp("edge") / "out"
    servers = {name: SiteServer(routes) for name, routes in _robots_edge_sites().items()}
    for srv in servers.values():
        srv.__enter__()
    try:
        t0 = time.monotonic()
        rc, summary, prov = crawl(
            [srv.base + "/" for srv in servers.values()], out, "--timeout", "1", "--max-bytes", "65536"
        )
        took = time.monotonic() - t0
    finally:
        for srv in servers.values():
            srv.__exit__()
    recs = {
        (name, r["url"].removeprefix(srv.base)): r
        for name, srv in servers.items()
        for r in prov
        if r["url"].startswith(srv.base + "/")
    }
    return {
        "rc": rc,
        "summary": summary,
        "recs": recs,
        "logs": {n: s.paths() for n, s in servers.items()},
        "hits": {n: list(s.log) for n, s in servers.items()},
        "out": out,
        "took": took,
    }


def test_robots_503_nothing_fetched(edge_crawl: dict) -> None:
    assert edge_crawl["logs"]["r503"] == ["/robots.txt"]
    rec = edge_crawl["recs"][("r503", "/")]
    assert rec["outcome"] == "refused_robots" and rec["robots"]["kind"] == "unreachable"
    assert rec["robots"]["status"] == 503


def test_robots_404_allows_all(edge_crawl: dict) -> None:
    assert "/private/a" in edge_crawl["logs"]["r404"]
    rec = edge_crawl["recs"][("r404", "/private/a")]
    assert rec["outcome"] == "stored" and rec["robots"]["kind"] == "unavailable"


def test_robots_redirects_followed_five_hops(edge_crawl: dict) -> None:
    paths = edge_crawl["logs"]["redirect"]
    assert paths[:6] == ["/robots.txt", "/r1", "/r2", "/r3", "/r4", "/r5"]
    assert "/ok" in paths and "/blocked" not in paths
    assert edge_crawl["recs"][("redirect", "/blocked")]["outcome"] == "refused_robots"


def test_robots_redirect_loop_is_disallow_all(edge_crawl: dict) -> None:
    paths = edge_crawl["logs"]["loop"]
    assert "/" not in paths and len(paths) == 6  # the first request + 5 redirects followed, then stop
    assert edge_crawl["recs"][("loop", "/")]["robots"]["error"] == "too_many_redirects"


def test_oversized_and_malformed_robots(edge_crawl: dict) -> None:
    paths = edge_crawl["logs"]["big"]
    assert "/secret/x" not in paths and "/late" in paths
    assert edge_crawl["recs"][("big", "/late")]["robots"]["truncated"] is True


def test_robots_unanswered_is_disallow_all(edge_crawl: dict) -> None:
    assert edge_crawl["logs"]["unanswered"] == ["/robots.txt"]
    assert edge_crawl["recs"][("unanswered", "/")]["robots"]["kind"] == "unreachable"


def test_timeouts_bounded_and_recorded(edge_crawl: dict) -> None:
    recs = edge_crawl["recs"]
    # Timeouts are errors of the crawl: it finishes, and says so with exit code 3.
    assert edge_crawl["rc"] == 3 and edge_crawl["took"] < 45
    assert recs[("edge", "/slow")]["outcome"] == "error" and "Timeout" in recs[("edge", "/slow")]["error"]
    assert recs[("edge", "/fast")]["outcome"] == "stored"


def test_5xx_retried_with_exponential_backoff(edge_crawl: dict) -> None:
    hits = [h for h in edge_crawl["hits"]["flaky"] if h.path == "/"]
    assert len(hits) == 3  # the first try + RETRY_TIMES=2, then recorded as an HTTP error
    gaps = [b.t - a.t for a, b in pairwise(hits)]
    assert gaps[0] >= 0.95 and gaps[1] >= 1.95, gaps  # 0.5 s doubled per consecutive 5xx
    assert edge_crawl["recs"][("flaky", "/")]["outcome"] == "http_error"


def test_size_cap_guards_huge_response(edge_crawl: dict) -> None:
    rec = edge_crawl["recs"][("edge", "/huge")]
    assert rec["outcome"] == "error" and rec["error"] == "size_cap_exceeded"
    assert all("xxxxxxxx" not in p.read_text() for p in (edge_crawl["out"] / "pages").glob("*.txt"))


def test_invalid_html_and_bytes_still_stored(edge_crawl: dict) -> None:
    rec = edge_crawl["recs"][("edge", "/bad")]
    assert rec["outcome"] == "stored" and "broken" in (edge_crawl["out"] / rec["path"]).read_text()
    assert not list(edge_crawl["out"].rglob(".*.tmp"))


def test_crawl_delay_honoured(tmp_path: Path) -> None:
    links = "".join(f'<a href="/p{i}">{i}</a>' for i in range(5))
    routes: dict[str, Any] = {"/robots.txt": text(200, "User-agent: *\nCrawl-delay: 0.3\n"), "/": html(links)}
    routes.update({f"/p{i}": html(f"page {i}") for i in range(5)})
    with SiteServer(routes) as srv:
        crawl([srv.base + "/"], tmp_path / "o")
        times = [h.t for h in srv.log if h.path != "/robots.txt" and not h.path.startswith("/.well-known")]
    assert len(times) == 6
    gaps = [b - a for a, b in pairwise(times)]
    assert min(gaps) >= 0.28, gaps


def test_licence_and_pi_policy_options(tmp_path: Path) -> None:
    routes = {
        "/robots.txt": text(200, ""),
        "/": html('LICENSED-RESERVED <a href="/pi">pi</a>', '<meta name="tdm-reservation" content="1">'),
        "/pi": html(PI_PAGE),
    }
    with SiteServer(routes) as srv:
        _rc, summary, prov = crawl(
            [srv.base + "/"],
            tmp_path / "o",
            "--tdm-licence",
            "contract 2026-17",
            "--pi-policy",
            "PHONE_NUMBER=drop,EMAIL_ADDRESS=keep",
        )
    recs = by_path(prov, srv.base)
    assert summary["pages_stored"] == 2 and recs["/"]["tdm_licence"] == "contract 2026-17"
    assert "LICENSED-RESERVED" in (tmp_path / "o" / recs["/"]["path"]).read_text()
    page = (tmp_path / "o" / recs["/pi"]["path"]).read_text()
    assert "138" not in page and "zhang.san@example.com" in page and "11010519491231002X" not in page
    assert recs["/pi"]["pi"]["dropped"] == {"PHONE_NUMBER": 1} and recs["/pi"]["pi"]["kept"] == {
        "EMAIL_ADDRESS": 1
    }


@pytest.mark.parametrize(
    "ua,why",
    [
        ("", "required"),
        ("Mozilla/5.0 (Windows NT 10.0) Chrome/120", "product token"),
        ("mybot/1.0", "contact"),
    ],
)
def test_refuses_to_start_without_honest_user_agent(tmp_path: Path, ua: str, why: str) -> None:
    with SiteServer({}) as srv:
        res = subprocess.run(
            [PIGUARD, "crawl", srv.base + "/", "--out", str(tmp_path), "--user-agent", ua],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert srv.paths() == []
    assert res.returncode == 2 and why in res.stderr and "Traceback" not in res.stderr

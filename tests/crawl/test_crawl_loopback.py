"""The crawler against real HTTP servers on 127.0.0.1; the servers' own access logs are the evidence.

Each crawl runs ``piguard crawl`` in a child process (Twisted's reactor cannot restart in-process).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from siteserver import Handler, SiteServer, html, text

PIGUARD = str(Path(sys.executable).parent / "piguard")
UA = "piguard-testbot/1.0 (+https://example.org/piguard-testbot)"
ROBOTS = "User-agent: *\nDisallow: /private\nDisallow: /*.php$\n\nUser-agent: otherbot\nDisallow: /\n"
PI_PAGE = "<p>客户电话 13812345678，邮箱 zhang.san@example.com，身份证 11010519491231002X</p>"


def crawl(urls: list[str], out: Path, *args: str, timeout: float = 60) -> tuple[int, dict[str, Any], list[dict]]:
    cmd = [PIGUARD, "crawl", *urls, "--out", str(out), "--user-agent", UA, "--min-delay", "0", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    summary = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
    prov_file = out / "provenance.jsonl"
    prov = [json.loads(x) for x in prov_file.read_text().splitlines()] if prov_file.exists() else []
    return res.returncode, summary, prov


def by_path(prov: list[dict], base: str) -> dict[str, dict]:
    return {r["url"].removeprefix(base): r for r in prov}


def stored_texts(out: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((out / "pages").glob("*.txt")))


def _main_routes() -> dict[str, Any]:
    links = " ".join(
        f'<a href="{p}">{p}</a>'
        for p in (
            "/pi", "/private/secret", "/doc.php", "/login", "/captcha", "/paywall", "/401", "/403", "/429",
            "/503", "/tdm-meta", "/tdm-header", "/reserved/a", "/noai", "/noindex", "/gbk",
        )
    )  # fmt: skip
    return {
        "/robots.txt": text(200, ROBOTS),
        "/.well-known/tdmrep.json": (200, {"Content-Type": "application/json"},
                                     b'[{"location": "/reserved/*", "tdm-reservation": 1, '
                                     b'"tdm-policy": "https://example.org/policy"}]'),  # fmt: skip
        "/": (200, {"Set-Cookie": "session=abc; Path=/"}, f"<html><body>{links}</body></html>".encode()),
        "/pi": html(PI_PAGE),
        "/private/secret": html("SECRET-PRIVATE"),
        "/doc.php": text(200, "SECRET-PDF"),
        "/login": html('<form action="/session/login"><input type="password" name="pw"></form>LOGIN-WALL'),
        "/captcha": html('<div class="g-recaptcha" data-sitekey="x"></div>CAPTCHA-PAGE'),
        "/paywall": html('<script type="application/ld+json">{"isAccessibleForFree": false}</script>PAYWALLED'),
        "/401": (401, {"WWW-Authenticate": "Basic"}, b"AUTH-REQUIRED"),
        "/403": (403, {}, b"FORBIDDEN"),
        "/429": (429, {"Retry-After": "1"}, b"RATE-LIMITED"),
        "/503": (503, {"Retry-After": "1"}, b"UNAVAILABLE"),
        "/tdm-meta": html("TDM-META-RESERVED", '<meta name="tdm-reservation" content="1">'),
        "/tdm-header": (200, {"Content-Type": "text/html", "tdm-reservation": "1"}, b"<p>TDM-HEADER-RESERVED</p>"),
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
    refused = {r["url"].removeprefix(main_crawl["base"]) for r in main_crawl["prov"] if r["outcome"] == "refused_robots"}
    assert refused == {"/private/secret", "/doc.php"}


def test_protected_pages_recorded_never_retried_never_stored(main_crawl: dict) -> None:
    paths = [h.path for h in main_crawl["log"]]
    recs = by_path(main_crawl["prov"], main_crawl["base"])
    expected = {"/login": "login_wall", "/captcha": "captcha", "/paywall": "paywall", "/401": "auth_required",
                "/403": "forbidden", "/429": "rate_limited", "/503": "unavailable"}  # fmt: skip
    for path, kind in expected.items():
        assert paths.count(path) == 1, f"{path} requested {paths.count(path)} times"
        assert recs[path]["outcome"] == "protected" and recs[path]["protection"] == kind
        assert recs[path]["stored"] is False
    assert recs["/429"]["retry_after"] == 1.0
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
    assert recs["/noindex"]["outcome"] == "stored" and recs["/noindex"]["signals"]["robots_directives"] == ["noindex"]
    assert main_crawl["summary"]["reserved"] == 4


def test_pi_masked_at_ingest_and_counted_without_values(main_crawl: dict) -> None:
    rec = by_path(main_crawl["prov"], main_crawl["base"])["/pi"]
    page = (main_crawl["out"] / rec["path"]).read_text()
    assert "13812345678" not in page and "zhang.san@example.com" not in page and "11010519491231002X" not in page
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


def test_robots_503_nothing_fetched(tmp_path: Path) -> None:
    routes = {"/robots.txt": text(503, "down"), "/": html('<a href="/a">a</a>')}
    with SiteServer(routes) as srv:
        rc, summary, prov = crawl([srv.base + "/", srv.base + "/a"], tmp_path / "o")
        assert srv.paths() == ["/robots.txt"]
    assert rc == 0 and summary["refused_robots"] == 2 and summary["pages_stored"] == 0
    assert {r["robots"]["kind"] for r in prov} == {"unreachable"}


def test_robots_404_allows_all(tmp_path: Path) -> None:
    routes = {"/robots.txt": text(404, "none"), "/": html('<a href="/private/a">a</a>'), "/private/a": html("ok")}
    with SiteServer(routes) as srv:
        rc, summary, prov = crawl([srv.base + "/"], tmp_path / "o")
        assert "/private/a" in srv.paths()
    assert summary["pages_stored"] == 2 and {r["robots"]["kind"] for r in prov} == {"unavailable"}


def test_robots_redirects_followed_five_hops(tmp_path: Path) -> None:
    routes: dict[str, Any] = {f"/r{i}": (301, {"Location": f"/r{i + 1}"}, b"") for i in range(1, 5)}
    routes["/robots.txt"] = (301, {"Location": "/r1"}, b"")
    routes["/r5"] = text(200, "User-agent: *\nDisallow: /blocked\n")
    routes["/"] = html('<a href="/blocked">b</a><a href="/ok">o</a>')
    routes["/ok"] = html("ok")
    with SiteServer(routes) as srv:
        _rc, summary, _prov = crawl([srv.base + "/"], tmp_path / "o")
        paths = srv.paths()
    assert "/r5" in paths and "/ok" in paths and "/blocked" not in paths
    assert summary["refused_robots"] == 1


def test_robots_redirect_loop_is_disallow_all(tmp_path: Path) -> None:
    routes = {"/robots.txt": (302, {"Location": "/loop"}, b""), "/loop": (302, {"Location": "/robots.txt"}, b""),
              "/": html("never")}  # fmt: skip
    with SiteServer(routes) as srv:
        _rc, summary, prov = crawl([srv.base + "/"], tmp_path / "o")
        paths = srv.paths()
    assert "/" not in paths and len(paths) == 6  # the original request + 5 redirects, then stop
    assert prov[0]["robots"]["error"] == "too_many_redirects" and summary["pages_stored"] == 0


def test_oversized_and_malformed_robots(tmp_path: Path) -> None:
    big = b"User-agent: *\nDisallow: /secret\n\xff\xfe garbage \x00\n" + b"# filler line\n" * 250_000  # ~3.5 MB
    big += b"Disallow: /late\n"  # beyond 500 KiB: not parsed
    routes = {"/robots.txt": (200, {"Content-Type": "text/plain"}, big),
              "/": html('<a href="/secret/x">s</a><a href="/late">l</a>'), "/late": html("late")}  # fmt: skip
    with SiteServer(routes) as srv:
        _rc, summary, prov = crawl([srv.base + "/"], tmp_path / "o")
        paths = srv.paths()
    assert "/secret/x" not in paths and "/late" in paths
    rec = next(r for r in prov if r["url"].endswith("/late"))
    assert rec["robots"]["truncated"] is True and summary["pages_stored"] == 2


def _hang(h: Handler) -> None:
    time.sleep(5)  # longer than the crawl's --timeout


def test_timeouts_bounded_and_recorded(tmp_path: Path) -> None:
    routes = {"/robots.txt": text(200, "User-agent: *\nAllow: /\n"), "/": html('<a href="/slow">s</a><a href="/fast">f</a>'),
              "/slow": _hang, "/fast": html("fast")}  # fmt: skip
    with SiteServer(routes) as srv:
        t0 = time.monotonic()
        rc, summary, prov = crawl([srv.base + "/"], tmp_path / "o", "--timeout", "1")
        took = time.monotonic() - t0
    recs = by_path(prov, srv.base)
    assert rc == 0 and recs["/slow"]["outcome"] == "error" and "Timeout" in recs["/slow"]["error"]
    assert recs["/fast"]["outcome"] == "stored" and took < 20


def test_robots_unanswered_is_disallow_all(tmp_path: Path) -> None:
    routes = {"/robots.txt": _hang, "/": html("never")}
    with SiteServer(routes) as srv:
        _rc, summary, prov = crawl([srv.base + "/"], tmp_path / "o", "--timeout", "1")
        assert srv.paths() == ["/robots.txt"]
    assert summary["refused_robots"] == 1 and prov[0]["robots"]["kind"] == "unreachable"


def test_size_cap_guards_huge_response(tmp_path: Path) -> None:
    chunk = b"<p>" + b"x" * 1021 + b"</p>"

    def huge(h: Handler) -> None:
        # Claims 1 GB without a Content-Length (chunk-free streaming); the crawler must cut it off.
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            for _ in range(4096):  # up to 4 MB, far over the 64 KiB cap
                h.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    routes = {"/robots.txt": text(200, ""), "/": html('<a href="/huge">h</a><a href="/small">s</a>'),
              "/huge": huge, "/small": html("small")}  # fmt: skip
    with SiteServer(routes) as srv:
        rc, _summary, prov = crawl([srv.base + "/"], tmp_path / "o", "--max-bytes", "65536")
    recs = by_path(prov, srv.base)
    assert rc == 0 and recs["/huge"]["outcome"] == "error" and recs["/huge"]["error"] == "size_cap_exceeded"
    assert recs["/small"]["outcome"] == "stored"
    assert all("xxxxxxxx" not in p.read_text() for p in (tmp_path / "o" / "pages").glob("*.txt"))


def test_crawl_delay_honoured(tmp_path: Path) -> None:
    links = "".join(f'<a href="/p{i}">{i}</a>' for i in range(5))
    routes: dict[str, Any] = {"/robots.txt": text(200, "User-agent: *\nCrawl-delay: 0.3\n"), "/": html(links)}
    routes.update({f"/p{i}": html(f"page {i}") for i in range(5)})
    with SiteServer(routes) as srv:
        crawl([srv.base + "/"], tmp_path / "o")
        times = [h.t for h in srv.log if h.path != "/robots.txt" and not h.path.startswith("/.well-known")]
    assert len(times) == 6
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.28, gaps


def test_licence_lets_reserved_pages_be_stored(tmp_path: Path) -> None:
    routes = {"/robots.txt": text(200, ""), "/": html("LICENSED-RESERVED", '<meta name="tdm-reservation" content="1">')}
    with SiteServer(routes) as srv:
        _rc, summary, prov = crawl([srv.base + "/"], tmp_path / "o", "--tdm-licence", "contract 2026-17")
    assert summary["pages_stored"] == 1 and prov[0]["tdm_licence"] == "contract 2026-17"
    assert "LICENSED-RESERVED" in stored_texts(tmp_path / "o")


def test_pi_policy_drop_and_keep(tmp_path: Path) -> None:
    routes = {"/robots.txt": text(200, ""), "/": html(PI_PAGE)}
    with SiteServer(routes) as srv:
        _rc, _s, prov = crawl([srv.base + "/"], tmp_path / "o", "--pi-policy", "PHONE_NUMBER=drop,EMAIL_ADDRESS=keep")
    page = stored_texts(tmp_path / "o")
    assert "138" not in page and "zhang.san@example.com" in page and "11010519491231002X" not in page
    assert prov[0]["pi"]["dropped"] == {"PHONE_NUMBER": 1} and prov[0]["pi"]["kept"] == {"EMAIL_ADDRESS": 1}


@pytest.mark.parametrize(
    "ua,why",
    [("", "required"), ("Mozilla/5.0 (Windows NT 10.0) Chrome/120", "product token"), ("mybot/1.0", "contact")],
)
def test_refuses_to_start_without_honest_user_agent(tmp_path: Path, ua: str, why: str) -> None:
    with SiteServer({}) as srv:
        res = subprocess.run([PIGUARD, "crawl", srv.base + "/", "--out", str(tmp_path), "--user-agent", ua],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert srv.paths() == []
    assert res.returncode == 2 and why in res.stderr and "Traceback" not in res.stderr

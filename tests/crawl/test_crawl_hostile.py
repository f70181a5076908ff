"""Hostile sites and bad options: the crawl never hangs, never leaves its scope or output directory, and no
URL vanishes without a provenance record (each case reproduced from a report of wave 1)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from siteserver import Handler, SiteServer, html, text

from schema_check import assert_crawl_outputs_valid

PIGUARD = str(Path(sys.executable).parent / "piguard")
UA = "piguard-testbot/1.0 (+https://example.org/piguard-testbot)"
ALLOW_ALL = text(200, "User-agent: *\nAllow: /\n")


def run(urls: list[str], out: Path, *args: str, timeout: float = 90) -> tuple[int, str, dict, list[dict]]:
    cmd = [PIGUARD, "crawl", *urls, "--out", str(out), "--user-agent", UA, "--min-delay", "0", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    summary = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
    prov_file = out / "provenance.jsonl"
    prov = [json.loads(x) for x in prov_file.read_text().splitlines()] if prov_file.exists() else []
    assert_crawl_outputs_valid(out, summary, prov)  # src/piguard/schemas/crawl-*.schema.json
    return res.returncode, res.stderr, summary, prov


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_host_is_an_error_and_exit_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/"
    rc, err, summary, prov = run([url], tmp_path / "out", "--timeout", "3")
    assert rc == 3 and summary["errors"] == 1 and "failed" in err
    assert prov[0]["outcome"] == "error" and prov[0]["error"].startswith("host unreachable")


def test_huge_retry_after_leaves_the_host_and_moves_on(tmp_path: Path) -> None:
    links = "".join(f'<a href="/p{i}">p</a>' for i in range(5))
    routes = {
        "/robots.txt": ALLOW_ALL,
        "/": html('<a href="/busy">b</a>' + links),
        "/busy": (429, {"Retry-After": "99999999"}, b"slow down"),
        **{f"/p{i}": html(f"page {i}") for i in range(5)},
    }
    with SiteServer(routes) as srv:
        t0 = time.monotonic()
        rc, _err, summary, prov = run([srv.base + "/"], tmp_path / "out", timeout=60)
        took = time.monotonic() - t0
    outcomes = {r["url"].removeprefix(srv.base): r["outcome"] for r in prov}
    assert took < 45 and rc in (0, 3)
    assert outcomes["/busy"] == "protected"
    deferred = [r for r in prov if r["outcome"] == "deferred"]
    # Pages queued after the 429 are not fetched; each says why.
    assert summary["deferred"] == len(deferred) and all("Retry-After" in r["reason"] for r in deferred)
    assert len(deferred) + sum(o == "stored" for o in outcomes.values()) == 6


def test_redirects_out_of_scope_and_to_private_hosts_are_refused(tmp_path: Path) -> None:
    with SiteServer({"/robots.txt": ALLOW_ALL, "/x": html("elsewhere")}) as other:
        # 'localhost' is a different host from the start URL's 127.0.0.1, and a loopback one.
        routes = {
            "/robots.txt": ALLOW_ALL,
            "/": html('<a href="/away">a</a><a href="/local">l</a>'),
            "/away": (302, {"Location": other.base + "/x"}, b""),
            "/local": (302, {"Location": other.base.replace("127.0.0.1", "localhost") + "/x"}, b""),
        }
        with SiteServer(routes) as srv:
            rc, _err, _summary, prov = run([srv.base + "/"], tmp_path / "out")
        assert other.paths() == []  # nothing fetched from the other host, not even its robots.txt
    refused = {r["redirected_from"].removeprefix(srv.base): r for r in prov if r["outcome"] == "refused"}
    assert set(refused) == {"/away", "/local"} and rc == 0
    assert all("leaves the crawl's hosts" in r["reason"] for r in refused.values())


def test_redirect_loop_non_http_redirect_and_gzip_bomb_are_recorded(tmp_path: Path) -> None:
    bomb = gzip.compress(b"<p>" + b"a" * (8 * 1024 * 1024) + b"</p>", 9)  # 8 MiB in ~8 KiB

    routes = {
        "/robots.txt": ALLOW_ALL,
        "/": html('<a href="/loop1">l</a><a href="/ftp">f</a><a href="/bomb">b</a><a href="/ok">o</a>'),
        "/loop1": (302, {"Location": "/loop2"}, b""),
        "/loop2": (302, {"Location": "/loop1"}, b""),
        "/ftp": (302, {"Location": "ftp://example.org/file"}, b""),
        "/bomb": (200, {"Content-Encoding": "gzip", "Content-Type": "text/html"}, bomb),
        "/ok": html("fine"),
    }
    with SiteServer(routes) as srv:
        rc, _err, summary, prov = run([srv.base + "/"], tmp_path / "out", "--max-bytes", "1048576")
    by_url = {r["url"].removeprefix(srv.base): r for r in prov}
    assert {"/", "/loop1", "/ftp", "/bomb", "/ok"} <= set(by_url)
    assert by_url["/ok"]["outcome"] == "stored"
    assert by_url["/bomb"]["outcome"] == "error" and by_url["/bomb"]["error"] == "size_cap_exceeded"
    assert by_url["/loop1"]["outcome"] == "error"
    assert by_url["/ftp"]["outcome"] in ("error", "refused")
    assert rc == 3 and summary["errors"] >= 2


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--worker", "x/../../escaped"], "worker id"),
        (["--log-level", "LOUD"], "log level"),
        (["--redis", "redis://:s3cret-pass@127.0.0.1:1/0"], "Redis at"),
    ],
)
def test_bad_options_refused_before_anything_starts(tmp_path: Path, args: list[str], why: str) -> None:
    out = tmp_path / "a" / "out"
    rc, err, _summary, _prov = run(["http://127.0.0.1:9/"], out, *args, timeout=30)
    assert rc == 2 and why in err and "s3cret" not in err
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.rglob("*escaped*"))


def test_redis_that_never_answers_fails_fast(tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never says a word
    try:
        t0 = time.monotonic()
        rc, err, _s, _p = run(
            ["http://127.0.0.1:9/"],
            tmp_path / "out",
            "--redis",
            f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
        )
        assert rc == 2 and "Redis at" in err and time.monotonic() - t0 < 30
    finally:
        silent.close()


def test_user_agent_must_be_an_rfc_product_token(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            PIGUARD,
            "crawl",
            "http://127.0.0.1:9/",
            "--out",
            str(tmp_path / "o"),
            "--user-agent",
            "bot2000/1.0 (+https://example.org/bot)",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 2 and "product token" in res.stderr


def _slow(h: Handler) -> None:
    time.sleep(2)
    body = b"<html><body>slow</body></html>"
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def test_sigterm_stops_the_crawl_cleanly(tmp_path: Path) -> None:
    links = "".join(f'<a href="/s{i}">s</a>' for i in range(50))
    routes = {"/robots.txt": ALLOW_ALL, "/": html(links)}
    out = tmp_path / "out"
    with SiteServer(routes, default=_slow) as srv:
        cmd = [PIGUARD, "crawl", srv.base + "/", "--out", str(out), "--user-agent", UA, "--min-delay", "0"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(srv.paths()) < 3:
            time.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    assert "Traceback" not in stderr
    assert proc.returncode == 130 and took < 40
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and (out / "summary.json").exists()
    assert len(srv.paths()) < 52  # it stopped; it did not fetch the whole site first
    # No crawl child left behind.
    left = subprocess.run(["pgrep", "-f", "piguard.crawl.runner"], capture_output=True, text=True).stdout
    assert not [pid for pid in left.split() if _child_of_out(int(pid), out)]


def _child_of_out(pid: int, out: Path) -> bool:
    try:
        return str(out) in Path(f"/proc/{pid}/cmdline").read_text() or str(out) in os.readlink(
            f"/proc/{pid}/cwd"
        )
    except OSError:
        return False


_ = threading  # the servers run in threads of their own (siteserver)

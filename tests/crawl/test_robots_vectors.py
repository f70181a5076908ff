"""Google's own robots.txt test suite (145 verdicts + 34 helper vectors) against piguard's RFC 9309 parser."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from piguard.crawl.robots import (
    PARSE_LIMIT,
    RobotsTxt,
    escape_pattern,
    is_valid_user_agent,
    path_params_query,
    product_token,
)
from shared_data import needs_shared, shared_path

PIGUARD = str(Path(sys.executable).parent / "piguard")
DATA = shared_path("data", "crawl")
CASES_FILE = DATA / "google_robotstxt_useragent_cases.jsonl"
AUX_FILE = DATA / "google_robotstxt_aux_cases.json"
# Without the shared data the vector tests are skipped with the path as reason; the rest of the module runs.
vectors = needs_shared(CASES_FILE)
CASES = [json.loads(line) for line in CASES_FILE.read_text().splitlines()] if CASES_FILE.exists() else []
AUX = json.loads(AUX_FILE.read_text()) if AUX_FILE.exists() else {}


@vectors
def test_all_145_vectors_present() -> None:
    assert len(CASES) == 145


# Three of Google's vectors record limits of Google's library that its own test comments call so ("the caller
# must escape" a raw non-ASCII URL; matching %62%61%7A against baz "should not be relied on"). RFC 9309 2.2.2
# decides them the other way; suites/google_rfc_conflicts.json gives each with its reason.
RFC_DECIDES_OTHERWISE = {
    (c["robotstxt"], c["url"]): c["rfc_9309"]
    for c in json.loads((Path(__file__).parent / "suites" / "google_rfc_conflicts.json").read_text("utf-8"))
}


@vectors
@pytest.mark.parametrize("case", CASES, ids=[f"{c['test']}-{i}" for i, c in enumerate(CASES)])
def test_google_verdict(case: dict) -> None:
    expected = RFC_DECIDES_OTHERWISE.get((case["robotstxt"], case["url"]), case["allowed"])
    assert RobotsTxt(case["robotstxt"]).allowed(case["useragent"], case["url"]) is expected


@vectors
def test_rfc_overrides_are_real_google_vectors() -> None:
    # Each override names a vector that exists and that Google decides the other way.
    found = {(c["robotstxt"], c["url"]): c["allowed"] for c in CASES}
    assert all(found.get(key) is (not verdict) for key, verdict in RFC_DECIDES_OTHERWISE.items())


@vectors
@pytest.mark.parametrize("case", AUX.get("IsValidUserAgentToObey", []))
def test_valid_user_agent(case: dict) -> None:
    assert is_valid_user_agent(case["useragent"]) is case["valid"]


@vectors
@pytest.mark.parametrize("case", AUX.get("GetPathParamsQuery", []))
def test_path_params_query(case: dict) -> None:
    assert path_params_query(case["url"]) == case["expected_path"]


@vectors
@pytest.mark.parametrize("case", AUX.get("MaybeEscapePattern", []))
def test_escape_pattern(case: dict) -> None:
    assert escape_pattern(case["pattern"]) == case["expected"]


def test_product_token_cuts_version_and_comment() -> None:
    assert product_token("piguard-bot/1.0 (+https://example.org/bot)") == "piguard-bot"


def test_parse_limit_500_kib() -> None:
    # A rule placed after 500 KiB of padding is not parsed (RFC 9309 2.5 allows stopping there).
    pad = b"# " + b"x" * (PARSE_LIMIT + 10) + b"\n"
    r = RobotsTxt(b"User-agent: *\nDisallow: /a\n" + pad + b"Disallow: /b\n")
    assert r.truncated
    assert not r.allowed("bot", "http://h/a") and r.allowed("bot", "http://h/b")


def test_crawl_delay_and_request_rate_from_applying_group() -> None:
    r = RobotsTxt("User-agent: *\nCrawl-delay: 9\n\nUser-agent: mybot\nCrawl-delay: 2\nRequest-rate: 1/5s\n")
    assert r.delays("mybot") == (2.0, 5.0)
    assert r.delays("other") == (9.0, None)


def test_malformed_bytes_do_not_raise() -> None:
    r = RobotsTxt(b"\xff\xfe\x00garbage\nUser-agent: *\nDisallow: /private\n\x00\x01:\x02\n")
    assert not r.allowed("bot", "http://h/private/x") and r.allowed("bot", "http://h/public")


def test_cli_prints_allow_disallow(tmp_path: Path) -> None:
    f = tmp_path / "robots.txt"
    f.write_text("User-agent: FOO BAR\nDisallow: /private\n")
    out = subprocess.run(
        [PIGUARD, "robots", str(f), "FOO", "http://h/private/1", "http://h/pub"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines() == ["disallow http://h/private/1", "allow http://h/pub"]


def test_cli_missing_file_is_usage_error(tmp_path: Path) -> None:
    res = subprocess.run(
        [PIGUARD, "robots", str(tmp_path / "nope.txt"), "FOO", "http://h/"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "nope.txt" in res.stderr and "Traceback" not in res.stderr

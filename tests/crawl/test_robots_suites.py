"""Other parsers' published robots.txt suites (Protego, CPython, texting_robots, temoto), sorted into what
RFC 9309 decides and what it leaves open (tests/crawl/suites/): a decided case must get the RFC's verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from piguard.crawl.robots import RobotsTxt

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "suites" / "robots_cases.jsonl").read_text("utf-8").splitlines()
]
DECIDED = [c for c in CASES if c["rfc"] == "decided"]
OPEN = [c for c in CASES if c["rfc"] == "open"]


def test_suites_are_all_there() -> None:
    assert {c["suite"] for c in DECIDED} == {"protego", "cpython", "texting_robots", "temoto"}
    assert len(DECIDED) >= 350 and all(c["reason"] for c in OPEN)


DECIDED_IDS = [f"{c['suite']}-{c['test']}-{n}" for n, c in enumerate(DECIDED)]


@pytest.mark.parametrize("case", DECIDED, ids=DECIDED_IDS)
def test_rfc_decided_case(case: dict) -> None:
    assert RobotsTxt(case["robots"]).allowed(case["agent"], case["url"]) is case["rfc_expected"]


def test_open_cases_parse_without_error() -> None:
    for case in OPEN:
        assert RobotsTxt(case["robots"]).verdict("piguard-bot", case["url"]).allowed in (True, False)


@pytest.mark.parametrize(
    ("rule", "url", "allowed"),
    [
        ("/a%3cd.html", "http://h/a%3Cd.html", False),  # hex case does not matter
        ("/a%3Cd.html", "http://h/a%3cd.html", False),
        ("/a<d.html", "http://h/a%3Cd.html", False),  # a character not allowed in URIs compares encoded
        ("/%7Ejoe/", "http://h/~joe/index.html", False),  # unreserved: the same decoded or not
        ("/~joe/", "http://h/%7Ejoe/index.html", False),
        ("/path/file-with-a-%2A.html", "http://h/path/file-with-a-*.html", False),  # RFC 9309 2.2.3
        ("/path/foo-%24", "http://h/path/foo-$", False),
        ("/path/file-with-a-%2A.html", "http://h/path/file-with-a-x.html", True),  # %2A is not a wildcard
        ("/foo/bar/ツ", "http://h/foo/bar/%E3%83%84", False),  # non-ASCII percent-encoded before matching
        ("/foo/bar/%E3%83%84", "http://h/foo/bar/ツ", False),
        ("/a%2Fb", "http://h/a/b", True),  # an encoded reserved character is not the character
        ("/", "http://h/robots.txt", True),  # /robots.txt is implicitly allowed (RFC 9309 2.2.2)
    ],
)
def test_rfc_percent_encoding_equivalence(rule: str, url: str, allowed: bool) -> None:
    assert RobotsTxt(f"User-agent: *\nDisallow: {rule}\n").allowed("bot", url) is allowed


_HOSTILE = """
from piguard.crawl.robots import RobotsTxt, matches, normalize_path
rule = "/" + "*" * 17 + "/" + "*" * 4 + ".js"
robots = RobotsTxt(f"User-agent: *\\nDisallow: {rule}\\nDisallow: /{'a*' * 400}b\\n")
url = "http://h/" + "a" * 20000 + "/x.css"
print(robots.allowed("bot", url), matches(normalize_path("/" + "a" * 50000), "/" + "*a" * 2000 + "*b"))
"""


def test_runs_of_stars_match_in_linear_time() -> None:
    # A hostile robots.txt once made the regex matcher backtrack for minutes. Run in a child so that a
    # regression fails here instead of hanging the suite.
    try:
        out = subprocess.run([sys.executable, "-c", _HOSTILE], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("matching runs of '*' did not finish in 30 s")
    assert out.stdout.split() == ["True", "False"], out.stderr


@pytest.mark.parametrize(
    ("line", "agent_delay"),
    [
        ("Request-rate: 9000/1d", 9.6),
        ("Request-rate: 1/10s", 10.0),
        ("Request-rate: 3/1m", 20.0),
        ("Request-rate: 1/2h", 7200.0),
    ],
)
def test_request_rate_units(line: str, agent_delay: float) -> None:
    assert RobotsTxt(f"User-agent: *\n{line}\n").delays("bot")[1] == pytest.approx(agent_delay)


def test_request_rate_time_window_applies_inside_it_only() -> None:
    r = RobotsTxt("User-agent: *\nRequest-rate: 1/10s 1820-1940\n")
    at = 1_700_000_000 - (1_700_000_000 % 86400)  # 00:00 UTC
    assert r.delays("bot", now=at + 18 * 3600 + 30 * 60)[1] == 10.0  # 18:30 UTC
    assert r.delays("bot", now=at + 12 * 3600)[1] is None
    wraps = RobotsTxt("User-agent: *\nRequest-rate: 1/5s 2300-0100\n")
    assert wraps.delays("bot", now=at + 30 * 60)[1] == 5.0

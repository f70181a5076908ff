"""robots.txt verdicts against other parsers' published suites, side by side with Protego (Scrapy's parser)
and Python's urllib.robotparser in the same run.

Cases: Google's 145 verdicts (../shared/data/crawl) and the cases of Protego's, CPython's, texting_robots'
and temoto's suites that RFC 9309 decides (tests/crawl/suites/robots_cases.jsonl). Three of Google's vectors
contradict RFC 9309 2.2.2 (see tests/crawl/test_robots_vectors.py); they are scored both ways.

    .venv/bin/python benchmarks/robots_suites.py   # writes benchmarks/results/robots_suites.json
"""

from __future__ import annotations

import json
import os
import time
import urllib.robotparser
from pathlib import Path

from protego import Protego

from piguard.crawl.robots import RobotsTxt

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "tests" / "crawl" / "suites"
SHARED = Path(os.environ.get("PIGUARD_SHARED_DIR", ROOT.parent / "shared"))

RESULTS = ROOT / "benchmarks" / "results" / "robots_suites.json"


def piguard_verdict(robots: str, agent: str, url: str) -> bool | None:
    return RobotsTxt(robots).allowed(agent, url)


def protego_verdict(robots: str, agent: str, url: str) -> bool | None:
    try:
        return Protego.parse(robots).can_fetch(url, agent)
    except Exception:
        return None


def urllib_verdict(robots: str, agent: str, url: str) -> bool | None:
    rp = urllib.robotparser.RobotFileParser()
    try:
        rp.parse(robots.splitlines())
        return rp.can_fetch(agent, url)
    except Exception:
        return None


PARSERS = {"piguard": piguard_verdict, "protego": protego_verdict, "urllib.robotparser": urllib_verdict}


def score(cases: list[tuple[str, str, str, bool]]) -> dict[str, dict[str, float]]:
    out = {}
    for name, fn in PARSERS.items():
        t0 = time.perf_counter()
        right = sum(fn(r, a, u) is exp for r, a, u, exp in cases)
        out[name] = {
            "right": right,
            "of": len(cases),
            "share": round(right / len(cases), 4),
            "seconds": round(time.perf_counter() - t0, 3),
        }
    return out


def main() -> None:
    conflicts = json.loads((SUITES / "google_rfc_conflicts.json").read_text("utf-8"))
    rfc_verdict = {(c["robotstxt"], c["url"]): c["rfc_9309"] for c in conflicts}
    suites = [
        json.loads(x) for x in (ROOT / "tests/crawl/suites/robots_cases.jsonl").read_text().splitlines()
    ]
    decided = [
        (c["robots"], c["agent"], c["url"], c["rfc_expected"]) for c in suites if c["rfc"] == "decided"
    ]
    gfile = SHARED / "data" / "crawl" / "google_robotstxt_useragent_cases.jsonl"
    google = [json.loads(x) for x in gfile.read_text().splitlines()]
    as_google = [(c["robotstxt"], c["useragent"], c["url"], c["allowed"]) for c in google]
    as_rfc = [(r, a, u, rfc_verdict.get((r, u), exp)) for r, a, u, exp in as_google]
    results = {
        "rfc_decided_cases_of_other_suites": score(decided),
        "google_145_as_google_decides": score(as_google),
        "google_145_with_rfc_9309_on_the_3_conflicts": score(as_rfc),
        "cases": {"decided": len(decided), "open": sum(c["rfc"] == "open" for c in suites)},
        "load_average_1m": round(os.getloadavg()[0], 2),
        "command": "benchmarks/robots_suites.py",
    }
    for key in (
        "rfc_decided_cases_of_other_suites",
        "google_145_as_google_decides",
        "google_145_with_rfc_9309_on_the_3_conflicts",
    ):
        print(key)
        for name, r in results[key].items():
            print(f"  {name:20s} {r['right']:4d}/{r['of']}  {r['share']:.1%}")
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

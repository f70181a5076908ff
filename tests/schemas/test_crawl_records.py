"""Crawl records as JSON readers outside Python read them. The crawls themselves are validated in tests/crawl
(their helpers check every summary and provenance line against the schemas); this file keeps what a crawl
there does not reach."""

from __future__ import annotations

import time
from pathlib import Path

from piguard.crawl.signals import retry_after_seconds
from piguard.crawl.store import PageStore
from schema_check import assert_valid, strict_json


def test_a_huge_retry_after_is_still_written_as_json(tmp_path: Path) -> None:
    from piguard.crawl.pifilter import PiPolicy

    store = PageStore(tmp_path, fsync=False)
    store.extra["pi_policy"] = PiPolicy.parse(None, None).describe()  # as the pipeline sets it
    # What PiguardMiddleware records for a 429 carrying that header (middleware.process_response).
    store.record(
        {
            "url": "http://example.org/limited",
            "final_url": "http://example.org/limited",
            "status": 429,
            "outcome": "protected",
            "protection": "rate_limited",
            "retry_after": retry_after_seconds(b"9" * 400, time.time()),
            "stored": False,
        }
    )
    store.close()
    for line in (tmp_path / "provenance.jsonl").read_text("utf-8").splitlines():
        assert_valid("crawl-provenance", strict_json(line))
    assert_valid("crawl-summary", strict_json((tmp_path / "summary.json").read_text("utf-8")))

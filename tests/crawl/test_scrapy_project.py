"""piguard added to an existing Scrapy project: settings merged, the user's own spider and items."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from siteserver import SiteServer, html, text

from schema_check import assert_crawl_outputs_valid

PROJECT = textwrap.dedent(
    """
    import sys
    import scrapy
    from scrapy.crawler import CrawlerProcess
    from piguard.crawl import page_item
    from piguard.crawl.settings import piguard_settings

    class ShopSpider(scrapy.Spider):
        name = "shop"

        def __init__(self, base, **kw):
            super().__init__(**kw)
            self.start_urls = [base + "/", base + "/blocked"]

        def parse(self, response):
            yield page_item(response)
            # The user's own item: string fields are filtered by the same PI policy.
            yield {"seller": response.css("p::text").get(), "url": response.url}

    existing = {"BOT_NAME": "shop", "ITEM_PIPELINES": {}, "LOG_LEVEL": "ERROR", "ROBOTSTXT_OBEY": True,
                "FEEDS": {sys.argv[3]: {"format": "jsonlines"}}, "REMOTE_CONTROL_ENABLED": False,
                "TELNETCONSOLE_ENABLED": False}
    ua = sys.argv[4] if len(sys.argv) > 4 else ""
    settings = piguard_settings(existing, user_agent=ua, out=sys.argv[2],
                                PIGUARD_MIN_DELAY=0, DOWNLOAD_DELAY=0)
    process = CrawlerProcess(settings)
    process.crawl(ShopSpider, base=sys.argv[1])
    process.start()
    """
)
UA = "shopbot/2.0 (+https://example.org/shopbot)"


def test_scrapy_project_with_piguard_settings(tmp_path: Path) -> None:
    script = tmp_path / "run_shop.py"
    script.write_text(PROJECT)
    routes = {
        "/robots.txt": text(200, "User-agent: shopbot\nDisallow: /blocked\n"),
        "/": html("<p>卖家电话 13912345678</p>"),
        "/blocked": html("<p>no</p>"),
    }
    feed = tmp_path / "items.jsonl"
    with SiteServer(routes) as srv:
        res = subprocess.run(
            [sys.executable, str(script), srv.base, str(tmp_path / "out"), str(feed), UA],
            capture_output=True,
            text=True,
            timeout=90,
        )
        paths = srv.paths()
    assert res.returncode == 0, res.stderr[-2000:]
    assert "/blocked" not in paths and {h.user_agent for h in srv.log} == {UA}
    items = [json.loads(x) for x in feed.read_text().splitlines()]
    seller = next(i for i in items if "seller" in i)
    assert seller["seller"] == "卖家电话 139****5678" and seller["piguard_pi"] == {"PHONE_NUMBER": 1}
    page = next(i for i in items if i.get("piguard_page"))
    assert "13912345678" not in page["text"] and page["outcome"] == "stored"
    assert "13912345678" not in feed.read_text()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pages_stored"] == 1 and summary["refused_robots"] == 1
    # The middlewares and pipeline inside a user's project write the same files as piguard crawl.
    records = (tmp_path / "out" / "provenance.jsonl").read_text().splitlines()
    assert_crawl_outputs_valid(tmp_path / "out", {}, [json.loads(x) for x in records])


def test_scrapy_project_without_user_agent_refuses_to_start(tmp_path: Path) -> None:
    script = tmp_path / "run_shop.py"
    script.write_text(PROJECT)
    with SiteServer({}) as srv:
        res = subprocess.run(
            [sys.executable, str(script), srv.base, str(tmp_path / "out"), str(tmp_path / "f.jsonl")],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert srv.paths() == []
    assert "user agent" in res.stderr and "CrawlConfigError" in res.stderr

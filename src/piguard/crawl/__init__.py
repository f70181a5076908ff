"""A crawler that stays lawful: Scrapy with RFC 9309 robots.txt, opt-out signals, no bypass of technical
measures, and personal information filtered at ingest.

For a Scrapy project: merge :func:`piguard.crawl.settings.piguard_settings` into your settings and
``yield page_item(response)`` from your callbacks. Without a project: ``piguard crawl URL... --out DIR``.
"""

from __future__ import annotations

from piguard.crawl.pifilter import PiPolicy, PolicyError, filter_texts
from piguard.crawl.robots import RobotsTxt, Verdict, product_token
from piguard.crawl.state import CrawlConfigError

__all__ = [
    "CrawlConfigError",
    "PiPolicy",
    "PolicyError",
    "RobotsTxt",
    "Verdict",
    "filter_texts",
    "page_item",
    "product_token",
]


def __getattr__(name: str) -> object:
    # Scrapy is imported only when a crawl needs it; the robots parser and PI filter stay light.
    if name == "page_item":
        from piguard.crawl.pipeline import page_item

        return page_item
    raise AttributeError(name)

"""The spider behind ``piguard crawl``: start URLs, follow links on the same hosts, store each page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import LinkExtractor

from piguard.crawl.middleware import record_failure
from piguard.crawl.pipeline import page_item
from piguard.crawl.state import state_for


class SiteSpider(scrapy.Spider):
    name = "piguard"

    def __init__(self, start_urls: list[str], max_depth: int = 3, follow: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.start_urls = list(start_urls)
        self.allowed_hosts = {urlsplit(u).netloc for u in start_urls}
        self.max_depth = int(max_depth)
        self.follow = follow
        self.links = LinkExtractor()

    async def start(self) -> Any:
        # Filtered like any other request, so distributed workers given the same start URLs fetch each once.
        for url in self.start_urls:
            yield scrapy.Request(url, callback=self.parse, errback=self.failed, dont_filter=False)

    def failed(self, failure: Any) -> None:
        # Most failures are already in the provenance (piguard's middlewares record them); what fails
        # after them (a redirect loop, a redirect to a non-HTTP URL, a compressed body past the size cap) is
        # recorded here, so no URL vanishes. Handled, so Scrapy logs no traceback for an ordinary failure.
        request = getattr(failure, "request", None)
        if request is not None:
            record_failure(state_for(self.crawler), request, failure.value)
        return None

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        # Links first: the page item then waits for its PI-filter batch without holding up the frontier.
        if (
            self.follow
            and isinstance(response, TextResponse)
            and response.meta.get("depth", 0) < self.max_depth
        ):
            for link in self.links.extract_links(response):
                if urlsplit(link.url).netloc in self.allowed_hosts:
                    yield response.follow(link.url, callback=self.parse, errback=self.failed)
        yield page_item(response)

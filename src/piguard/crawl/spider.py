"""The spider behind ``piguard crawl``: start URLs, follow links on the same hosts, store each page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import LinkExtractor

from piguard.crawl.pipeline import page_item


class SiteSpider(scrapy.Spider):
    name = "piguard"

    def __init__(self, start_urls: list[str], max_depth: int = 3, follow: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.start_urls = list(start_urls)
        self.allowed_hosts = {urlsplit(u).netloc for u in start_urls}
        self.max_depth = int(max_depth)
        self.follow = follow
        self.links = LinkExtractor()

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        yield page_item(response)
        if not self.follow or not isinstance(response, TextResponse):
            return
        if response.meta.get("depth", 0) >= self.max_depth:
            return
        for link in self.links.extract_links(response):
            if urlsplit(link.url).netloc in self.allowed_hosts:
                yield response.follow(link.url, callback=self.parse)

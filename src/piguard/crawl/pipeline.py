"""Item pipeline: personal information filtered at ingest, pages stored with provenance.

* Page items (made by :func:`page_item` from a response) have their visible text filtered by the PI policy
  and are written to ``PIGUARD_OUT/pages`` with a provenance record; the item passed on carries the filtered
  text only.
* Any other item (your spider's own fields) has every string field filtered the same way, and gains a
  ``piguard_pi`` field with the counts per entity.

Filtering runs in batches (``PIGUARD_PI_BATCH`` pages, or whatever arrived within ``PIGUARD_PI_BATCH_WAIT``
seconds), because the detector's cost is mostly per call, not per byte.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.http import HtmlResponse, Response, TextResponse
from twisted.internet.defer import Deferred

from piguard.crawl.pifilter import PiPolicy, filter_texts
from piguard.crawl.signals import html_text, tree_text
from piguard.crawl.state import state_for

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


def page_item(response: Response) -> dict[str, Any]:
    """The page record for ``response``: provenance gathered by the middleware plus the visible text."""
    meta = dict(response.meta.get("piguard") or {})
    meta.setdefault("url", response.url)
    meta.setdefault("final_url", response.url)
    meta.setdefault("status", response.status)
    body = response.body
    text: str | None = None
    if isinstance(response, TextResponse):
        ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        if "text/plain" in ctype:
            text = response.text
        elif isinstance(response, HtmlResponse):
            text = tree_text(response.selector.root)  # the tree Scrapy parsed once for links and selectors
        else:
            text = html_text(response.text)
        meta["encoding"] = response.encoding
    meta["content_sha256"] = hashlib.sha256(body).hexdigest()
    meta["content_bytes"] = len(body)
    return {"piguard_page": True, **meta, "text": text}


class PiguardPipeline:
    def __init__(self, crawler: Crawler) -> None:
        s = crawler.settings
        self.state = state_for(crawler)
        self.policy = PiPolicy.parse(s.get("PIGUARD_PI_POLICY"), s.get("PIGUARD_PI_ENTITIES"))
        self.batch_size = s.getint("PIGUARD_PI_BATCH", 128)
        self.batch_wait = s.getfloat("PIGUARD_PI_BATCH_WAIT", 1.0)
        self.gc_freeze = s.getbool("PIGUARD_GC_FREEZE", True)
        self._frozen = False
        self._queue: list[tuple[dict[str, Any], Deferred[Any]]] = []
        self._timer: Any = None
        self._inflight: list[Deferred[Any]] = []
        self.state.store.extra["pi_policy"] = self.policy.describe()
        import polars as pl

        if pl.thread_pool_size() > 1:
            logging.getLogger(__name__).warning(
                "polars runs %d threads beside the reactor; crawls run faster with POLARS_MAX_THREADS=1 "
                "in the environment (see docs/crawl.md)",
                pl.thread_pool_size(),
            )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PiguardPipeline:
        return cls(crawler)

    def open_spider(self, spider: Any = None) -> None:
        # The detector builds its tables on first use: build them now rather than in the first batch.
        filter_texts([_WARM_UP], self.policy)
        if self.gc_freeze and gc.isenabled():
            # Everything alive now (Scrapy, Twisted, polars, the detector and its tables: ~100,000 objects)
            # lives as long as the crawl. Frozen, the cyclic collector stops rescanning it in every full
            # collection; piguard's imports doubled the collector's time per page over plain Scrapy's.
            gc.collect()
            gc.freeze()
            self._frozen = True

    async def process_item(self, item: Any, spider: Any = None) -> Any:
        from scrapy.utils.defer import maybe_deferred_to_future

        adapter = ItemAdapter(item)
        if not adapter.get("piguard_page"):
            return self._filter_fields(adapter, item)
        record = {k: v for k, v in adapter.items() if k != "piguard_page"}  # a marker, not provenance
        if record.get("text") is None:
            record.pop("text", None)
            self.state.store.record({**record, "outcome": "not_text", "stored": False})
            return item
        d: Deferred[Any] = Deferred()
        self._queue.append((record, d))
        if len(self._queue) >= self.batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = _reactor().callLater(self.batch_wait, self._flush)
        return await maybe_deferred_to_future(d)

    def _filter_fields(self, adapter: ItemAdapter, item: Any) -> Any:
        keys = [k for k, v in adapter.items() if isinstance(v, str)]
        if not keys:
            return item
        results = filter_texts([adapter[k] for k in keys], self.policy)
        removed: dict[str, int] = {}
        for k, (text, res) in zip(keys, results, strict=True):
            adapter[k] = text
            for e, n in res.removed.items():
                removed[e] = removed.get(e, 0) + n
        if "piguard_pi" in adapter.field_names() or isinstance(item, dict):
            adapter["piguard_pi"] = removed
        return item

    def _flush(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        batch, self._queue = self._queue, []
        if not batch:
            return
        # In the reactor thread: a batch of 128 pages costs ~20 ms of CPU here, while a worker thread made
        # the detector and the reactor fight over the GIL (measured 10-30x slower per page).
        from twisted.internet.defer import maybeDeferred

        d = maybeDeferred(self._process_batch, [r for r, _ in batch])

        def _done(records: list[dict[str, Any]]) -> None:
            for (_, waiter), rec in zip(batch, records, strict=True):
                waiter.callback(rec)

        def _fail(failure: Any) -> None:
            for _, waiter in batch:
                waiter.errback(failure)

        d.addCallbacks(_done, _fail)
        self._inflight.append(d)
        d.addBoth(lambda r: (self._inflight.remove(d), r)[1])

    def _process_batch(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        results = filter_texts([r["text"] for r in records], self.policy)
        per_page = (time.perf_counter() - t0) / len(records)
        store = self.state.store
        pages, out = [], []
        for rec, (text, res) in zip(records, results, strict=True):
            rec = {k: v for k, v in rec.items() if k != "text"}
            rec["pi"] = {**res.as_dict(), "filter_seconds": round(per_page, 6)}
            rec["outcome"] = "stored"
            pages.append(store.prepare_page(rec, text))
            out.append({"piguard_page": True, **rec, "text": text})  # the item passed on keeps its marker
        # In the reactor thread too: a writer thread was measured slower -- each of the ~5 system calls per
        # page gave the GIL up and waited to get it back from the busy reactor, pages piled up behind it
        # (1,000 responses alive instead of ~130) and the collector's work grew with them.
        store.write_pages(pages)
        return out

    async def close_spider(self, spider: Any = None) -> None:
        from scrapy.utils.defer import maybe_deferred_to_future
        from twisted.internet.defer import DeferredList

        self._flush()
        if self._inflight:
            await maybe_deferred_to_future(DeferredList(list(self._inflight)))
        self.state.store.close()
        if self._frozen:
            gc.unfreeze()  # back into the oldest generation, collectable again
            self._frozen = False


_WARM_UP = "warm-up 13812345678 li.si@example.com 11010519491231002X 6222021234567890128 10.0.0.8"


def _reactor() -> Any:
    # Imported on use: importing twisted.internet.reactor at module level would install the default
    # reactor before Scrapy installs the one its settings ask for.
    from twisted.internet import reactor

    return reactor

"""Where a crawl's output goes: filtered page texts (written atomically), provenance JSONL beside them, and
a summary. Layout::

    OUT/pages/<sha256(url)[:32]>.txt   filtered visible text of each stored page
    OUT/provenance[-WORKER].jsonl      one record per URL the crawler decided on (stored or not)
    OUT/summary[-WORKER].json          counts: stored, refused, protected, reserved, errors, PI removed
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class PageStore:
    """Thread-safe writer for one crawl's pages, provenance and summary."""

    def __init__(self, out: Path | str, worker: str | None = None, *, fsync: bool = True) -> None:
        self.out = Path(out)
        self.pages = self.out / "pages"
        self.pages.mkdir(parents=True, exist_ok=True)
        suffix = f"-{worker}" if worker else ""
        self.provenance_path = self.out / f"provenance{suffix}.jsonl"
        self.summary_path = self.out / f"summary{suffix}.json"
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd = os.open(self.provenance_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.counts: Counter[str] = Counter()
        self.protected: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.pi_removed: Counter[str] = Counter()
        self.pi_kept: Counter[str] = Counter()
        self.extra: dict[str, Any] = {}

    def page_path(self, url: str) -> Path:
        return self.pages / (hashlib.sha256(url.encode("utf-8")).hexdigest()[:32] + ".txt")

    def store_page(self, record: dict[str, Any], text: str) -> None:
        """Write the page, then its provenance line (a page on disk always has a record)."""
        path = self.page_path(record["url"])
        data = text.encode("utf-8")
        if self.fsync:
            atomic_write(path, data)
        else:  # benchmarks: same rename discipline, no fsync
            tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        record["stored"] = True
        record["path"] = str(path.relative_to(self.out))
        record["stored_sha256"] = hashlib.sha256(data).hexdigest()
        self.record(record)

    def record(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            os.write(self._fd, line)  # one O_APPEND write per record
            outcome = record.get("outcome", "unknown")
            self.counts[outcome] += 1
            if outcome == "protected":
                self.protected[str(record.get("protection"))] += 1
            elif outcome == "error":
                self.errors[str(record.get("error"))] += 1
            pi = record.get("pi") or {}
            self.pi_removed.update(pi.get("removed", {}))
            self.pi_kept.update(pi.get("kept", {}))

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pages_stored": self.counts["stored"],
                "refused_robots": self.counts["refused_robots"],
                "protected": self.counts["protected"],
                "protected_by_kind": dict(sorted(self.protected.items())),
                "reserved": self.counts["reserved"],
                "errors": self.counts["error"],
                "errors_by_kind": dict(sorted(self.errors.items())),
                "http_errors": self.counts["http_error"],
                "not_stored_other": self.counts["not_text"] + self.counts["refused"],
                "records": sum(self.counts.values()),
                "pi_removed_by_entity": dict(sorted(self.pi_removed.items())),
                "pi_kept_by_entity": dict(sorted(self.pi_kept.items())),
                **self.extra,
            }

    def close(self) -> dict[str, Any]:
        s = self.summary()
        atomic_write(self.summary_path, (json.dumps(s, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        return s

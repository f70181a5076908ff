"""Per-partner limits, so a partner cannot probe the other's customers one by one: how many identifiers one
query may hold (at most and at least) and how many queries a day. Daily counts survive a restart when a
state file is given (written atomically)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from piguard._fs import atomic_write_text, read_regular_bytes
from piguard.joint.errors import InputError, LimitExceededError
from piguard.keys import PublicKey


@dataclass(frozen=True, slots=True)
class Limit:
    max_ids: int = 1_000_000
    min_ids: int = 1
    max_queries_per_day: int = 20


class Limits:
    """Limits by partner (key id ``SHA256:...`` or the owner named in its ``.pub`` line), with a default."""

    def __init__(
        self, default: Limit, partners: dict[str, Limit] | None = None, state: str | Path | None = None
    ) -> None:
        self.default = default
        self.partners = dict(partners or {})
        self.state = Path(state) if state else None
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = {}
        if self.state and self.state.exists():
            try:
                raw = json.loads(self.state.read_text("utf-8"))
                self._counts = {str(d): {str(k): int(v) for k, v in c.items()} for d, c in raw.items()}
            except (ValueError, AttributeError, OSError) as exc:
                raise InputError(
                    f"limits state file {self.state} is not readable JSON ({type(exc).__name__})"
                ) from None

    @classmethod
    def load(cls, path: str | Path | None, default: Limit, state: str | Path | None = None) -> Limits:
        """``partners: {KEY_ID_OR_OWNER: {max_ids: N, min_ids: N, max_queries_per_day: N}}``."""
        if path is None:
            return cls(default, state=state)
        p = Path(path)
        try:
            raw = yaml.safe_load(read_regular_bytes(p).decode("utf-8")) or {}
        except (
            OSError,
            ValueError,
            RecursionError,
            yaml.YAMLError,
        ) as exc:  # ValueError: not UTF-8, huge int
            raise InputError(f"limits file {p} cannot be read ({type(exc).__name__})") from None
        partners: dict[str, Limit] = {}
        items = raw.get("partners", {}) if isinstance(raw, dict) else None
        if not isinstance(items, dict):
            raise InputError(f"limits file {p}: expected 'partners:' mapping key ids or owners to limits")
        for who, spec in items.items():
            if not isinstance(spec, dict) or set(spec) - {"max_ids", "min_ids", "max_queries_per_day"}:
                raise InputError(
                    f"limits file {p}: partner {who!r} needs max_ids, min_ids, max_queries_per_day"
                )
            vals: dict[str, Any] = {
                "max_ids": default.max_ids,
                "min_ids": default.min_ids,
                "max_queries_per_day": default.max_queries_per_day,
            }
            for k, v in spec.items():
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    raise InputError(f"limits file {p}: partner {who!r}: {k} must be a whole number >= 0")
                vals[k] = v
            partners[str(who)] = Limit(**vals)
        return cls(default, partners, state)

    def for_peer(self, peer: PublicKey) -> Limit:
        return self.partners.get(peer.key_id) or (self.partners.get(peer.owner or "")) or self.default

    def admit(self, peer: PublicKey, n_ids: int) -> None:
        """Count one query of ``n_ids`` identifiers against the peer's limits, or refuse it."""
        lim = self.for_peer(peer)
        who = peer.owner or peer.key_id
        if n_ids > lim.max_ids:
            raise LimitExceededError(
                f"a query from {who} may hold at most {lim.max_ids} identifiers; it holds {n_ids}"
            )
        if n_ids < lim.min_ids:
            raise LimitExceededError(
                f"a query from {who} must hold at least {lim.min_ids} identifiers; it holds {n_ids}"
            )
        today = datetime.now(UTC).date().isoformat()
        with self._lock:
            day = self._counts.setdefault(today, {})
            used = day.get(peer.key_id, 0)
            if used >= lim.max_queries_per_day:
                raise LimitExceededError(
                    f"{who} has made its {lim.max_queries_per_day} queries for today (UTC)"
                )
            day[peer.key_id] = used + 1
            self._counts = {today: day}  # older days are no longer needed
            if self.state:
                atomic_write_text(self.state, json.dumps(self._counts, sort_keys=True), mode=0o600)

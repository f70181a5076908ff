"""Bounds on what one input may cost: decompressed size and ratio, and how long a server may stay silent.

Defaults fit ordinary data; every bound is configurable (``piguard scan --timeout --max-decompressed
--max-ratio``). The scan's worker processes read the same bounds from the environment
(``PIGUARD_TIMEOUT``, ``PIGUARD_MAX_DECOMPRESSED``, ``PIGUARD_MAX_RATIO``), which ``ReadLimits.export``
sets, so a bound given on the command line holds in every process.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

DEFAULT_TIMEOUT_S = 30.0
# A 22 MB .gz of 10 GB text is a bomb, a 1 GB log compressed 10:1 is not: bound the size and the ratio.
DEFAULT_MAX_DECOMPRESSED = 2 << 30  # 2 GiB
# Apache POI's ZipSecureFile refuses entries that inflate more than 100:1 (its "min inflate ratio" 0.01).
DEFAULT_MAX_RATIO = 100.0
# The ratio is judged only past this many decompressed bytes: a small file of blank lines may inflate
# 500:1 and harm no one. (POI's grace is 100 KiB; logs repeat more than office documents.)
RATIO_GRACE_BYTES = 4 << 20

_ENV = {
    "timeout_s": "PIGUARD_TIMEOUT",
    "max_decompressed": "PIGUARD_MAX_DECOMPRESSED",
    "max_ratio": "PIGUARD_MAX_RATIO",
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.I)


class LimitError(ValueError):
    """A bound given by the user that cannot be understood (the message names it)."""


def parse_size(text: str) -> int:
    """``"2G"``, ``"500MiB"``, ``"1048576"`` -> bytes (binary units)."""
    m = _SIZE.match(str(text))
    if not m:
        raise LimitError(f"not a size: {text!r} (examples: 500M, 2G, 1048576)")
    n = float(m.group(1)) * (1 << (10 * "kmgt".find(m.group(2).lower()) + 10) if m.group(2) else 1)
    if n < 1 or n > (1 << 60):
        raise LimitError(f"size out of range: {text!r}")
    return int(n)


def _positive(name: str, value: float) -> float:
    if not value > 0 or value == float("inf"):
        raise LimitError(f"{name} must be a positive number, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ReadLimits:
    timeout_s: float = DEFAULT_TIMEOUT_S  # connect, and longest wait for any reply from a server
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED  # bytes one compressed input may inflate to
    max_ratio: float = DEFAULT_MAX_RATIO  # decompressed / compressed, judged past RATIO_GRACE_BYTES

    def __post_init__(self) -> None:
        _positive("--timeout", self.timeout_s)
        _positive("--max-decompressed", self.max_decompressed)
        _positive("--max-ratio", self.max_ratio)

    @classmethod
    def from_env(cls) -> ReadLimits:
        """Defaults, overridden by the environment (an unreadable value keeps the default)."""
        kw: dict[str, float | int] = {}
        for field, var in _ENV.items():
            raw = os.environ.get(var)
            if not raw:
                continue
            try:
                kw[field] = parse_size(raw) if field == "max_decompressed" else float(raw)
            except (LimitError, ValueError):
                continue
        try:
            return cls(**kw)  # type: ignore[arg-type]
        except LimitError:
            return cls()

    def export(self) -> None:
        """Put these bounds in the environment, for worker processes started after this call."""
        os.environ[_ENV["timeout_s"]] = repr(self.timeout_s)
        os.environ[_ENV["max_decompressed"]] = str(self.max_decompressed)
        os.environ[_ENV["max_ratio"]] = repr(self.max_ratio)

    def check_inflation(self, decompressed: int, compressed: int) -> str | None:
        """Why reading must stop at this point, or None."""
        if decompressed > self.max_decompressed:
            return (
                f"decompressed size exceeds {human(self.max_decompressed)} "
                f"(possible decompression bomb; raise with --max-decompressed)"
            )
        if decompressed > RATIO_GRACE_BYTES and decompressed > self.max_ratio * max(1, compressed):
            return (
                f"compression ratio over {self.max_ratio:g}:1 after {human(decompressed)} "
                f"(possible decompression bomb; raise with --max-ratio)"
            )
        return None


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


__all__ = ["DEFAULT_TIMEOUT_S", "LimitError", "ReadLimits", "parse_size"]

"""Which text encoding a file is in, judged from its head, and decoding that counts the bytes it replaces.

Shared by the text reader (``files.py``) and the CSV reader (``csvfile.py``) so both read a file the same way.

* A byte-order mark is believed only when the text after it fits: ``FF FE`` before plain UTF-8 (an editor's
  or a concatenation's leftover) is not UTF-16, and decoding it as UTF-16 would hide every value.
* A UTF-8 file with a few bad bytes is UTF-8 with a few bad bytes: it is decoded with replacement and the
  bad bytes are counted, not skipped whole or handed to a guesser that turns its Chinese into mojibake.
"""

from __future__ import annotations

import codecs
import threading
from dataclasses import dataclass

SNIFF_BYTES = 64 * 1024
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Damaged UTF-8 stays UTF-8 while its bad bytes are at most this share of the head.
MAX_BAD_SHARE = 0.01
ERRORS = "piguard-count-replace"


class NotText(ValueError):
    """The head is not text in any encoding piguard reads (the message says why)."""


@dataclass(frozen=True, slots=True)
class Sniffed:
    codec: str
    skip: int  # bytes at the start that are not text (a byte-order mark, or bytes that only looked like one)
    note: str | None = None
    bad: int = 0  # of the skipped bytes, those that were not a real mark (counted as bad bytes)


def _valid_prefix(data: bytes, codec: str) -> bool:
    """``data`` decodes strictly in ``codec``, allowing a character cut at the end of the window."""
    try:
        codecs.getincrementaldecoder(codec)("strict").decode(data, final=False)
        return True
    except UnicodeDecodeError:
        return False


def _utf8_damage(head: bytes) -> tuple[int, int]:
    """(bytes that are not UTF-8, non-ASCII characters that are) in ``head`` (a cut last one aside)."""
    counter = ReplacementCounter()
    with counter:
        text = codecs.getincrementaldecoder("utf-8")(ERRORS).decode(head, final=False)
    non_ascii = sum(1 for ch in text if ord(ch) > 0x7F) - text.count("\ufffd")
    return counter.bytes, non_ascii


def sniff(head: bytes) -> Sniffed:
    """The codec for a file whose first bytes are ``head``. Raises ``NotText`` for binaries."""
    for bom, codec in _BOMS:
        if not head.startswith(bom):
            continue
        body = head[len(bom) :]
        if codec.startswith(("utf-16", "utf-32")) and b"\x00" not in body:
            # Real UTF-16/32 text of any length holds NUL bytes (ASCII, newlines) and is not UTF-8; UTF-8
            # behind stray bytes is UTF-8, even with a few bad bytes of its own.
            bad, non_ascii = _utf8_damage(body)
            if _valid_prefix(body, "utf-8") or non_ascii > bad:
                note = (
                    f"bytes {bom.hex(' ').upper()} at the start are not a byte-order mark (the text is UTF-8)"
                )
                return Sniffed("utf-8", len(bom), note, bad=len(bom))
        wide = codec.startswith(("utf-16", "utf-32")) and b"\x00" in body
        if wide or _valid_prefix(body, codec):  # damaged UTF-16 is still UTF-16: decoded with replacement
            return Sniffed(codec, len(bom))
        break  # a mark the text does not fit: judge the bytes themselves
    if b"\x00" in head:
        raise NotText("binary file (NUL bytes, no Unicode byte-order mark)")
    if _valid_prefix(head, "utf-8"):
        return Sniffed("utf-8", 0)
    bad, non_ascii = _utf8_damage(head)
    if non_ascii > bad:
        return Sniffed("utf-8", 0, f"damaged UTF-8 ({bad} bad byte(s) in the first {len(head)})")
    import charset_normalizer  # only for files that are not UTF-8 (a tenth of a second's imports)

    best = charset_normalizer.from_bytes(head).best()
    if best is not None:
        enc = best.encoding.lower()
        # GB2312 and GBK are subsets of GB18030; decode with the superset so rare characters survive.
        if enc in {"gb2312", "gbk", "gb18030", "hz", "cp936"}:
            enc = "gb18030"
        return Sniffed(enc, 0)
    if bad <= max(1, MAX_BAD_SHARE * len(head)):
        return Sniffed("utf-8", 0, f"damaged UTF-8 ({bad} bad byte(s) in the first {len(head)})")
    raise NotText("binary or undecodable file (no text encoding fits)")


class ReplacementCounter:
    """Counts the bytes the ``piguard-count-replace`` error handler replaces with U+FFFD while active.

    A codec error handler is registered by name for the whole process and gets no state of its own, so the
    active counter is per thread; ``with counter:`` around each ``decode`` call."""

    _active = threading.local()

    def __init__(self) -> None:
        self.bytes = 0

    def __enter__(self) -> ReplacementCounter:
        self._prev = getattr(self._active, "counter", None)
        self._active.counter = self
        return self

    def __exit__(self, *exc: object) -> None:
        self._active.counter = self._prev

    @classmethod
    def _handle(cls, exc: UnicodeError) -> tuple[str, int]:
        if not isinstance(exc, UnicodeDecodeError):
            raise exc
        counter = getattr(cls._active, "counter", None)
        if counter is not None:
            counter.bytes += exc.end - exc.start
        return "\ufffd", exc.end


codecs.register_error(ERRORS, ReplacementCounter._handle)


__all__ = ["ERRORS", "SNIFF_BYTES", "NotText", "ReplacementCounter", "Sniffed", "sniff"]

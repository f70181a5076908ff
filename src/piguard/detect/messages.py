"""Masking for messages: an error that quotes user input (a flow id, a consent id, a command-line value) may
quote an identifier. Every such message passes through here before it is printed or written, so what the
structured detectors recognise is shown masked exactly as reports show it (``1101**********1233``)."""

from __future__ import annotations

from piguard.detect.masking import mask_value
from piguard.detect.structured import find_structured

# Longer messages are cut: a message quoting a whole hostile input is not worth printing.
MAX_MESSAGE_CHARS = 4000


def mask_message(text: str) -> str:
    """``text`` with every structured identifier the detectors find masked, at any confidence (a message is
    no place to weigh context: a bare 18-digit ID number in an error is still an ID number)."""
    if len(text) > MAX_MESSAGE_CHARS:
        # Mask a little past the cut, then cut: an identifier across the cut is masked, not halved.
        more = len(text) - MAX_MESSAGE_CHARS
        head = _mask(text[: MAX_MESSAGE_CHARS + 100])[:MAX_MESSAGE_CHARS]
        return f"{head}... ({more} more characters)"
    return _mask(text)


def _mask(text: str) -> str:
    hits = sorted(find_structured(text), key=lambda h: h.start)
    if not hits:
        return text
    # Overlapping hits form one span, masked as its longest hit's entity: no character of any hit stays raw.
    spans: list[list] = []  # [start, end, entity, longest length]
    for h in hits:
        n = h.end - h.start
        if spans and h.start < spans[-1][1]:
            span = spans[-1]
            span[1] = max(span[1], h.end)
            if n > span[3]:
                span[2], span[3] = h.entity, n
        else:
            spans.append([h.start, h.end, h.entity, n])
    out: list[str] = []
    pos = 0
    for start, end, entity, _n in spans:
        out.append(text[pos:start])
        out.append(mask_value(entity, text[start:end]))
        pos = end
    out.append(text[pos:])
    return "".join(out)

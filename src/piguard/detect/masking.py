"""Masked evidence: what reports show instead of raw values."""

from __future__ import annotations

import re

_KEEP = {
    # entity: (keep first, keep last)
    "CN_RESIDENT_ID": (4, 4),
    "BANK_CARD": (4, 4),
    "PHONE_NUMBER": (3, 4),
    "CN_PASSPORT": (1, 2),
    "CN_HK_MACAO_PERMIT": (1, 2),
    "CN_TW_PERMIT": (1, 2),
    "IMEI": (2, 2),
    "MAC_ADDRESS": (2, 0),
    "CN_LICENCE_PLATE": (2, 1),
    "CN_USCC": (4, 2),
}
_SEPARATORS = frozenset(" \t\n\r\u3000-－—.·•:：/()（）+＋")
_COUNTRY_PREFIX = re.compile(r"^(?:(?:\+|＋|00)86[ \-]?|[+＋][1-9][0-9]{0,2}[ \-])")
_GPS_DIGITS = re.compile(r"(\d+\.\d)\d+")
_SEP_RX = re.compile("[" + re.escape("".join(sorted(_SEPARATORS))) + "]")
_NON_SEP_RX = re.compile("[^" + re.escape("".join(sorted(_SEPARATORS))) + "]")
_DROP_SEPARATORS = str.maketrans("", "", "".join(_SEPARATORS))


def _keep_first_decimal(m: re.Match[str]) -> str:
    # A function, not a template: re expands a template string anew on every call.
    return m.group(1) + "***"


def _mask_keep(value: str, first: int, last: int, star: str = "*") -> str:
    """Mask every significant character except the first/last ones; separators are kept as written."""
    seps = _SEPARATORS
    if value.isalnum() or not _SEP_RX.search(value):  # the common case: no separators, plain slicing
        n = len(value)
        if n <= first + last:
            first, last = min(first, n // 3), min(last, n // 3)
        return value[:first] + star * (n - first - last) + (value[n - last :] if last else "")
    n = len(value.translate(_DROP_SEPARATORS))
    if n <= first + last:
        first, last = min(first, n // 3), min(last, n // 3)
    # Walk in from each end past the characters kept; everything significant between is starred in one
    # regex call, separators stay as written.
    a = k = 0
    while k < first:
        if value[a] not in seps:
            k += 1
        a += 1
    b, k = len(value), 0
    while k < last:
        b -= 1
        if value[b] not in seps:
            k += 1
    return value[:a] + _NON_SEP_RX.sub(star, value[a:b]) + value[b:]


def mask_value(entity: str, value: str) -> str:
    """Return a masked form of ``value`` that keeps enough to recognise the kind, never enough to identify."""
    if not value:
        return value
    if entity == "PHONE_NUMBER" and (m := _COUNTRY_PREFIX.match(value)):
        # The country code is not identifying: keep it and mask the national number as usual.
        return value[: m.end()] + _mask_keep(value[m.end() :], 3, 4)
    if entity in _KEEP:
        first, last = _KEEP[entity]
        return _mask_keep(value, first, last)
    if entity == "EMAIL_ADDRESS" and "@" in value:
        local, _, domain = value.rpartition("@")
        return (local[:1] + "***" if local else "***") + "@" + domain
    if entity == "IP_ADDRESS":
        if ":" in value:  # IPv6: keep the first group
            head = value.split(":", 1)[0]
            return head + ":****"
        parts = value.split(".")
        return ".".join(parts[:2] + ["*"] * (len(parts) - 2))
    if entity == "PERSON":
        # Keep the surname (first character for Chinese names, the first letter for others).
        if value[:1].isascii():
            return value[:1] + "***"
        return value[:1] + "*" * max(1, len(value) - 1)
    if entity == "ADDRESS":
        keep = max(2, min(6, len(value) // 3))
        return value[:keep] + "****"
    if entity == "GPS_COORDINATE":
        return _GPS_DIGITS.sub(_keep_first_decimal, value)
    if entity == "DATE_OF_BIRTH":
        # The year alone is a coarse quasi-identifier; month and day are hidden.
        year = value[:4]
        return year + "-**-**" if year.isdigit() else "****-**-**"
    # Free-text categories and anything user-defined: show only length.
    return "*" * min(len(value), 12) if len(value) <= 12 else value[:1] + "*" * 8 + f"({len(value)} chars)"


# How the compiled engine masks each entity (detect/_cscan.c, enum K_*): the same rules as ``mask_value``,
# chosen here so they stay in one place; tests hold the two to the same output.
(MASK_DEFAULT, MASK_KEEP, MASK_PHONE, MASK_EMAIL, MASK_IP, MASK_PERSON, MASK_ADDRESS, MASK_GPS, MASK_DOB) = (
    range(9)
)
_KINDS = {
    "PHONE_NUMBER": MASK_PHONE,
    "EMAIL_ADDRESS": MASK_EMAIL,
    "IP_ADDRESS": MASK_IP,
    "PERSON": MASK_PERSON,
    "ADDRESS": MASK_ADDRESS,
    "GPS_COORDINATE": MASK_GPS,
    "DATE_OF_BIRTH": MASK_DOB,
}


def mask_kind(entity: str) -> tuple[int, int, int]:
    """(kind, keep first, keep last) of ``mask_value``'s rule for ``entity``."""
    if entity in _KINDS:
        return _KINDS[entity], 3, 4
    if entity in _KEEP:
        return MASK_KEEP, *_KEEP[entity]
    return MASK_DEFAULT, 0, 0

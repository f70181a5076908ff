"""What a source may say about itself: database URLs without passwords, error messages without data.

Every note, skip reason or error a source hands up passes through here, because drivers and parsers quote
what they read (PostgreSQL: ``value "13812345678" is out of range for type integer``; MySQL: ``Incorrect
integer value: '110101...' for column``; polars: the raw CSV row) and connection errors quote the URL.

* ``redact_url`` renders a URL with SQLAlchemy's parser (``render_as_string(hide_password=True)``), never a
  regex, so a password holding ``/``, ``@`` or a space is hidden whole, and a URL of a scheme piguard does not
  read (``mongodb://admin:secret@...``) is shown without its password too.
* ``mask_message`` runs text through the detectors' masking (the same ``scan_text`` a scan uses), then
  masks what a detector may miss in a driver message: quoted literals other than the identifiers the caller
  names, and long digit runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

import sqlalchemy as sa

# Where a URL starts inside free text; the URL parser then decides what its password is.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://\S+")
# Quoted literals in driver and parser messages: "...", '...', `...` (no newlines inside).
_QUOTED = re.compile(r"\"([^\"\n]{1,2000})\"|'([^'\n]{1,2000})'|`([^`\n]{1,2000})`")
# A digit run this long is an identifier, a phone, an account: never an error's useful part.
_LONG_DIGITS = re.compile(r"\d{7,}")
MAX_MESSAGE_CHARS = 300
# Secrets shorter than this are still hidden in URLs but not scrubbed from messages (they would garble them).
_MIN_SCRUB = 3


def _parse(url: str) -> sa.URL | None:
    try:
        return sa.make_url(url)
    except Exception:  # ArgumentError and friends: not a URL the parser understands
        return None


def _last_at_userinfo(url: str) -> tuple[str, str, str] | None:
    """(scheme, userinfo, rest) splitting at the *last* ``@``, as urllib does for the network location.

    SQLAlchemy splits at the first ``@``: in ``u:p@ss/w@host/db`` (an unencoded ``@`` in the password) it
    takes ``p`` for the password and ``ss/w@host/db`` for host and database, which would show ``ss/w``. The
    user meant the password ``p@ss/w``; hiding everything before the last ``@`` hides what they meant."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    # The last '@' of the whole URL, query included: a password holding '@?' must not leak its tail into
    # what the parser takes for the query. (An '@' inside a real query only hides more than needed.)
    userinfo = rest.rpartition("@")[0]
    return scheme, userinfo, rest[len(userinfo) + 1 :]


def parse_url(url: str) -> sa.URL | None:
    """``url`` as the user meant it: SQLAlchemy's parse, except that an unencoded ``@`` in the password is
    part of the password (split at the last ``@``). None when no parser reads it."""
    parsed = _parse(url)
    split = _last_at_userinfo(url)
    if split is not None:
        scheme, userinfo, rest = split
        user, colon, password = userinfo.partition(":")
        if parsed is None or (parsed.password or "") != password or (parsed.username or "") != user:
            # Re-encode the userinfo the way the user meant it, then let the parser read it.
            fixed = (
                f"{scheme}://{quote(user, safe='')}{':' + quote(password, safe='') if colon else ''}@{rest}"
            )
            parsed = _parse(fixed)
    return parsed


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``; text the parser cannot read is shown as its scheme."""
    parsed = parse_url(url)
    if parsed is None:
        scheme = url.partition("://")[0] if "://" in url else ""
        return f"{scheme}://…" if scheme and scheme.replace("+", "").isalnum() else "(unparseable URL)"
    return parsed.render_as_string(hide_password=True)


def redact_urls(text: str) -> str:
    """``text`` with every URL that carries user info (``user:password@``) shown by ``redact_url``; other
    URLs stay as written, so a message still names the host it could not reach."""

    def one(m: re.Match[str]) -> str:
        url = m.group(0)
        if "@" not in url:
            return url
        bare = url.rstrip(":,;.)'\"")  # the message's punctuation after the URL is not part of it
        return redact_url(bare) + url[len(bare) :]

    return _URL_IN_TEXT.sub(one, text)


def url_secrets(url: str) -> tuple[str, ...]:
    """Strings from ``url`` that must never appear in output: its password, however the URL is read."""
    out: set[str] = set()
    parsed = _parse(url)
    if parsed is not None and parsed.password:
        out.add(str(parsed.password))
    split = _last_at_userinfo(url)
    if split is not None:
        _, userinfo, _ = split
        if ":" in userinfo:
            out.add(userinfo.partition(":")[2])
    return tuple(sorted((s for s in out if s), key=len, reverse=True))


def url_identifiers(url: str) -> tuple[str, ...]:
    """Host, database and user of ``url``: shown in its redacted form anyway, so messages may name them."""
    parsed = parse_url(url)
    if parsed is None:
        return ()
    return tuple(str(x) for x in (parsed.host, parsed.database, parsed.username) if x)


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        if len(s) >= _MIN_SCRUB:
            text = text.replace(s, "***")
            enc = quote(s, safe="")
            if enc != s:
                text = text.replace(enc, "***")
    return text


def _mask_with_detectors(text: str) -> str:
    from piguard.detect import scan_text  # detection masks what sources read; imported when needed

    try:
        findings = scan_text(text, min_confidence=0.0)
    except Exception:  # masking must never be the error: fall back to the generic masks below
        return text
    for f in sorted(findings, key=lambda f: f.start, reverse=True):
        text = text[: f.start] + f.masked + text[f.end :]
    return text


def _mask_unclosed(line: str) -> str:
    """Mask from a quote that is never closed (an odd count of it in the line) to the end of the line."""
    for q in ("`", '"'):
        if line.count(q) % 2:
            cut = line.rindex(q) + 1
            tail = line[cut:]
            if tail.strip():
                line = line[:cut] + _mask_literal(tail)
    return line


def _is_driver_prose(text: str) -> bool:
    """A quoted sentence of the driver's own (``'Lost connection to MySQL server during query'``): plain ASCII
    words, at least four, no digits or ``@``. Data quoted back (a name, an ID, an address) is not that."""
    return text.isascii() and len(text.split()) >= 4 and not re.search(r"[0-9@]", text)


# piguard's own install hint ("pip install 'piguard[db]'") is quoted too; masking it hid the extra to install.
_INSTALL_HINT = re.compile(r"piguard\[[a-z,]+\]")


def _mask_literal(value: str) -> str:
    return "*" * len(value) if len(value) <= 3 else value[0] + "*" * min(len(value) - 1, 7)


def mask_message(text: str, *, secrets: Iterable[str] = (), keep: Iterable[str] = ()) -> str:
    """``text`` fit to print: passwords, URLs' passwords, detected personal data, quoted literals (except the
    identifiers in ``keep``: table, column and file names the caller put there itself) and long digit runs
    masked."""
    text = _scrub(text, secrets)
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    text = _mask_with_detectors(text)
    kept = {k for k in keep if k}

    def literal(m: re.Match[str]) -> str:
        inner = next(g for g in m.groups() if g is not None)
        if inner in kept or _is_driver_prose(inner) or _INSTALL_HINT.fullmatch(inner):
            return m.group(0)
        q = m.group(0)[0]
        return f"{q}{_mask_literal(inner)}{q}"

    text = _QUOTED.sub(literal, text)
    # A quote left open runs to the end of the line: polars quotes a raw CSV row that holds a newline, so
    # the first line of its message ends inside the quote.
    text = "\n".join(_mask_unclosed(line) for line in text.split("\n"))
    return _LONG_DIGITS.sub(lambda m: m.group(0)[:2] + "*" * (len(m.group(0)) - 2), text)


def describe_error(exc: BaseException, *, secrets: Iterable[str] = (), keep: Iterable[str] = ()) -> str:
    """One masked line for a report: the error's type and the first line of its message."""
    raw = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = raw[0] if raw else ""
    name = type(getattr(exc, "orig", None) or exc).__name__
    body = mask_message(first[: MAX_MESSAGE_CHARS * 4], secrets=secrets, keep=keep)[:MAX_MESSAGE_CHARS]
    return f"{name}: {body}" if body else name


__all__ = ["describe_error", "mask_message", "parse_url", "redact_url", "url_identifiers", "url_secrets"]

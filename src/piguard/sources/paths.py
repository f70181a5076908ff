"""File names that are not UTF-8: shown escaped, handed to libraries through a UTF-8 alias.

On Linux a file name is bytes; Python gives names that are not UTF-8 as ``str`` with surrogate escapes
(byte 0xE9 becomes U+DCE9). That ``str`` opens the file, but it cannot be encoded to UTF-8: printing it,
writing it to a report or passing it to polars or pyarrow (Rust and C++ take UTF-8) fails.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def is_utf8_name(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def display_path(path: str) -> str:
    """``path`` as printable text: bytes of a name that are not UTF-8 are shown as ``\\xNN``. For messages and
    reports; open files with the path itself."""
    if is_utf8_name(path):
        return path
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@contextlib.contextmanager
def library_path(path: str) -> Iterator[str]:
    """A path to the same file that libraries taking UTF-8 can open: ``path`` itself when it is UTF-8,
    otherwise a symbolic link with a plain name in a private temporary directory (removed afterwards)."""
    if is_utf8_name(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="piguard-name-") as tmp:
        alias = Path(tmp) / ("input" + "".join(Path(display_path(path)).suffixes[-2:]))
        os.symlink(os.fsencode(os.path.abspath(path)), os.fsencode(alias))
        yield str(alias)


__all__ = ["display_path", "is_utf8_name", "library_path"]

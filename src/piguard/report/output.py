"""Where a scan report goes: standard output, or a file that is replaced only when the report is complete.

A report is streamed as the scan goes (findings are never all held), so it cannot be written in one piece
at the end the way ``piguard._fs.atomic_write_bytes`` writes; instead it streams into a temporary file in
the target's directory, which is renamed over the target when the report is complete. A failed or
interrupted run removes the temporary file and leaves the previous report as it was.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from piguard._fs import OutputPathError


@contextlib.contextmanager
def open_report(path: Path | None) -> Iterator[BinaryIO]:
    """A binary stream for the report: stdout when ``path`` is None; else a temporary file beside ``path``
    renamed over it on success. A device or FIFO (``-o /dev/null``) is written directly: it cannot be
    replaced, and there is nothing in it to keep. Raises ``OutputPathError`` naming the path when it
    cannot be written."""
    if path is None:
        out = sys.stdout.buffer
        yield out
        out.flush()
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputPathError(f"cannot write {path}: it is a directory")
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            fh = open(path, "wb")  # noqa: SIM115 - closed below, after the caller wrote
        except OSError as exc:
            raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None
        with fh:
            yield fh
        return
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(f"cannot write {path}: directory {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, stat.S_IMODE(st.st_mode) if st is not None else _default_mode())
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _default_mode() -> int:
    """What ``open(path, "w")`` would have created: 0o666 less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def is_an_input(output: Path, inputs: list[str]) -> str | None:
    """The input that ``output`` would overwrite (the same file, by device and inode), or None."""
    try:
        out = os.stat(output)
    except OSError:
        return None
    if not stat.S_ISREG(out.st_mode):
        return None
    for f in inputs:
        try:
            st = os.stat(f)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino):
            return f
    return None

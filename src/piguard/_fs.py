"""Writing files so that a reader never sees half of one: every report, key and delivered table goes
through here (temp file in the same directory, fsync, then rename)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be written (missing directory, or it is one of the inputs)."""


def read_regular_bytes(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file. A FIFO, socket or device raises OSError instead of blocking forever
    (opened non-blocking, then checked on the open descriptor, so nothing can swap it in between); a
    directory raises IsADirectoryError. With ``limit``, at most ``limit + 1`` bytes are read, so the
    caller can tell a file past its cap without holding all of it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=True) as fh:
            fd = -1
            return fh.read() if limit is None else fh.read(limit + 1)
    finally:
        if fd >= 0:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically: the old file stays whole until the new one is complete."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(f"cannot write {target}: directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str, *, mode: int = 0o644) -> None:
    # surrogateescape: file names with non-UTF-8 bytes travel through reports unchanged instead of failing.
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"), mode=mode)


def create_secret_file(path: str | Path, data: bytes) -> bool:
    """Create ``path`` with mode 0600 holding ``data``, unless it already exists.

    Returns True when this call created it. Safe under concurrent starts: the content is written to a
    private temp file and linked into place, so a racing process either wins the link or reads the
    winner's complete file, never an empty or partial one."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def is_private(path: str | Path) -> bool:
    """True when neither group nor others may read or write the file (as ssh demands of private keys)."""
    return (os.stat(path).st_mode & 0o077) == 0

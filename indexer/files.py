"""Files the index writes: replaced atomically, with the modes the user's umask gives, like the database's.

``tempfile.mkstemp`` creates files readable by their owner only (0600); a server running as
another user could then not read the FAISS file and would rebuild it from SQL on every open.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for every thread, for a moment)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_file(folder: Path, name: str) -> tuple[int, str]:
    """A new temporary file beside ``folder / name`` for an atomic replace, mode ``0666 & ~umask``.

    Returns:
        Its open descriptor and path, as :func:`tempfile.mkstemp` does.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Write ``path`` so that a reader, or the file after a crash, is the old file or the whole new one.

    Yields a file open in ``mode`` on a temporary file beside ``path`` (:func:`temp_file`: the
    umask's modes). When the block ends, the file is flushed and fsynced, renamed over ``path``,
    and the folder fsynced, so the rename itself survives a crash. If the block (or any of these
    steps) raises, the temporary file is removed, ``path`` is left as it was, and the exception
    propagates.

    Raises:
        OSError: the temporary file cannot be created, written or renamed (e.g. disk full).
    """
    fd, tmp = temp_file(path.parent, path.name)
    try:
        try:
            fh = os.fdopen(fd, mode, encoding=encoding)
        except BaseException:
            os.close(fd)
            raise
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    # Makes a rename durable; not supported on every platform/filesystem.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

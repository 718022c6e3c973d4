"""Files the index writes: replaced atomically, with the modes the user's umask gives, like the database's.

``tempfile.mkstemp`` creates files readable by their owner only (0600); a server running as
another user could then not read the FAISS file and would rebuild it from SQL on every open.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
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


def write_folder_atomically(target: Path, marker: str, write: Callable[[Path], None]) -> None:
    """Make the folder ``target`` whole or not at all: ``write`` fills a hidden scratch folder
    beside it (created with the umask's modes), whose files get the folder's modes (less
    execute) and are synced, and which is then renamed into place. Another process sees no
    folder or the whole folder; a crash leaves only the scratch folder, removed on failure.
    Another process that finished first (``target/marker`` exists) wins the race.

    Raises:
        OSError: The folder could not be written.
    """
    scratch = target.parent / f".{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    os.mkdir(scratch)
    try:
        write(scratch)
        mode = os.stat(scratch).st_mode & 0o666  # safetensors, for one, writes its file 0600
        for folder, _, names in os.walk(scratch):
            for name in names:
                path = os.path.join(folder, name)
                os.chmod(path, mode)
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / marker).is_file():
                raise
        _fsync_folder(target.parent)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def sha256_of(paths: list[Path]) -> str:
    """The SHA-256 of the files ``paths`` read one after the other, as a stream."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


_made_once_lock = threading.Lock()


def folder_made_once(target: Path, marker: str, prepare: Callable[[], Callable[[Path], None]], message: str,
                     notify: Callable[[str], None] | None = None) -> Path:
    """``target``, made on first use (:func:`write_folder_atomically`) and reused once
    ``target/marker`` exists: ``prepare()`` checks the source (and may raise) and returns the
    writer; ``notify`` (default: the log) is told ``message`` before the writing starts.

    Raises:
        ConfigError: The folder beside ``target`` cannot be written.
    """
    from bertsearch.indexer.common.errors import ConfigError

    if (target / marker).is_file():
        return target
    with _made_once_lock:
        if (target / marker).is_file():
            return target
        write = prepare()
        (notify or logging.getLogger(__name__).info)(message)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_folder_atomically(target, marker, write)
        except OSError as exc:
            raise ConfigError(f"cannot write the model in {target.parent}: {exc.strerror or exc}; "
                              "set BERTSEARCH_CACHE_DIR to a writable folder") from exc
    return target

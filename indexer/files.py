"""Files the index writes: created with the modes the user's umask gives, like the database's.

``tempfile.mkstemp`` creates files readable by their owner only (0600); a server running as
another user could then not read the FAISS file and would rebuild it from SQL on every open.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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

"""Writing files safely: one atomic-write helper, and one-line messages for what the file system refuses.

``atomic_write(path, data)`` writes a temporary file beside ``path``, flushes and fsyncs it,
renames it over ``path`` and fsyncs the folder, so a crash at any moment leaves the old file
or the new one, never a part. A failure raises ``WriteError`` naming the file and the reason
(disk full, file too large, permission denied, read-only file system) and leaves no temporary.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from models.config import display

__all__ = ["WriteError", "atomic_write", "fsync_dir", "remove_stale_temporaries", "describe_os_error"]

_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f) or the file system allows",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
}


class WriteError(OSError):
    """A file that could not be written; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: str | os.PathLike, cause: OSError, verb: str = "write") -> None:
        super().__init__(cause.errno, cause.strerror)
        self.filename = os.fspath(path)
        self.message = f"cannot {verb} {display(path)}: {_HINTS.get(cause.errno, cause.strerror or str(cause))}"

    def __str__(self) -> str:
        return self.message


def describe_os_error(e: OSError, *, path: bool = True) -> str:
    """One line for an OSError: the file it concerns (unless ``path=False``) and the reason, in words."""
    if isinstance(e, WriteError):
        return str(e)
    reason = _HINTS.get(e.errno, e.strerror or str(e))
    if path and e.filename is not None:
        return f"{display(e.filename)}: {reason}"
    return reason


def fsync_dir(directory: str | os.PathLike) -> None:
    """fsync a folder, so that a rename in it survives a crash (where folders can be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], None]) -> Path:
    """Write ``data`` (bytes, or a function writing to a binary file) to ``path`` atomically; returns the path."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise WriteError(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        raise WriteError(path, e) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files interrupted atomic writes left in ``directory`` (never a
    finished file: those are only ever renamed into place); returns what went."""
    stale = [p for p in Path(directory).glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink()
    return stale

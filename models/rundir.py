"""Output folders written all-or-nothing, one writer at a time.

For ``--out runs/x`` a tool works in ``runs/.x.partial`` (the staging folder, marked
unfinished while it is written) and only when everything is written renames it to
``runs/x``: where ``runs/x`` already exists, the two are swapped in one atomic
``renameat2(RENAME_EXCHANGE)`` (or, where the file system lacks it, by two renames that the
next start completes), and the old folder is deleted. The files of the old folder that are
not among the tool's outputs (your notes, another tool's files) are carried over by hard
links. So ``runs/x`` always holds the old results or the new ones, complete, never a mix, and
a failed or killed run leaves the old results untouched.

``runs/.x.lock`` admits one writer: it is locked with ``fcntl.flock`` (released by the
kernel when the process ends, however it ends) and holds the writer's PID for the message a
second writer gets. Where ``flock`` is unavailable the lock file is created with ``O_EXCL``
and a lock whose PID is no longer running is stale and taken over.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import sys
import time
from collections.abc import Collection
from pathlib import Path
from types import TracebackType

from models.config import display
from models.files import describe_os_error, fsync_dir, remove_stale_temporaries

__all__ = ["RunDirError", "RunLock", "RunDir", "exchange"]

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class RunDirError(Exception):
    """An output folder that cannot be used (held by another run, not a folder, not writable, ...)."""


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where the system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(a))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """An exclusive lock on ``path`` (see the module docstring); ``label`` names what it guards in messages."""

    def __init__(self, path: Path, label: str) -> None:
        self.path, self.label, self.fd = path, label, None

    def _holder(self, text: str) -> str:
        try:
            info = json.loads(text)
            return (f"PID {info['pid']}, started {info['started']}" + (f": {info['command']}" if info.get("command")
                                                                        else ""))
        except (ValueError, KeyError, TypeError):
            return "unknown process"

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self._acquire_exclusive()
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as e:
                raise RunDirError(f"{self.label}: cannot create the lock file {display(self.path)}: "
                                  f"{describe_os_error(e, path=False)}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(os.read(fd, 65536).decode("utf-8", "replace"))
                os.close(fd)
                raise RunDirError(f"{self.label} is in use by another run ({holder}); wait for it to end, or "
                                  f"choose another --out") from None
            except OSError as e:  # no flock on this file system: O_EXCL and PIDs instead
                os.close(fd)
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                return self._acquire_exclusive()
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file as we opened it: lock the new one
                os.close(fd)
                continue
            self.fd = fd
            self._write_info()
            return
        raise RunDirError(f"{self.label}: could not lock {display(self.path)}")  # pragma: no cover

    def _info(self) -> bytes:
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        argv = [f"python -m {spec.name}" if spec is not None else sys.argv[0], *sys.argv[1:]]
        command = " ".join(display(a) for a in argv)[:300]
        return json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                           "command": command}).encode("utf-8")

    def _write_info(self) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, self._info(), 0)

    def _acquire_exclusive(self) -> None:
        for _ in range(100):
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                self._write_info()
                return
            except FileExistsError:
                try:
                    text = self.path.read_text(encoding="utf-8", errors="replace")
                    pid = int(json.loads(text)["pid"])
                except (OSError, ValueError, KeyError, TypeError):
                    text, pid = "", -1
                if pid > 0 and _alive(pid):
                    raise RunDirError(f"{self.label} is in use by another run ({self._holder(text)}); wait for "
                                      f"it to end, or choose another --out") from None
                try:  # stale: its process is gone
                    self.path.unlink()
                except FileNotFoundError:
                    pass
        raise RunDirError(f"{self.label}: could not lock {display(self.path)}")  # pragma: no cover

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink()
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


class RunDir:
    """The output folder ``out`` of a tool whose own files are ``outputs`` (see the module docstring).

    Use as a context manager (it holds the lock); ``start()`` makes the staging folder,
    ``commit()`` puts it in place, ``discard()`` drops it.
    """

    MARKER = ".unfinished"

    def __init__(self, out: str | os.PathLike, outputs: Collection[str], label: str = "--out") -> None:
        given = Path(out)
        self.label = f"{label} {display(given)}"
        if given.name in ("", ".", "..") or Path(os.path.abspath(given)) in (Path.cwd(), *Path.cwd().parents):
            raise RunDirError(f"{self.label}: name a folder of its own (not the current folder or one above it)")
        self.out = Path(os.path.realpath(given))
        self.parent, name = self.out.parent, self.out.name
        self.staging = self.parent / f".{name}.partial"
        self.old = self.parent / f".{name}.old"
        self.outputs = frozenset(outputs)
        self.lock = RunLock(self.parent / f".{name}.lock", self.label)

    # ---------------------------------------------------------------- locking
    def __enter__(self) -> RunDir:
        if self.out.exists() and not self.out.is_dir():
            raise RunDirError(f"{self.label} exists and is not a folder")
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"{self.label}: cannot create {display(self.parent)}: "
                              f"{describe_os_error(e, path=False)}") from None
        self.lock.acquire()
        try:
            self._recover()
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.lock.release()

    def _recover(self) -> None:
        """Finish what a killed predecessor left: a half-done two-rename swap, a staging folder already swapped out."""
        if self.old.exists():
            if self.out.exists():
                shutil.rmtree(self.old, ignore_errors=True)
            else:
                os.rename(self.old, self.out)
        if self.staging.exists() and not (self.staging / self.MARKER).exists():
            shutil.rmtree(self.staging, ignore_errors=True)  # the old results after a swap, or a commit cut short

    # ---------------------------------------------------------------- state
    def results(self) -> list[str]:
        """The tool's output files that ``out`` holds now."""
        return sorted(n for n in self.outputs if (self.out / n).exists()) if self.out.is_dir() else []

    def interrupted(self) -> bool:
        """Whether an unfinished staging folder (of a run that was killed or failed) is there."""
        return (self.staging / self.MARKER).exists()

    # ---------------------------------------------------------------- writing
    def start(self, keep: bool = False) -> Path:
        """The staging folder, new (or the unfinished one kept, with ``keep``)."""
        try:
            if keep and self.interrupted():
                remove_stale_temporaries(self.staging)  # what a write cut short by a kill left
            else:
                if self.staging.exists():
                    shutil.rmtree(self.staging)
                self.staging.mkdir()
                (self.staging / self.MARKER).write_bytes(b"")
                fsync_dir(self.parent)
        except OSError as e:
            raise RunDirError(f"{self.label}: cannot write in {display(self.parent)}: "
                              f"{describe_os_error(e, path=False)}") from None
        return self.staging

    def carry(self, names: Collection[str]) -> None:
        """Link the entries ``names`` of ``out`` (files or folders) into the staging folder where it has none:
        logs that a resumed run continues rather than replaces."""
        for name in names:
            src, dst = self.out / name, self.staging / name
            if os.path.lexists(dst) or not os.path.lexists(src):
                continue
            try:
                if src.is_dir() and not src.is_symlink():
                    shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
                else:
                    _link_or_copy(os.fspath(src), os.fspath(dst))
            except OSError as e:
                raise RunDirError(f"{self.label}: cannot carry {name} over: "
                                  f"{describe_os_error(e, path=False)}") from None

    def commit(self) -> Path:
        """Carry over the non-output files of the old ``out``, then put the staging folder in its place."""
        if self.out.is_dir():
            for entry in os.scandir(self.out):
                dst = self.staging / entry.name
                if entry.name in self.outputs or entry.name == self.MARKER or os.path.lexists(dst):
                    continue
                if entry.is_symlink():
                    os.symlink(os.readlink(entry.path), dst)
                elif entry.is_dir():
                    shutil.copytree(entry.path, dst, symlinks=True, copy_function=_link_or_copy)
                else:
                    _link_or_copy(entry.path, os.fspath(dst))
        (self.staging / self.MARKER).unlink()
        fsync_dir(self.staging)
        if not self.out.exists():
            os.rename(self.staging, self.out)
        elif exchange(self.staging, self.out):
            fsync_dir(self.parent)
            shutil.rmtree(self.staging, ignore_errors=True)  # the old results (the next start retries)
        else:
            os.rename(self.out, self.old)
            os.rename(self.staging, self.out)
            fsync_dir(self.parent)
            shutil.rmtree(self.old, ignore_errors=True)
        fsync_dir(self.parent)
        return self.out

    def discard(self) -> None:
        """Delete the staging folder."""
        shutil.rmtree(self.staging, ignore_errors=True)

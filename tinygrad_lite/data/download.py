"""Downloads into the cache: each file tried on every mirror, checked by MD5, renamed into place.

A download goes to a temp file beside its destination and is renamed into place only when
its MD5 matches the published one, so the cache never holds a partial or corrupted file.
Each blocking network operation (connect, each read) has ``DOWNLOAD_TIMEOUT`` seconds, and a
transfer larger than ``MAX_DOWNLOAD_BYTES`` is abandoned.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["CACHE_SUBDIR", "DOWNLOAD_TIMEOUT", "MAX_DOWNLOAD_BYTES", "DatasetNotFoundError", "default_cache_dir",
           "download_files"]

CACHE_SUBDIR = "tinygrad_lite"
#: Seconds allowed for each blocking network operation (connect, each read).
DOWNLOAD_TIMEOUT = 30.0
#: A download larger than this is abandoned (a misbehaving server must not fill the disk).
MAX_DOWNLOAD_BYTES = 256 << 20


class DatasetNotFoundError(FileNotFoundError):
    """No usable copy of a dataset was found locally and it could not be downloaded."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tinygrad_lite``, or ``~/.cache/tinygrad_lite``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / CACHE_SUBDIR


def _fetch(url: str, dest: Path, md5: str, timeout: float) -> None:
    """Download ``url`` to a temp file beside ``dest``; rename it to ``dest`` only if the MD5 matches."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        h = hashlib.md5(usedforsecurity=False)
        size = 0
        req = urllib.request.Request(url, headers={"User-Agent": "tinygrad_lite"})
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(req, timeout=timeout) as r:
            while chunk := r.read(1 << 16):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise ValueError(f"larger than {MAX_DOWNLOAD_BYTES} bytes")
                h.update(chunk)
                f.write(chunk)
            length = r.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) != size:
                raise ValueError(f"truncated transfer: got {size} of {length} bytes")
            f.flush()
            os.fsync(f.fileno())
        if h.hexdigest() != md5:
            raise ValueError(f"MD5 mismatch: expected {md5}, got {h.hexdigest()} ({size} bytes)")
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def download_files(name: str, files: Mapping[str, str], dest: Path, mirrors: Sequence[str], *,
                   timeout: float | None = None) -> Path:
    """Download the ``files`` (file name -> MD5) that ``dest`` lacks, trying each of ``mirrors``
    (base URLs) in turn; ``name`` labels the messages. Returns ``dest``.

    Raises ``DatasetNotFoundError`` listing each mirror's failure if a file cannot be had, and
    ``PermissionError`` if ``dest`` is not writable.
    """
    mirrors = tuple(mirrors)
    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    if not mirrors:
        raise DatasetNotFoundError(f"{name}: no download mirrors configured")
    dest.mkdir(parents=True, exist_ok=True)
    if not os.access(dest, os.W_OK):
        raise PermissionError(f"{name}: cannot write to {dest}; pass another cache_dir or dest_dir")
    for filename, md5 in files.items():
        if (dest / filename).is_file():
            continue
        errors = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + filename
            try:
                _fetch(url, dest / filename, md5, timeout)
                break
            except (OSError, ValueError, http.client.HTTPException) as e:
                reason = e.reason if isinstance(e, urllib.error.URLError) else e
                errors.append(f"  {url}: {type(e).__name__}: {reason}")
        else:
            raise DatasetNotFoundError(f"{name}: could not download {filename}:\n" + "\n".join(errors))
    return dest

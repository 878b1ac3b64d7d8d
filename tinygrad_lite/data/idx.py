"""The IDX format (MNIST's): a magic number, the sizes, then a big-endian payload.

``read_idx(path)`` reads one file, gzipped or raw, checking the declared sizes against the
data actually there before allocating anything of that size.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

__all__ = ["IDX_DTYPES", "MAX_IDX_BYTES", "read_idx"]

PathLike = str | os.PathLike

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: Largest payload accepted from a gzipped IDX file (its size is only known by decompressing).
MAX_IDX_BYTES = 1 << 30
_CHUNK = 1 << 22


def _read_upto(fh, n: int) -> bytearray:
    """Read at most ``n`` bytes, in chunks, so memory grows only with the data really there."""
    buf = bytearray()
    while len(buf) < n:
        chunk = fh.read(min(n - len(buf), _CHUNK))
        if not chunk:
            break
        buf += chunk
    return buf


def read_idx(path: PathLike, *, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (gzipped or raw; gzip is detected by its magic bytes ``1f 8b``).

    Header: two zero bytes, a dtype code (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int,
    0x0D float, 0x0E double), ``ndim``, then ``ndim`` big-endian uint32 sizes; the payload is
    big-endian. The declared payload size is checked against the actual one before anything
    of that size is allocated; gzipped payloads larger than ``max_bytes`` are refused.
    Returns a writable native-endian array. Raises ``ValueError`` naming the file.
    """
    path = os.fspath(path)
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        try:
            if is_gzip:
                with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
                    return _parse_idx(fh, path, None, max_bytes)
            return _parse_idx(raw, path, os.fstat(raw.fileno()).st_size, None)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise ValueError(f"{path}: corrupted gzip stream ({e})") from None


def _parse_idx(fh, path: str, file_size: int | None, max_bytes: int | None) -> np.ndarray:
    head = fh.read(4)
    if len(head) < 4:
        raise ValueError(f"{path}: not an IDX file: expected a 4-byte magic number, found {len(head)} bytes")
    if head[0] != 0 or head[1] != 0:
        raise ValueError(f"{path}: not an IDX file: magic {head.hex()} does not start with two zero bytes")
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        valid = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX dtype code 0x{code:02X} (expected one of {valid})")
    if not 1 <= ndim <= 32:
        raise ValueError(f"{path}: IDX ndim is {ndim}, expected 1 to 32")
    dims_raw = fh.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header: expected {4 * ndim} bytes of dimensions, "
                         f"found {len(dims_raw)}")
    shape = tuple(int(d) for d in np.frombuffer(dims_raw, ">u4"))
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    what = f"shape {shape} of {dtype.name}"
    if file_size is not None:
        actual = file_size - 4 - 4 * ndim
        if actual != expected:
            raise ValueError(f"{path}: IDX payload size mismatch: header declares {what} = {expected} bytes, "
                             f"file holds {actual} bytes")
    elif max_bytes is not None and expected > max_bytes:
        raise ValueError(f"{path}: IDX header declares {what} = {expected} bytes, more than the "
                         f"{max_bytes}-byte limit (corrupted header?)")
    buf = _read_upto(fh, expected + 1)
    if len(buf) != expected:
        found = f"more than {expected}" if len(buf) > expected else str(len(buf))
        raise ValueError(f"{path}: IDX payload size mismatch: header declares {what} = {expected} bytes, "
                         f"found {found} bytes")
    try:
        arr = np.frombuffer(buf, dtype).reshape(shape)
    except ValueError:  # e.g. (0, 2**21, 2**21, 2**21): empty, but too big a shape for NumPy
        raise ValueError(f"{path}: IDX {what} cannot be represented by NumPy") from None
    return arr.view(dtype.newbyteorder("=")) if dtype.itemsize == 1 else arr.astype(dtype.newbyteorder("="))

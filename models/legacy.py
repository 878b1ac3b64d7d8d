"""Reading the ``.npz`` checkpoints of earlier versions, with the same checks as safetensors ones.

An ``.npz`` is a zip of ``.npy`` members, possibly deflated, so its members' sizes are only
declared, and a small file can expand to gigabytes. ``NpzReader`` reads each member's size
from the zip's directory and its shape and dtype from the ``.npy`` header, and refuses a
member whose declared size exceeds what its expected shape needs *before* decompressing any
of its data; Python objects (pickles) are never loaded.
"""

from __future__ import annotations

import math
import os
import zipfile
from typing import Any

import numpy as np

from models.config import display

__all__ = ["NpzReader", "NpzError", "NPY_HEADER_MAX"]

#: Room for a member's ``.npy`` header (magic, length, the dict padded to 64 bytes).
NPY_HEADER_MAX = 4096


class NpzError(ValueError):
    """An ``.npz`` member that cannot be read safely."""


class NpzReader:
    """The members of an ``.npz``; ``read`` checks each one before decompressing it."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = display(path)
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise NpzError(f"{self.path}: not a readable .npz checkpoint ({type(e).__name__}: {e})") from None
        self.members = {i.filename.removesuffix(".npy"): i for i in self.zip.infolist() if not i.is_dir()}

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.zip.close()

    def keys(self) -> list[str]:
        return list(self.members)

    def header(self, key: str, max_bytes: int) -> tuple[np.dtype, tuple[int, ...], bool]:
        """(dtype, shape, fortran order) of member ``key``, refusing it if it declares more than
        ``max_bytes`` of data: only its first bytes are decompressed."""
        info = self.members[key]
        if info.file_size > max_bytes + NPY_HEADER_MAX:
            raise NpzError(f"{self.path}: member {info.filename!r} declares {info.file_size:,} bytes, more than "
                           f"the {max_bytes:,} its expected contents need; refused without decompressing it")
        with self._open(info) as f:
            return self._npy_header(f, info)

    def _open(self, info: zipfile.ZipInfo) -> Any:
        try:
            return self.zip.open(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            raise NpzError(f"{self.path}: not a readable .npz checkpoint ({type(e).__name__}: {e})") from None

    def _npy_header(self, f: Any, info: zipfile.ZipInfo) -> tuple[np.dtype, tuple[int, ...], bool]:
        fmt = np.lib.format
        try:
            version = fmt.read_magic(f)
            read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f".npy format version {version} is not supported")
            shape, fortran, dtype = read(f)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise NpzError(f"{self.path}: member {info.filename!r} is not a readable .npy array "
                           f"({type(e).__name__}: {e})") from None
        if dtype.hasobject:
            raise NpzError(f"{self.path}: member {info.filename!r} holds Python objects, which load only through "
                           f"pickle (allow_pickle=False refuses them)")
        return dtype, tuple(shape), fortran

    def read(self, key: str, shape: tuple[int, ...] | None = None, dtype: Any = None, *,
             max_bytes: int) -> np.ndarray:
        """Member ``key`` as an array, after checking its declared size, shape (if given) and dtype (if given)."""
        info = self.members[key]
        limit = max_bytes if shape is None else math.prod(shape) * (np.dtype(dtype).itemsize if dtype else 16)
        if info.file_size > limit + NPY_HEADER_MAX:
            raise NpzError(f"{self.path}: member {info.filename!r} declares {info.file_size:,} bytes, more than "
                           f"the {limit:,} its expected contents need; refused without decompressing it")
        with self._open(info) as f:
            got_dtype, got_shape, fortran = self._npy_header(f, info)
            if shape is not None and got_shape != tuple(shape):
                raise NpzError(f"{self.path}: {key!r} has shape {got_shape}, expected {tuple(shape)}")
            if dtype is not None and got_dtype != np.dtype(dtype):
                raise NpzError(f"{self.path}: {key!r} has dtype {got_dtype}, expected {np.dtype(dtype)}")
            nbytes = math.prod(got_shape) * got_dtype.itemsize
            if nbytes > limit:
                raise NpzError(f"{self.path}: {key!r} declares {nbytes:,} bytes of data, more than the limit "
                               f"{limit:,}")
            data = bytearray()
            try:
                while len(data) < nbytes:
                    chunk = f.read(min(nbytes - len(data), 1 << 22))
                    if not chunk:
                        break
                    data += chunk
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
                raise NpzError(f"{self.path}: member {info.filename!r} is damaged ({type(e).__name__}: {e})") \
                    from None
        if len(data) != nbytes:
            raise NpzError(f"{self.path}: member {info.filename!r} ends after {len(data)} of its {nbytes} bytes")
        arr = np.frombuffer(data, dtype=got_dtype)
        return arr.reshape(got_shape, order="F" if fortran else "C").astype(got_dtype.newbyteorder("="), copy=True)

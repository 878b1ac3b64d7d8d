"""Tensors to and from safetensors files, written directly from the format's specification.

A safetensors file is: an 8-byte little-endian unsigned integer N; N bytes of UTF-8 JSON
mapping each tensor's name to ``{"dtype": "F32", "shape": [784, 128], "data_offsets": [begin,
end]}`` (plus an optional ``"__metadata__"`` object of string values); then the raw
little-endian, C-ordered bytes of every tensor, ``begin``/``end`` counted from the start of
that byte buffer, which the tensors cover exactly (no holes, no overlaps). No code runs on
load and nothing is compressed, so a file can never claim less than it holds.

``load_safetensors`` checks the whole header — its length against the file, every declared
size and offset, the expected names, shapes and dtypes, and a limit on the bytes to read —
before it reads any tensor data, and then reads only the tensors it was asked for.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from ..tensor import Tensor
from .utils import key_problems

__all__ = ["SafetensorsError", "TensorInfo", "DTYPES", "MAX_BYTES", "MAX_HEADER_BYTES", "read_safetensors_header",
           "load_safetensors", "save_safetensors"]

#: The format's dtype codes this reader and writer support, as little-endian NumPy dtypes.
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_CODES = {(dt.kind, dt.itemsize): code for code, dt in DTYPES.items()}
#: Default limit on the tensor bytes one ``load_safetensors`` call reads.
MAX_BYTES = 8 << 30
#: Largest JSON header accepted (the reference implementation's limit).
MAX_HEADER_BYTES = 100_000_000


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file, or does not hold what was expected."""


@dataclass(frozen=True)
class TensorInfo:
    """One header entry: the dtype (code and NumPy dtype), the shape and the byte range in the buffer."""

    code: str
    dtype: np.dtype
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise SafetensorsError(f"the header names {k!r} twice")
        out[k] = v
    return out


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _entry(name: str, e: Any, data_size: int) -> TensorInfo:
    if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
        raise SafetensorsError(f"tensor {name!r}: an entry must have exactly dtype, shape and data_offsets, "
                               f"got {e!r:.200}")
    code, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
    if code not in DTYPES:
        raise SafetensorsError(f"tensor {name!r}: dtype {code!r} is not supported (supported: {', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
        raise SafetensorsError(f"tensor {name!r}: shape must be a list of non-negative integers, got {shape!r:.200}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise SafetensorsError(f"tensor {name!r}: data_offsets must be two non-negative integers, "
                               f"got {offsets!r:.200}")
    begin, end = offsets
    need = math.prod(shape) * DTYPES[code].itemsize
    if end < begin or end - begin != need:
        raise SafetensorsError(f"tensor {name!r}: {code} {tuple(shape)} takes {need} bytes, but data_offsets "
                               f"[{begin}, {end}] span {end - begin}")
    if end > data_size:
        raise SafetensorsError(f"tensor {name!r}: data_offsets [{begin}, {end}] reach past the end of the data "
                               f"({data_size} bytes)")
    return TensorInfo(code, DTYPES[code], tuple(shape), begin, end)


def _header(f: BinaryIO, file_size: int) -> tuple[dict[str, TensorInfo], dict[str, str], int]:
    """(tensors, metadata, offset of the byte buffer) from an open file of ``file_size`` bytes."""
    first = f.read(8)
    if len(first) < 8:
        raise SafetensorsError(f"{file_size} bytes: too short for the 8-byte header length")
    n = int.from_bytes(first, "little")
    if n > MAX_HEADER_BYTES:
        raise SafetensorsError(f"declares a {n}-byte header, more than the {MAX_HEADER_BYTES}-byte limit")
    if 8 + n > file_size:
        raise SafetensorsError(f"declares a {n}-byte header, but the file has only {file_size - 8} bytes after "
                               f"its length")
    raw = f.read(n)
    if len(raw) != n:
        raise SafetensorsError("the file ended inside its header")
    try:
        text = raw.decode("utf-8")
        if not text.startswith("{"):
            raise SafetensorsError("the header is not a JSON object")
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as e:
        raise SafetensorsError(f"the header is not UTF-8 ({e})") from None
    except json.JSONDecodeError as e:
        raise SafetensorsError(f"the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError("the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError("__metadata__ must be an object of string values")
    data_size = file_size - 8 - n
    tensors = {name: _entry(name, e, data_size) for name, e in header.items()}
    covered = 0
    for name, t in sorted(tensors.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
        if t.begin != covered:
            what = "overlaps the tensor before it" if t.begin < covered else f"leaves a gap at byte {covered}"
            raise SafetensorsError(f"tensor {name!r}: data_offsets [{t.begin}, {t.end}] {what}")
        covered = t.end
    if covered != data_size:
        raise SafetensorsError(f"the tensors cover {covered} of the {data_size} data bytes")
    return tensors, metadata, 8 + n


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """The checked header of a safetensors file: ({name: TensorInfo}, metadata); reads no tensor data."""
    with open(path, "rb") as f:
        try:
            tensors, metadata, _ = _header(f, os.fstat(f.fileno()).st_size)
        except SafetensorsError as e:
            raise SafetensorsError(f"{os.fsdecode(path)}: not a valid safetensors file: {e}") from None
    return tensors, metadata


def _spec(value: Any) -> tuple[np.dtype | None, tuple[int, ...]]:
    """(dtype or None, shape) of an expected entry: an array-like with .shape/.dtype, or a shape tuple."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return np.dtype(value.dtype), tuple(int(s) for s in value.shape)
    return None, tuple(int(s) for s in value)


def load_safetensors(path: str | os.PathLike, expected: Mapping[str, Any] | None = None, *,
                     max_bytes: int = MAX_BYTES, strict: bool = True,
                     optional: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Read tensors from a safetensors file as NumPy arrays (native byte order, writable).

    ``expected`` maps each name to read to a shape tuple or to an array-like whose shape and
    dtype must match (``model.state_dict()`` works); names in ``optional`` may be absent.
    ``strict``: a tensor the file holds beyond ``expected`` is an error (otherwise it is not
    read). Everything — header, sizes, names, shapes, dtypes, and at most ``max_bytes`` to read —
    is checked before any data is read; a ``SafetensorsError`` names the file and the tensor.
    Without ``expected``, every tensor is read.
    """
    name = os.fsdecode(path)
    with open(path, "rb") as f:
        try:
            tensors, _, start = _header(f, os.fstat(f.fileno()).st_size)
        except SafetensorsError as e:
            raise SafetensorsError(f"{name}: not a valid safetensors file: {e}") from None
        if expected is None:
            wanted = list(tensors)
        else:
            optional = set(optional)
            problems = key_problems([k for k in expected if k not in optional or k in tensors],
                                    tensors if strict else [k for k in tensors if k in expected])
            for k, value in expected.items():
                if k not in tensors:
                    continue
                dtype, shape = _spec(value)
                t = tensors[k]
                if t.shape != shape:
                    problems.append(f"{k!r} has shape {t.shape}, expected {shape}")
                elif dtype is not None and t.dtype != dtype:
                    problems.append(f"{k!r} has dtype {t.code} ({t.dtype.newbyteorder('=')}), expected {dtype}")
            if problems:
                raise SafetensorsError(f"{name}: " + "; ".join(problems))
            wanted = [k for k in expected if k in tensors]
        total = sum(tensors[k].nbytes for k in wanted)
        if total > max_bytes:
            raise SafetensorsError(f"{name}: the tensors to read declare {total} bytes, more than max_bytes="
                                   f"{max_bytes}")
        out = {}
        for k in sorted(wanted, key=lambda k: tensors[k].begin):
            t = tensors[k]
            arr = np.empty(math.prod(t.shape), dtype=t.dtype)
            buf = arr.view(np.uint8)
            f.seek(start + t.begin)
            got = 0
            while got < t.nbytes:
                n = f.readinto(buf[got:])
                if not n:
                    raise SafetensorsError(f"{name}: the file ended inside tensor {k!r} (changed while read?)")
                got += n
            out[k] = arr.reshape(t.shape).astype(t.dtype.newbyteorder("="), copy=False)
    return {k: out[k] for k in wanted}


def save_safetensors(file: str | os.PathLike | BinaryIO, arrays: Mapping[str, Any],
                     metadata: Mapping[str, str] | None = None) -> None:
    """Write ``arrays`` (name -> ndarray or Tensor) and ``metadata`` (str -> str) as a safetensors file.

    ``file`` is a path or a binary file open for writing. Tensors are laid out by decreasing
    item size, so each is aligned to its item size; the header is padded with spaces to 8 bytes.
    """
    metadata = dict(metadata or {})
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"save_safetensors: metadata must map str to str, got {k!r}: {type(v).__name__}")
    items = []
    for k, a in arrays.items():
        if not isinstance(k, str) or not k or k == "__metadata__":
            raise ValueError(f"save_safetensors: invalid tensor name {k!r}")
        a = np.asarray(a.data if isinstance(a, Tensor) else a)
        code = _CODES.get((a.dtype.kind, a.dtype.itemsize)) if a.dtype.kind in "fiub" else None
        if code is None:
            raise TypeError(f"save_safetensors: {k!r} has dtype {a.dtype}, which safetensors cannot hold "
                            f"(supported: {', '.join(DTYPES)})")
        items.append((k, code, np.ascontiguousarray(a.reshape(-1), dtype=DTYPES[code])))
        items[-1] += (a.shape,)
    items.sort(key=lambda it: (-it[2].itemsize, it[0]))
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for k, code, flat, shape in items:
        header[k] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + flat.nbytes]}
        offset += flat.nbytes
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)

    def write(f: BinaryIO) -> None:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for _, _, flat, _ in items:
            f.write(flat.view(np.uint8))

    if hasattr(file, "write"):
        write(file)
    else:
        with open(file, "wb") as f:
            write(f)

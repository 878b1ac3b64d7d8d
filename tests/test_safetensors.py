"""tinygrad_lite.nn.state: safetensors written and read from the format's specification, every header
check proven to refuse what it guards against before any tensor data is read."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from tinygrad_lite import Tensor
from tinygrad_lite.nn.state import SafetensorsError, load_safetensors, read_safetensors_header, save_safetensors

ARRAYS = {
    "w": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    "b": np.array([1.5, -2.0], dtype=np.float64),
    "half": np.array([[0.5, 2.0]], dtype=np.float16),
    "steps": np.array([3, 4, 5], dtype=np.int64),
    "i32": np.array([-1], dtype=np.int32),
    "i16": np.array([7], dtype=np.int16),
    "i8": np.array([-3], dtype=np.int8),
    "u8": np.arange(5, dtype=np.uint8),
    "u16": np.array([9], dtype=np.uint16),
    "u32": np.array([9], dtype=np.uint32),
    "u64": np.array([2**63], dtype=np.uint64),
    "mask": np.array([True, False, True]),
    "scalar": np.array(0.25, dtype=np.float32),
    "empty": np.zeros((0, 3), dtype=np.float32),
}


def raw_file(path, header: dict | bytes, data: bytes = b"", length: int | None = None):
    """A file with the given header (a dict is JSON-encoded), its declared length and data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


def test_round_trip_of_every_dtype_shape_and_metadata(tmp_path):
    path = tmp_path / "t.safetensors"
    save_safetensors(path, ARRAYS, {"note": "ünïcode", "epoch": "3"})
    got = load_safetensors(path)
    assert set(got) == set(ARRAYS)
    for k, a in ARRAYS.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape, k
        np.testing.assert_array_equal(got[k], a, err_msg=k)
        assert got[k].flags.writeable and got[k].flags.c_contiguous
    tensors, meta = read_safetensors_header(path)
    assert meta == {"note": "ünïcode", "epoch": "3"}
    assert tensors["w"].code == "F32" and tensors["w"].shape == (3, 4)
    # the layout: 8-byte length, the header padded to 8 bytes, each tensor aligned to its item size
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert (8 + n) % 8 == 0 and raw[8:9] == b"{"
    assert all(t.begin % t.dtype.itemsize == 0 for t in tensors.values())


def test_tensors_fortran_order_big_endian_and_tensors_are_written_as_c_order_little_endian(tmp_path):
    a = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    big = np.arange(4, dtype=">i4")
    save_safetensors(tmp_path / "t.safetensors", {"f": a, "big": big, "t": Tensor(np.ones(2), requires_grad=True)})
    got = load_safetensors(tmp_path / "t.safetensors")
    np.testing.assert_array_equal(got["f"], a)
    np.testing.assert_array_equal(got["big"], big)
    assert got["big"].dtype == np.dtype("int32") and got["t"].tolist() == [1.0, 1.0]


def test_written_to_an_open_file(tmp_path):
    with open(tmp_path / "t.safetensors", "wb") as f:
        save_safetensors(f, {"x": np.ones(3)})
    assert load_safetensors(tmp_path / "t.safetensors")["x"].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("arrays, metadata, exc, match", [
    ({"o": np.array([object()])}, None, TypeError, "'o' has dtype object"),
    ({"c": np.ones(2, np.complex64)}, None, TypeError, "'c' has dtype complex64"),
    ({"": np.ones(2)}, None, ValueError, "invalid tensor name ''"),
    ({"__metadata__": np.ones(2)}, None, ValueError, "invalid tensor name"),
    ({"x": np.ones(2)}, {"epoch": 3}, TypeError, "metadata must map str to str"),
])
def test_what_safetensors_cannot_hold_is_refused_on_write(tmp_path, arrays, metadata, exc, match):
    with pytest.raises(exc, match=match):
        save_safetensors(tmp_path / "t.safetensors", arrays, metadata)


ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("header, data, length, match", [
    pytest.param(b"", b"", 2**40, "declares a 1099511627776-byte header, more than the", id="huge-header-length"),
    pytest.param({"x": ENTRY}, bytes(8), 10_000, "declares a 10000-byte header, but the file has only",
                 id="header-past-the-end"),
    pytest.param(b"[1, 2]", b"", None, "not a JSON object", id="not-an-object"),
    pytest.param(b"{oops", b"", None, "not valid JSON", id="bad-json"),
    pytest.param(b'{"x": "\xff"}', b"", None, "not UTF-8", id="not-utf8"),
    pytest.param(b'{"x": 1, "x": 2}', b"", None, "names 'x' twice", id="duplicate-key"),
    pytest.param({"x": {**ENTRY, "dtype": "BF16"}}, bytes(4), None, "dtype 'BF16' is not supported", id="bf16"),
    pytest.param({"x": {**ENTRY, "shape": [2, -1]}}, bytes(8), None, "shape must be a list of non-negative",
                 id="negative-dim"),
    pytest.param({"x": {**ENTRY, "shape": [True]}}, bytes(8), None, "shape must be a list", id="bool-dim"),
    pytest.param({"x": {**ENTRY, "shape": [2**40]}}, bytes(8), None, "takes 4398046511104 bytes, but data_offsets",
                 id="shape-larger-than-its-bytes"),
    pytest.param({"x": {**ENTRY, "data_offsets": [0, 2**40]}}, bytes(8), None, "span 1099511627776",
                 id="offsets-larger-than-the-shape"),
    pytest.param({"x": {**ENTRY, "shape": [2**38], "data_offsets": [0, 2**40]}}, bytes(8), None,
                 "reach past the end of the data", id="offsets-past-the-file"),
    pytest.param({"x": {**ENTRY, "data_offsets": [8]}}, bytes(8), None, "data_offsets must be two", id="one-offset"),
    pytest.param({"x": {"dtype": "F32", "shape": [2]}}, bytes(8), None, "exactly dtype, shape and data_offsets",
                 id="missing-field"),
    pytest.param({"x": ENTRY, "y": ENTRY}, bytes(8), None, "overlaps", id="overlap"),
    pytest.param({"x": {**ENTRY, "data_offsets": [8, 16]}}, bytes(16), None, "leaves a gap at byte 0", id="hole"),
    pytest.param({"x": ENTRY}, bytes(12), None, "cover 8 of the 12 data bytes", id="trailing-bytes"),
    pytest.param({"__metadata__": {"epoch": 3}}, b"", None, "__metadata__ must be an object of string",
                 id="metadata-not-strings"),
])
def test_a_bad_header_is_refused_naming_the_file(tmp_path, header, data, length, match):
    path = raw_file(tmp_path / "bad.safetensors", header, data, length)
    with pytest.raises(SafetensorsError, match=match) as info:
        load_safetensors(path)
    assert "bad.safetensors: not a valid safetensors file" in str(info.value)
    with pytest.raises(SafetensorsError, match=match):
        read_safetensors_header(path)


def test_short_and_truncated_files(tmp_path):
    with pytest.raises(SafetensorsError, match="too short"):
        load_safetensors(_bytes(tmp_path / "a", b"\1\0"))
    save_safetensors(tmp_path / "good", {"x": np.ones(100)})
    whole = (tmp_path / "good").read_bytes()
    for cut in (4, 20, len(whole) - 1):
        with pytest.raises(SafetensorsError):
            load_safetensors(_bytes(tmp_path / "cut", whole[:cut]))


def _bytes(path, data):
    path.write_bytes(data)
    return path


def test_expected_names_shapes_and_dtypes_are_checked_before_reading(tmp_path):
    path = tmp_path / "t.safetensors"
    save_safetensors(path, {"w": np.ones((3, 4), np.float32), "b": np.zeros(4, np.float32)})
    got = load_safetensors(path, {"w": (3, 4), "b": np.zeros(4, np.float32)})
    assert set(got) == {"w", "b"}
    with pytest.raises(SafetensorsError, match=r"'w' has shape \(3, 4\), expected \(4, 3\)"):
        load_safetensors(path, {"w": (4, 3), "b": (4,)})
    with pytest.raises(SafetensorsError, match=r"'b' has dtype F32 \(float32\), expected float64"):
        load_safetensors(path, {"w": (3, 4), "b": np.zeros(4)})
    with pytest.raises(SafetensorsError, match=r"missing keys \['v'\]"):
        load_safetensors(path, {"w": (3, 4), "b": (4,), "v": (1,)})
    with pytest.raises(SafetensorsError, match=r"unexpected keys \['b'\]"):
        load_safetensors(path, {"w": (3, 4)})
    assert set(load_safetensors(path, {"w": (3, 4), "v": (1,)}, strict=False, optional=["v"])) == {"w"}


def test_only_the_expected_tensors_are_read_and_counted_against_the_limit(tmp_path):
    path = tmp_path / "t.safetensors"
    save_safetensors(path, {"small": np.ones(4, np.float32), "big": np.zeros(1 << 18, np.float32)})
    got = load_safetensors(path, {"small": (4,)}, strict=False, max_bytes=64)
    assert list(got) == ["small"]
    with pytest.raises(SafetensorsError, match="declare 1048576 bytes, more than max_bytes=65536"):
        load_safetensors(path, {"big": (1 << 18,)}, strict=False, max_bytes=65536)
    with pytest.raises(SafetensorsError, match="more than max_bytes"):
        load_safetensors(path, max_bytes=1000)


def test_reads_and_writes_what_the_reference_implementation_does(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    arrays = ARRAYS
    save_safetensors(tmp_path / "ours.safetensors", arrays, {"k": "v"})
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    for k, a in arrays.items():
        assert theirs[k].dtype == a.dtype and np.array_equal(theirs[k], a), k
    st.save_file(arrays, str(tmp_path / "theirs.safetensors"), metadata={"k": "v"})
    ours = load_safetensors(tmp_path / "theirs.safetensors")
    for k, a in arrays.items():
        assert ours[k].dtype == a.dtype and np.array_equal(ours[k], a), k
    assert read_safetensors_header(tmp_path / "theirs.safetensors")[1] == {"k": "v"}

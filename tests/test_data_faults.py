"""Faults in data files and downloads (issue 7), beyond tests/test_data.py.

- Random byte flips, truncations and appended bytes of a valid IDX file, raw and gzipped:
  ``read_idx`` returns an array of the size the (possibly changed) header declares, or raises
  a ``ValueError`` naming the file — never another exception, a hang or a large allocation.
- Downloads: a mirror that answers 404, one that stalls mid-file (timeout), one that sends
  too much; the final file never appears before its checksum matched; a corrupted cached file
  is named, not silently re-used or re-downloaded.
"""

from __future__ import annotations

import gzip
import struct
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import register_idx_dataset
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_lite import data
from tinygrad_lite.data import DatasetNotFoundError, load_dataset, read_idx

IMAGES = np.arange(2 * 5 * 4, dtype=np.uint8).reshape(2, 5, 4)
RAW = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 5, 4) + IMAGES.tobytes()
GZ = gzip.compress(RAW, compresslevel=6, mtime=0)


def _check(path: Path) -> None:
    """The reader's contract on any input: an array matching the header, or a ValueError naming the file."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        out = read_idx(path)
    except ValueError as e:
        assert path.name in str(e)
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert time.perf_counter() - start < 2.0
        assert peak < 8 << 20, peak  # never allocates what a corrupted header declares
    assert out.dtype.isnative and out.size == int(np.prod(out.shape))


@given(base=st.sampled_from(["raw", "gz"]),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4),
       cut=st.none() | st.integers(0, 10_000), extra=st.binary(max_size=8))
def test_read_idx_survives_byte_flips_truncation_and_trailing_bytes(tmp_path_factory, base, flips, cut, extra):
    content = bytearray(RAW if base == "raw" else GZ)
    for pos, xor in flips:
        content[pos % len(content)] ^= xor
    if cut is not None:
        content = content[: cut % (len(content) + 1)]
    content += extra
    path = tmp_path_factory.mktemp("flip") / f"corrupt-{base}.idx"
    path.write_bytes(bytes(content))
    _check(path)


@pytest.mark.parametrize("base", ["raw", "gz"])
def test_every_truncation_of_a_valid_file_is_refused(tmp_path, base):
    content = RAW if base == "raw" else GZ
    path = tmp_path / f"cut-{base}.idx"
    for n in range(len(content)):
        path.write_bytes(content[:n])
        with pytest.raises(ValueError, match=path.name):
            read_idx(path)
    path.write_bytes(content)
    np.testing.assert_array_equal(read_idx(path), IMAGES)


@pytest.mark.parametrize("dims", [(2**32 - 1,), (2**16, 2**16, 2**16), (60000, 28, 28, 2**20)])
def test_a_gzip_declaring_huge_dimensions_allocates_nothing(tmp_path, dims):
    path = tmp_path / "huge.idx.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 0x0E, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + bytes(99)))
    _check(path)
    with pytest.raises(ValueError, match=r"huge.idx.gz: IDX header declares shape .* limit"):
        read_idx(path)


def test_a_gzip_bomb_is_stopped_at_the_declared_size(tmp_path):
    # the header declares 1 MB; the stream inflates to 64 MB of zeros
    header = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 1 << 20)
    path = tmp_path / "bomb.idx.gz"
    path.write_bytes(gzip.compress(header + bytes(64 << 20), compresslevel=9))
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"bomb.idx.gz: IDX payload size mismatch.* more than 1048576"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


# ----------------------------------------------------------------------------- downloads
def _files() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20, dtype=np.uint8) % 10,
              rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), np.arange(10, dtype=np.uint8) % 10]
    out = {}
    for name, a in zip(data.IDX_FILES, arrays):
        raw = bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
        out[name] = gzip.compress(raw, compresslevel=1, mtime=0)
    return out


FILES = _files()


class Mirror:
    """``/ok/`` serves the files; ``/stall/`` sends half of each and then waits; ``/big/`` sends 1 MiB more."""

    def __init__(self):
        self.release = threading.Event()
        self.stalled = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                mode, _, name = self.path.strip("/").partition("/")
                if name not in FILES or mode not in ("ok", "stall", "big"):
                    self.send_error(404)
                    return
                body = FILES[name] + (bytes(1 << 20) if mode == "big" else b"")
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "stall":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    outer.stalled.set()
                    outer.release.wait(10)
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mirror(monkeypatch, tmp_path):
    register_idx_dataset(monkeypatch, tmp_path, "faulty", FILES)
    m = Mirror()
    yield m
    m.close()


def _names(d: Path) -> list[str]:
    return sorted(p.name for p in d.rglob("*")) if d.exists() else []


def test_a_404_mirror_is_named_and_the_next_one_used(mirror, tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("faulty", cache_dir=tmp_path / "c", mirrors=[mirror.url + "/gone/"], timeout=5)
    msg = str(e.value)
    assert f"{mirror.url}/gone/train-images-idx3-ubyte.gz: HTTPError: Not Found" in msg
    assert f"Put {', '.join(data.IDX_FILES)} in {tmp_path / 'c' / 'faulty'}" in msg
    assert _names(tmp_path / "c") == ["faulty"]
    d = load_dataset("faulty", cache_dir=tmp_path / "c", mirrors=[mirror.url + "/gone/", mirror.url + "/ok/"])
    assert d.x_train.shape == (20, 784)


def test_a_stalled_mirror_times_out_and_never_leaves_the_file_before_its_checksum(mirror, tmp_path):
    cache = tmp_path / "c" / "faulty"
    result: list[BaseException] = []

    def load():
        try:
            load_dataset("faulty", cache_dir=tmp_path / "c", mirrors=[mirror.url + "/stall/"], timeout=1.0)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            result.append(e)

    worker = threading.Thread(target=load)
    start = time.monotonic()
    worker.start()
    assert mirror.stalled.wait(10)
    during = _names(cache)  # half a file has arrived: only a temp file exists
    assert len(during) == 1 and during[0].startswith(".train-images-idx3-ubyte.gz.") and during[0].endswith(".part")
    worker.join(15)
    assert not worker.is_alive() and time.monotonic() - start < 10
    (e,) = result
    assert isinstance(e, DatasetNotFoundError)
    assert f"{mirror.url}/stall/train-images-idx3-ubyte.gz" in str(e) and "timed out" in str(e)
    assert "Put train-images-idx3-ubyte.gz" in str(e)
    assert _names(cache) == []


def test_a_mirror_sending_too_much_is_abandoned(mirror, tmp_path, monkeypatch):
    monkeypatch.setattr(data.download, "MAX_DOWNLOAD_BYTES", 64 << 10)
    with pytest.raises(DatasetNotFoundError, match=r"big/train-images-idx3-ubyte.gz: ValueError: larger than 65536"):
        load_dataset("faulty", cache_dir=tmp_path / "c", mirrors=[mirror.url + "/big/"], timeout=5)
    assert _names(tmp_path / "c") == ["faulty"]


def test_a_corrupted_cached_file_is_named(mirror, tmp_path):
    load_dataset("faulty", cache_dir=tmp_path / "c", mirrors=[mirror.url + "/ok/"])
    labels = tmp_path / "c" / "faulty" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-9])
    with pytest.raises(ValueError, match=f"{labels}: corrupted gzip stream"):
        load_dataset("faulty", cache_dir=tmp_path / "c", mirrors=[mirror.url + "/ok/"])
    labels.write_bytes(gzip.compress(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 10) + bytes([0] * 9 + [10])))
    with pytest.raises(ValueError, match=f"{labels}: label 10 out of range 0..9"):
        load_dataset("faulty", cache_dir=tmp_path / "c", mirrors=[mirror.url + "/ok/"])

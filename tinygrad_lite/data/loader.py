"""Mini-batches: ``DataLoader`` (epoch after epoch, shuffled by a seeded generator) and
``iterate_minibatches`` (one epoch of two arrays)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["DataLoader", "iterate_minibatches"]

RNG = np.random.Generator | int | None
Batch = tuple[np.ndarray, np.ndarray]


def _check_batch_size(batch_size: Any, where: str) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{where}batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _batches(x: Any, y: Any, batch_size: int, order: np.ndarray | None, stop: int) -> Iterator[Batch]:
    """(x, y) of samples [start, start + batch_size) for start = 0, batch_size, ... < stop, in ``order``
    (slices, so views, when there is no order)."""
    for start in range(0, stop, batch_size):
        if order is None:
            yield x[start:start + batch_size], y[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            yield x[idx], y[idx]


def iterate_minibatches(x: np.ndarray, y: np.ndarray, batch_size: int, *, rng: RNG = None,
                        shuffle: bool = True, drop_last: bool = False) -> Iterator[Batch]:
    """One epoch of ``(x_batch, y_batch)`` pairs covering every sample exactly once.

    With ``shuffle`` the order is a fresh permutation from ``rng`` (a Generator is advanced,
    so successive epochs differ; an int seed gives the same order each time). The last,
    smaller batch is dropped if ``drop_last``. Arguments are checked when this is called.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y have different lengths: {len(x)} vs {len(y)}")
    batch_size = _check_batch_size(batch_size, "")
    n = len(x)
    order = np.random.default_rng(rng).permutation(n) if shuffle else None
    return _batches(x, y, batch_size, order, n - n % batch_size if drop_last else n)


class DataLoader:
    """Mini-batches ``(x, y)`` of a dataset; each ``for x, y in loader:`` is one epoch.

    ``data`` is a pair of equal-length arrays ``(x, y)``, or a dataset object with ``len()``
    whose ``data[indices]`` (an integer index array) returns ``(x, y)`` for those samples. Every
    sample is in exactly one batch per epoch (the last may be smaller; ``drop_last`` drops it).
    With ``shuffle`` each epoch draws a fresh permutation from ``generator``: a
    ``np.random.Generator`` (advanced by each epoch) or a seed for a new one, so one seed gives
    one reproducible sequence of epochs, each in a different order. ``transform(x_batch)`` is
    applied to each batch's inputs; a random one may draw from the same generator:
    ``g = np.random.default_rng(0); DataLoader((x, y), 64, True, generator=g, transform=lambda b: augment(b, g))``.
    """

    def __init__(self, data: tuple[np.ndarray, np.ndarray] | Any, batch_size: int, shuffle: bool = False, *,
                 generator: RNG = None, drop_last: bool = False,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        if isinstance(data, (tuple, list)):
            if len(data) != 2:
                raise ValueError(f"DataLoader: expected a pair (x, y) of arrays, got {len(data)} items")
            x, y = (a if isinstance(a, np.ndarray) else np.asarray(a) for a in data)
            if len(x) != len(y):
                raise ValueError(f"DataLoader: x and y have different lengths: {len(x)} vs {len(y)}")
            self._pair: tuple[Any, Any] | None = (x, y)
        elif hasattr(data, "__len__") and hasattr(data, "__getitem__"):
            self._pair = None
        else:
            raise TypeError(f"DataLoader: expected a pair (x, y) of arrays or a dataset with len() and indexing, "
                            f"got {type(data).__name__} (for a loaded Dataset ds, pass (ds.x_train, ds.y_train))")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {type(transform).__name__}")
        self.data = data
        self.batch_size = _check_batch_size(batch_size, "DataLoader: ")
        self.shuffle, self.drop_last, self.transform = bool(shuffle), bool(drop_last), transform
        self.generator = np.random.default_rng(generator)

    def _n(self) -> int:
        return len(self._pair[0]) if self._pair is not None else len(self.data)

    def __len__(self) -> int:
        """Batches per epoch."""
        n, b = self._n(), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[Batch]:
        """One epoch; its order is drawn now (with ``shuffle``), before the first batch is made."""
        n = self._n()
        order = self.generator.permutation(n) if self.shuffle else None
        stop = n - n % self.batch_size if self.drop_last else n
        if self._pair is not None:
            batches = _batches(*self._pair, self.batch_size, order, stop)
        else:
            batches = self._dataset_batches(np.arange(n) if order is None else order, stop)
        if self.transform is None:
            return batches
        return ((self.transform(x), y) for x, y in batches)

    def _dataset_batches(self, order: np.ndarray, stop: int) -> Iterator[Batch]:
        for start in range(0, stop, self.batch_size):
            batch = self.data[order[start:start + self.batch_size]]
            if not (isinstance(batch, tuple) and len(batch) == 2):
                raise TypeError(f"DataLoader: {type(self.data).__name__}[indices] must return a pair (x, y), "
                                f"got {type(batch).__name__}")
            yield batch

    def __repr__(self) -> str:
        return (f"DataLoader({self._n()} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last})")

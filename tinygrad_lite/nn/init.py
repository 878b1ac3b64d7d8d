"""Weight initialisers by name: ``INITS[name](n_in, n_out, rng, std)`` draws an (n_in, n_out) array.

``init_weight(name, n_in, n_out, rng)`` is what ``Linear`` calls; ``rng`` is a
``np.random.Generator`` (used as is, so layers drawn from one generator follow each other)
or a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["INITS", "init_weight", "fan_in_uniform"]

Array = np.ndarray


def _xavier_uniform(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    a = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-a, a, size=(n_in, n_out))


def _uniform_fan_in(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    a = 1.0 / np.sqrt(n_in)
    return rng.uniform(-a, a, size=(n_in, n_out))


def _he_normal(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))


def _normal(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    return rng.normal(0.0, std, size=(n_in, n_out))


def _scaled_normal(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    return rng.standard_normal(size=(n_in, n_out)) / np.sqrt(n_in)


def _small_random(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    return rng.uniform(-0.5, 0.5, size=(n_in, n_out))


INITS: dict[str, Callable[..., Array]] = {
    "xavier_uniform": _xavier_uniform,  # U(−√(6/(in+out)), √(6/(in+out)))
    "uniform_fan_in": _uniform_fan_in,  # U(−1/√in, 1/√in)          (reference B)
    "he_normal": _he_normal,  # N(0, 2/in)
    "kaiming_normal": _he_normal,  # same as he_normal
    "normal": _normal,  # N(0, std²), std = 0.01 by default   (reference D)
    "scaled_normal": _scaled_normal,  # N(0, 1)/√in                  (reference E)
    "small_random": _small_random,  # U(−0.5, 0.5)                  (references A, C)
}


def init_weight(
    init: str, n_in: int, n_out: int, rng: np.random.Generator | int | None = None,
    std: float = 0.01, dtype: Any = np.float32,
) -> Array:
    """A (n_in, n_out) weight array drawn by the named initialisation (see ``INITS``)."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid names: {', '.join(INITS)}")
    return INITS[init](n_in, n_out, np.random.default_rng(rng), std).astype(dtype)


def fan_in_uniform(shape: tuple[int, ...], fan_in: int, rng: np.random.Generator | int | None = None,
                   dtype: Any = np.float32) -> Array:
    """U(−1/√fan_in, 1/√fan_in) of ``shape``: PyTorch's default for convolution weights and biases
    (``kaiming_uniform_`` with a = √5 gives this bound), fan_in = in_channels/groups · kh · kw."""
    bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
    return np.random.default_rng(rng).uniform(-bound, bound, size=shape).astype(dtype)

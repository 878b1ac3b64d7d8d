"""Argument and input checks the layers share: each error names the layer, the argument and the shapes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor, from_numpy

__all__ = ["check_input", "positive_int", "int_tuple", "check_float"]


def positive_int(where: str, name: str, value: Any, low: int = 1) -> int:
    """``value`` as an int ≥ ``low`` (bools refused), or a ValueError naming ``where`` and ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        kind = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{where}: {name} must be {kind}, got {value!r}")
    return int(value)


def int_tuple(where: str, name: str, value: Any, n: int, low: int) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints, each ≥ ``low``, as an n-tuple."""
    items = (value,) * n if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if len(items) != n or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low
                              for v in items):
        kind = "positive" if low == 1 else f">= {low}"
        raise ValueError(f"{where}: {name} must be an int or {n} ints, each {kind}, got {value!r}")
    return tuple(int(v) for v in items)


def check_float(where: str, name: str, value: Any, low: float = 0.0, high: float | None = None,
                low_open: bool = False) -> float:
    """``value`` as a finite float in [low, high] ((low, high] when ``low_open``)."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < low or (low_open and v == low) or (high is not None and v > high):
        lo = "(" if low_open else "["
        hi = f"{high}]" if high is not None else "inf)"
        raise ValueError(f"{where}: {name} must be in {lo}{low}, {hi}, got {value!r}")
    return v


def check_input(layer: Any, x: Any, ndims: tuple[int, ...], layout: str, channels: int | None = None,
                dtype: Any = None) -> Any:
    """``x`` as a Tensor (an array is wrapped, not copied) after checking its number of dimensions, its
    channels (axis 1) and, when ``dtype`` is given, its dtype (an input must match the parameters')."""
    if not isinstance(x, Tensor):
        x = from_numpy(x if isinstance(x, np.ndarray) else np.asarray(x, dtype=dtype))
    shape = tuple(x.shape)
    if len(shape) not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{layer!r}: input must be {want} {layout}, got shape {shape}")
    if channels is not None and shape[1] != channels:
        raise ValueError(f"{layer!r}: input has {shape[1]} channels (shape {shape}), expected {channels}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{layer!r}: input has dtype {x.dtype} but the parameters have dtype {np.dtype(dtype)}; "
                        f"convert the input (x.astype(np.{np.dtype(dtype)})) or build the layer with "
                        f"dtype=np.{x.dtype}")
    return x

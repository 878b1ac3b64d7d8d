"""Hypothesis strategies that draw whole `check_backprop` cases: parameter shapes and batches.

Shapes are written with named sizes, drawn once per example so that they agree across
parameters and data ("n" inputs, "h" hidden units, "k" classes, "m" examples); an int is
a fixed size. Values come from a NumPy generator seeded by a drawn integer: normal
parameters and data (never exactly on a kink such as ReLU's 0), one-hot or integer
labels. One ``@given`` test then checks the whole derivation for every layer size and
batch size, column-major or row-major::

    from hypothesis import given
    from tinygrad_lite.testing.backprop_strategies import backprop_cases, one_hot

    @given(backprop_cases(
        params={"W1": ("h", "n"), "b1": ("h", 1), "W2": ("k", "h"), "b2": ("k", 1)},
        data=[("n", "m"), one_hot("k", "m", axis=0)],   # X is n × m, Y is k × m
        sizes={"k": (2, 4)},                            # the other sizes: 1 to 5
    ))
    def test_my_backprop(case):
        case.check(loss_fn, grads_fn)  # check_backprop(loss_fn, grads_fn, case.params, *case.data)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError(
        "tinygrad_lite.testing.backprop_strategies needs Hypothesis: pip install hypothesis "
        "(or pip install 'tinygrad-lite[dev]')"
    ) from None

from .backprop import BackpropReport, check_backprop

__all__ = ["BackpropCase", "Labels", "backprop_cases", "labels", "one_hot"]

Size = int | str
Shape = Sequence[Size]


@dataclass(frozen=True)
class Labels:
    """Class labels for a batch: one-hot along ``axis`` of ``shape``, or (``axis`` None) integers
    in [0, classes) of ``shape``."""

    shape: tuple[Size, ...]
    classes: Size
    axis: int | None


def one_hot(*shape: Size, axis: int = 0) -> Labels:
    """One-hot labels of ``shape`` with the classes along ``axis``: ``one_hot("k", "m", axis=0)``
    is the column-major Y (k × m), ``one_hot("m", "k", axis=1)`` the row-major one."""
    return Labels(tuple(shape), shape[axis], axis)


def labels(*shape: Size, classes: Size) -> Labels:
    """Integer class labels of ``shape`` (usually ``("m",)``) in [0, classes)."""
    return Labels(tuple(shape), classes, None)


@dataclass
class BackpropCase:
    """One drawn case: ``params`` (the structure of the spec), ``data`` (a tuple), the drawn sizes."""

    params: Any
    data: tuple
    sizes: dict[str, int]
    seed: int

    def check(self, loss_fn: Callable[..., Any], grads_fn: Callable[..., Any], **tolerances: Any) -> BackpropReport:
        """``check_backprop(loss_fn, grads_fn, self.params, *self.data, **tolerances)``."""
        __tracebackhide__ = True
        return check_backprop(loss_fn, grads_fn, self.params, *self.data, **tolerances)

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example
        return f"BackpropCase(sizes={self.sizes}, seed={self.seed})"


def _names(spec: Any) -> list[str]:
    shapes = list(spec.values()) if isinstance(spec, Mapping) else list(spec)
    found = []
    for item in shapes:
        dims = (*item.shape, item.classes) if isinstance(item, Labels) else tuple(item)
        for d in dims:
            if isinstance(d, str) and d not in found:
                found.append(d)
            elif not isinstance(d, (str, int)):
                raise TypeError(f"backprop_cases: a size must be an int or a name, got {d!r} in {item!r}")
    return found


def _concrete(shape: Shape, sizes: dict[str, int]) -> tuple[int, ...]:
    return tuple(sizes[d] if isinstance(d, str) else int(d) for d in shape)


def _draw_data(item: Any, sizes: dict[str, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    if isinstance(item, Labels):
        shape, classes = _concrete(item.shape, sizes), _concrete((item.classes,), sizes)[0]
        if item.axis is None:
            return rng.integers(0, classes, size=shape)
        index = rng.integers(0, classes, size=shape[: item.axis] + shape[item.axis + 1:])
        return np.moveaxis(np.eye(classes)[index], -1, item.axis)
    return rng.standard_normal(_concrete(item, sizes)) * scale


@st.composite
def backprop_cases(draw: st.DrawFn, params: Mapping[str, Shape] | Sequence[Shape], data: Sequence[Any] = (),
                   sizes: Mapping[str, tuple[int, int]] | None = None, default_size: tuple[int, int] = (1, 5),
                   scale: float = 1.0) -> BackpropCase:
    """A `BackpropCase` with parameters of the shapes in ``params`` (a dict or list of shapes)
    and data arrays drawn for ``data`` (shapes, `one_hot`/`labels`, or Hypothesis strategies).

    Every named size is drawn from ``sizes[name]`` (inclusive bounds), else ``default_size``.
    Parameters and float data are ``scale`` × standard normal draws, in float64.
    """
    bounds = dict(sizes or {})
    drawn: dict[str, int] = {}
    for name in _names(params) + _names([d for d in data if not isinstance(d, st.SearchStrategy)]):
        if name not in drawn:
            low, high = bounds.get(name, default_size)
            drawn[name] = draw(st.integers(low, high), label=name)
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    if isinstance(params, Mapping):
        values: Any = {k: rng.standard_normal(_concrete(s, drawn)) * scale for k, s in params.items()}
    else:
        values = type(params)(rng.standard_normal(_concrete(s, drawn)) * scale for s in params)
    arrays = tuple(draw(d) if isinstance(d, st.SearchStrategy) else _draw_data(d, drawn, rng, scale) for d in data)
    return BackpropCase(values, arrays, drawn, seed)

"""Hypothesis strategies for property-testing ops and models against finite differences.

    from hypothesis import given
    from tinygrad_lite.testing import assert_grads_match
    from tinygrad_lite.testing.strategies import arrays

    @given(arrays(shape=(3, 4)))
    def test_my_op(x):
        assert_grads_match(lambda t: my_op(t).sum(), x)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = ["arrays", "away_from_kinks", "broadcastable_shapes", "mlp_specs", "shapes"]

ACTIVATIONS = ("relu", "tanh", "sigmoid")


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> st.SearchStrategy:
    """Array shapes, small enough for full Jacobian checks."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def _elements(dtype: Any, low: float, high: float) -> st.SearchStrategy:
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=width)


@st.composite
def arrays(draw: st.DrawFn, shape: Any = None, dtype: Any = np.float64,
           elements: st.SearchStrategy | None = None, low: float = -3.0, high: float = 3.0) -> np.ndarray:
    """Float arrays of ``shape`` (a tuple, a strategy of shapes, or None for any small shape).

    Values are drawn from ``elements`` or uniformly-ish from [low, high], finite only.
    """
    if shape is None:
        shape = shapes()
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    return draw(hnp.arrays(dtype, shape, elements=elements or _elements(dtype, low, high)))


@st.composite
def broadcastable_shapes(draw: st.DrawFn, n: int = 2, min_dims: int = 0, max_dims: int = 3,
                         max_side: int = 4) -> tuple[tuple[int, ...], ...]:
    """``n`` shapes that broadcast together (some axes of size 1, some missing in front)."""
    result = draw(hnp.mutually_broadcastable_shapes(
        num_shapes=n, min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side))
    return tuple(result.input_shapes)


@st.composite
def away_from_kinks(draw: st.DrawFn, shape: Any = None, dtype: Any = np.float64, kinks: tuple = (0.0,),
                    margin: float = 1e-2, distinct: bool = False, low: float = -3.0,
                    high: float = 3.0) -> np.ndarray:
    """Arrays whose values stay at least ``margin`` from every kink (0 for ReLU/abs), and,
    with ``distinct=True``, differ pairwise by at least ``margin`` (no ties for max-like ops).

    Finite differences with a step ε ≪ margin then never straddle a non-differentiable point.
    """
    x = draw(arrays(shape=shape, dtype=dtype, low=low, high=high))
    flat = x.reshape(-1)
    if distinct and flat.size > 1:  # keep the drawn order, spread the values on a grid
        ranks = np.empty(flat.size)
        ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size)
        spacing = max(4 * margin, (high - low) / flat.size)
        flat[:] = (ranks - flat.size / 2 + 0.25) * spacing
    for kink in kinks:  # moves a value by at most 3·margin: grid neighbours stay ≥ margin apart
        near = np.abs(flat - kink) < margin
        flat[near] = kink + np.where(flat[near] >= kink, 2 * margin, -2 * margin)
    return x


@st.composite
def mlp_specs(draw: st.DrawFn, min_layers: int = 1, max_layers: int = 3, max_width: int = 8,
              max_inputs: int = 8, max_classes: int = 5, activations: tuple[str, ...] = ACTIVATIONS
              ) -> dict[str, Any]:
    """An MLP specification: ``{"sizes": [in, h1, ..., classes], "activations": [...], "batch": m}``.

    ``min_layers``/``max_layers`` count hidden layers; one activation is drawn per hidden layer.
    """
    hidden = draw(st.lists(st.integers(1, max_width), min_size=min_layers, max_size=max_layers))
    sizes = [draw(st.integers(1, max_inputs)), *hidden, draw(st.integers(2, max_classes))]
    acts = [draw(st.sampled_from(activations)) for _ in hidden]
    return {"sizes": sizes, "activations": acts, "batch": draw(st.integers(1, 6))}

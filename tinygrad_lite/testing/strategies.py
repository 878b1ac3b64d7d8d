"""Hypothesis strategies for property-testing ops and models against finite differences.

    from hypothesis import given
    from tinygrad_lite.testing import assert_grads_match
    from tinygrad_lite.testing.strategies import arrays

    @given(arrays(shape=(3, 4)))
    def test_my_op(x):
        assert_grads_match(my_op, x)  # the whole Jacobian, not just the gradient of a sum
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
    from hypothesis.extra import numpy as hnp
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError(
        "tinygrad_lite.testing.strategies needs Hypothesis: pip install hypothesis "
        "(or pip install 'tinygrad-lite[dev]')"
    ) from None

__all__ = ["arrays", "away_from_kinks", "broadcastable_shapes", "mlp_specs", "shapes"]

ACTIVATIONS = ("relu", "tanh", "sigmoid")


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> st.SearchStrategy:
    """Array shapes, small enough for full Jacobian checks."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def _inward(bound: float, dtype: np.dtype, up: bool) -> float:
    """``bound`` rounded into ``dtype``, towards the inside of the interval (Hypothesis needs
    bounds that the element width represents exactly)."""
    b = dtype.type(bound)
    if up and float(b) < bound:
        b = np.nextafter(b, dtype.type(np.inf))
    if not up and float(b) > bound:
        b = np.nextafter(b, dtype.type(-np.inf))
    return float(b)


def _elements(dtype: Any, low: float, high: float) -> st.SearchStrategy:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return st.integers(int(np.ceil(low)), int(np.floor(high)))
    if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
        raise InvalidArgument(f"arrays: dtype must be float16/32/64 or integer, got {dtype}")
    low, high = _inward(low, dtype, up=True), _inward(high, dtype, up=False)
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=8 * dtype.itemsize)


@st.composite
def arrays(draw: st.DrawFn, shape: Any = None, dtype: Any = np.float64,
           elements: st.SearchStrategy | None = None, low: float = -3.0, high: float = 3.0) -> np.ndarray:
    """Arrays of ``shape`` (a tuple, an int, a strategy of shapes, or None for any small shape).

    Values are drawn from ``elements``, or from [low, high] (finite floats; integers for an
    integer ``dtype``).
    """
    if low > high:
        raise InvalidArgument(f"arrays: low={low} is above high={high}")
    if shape is None:
        shape = shapes()
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    return draw(hnp.arrays(dtype, shape, elements=_elements(dtype, low, high) if elements is None else elements))


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
    Values near a kink are pushed 2·margin away from it, so they may leave [low, high] by up
    to 2·margin. With ``distinct=True`` the drawn order is kept and the values are spread on a
    grid centred in [low, high], with a spacing of at least 4·margin (wider than
    [low, high] when it cannot hold that many values).
    """
    if not margin > 0:
        raise InvalidArgument(f"away_from_kinks: margin must be > 0, got {margin}")
    ordered = sorted(float(k) for k in kinks)
    if any(b - a < 6 * margin for a, b in zip(ordered, ordered[1:])):
        raise InvalidArgument(f"away_from_kinks: kinks {tuple(kinks)} must be at least 6·margin = {6 * margin} apart")
    x = draw(arrays(shape=shape, dtype=dtype, low=low, high=high))
    flat = np.array(x, dtype=np.float64).reshape(-1)
    if distinct and flat.size > 1:  # keep the drawn order, spread the values on a grid
        ranks = np.empty(flat.size)
        ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size)
        spacing = max(4 * margin, (high - low) / flat.size)
        flat = (low + high) / 2 + (ranks - (flat.size - 1) / 2) * spacing + 0.25 * spacing
    for kink in ordered:  # moves a value by at most 3·margin: grid neighbours stay ≥ margin apart
        near = np.abs(flat - kink) < margin
        flat[near] = kink + np.where(flat[near] >= kink, 2 * margin, -2 * margin)
    return flat.astype(x.dtype).reshape(x.shape)


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

"""Testing second derivatives of your own ops: `gradgradcheck` for pytest, and a Hypothesis test factory.

    from hypothesis import given
    from hypothesis import strategies as st
    from tinygrad_lite import defop
    from tinygrad_lite.testing.second_order import assert_second_grads_match, second_order_test
    from tinygrad_lite.testing.strategies import arrays

    @defop
    def cube(x):
        return x**3, lambda g: g * 3 * x**2

    @given(arrays(shape=(3, 2)), st.integers(0, 2**32 - 1))
    def test_cube_second_derivative(x, seed):
        assert_second_grads_match(cube, x, seed=seed)  # seed: the random cotangent v

    test_cube_again = second_order_test(cube, arrays(shape=(3, 2)))  # the same test, made for you

Both check (x, v) ↦ vᵀ·∂cube(x)/∂x, and so vᵀ·∂²cube/∂x², against finite differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..gradcheck import GradcheckError
from ..gradgradcheck import gradgradcheck
from ..tensor import Tensor

__all__ = ["GradcheckError", "assert_second_grads_match", "second_order_test"]


def assert_second_grads_match(fn: Callable[..., Tensor], *arrays: Any, **tolerances: Any) -> None:
    """Assert that ``fn``'s second derivatives at ``arrays`` match finite differences (see `gradgradcheck`).

    Keyword arguments go to `gradgradcheck`: ``grad_outputs``, ``eps``, ``atol``, ``rtol``,
    ``fast``, ``seed``. ``seed`` defaults to 0 here, so a failing example replays with the same
    cotangent (Hypothesis needs that). Raises GradcheckError (an AssertionError) naming the input.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    tolerances.setdefault("seed", 0)
    gradgradcheck(fn, arrays, **tolerances)


def second_order_test(fn: Callable[..., Tensor], *strategies: Any, **tolerances: Any) -> Callable[..., None]:
    """A Hypothesis test of ``fn``'s second derivatives: ``strategies`` draw its arguments (one each),
    a seed for the random cotangent is drawn too. Assign the result to a ``test_*`` name."""
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.tuples(*strategies), st.integers(0, 2**32 - 1))
    def test(arrays: tuple, seed: int) -> None:
        assert_second_grads_match(fn, *arrays, **{"seed": seed, **tolerances})

    test.__name__ = test.__qualname__ = f"test_second_derivatives_of_{getattr(fn, '__name__', 'fn')}"
    return test

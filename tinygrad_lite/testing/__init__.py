"""Testing helpers for users' own pytest suites (needs Hypothesis for the strategies).

``assert_grads_match(fn, *arrays)`` is `gradcheck` with a pytest-friendly name, and
``assert_second_grads_match`` `gradgradcheck`'s (``second_order_test`` makes a Hypothesis test of it);
``check_backprop(loss_fn, grads_fn, params, *data)`` checks hand-derived NumPy gradients;
``tinygrad_lite.testing.strategies`` draws arrays, broadcastable shapes, values away from
kinks and MLP specifications.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..gradcheck import GradcheckError, gradcheck
from ..tensor import Tensor
from .backprop import BackpropMismatch, BackpropReport, ParamCheck, check_backprop
from .second_order import assert_second_grads_match, second_order_test

__all__ = ["BackpropMismatch", "BackpropReport", "GradcheckError", "ParamCheck", "assert_grads_match",
           "assert_second_grads_match", "check_backprop", "second_order_test"]


def assert_grads_match(fn: Callable[..., Tensor], *arrays: Any, **tolerances: Any) -> None:
    """Assert that ``fn``'s gradients at ``arrays`` match finite differences (see `gradcheck`).

    Keyword arguments go to `gradcheck`: ``eps``, ``atol``, ``rtol``, ``fast``, ``seed``.
    Raises GradcheckError (an AssertionError) with the worst element on mismatch.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    gradcheck(fn, arrays, **tolerances)

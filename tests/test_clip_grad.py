"""nn.utils.clip_grad_norm_ and clip_grad_value_: PyTorch's semantics, gradients changed in place."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite.nn as nn
from tinygrad_lite import Tensor
from tinygrad_lite.testing.strategies import arrays


def params_with(*grads):
    out = []
    for g in grads:
        p = Tensor(np.zeros(np.shape(g)), requires_grad=True)
        p.grad = None if g is None else np.array(g, dtype=np.float64)
        out.append(p)
    return out


@given(a=arrays(shape=(3, 2), low=-5, high=5), b=arrays(shape=(4,), low=-5, high=5),
       max_norm=st.floats(0.01, 20), norm_type=st.sampled_from([1.0, 2.0, 3.0, np.inf]))
def test_clip_grad_norm_scales_all_gradients_by_one_factor(a, b, max_norm, norm_type):
    ps = params_with(a, b)
    grads = [p.grad for p in ps]
    flat = np.concatenate([a.ravel(), b.ravel()])
    total = np.abs(flat).max() if norm_type == np.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    returned = nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
    np.testing.assert_allclose(returned, total, rtol=1e-12)
    factor = min(max_norm / (total + 1e-6), 1.0)
    np.testing.assert_allclose(ps[0].grad, a * factor, rtol=1e-12)
    np.testing.assert_allclose(ps[1].grad, b * factor, rtol=1e-12)
    assert all(p.grad is g for p, g in zip(ps, grads))  # in place


def test_clip_grad_norm_skips_missing_gradients_and_handles_non_finite_totals():
    ps = params_with([3.0, 4.0], None)
    assert nn.clip_grad_norm_(ps, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(ps[0].grad, [0.6, 0.8], rtol=1e-6)
    assert ps[1].grad is None
    assert nn.clip_grad_norm_(params_with(None), 1.0) == 0.0
    single = params_with([0.3, 0.4])[0]
    assert nn.clip_grad_norm_(single, 10.0) == pytest.approx(0.5)  # a single Tensor; below max: unchanged
    np.testing.assert_array_equal(single.grad, [0.3, 0.4])
    bad = params_with([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf"):
        nn.clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(bad[0].grad, [np.inf, 1.0])  # nothing changed
    nn.clip_grad_norm_(bad, 1.0)  # PyTorch's behaviour without the check: scaled by 0 (NaN for inf · 0)
    assert np.isnan(bad[0].grad[0]) and bad[0].grad[1] == 0
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        nn.clip_grad_norm_(ps, -1.0)


def test_clip_grad_value_clips_in_place_and_a_model_trains_with_clipping():
    ps = params_with([[-3.0, 0.5], [2.0, -0.1]], None)
    g = ps[0].grad
    assert nn.utils.clip_grad_value_(ps, 1.0) is None
    np.testing.assert_array_equal(g, [[-1.0, 0.5], [1.0, -0.1]])
    assert ps[0].grad is g and ps[1].grad is None
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        nn.clip_grad_value_(ps, -1)
    model = nn.Linear(3, 2, rng=0)
    model(np.ones((4, 3), np.float32)).sum().backward()
    total = nn.clip_grad_norm_(model.parameters(), 0.5)
    assert total > 0.5
    norm = np.sqrt(sum((p.grad.astype(np.float64) ** 2).sum() for p in model.parameters()))
    assert norm == pytest.approx(0.5, rel=1e-5) and model.weight.grad.dtype == np.float32

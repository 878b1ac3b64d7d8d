"""Reductions take NumPy's axis/keepdims and PyTorch's dim/keepdim alike; list-valued axes work."""

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import Tensor
from tinygrad_lite.testing import assert_grads_match

X = np.random.default_rng(0).standard_normal((2, 3, 4))


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis", [0, -1, (0, 2), [0, 2]])
@pytest.mark.parametrize("keep", [False, True])
def test_dim_keepdim_equal_axis_keepdims(name, axis, keep):
    t = Tensor(X)
    numpy_style = getattr(t, name)(axis=axis, keepdims=keep)
    torch_style = getattr(t, name)(dim=axis, keepdim=keep)
    expected = getattr(np, name)(X, axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=keep)
    np.testing.assert_allclose(numpy_style.data, expected)
    np.testing.assert_allclose(torch_style.data, expected)
    assert_grads_match(lambda a: getattr(a, name)(dim=axis, keepdim=keep) * 1.5, X)


def test_argmax_argmin_logsumexp_softmax_take_dim():
    t = Tensor(X)
    np.testing.assert_array_equal(t.argmax(dim=1, keepdim=True).data, X.argmax(axis=1)[:, None])
    np.testing.assert_array_equal(t.argmin(dim=-1).data, X.argmin(axis=-1))
    np.testing.assert_allclose(t.logsumexp(dim=0).data, np.log(np.exp(X).sum(axis=0)))
    np.testing.assert_allclose(t.softmax(dim=1).data, t.softmax(axis=1).data)
    np.testing.assert_allclose(tg.ops.log_softmax(t, dim=0).data, t.log_softmax(axis=0).data)


def test_axis_and_dim_together_are_refused():
    with pytest.raises(TypeError, match="sum: give axis .* or dim .*not both"):
        Tensor(X).sum(axis=0, dim=1)

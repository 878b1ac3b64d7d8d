"""Every op's gradients against central finite differences (float64, full Jacobians).

Each check uses the op's whole output (not its mean), so every cotangent direction is tested.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_lite as tg
from tinygrad_lite.testing import assert_grads_match
from tinygrad_lite.testing.strategies import arrays, away_from_kinks, broadcastable_shapes, shapes


def positive(shape):
    return arrays(shape=shape, low=0.5, high=3.0)


@st.composite
def broadcast_pair(draw, low=-3.0, high=3.0):
    sa, sb = draw(broadcastable_shapes(2))
    return draw(arrays(shape=sa, low=low, high=high)), draw(arrays(shape=sb, low=low, high=high))


@st.composite
def axis_for(draw, shape):
    """None, an int (maybe negative) or a tuple of distinct axes of ``shape``."""
    if not shape:
        return None
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-len(shape), len(shape) - 1))
    axes = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
    return tuple(a - len(shape) if draw(st.booleans()) else a for a in axes)


# ------------------------------------------------------------ binary, broadcasting
@pytest.mark.parametrize("op", [tg.add, tg.sub, tg.mul])
@given(pair=broadcast_pair())
def test_binary_broadcasting(op, pair):
    assert_grads_match(op, *pair)


@given(pair=broadcast_pair())
def test_div(pair):
    a, b = pair
    b = np.where(np.abs(b) < 0.5, 0.5 + np.abs(b), b)  # keep the divisor away from 0
    assert_grads_match(tg.div, a, b)


@given(pair=broadcast_pair(), data=st.data())
def test_maximum_minimum(pair, data):
    a, b = pair
    assume(np.all(np.abs(np.subtract(a, b)) > 1e-2))  # no ties
    assert_grads_match(tg.maximum, a, b)
    assert_grads_match(tg.minimum, a, b)


@given(x=positive(shapes()), exponent=st.sampled_from([2, 3, -1, 0.5, -1.5, 2.7]))
def test_pow_scalar_exponent(x, exponent):
    assert_grads_match(lambda t: t**exponent, x)


@given(pair=broadcast_pair(low=0.5, high=2.0))
def test_pow_tensor_exponent(pair):
    assert_grads_match(tg.power, *pair)


@given(x=positive(shapes()))
def test_rpow_and_reflected_operators(x):
    assert_grads_match(lambda t: 2.0**t + (1.0 - t) * 3.0 / (t + 1.0), x)


@given(pair=broadcast_pair(), data=st.data())
def test_where(pair, data):
    a, b = pair
    shape = np.broadcast_shapes(a.shape, b.shape)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
                    dtype=bool).reshape(shape)
    assert_grads_match(lambda s, t: tg.where(mask, s, t), a, b)


# --------------------------------------------------------------------- matmul
@st.composite
def matmul_operands(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    kind = draw(st.sampled_from(["2d", "batched", "broadcast-batch", "vec-mat", "mat-vec", "vec-vec"]))
    batch = draw(st.integers(1, 3))
    shape_a, shape_b = {
        "2d": ((n, k), (k, m)),
        "batched": ((batch, n, k), (batch, k, m)),
        "broadcast-batch": ((batch, n, k), (k, m)),
        "vec-mat": ((k,), (batch, k, m)),
        "mat-vec": ((batch, n, k), (k,)),
        "vec-vec": ((k,), (k,)),
    }[kind]
    return draw(arrays(shape=shape_a)), draw(arrays(shape=shape_b))


@given(operands=matmul_operands())
def test_matmul(operands):
    assert_grads_match(lambda a, b: a @ b, *operands)


# ------------------------------------------------------------------ unary ops
@pytest.mark.parametrize("op", [tg.exp, tg.tanh, tg.sigmoid, tg.neg])
@given(x=arrays())
def test_smooth_unary(op, x):
    assert_grads_match(op, x)


@pytest.mark.parametrize("op", [tg.log, tg.sqrt])
@given(x=positive(shapes()))
def test_positive_domain_unary(op, x):
    assert_grads_match(op, x)


@pytest.mark.parametrize("op", [tg.relu, tg.absolute])
@given(x=away_from_kinks())
def test_kinked_unary(op, x):
    assert_grads_match(op, x)


@given(x=away_from_kinks(kinks=(-1.0, 1.0)))
def test_clip(x):
    assert_grads_match(lambda t: tg.clip(t, -1.0, 1.0), x)


# ----------------------------------------------------------------- reductions
@given(data=st.data(), keepdims=st.booleans())
def test_sum_and_mean(data, keepdims):
    x = data.draw(arrays())
    axis = data.draw(axis_for(x.shape))
    assert_grads_match(lambda t: t.sum(axis=axis, keepdims=keepdims), x)
    assert_grads_match(lambda t: t.mean(axis=axis, keepdims=keepdims), x)


@given(data=st.data(), keepdims=st.booleans())
def test_max_without_ties(data, keepdims):
    x = data.draw(away_from_kinks(distinct=True, kinks=()))
    axis = data.draw(axis_for(x.shape))
    assert_grads_match(lambda t: t.max(axis=axis, keepdims=keepdims), x)


def test_max_splits_the_gradient_between_ties():
    x = tg.Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5])


@given(data=st.data(), keepdims=st.booleans())
def test_logsumexp(data, keepdims):
    x = data.draw(arrays(shape=shapes(min_dims=1)))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    assert_grads_match(lambda t: t.logsumexp(axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("op", [tg.log_softmax, tg.softmax])
@given(data=st.data())
def test_softmaxes(op, data):
    x = data.draw(arrays(shape=shapes(min_dims=1)))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    assert_grads_match(lambda t: op(t, axis=axis), x)


@pytest.mark.parametrize("op", [tg.log_softmax, tg.softmax])
def test_softmaxes_are_stable_for_huge_logits(op):
    x = tg.Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]]), requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = op(x, axis=1)
        (out * np.array([1.0, 2.0, 3.0])).sum().backward()
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(x.grad))
    probs = np.exp(out.data) if op is tg.log_softmax else out.data
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[1], 1 / 3)


# ---------------------------------------------------------------------- shape
@given(x=arrays(shape=shapes(min_dims=1)), data=st.data())
def test_reshape_and_transpose(x, data):
    perm = tuple(data.draw(st.permutations(range(x.ndim))))
    assert_grads_match(lambda t: t.reshape(-1).reshape(x.shape[::-1]), x)
    assert_grads_match(lambda t: t.transpose(perm), x)
    assert_grads_match(lambda t: t.T, x)


@given(x=arrays(shape=shapes(min_dims=2, max_dims=2, min_side=2)), data=st.data())
def test_indexing(x, data):
    rows = data.draw(st.lists(st.integers(0, x.shape[0] - 1), min_size=1, max_size=6))
    cols = data.draw(st.lists(st.integers(-x.shape[1], x.shape[1] - 1), min_size=len(rows), max_size=len(rows)))
    assert_grads_match(lambda t: t[1], x)
    assert_grads_match(lambda t: t[:, ::-1][1:], x)
    assert_grads_match(lambda t: t[..., None, 0], x)
    assert_grads_match(lambda t: t[np.array(rows)], x)  # repeated rows must add up
    assert_grads_match(lambda t: t[np.array(rows), np.array(cols)], x)
    assert_grads_match(lambda t: t[x > 0], x)


def test_indexing_with_repeats_accumulates():
    x = tg.Tensor(np.arange(3.0), requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


@given(data=st.data())
def test_concatenate_and_stack(data):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a, b = data.draw(arrays(shape=shape)), data.draw(arrays(shape=shape))
    assert_grads_match(lambda s, t: tg.concatenate(s, t * 2, s, axis=axis), a, b)
    assert_grads_match(lambda s, t: tg.stack(s, t, axis=axis), a, b)


# ------------------------------------------------------------- compositions
UNARY = {
    "tanh": tg.tanh, "sigmoid": tg.sigmoid, "exp_small": lambda t: tg.exp(t * 0.3),
    "square": lambda t: t**2, "softmax": lambda t: tg.softmax(t, axis=-1),
    "log_softmax": lambda t: tg.log_softmax(t, axis=-1), "logsumexp": lambda t: tg.logsumexp(t, keepdims=True),
    "scale": lambda t: 0.5 * t - 1.0, "reverse": lambda t: t[..., ::-1],
}
BINARY = {"add": tg.add, "sub": tg.sub, "mul": tg.mul, "div": lambda a, b: a / (b * b + 1.0)}


@given(data=st.data(), ops=st.lists(st.sampled_from(sorted(UNARY) + sorted(BINARY)), min_size=2, max_size=6))
def test_random_compositions(data, ops):
    shape = data.draw(shapes(min_dims=1, max_dims=2))
    x, y = data.draw(arrays(shape=shape, low=-1, high=1)), data.draw(arrays(shape=shape, low=-1, high=1))

    def program(a, b):
        t = a
        for name in ops:
            t = UNARY[name](t) if name in UNARY else BINARY[name](t, b)
        return t * b  # reuses b: the graph is a DAG, not a chain

    assert_grads_match(program, x, y)


def test_mlp_layer_matches_finite_differences_in_fast_mode():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((8, 20)), rng.standard_normal((20, 6)), rng.standard_normal(6)
    assert tg.gradcheck(lambda x, w, b: ((x @ w + b).relu().log_softmax() + 1) ** 2, [x, w, b], fast=True)


# ------------------------------------------------------- comparisons / argmax
def test_comparisons_and_argmax_are_constants():
    x = tg.Tensor([1.0, 5.0, 3.0], requires_grad=True)
    assert (x > 2).dtype == np.bool_ and not (x > 2).requires_grad
    np.testing.assert_array_equal((x == 5.0).numpy(), [False, True, False])
    assert x.argmax().item() == 1 and not x.argmax().requires_grad
    assert ((x >= 3) * x).sum().item() == 8.0

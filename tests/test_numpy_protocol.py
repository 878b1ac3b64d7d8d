"""Tensors speak NumPy: every supported ufunc and function equals the library's own op (values
and gradients), mixed ndarray/Tensor operand orders record, anything else raises TypeError."""

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import Tensor, numpy_api, ops

R = np.random.default_rng(0)


def anyv(*shape):
    return R.standard_normal(shape)


def pos(*shape):
    return R.uniform(0.5, 2.0, shape)


MASK = R.random((2, 3)) > 0.5

# (name in numpy_api.SUPPORTED, NumPy call, the library's op, inputs): all inputs are differentiated
DIFFERENTIABLE = [
    ("numpy.add", np.add, tg.add, [anyv(2, 3), anyv(3)]),
    ("numpy.subtract", np.subtract, tg.sub, [anyv(2, 3), anyv(2, 1)]),
    ("numpy.multiply", np.multiply, tg.mul, [anyv(2, 3), anyv(2, 3)]),
    ("numpy.divide", np.divide, tg.div, [anyv(2, 3), pos(2, 3)]),
    ("numpy.power", np.power, tg.power, [pos(2, 3), anyv(2, 3)]),
    ("numpy.float_power", np.float_power, tg.power, [pos(3), anyv(3)]),
    ("numpy.negative", np.negative, tg.neg, [anyv(2, 3)]),
    ("numpy.positive", np.positive, lambda x: tg.mul(x, 1), [anyv(3)]),
    ("numpy.exp", np.exp, tg.exp, [anyv(2, 3)]),
    ("numpy.expm1", np.expm1, tg.expm1, [anyv(2, 3)]),
    ("numpy.log", np.log, tg.log, [pos(2, 3)]),
    ("numpy.log1p", np.log1p, tg.log1p, [pos(2, 3)]),
    ("numpy.sqrt", np.sqrt, tg.sqrt, [pos(2, 3)]),
    ("numpy.square", np.square, lambda x: tg.mul(x, x), [anyv(2, 3)]),
    ("numpy.reciprocal", np.reciprocal, lambda x: tg.div(1, x), [pos(2, 3)]),
    ("numpy.absolute", np.abs, tg.absolute, [anyv(2, 3)]),
    ("numpy.fabs", np.fabs, tg.absolute, [anyv(2, 3)]),
    ("numpy.sign", np.sign, tg.sign, [anyv(2, 3)]),
    ("numpy.tanh", np.tanh, tg.tanh, [anyv(2, 3)]),
    ("numpy.maximum", np.maximum, tg.maximum, [anyv(2, 3), anyv(2, 3)]),
    ("numpy.minimum", np.minimum, tg.minimum, [anyv(2, 3), anyv(3)]),
    ("numpy.fmax", np.fmax, tg.maximum, [anyv(2, 3), anyv(2, 3)]),
    ("numpy.fmin", np.fmin, tg.minimum, [anyv(2, 3), anyv(2, 3)]),
    ("numpy.matmul", np.matmul, tg.matmul, [anyv(2, 3), anyv(3, 4)]),
    ("numpy.add.reduce", lambda x: np.add.reduce(x, axis=1), lambda x: tg.sum(x, axis=1), [anyv(2, 3)]),
    ("numpy.maximum.reduce", lambda x: np.maximum.reduce(x, axis=0, keepdims=True),
     lambda x: tg.max(x, axis=0, keepdims=True), [anyv(2, 3)]),
    ("numpy.minimum.reduce", np.minimum.reduce, lambda x: tg.min(x, axis=0), [anyv(2, 3)]),
    ("numpy.sum", lambda x: np.sum(x, axis=0, keepdims=True), lambda x: tg.sum(x, axis=0, keepdims=True),
     [anyv(2, 3)]),
    ("numpy.mean", lambda x: np.mean(x, axis=1), lambda x: tg.mean(x, axis=1), [anyv(2, 3)]),
    ("numpy.max", np.max, tg.max, [anyv(2, 3)]),
    ("numpy.amax", lambda x: np.amax(x, axis=1), lambda x: tg.max(x, axis=1), [anyv(2, 3)]),
    ("numpy.min", lambda x: np.min(x, 0), lambda x: tg.min(x, axis=0), [anyv(2, 3)]),
    ("numpy.amin", np.amin, tg.min, [anyv(2, 3)]),
    ("numpy.dot", np.dot, tg.matmul, [anyv(2, 3), anyv(3, 4)]),
    ("numpy.einsum", lambda a, b: np.einsum("ij,jk->ik", a, b), tg.matmul, [anyv(2, 3), anyv(3, 4)]),
    ("numpy.transpose", lambda x: np.transpose(x, (1, 0, 2)), lambda x: tg.transpose(x, axes=(1, 0, 2)),
     [anyv(2, 3, 4)]),
    ("numpy.swapaxes", lambda x: np.swapaxes(x, 0, 2), lambda x: tg.transpose(x, axes=(2, 1, 0)), [anyv(2, 3, 4)]),
    ("numpy.squeeze", lambda x: np.squeeze(x, axis=1), lambda x: tg.reshape(x, shape=(2, 3)), [anyv(2, 1, 3)]),
    ("numpy.expand_dims", lambda x: np.expand_dims(x, 0), lambda x: tg.reshape(x, shape=(1, 2, 3)), [anyv(2, 3)]),
    ("numpy.reshape", lambda x: np.reshape(x, (3, 2)), lambda x: tg.reshape(x, shape=(3, 2)), [anyv(2, 3)]),
    ("numpy.broadcast_to", lambda x: np.broadcast_to(x, (2, 3)), lambda x: tg.broadcast_to(x, shape=(2, 3)),
     [anyv(3)]),
    ("numpy.where", lambda a, b: np.where(MASK, a, b), lambda a, b: tg.where(MASK, a, b), [anyv(2, 3), anyv(3)]),
    ("numpy.clip", lambda x: np.clip(x, -0.5, 0.5), lambda x: tg.clip(x, low=-0.5, high=0.5), [anyv(2, 3)]),
    ("numpy.concatenate", lambda a, b: np.concatenate([a, b], axis=1),
     lambda a, b: tg.concatenate([a, b], axis=1), [anyv(2, 3), anyv(2, 2)]),
    ("numpy.stack", lambda a, b: np.stack((a, b), axis=-1), lambda a, b: tg.stack(a, b, axis=-1),
     [anyv(2, 3), anyv(2, 3)]),
    ("numpy.copy", np.copy, ops.copy, [anyv(2, 3)]),
    # elementwise (tinygrad_lite/ops/elementwise.py)
    ("numpy.sin", np.sin, tg.sin, [anyv(2, 3)]), ("numpy.cos", np.cos, tg.cos, [anyv(2, 3)]),
    ("numpy.tan", np.tan, tg.tan, [anyv(2, 3) / 4]), ("numpy.arcsin", np.arcsin, tg.asin, [pos(2, 3) / 2.5]),
    ("numpy.arccos", np.arccos, tg.acos, [pos(2, 3) / 2.5]), ("numpy.arctan", np.arctan, tg.atan, [anyv(2, 3)]),
    ("numpy.arctan2", np.arctan2, tg.atan2, [anyv(2, 3), pos(3)]), ("numpy.sinh", np.sinh, tg.sinh, [anyv(2, 3)]),
    ("numpy.cosh", np.cosh, tg.cosh, [anyv(2, 3)]), ("numpy.log2", np.log2, tg.log2, [pos(2, 3)]),
    ("numpy.floor", np.floor, tg.floor, [anyv(2, 3)]), ("numpy.ceil", np.ceil, tg.ceil, [anyv(2, 3)]),
    ("numpy.trunc", np.trunc, tg.trunc, [anyv(2, 3)]), ("numpy.rint", np.rint, tg.round, [anyv(2, 3)]),
    ("numpy.round", lambda x: np.round(x, 1), lambda x: tg.round(x, decimals=1), [anyv(2, 3)]),
    ("numpy.around", lambda x: np.around(x, 1), lambda x: tg.round(x, decimals=1), [anyv(2, 3)]),
    ("numpy.floor_divide", np.floor_divide, lambda a, b: tg.div(a, b, rounding_mode="floor"), [anyv(2, 3), pos(3)]),
    ("numpy.remainder", np.remainder, tg.remainder, [anyv(2, 3), pos(3)]),
    ("numpy.fmod", np.fmod, tg.fmod, [anyv(2, 3), pos(3)]),
    ("numpy.copysign", np.copysign, tg.copysign, [anyv(2, 3), anyv(3)]),
    # reductions, scans, sorting (tinygrad_lite/ops/reduce.py)
    ("numpy.prod", lambda x: np.prod(x, axis=1), lambda x: tg.prod(x, axis=1), [anyv(2, 3)]),
    ("numpy.cumsum", lambda x: np.cumsum(x, axis=0), lambda x: tg.cumsum(x, 0), [anyv(2, 3)]),
    ("numpy.cumprod", np.cumprod, tg.cumprod, [anyv(2, 3)]),
    ("numpy.var", lambda x: np.var(x, axis=1, keepdims=True), lambda x: tg.var(x, 1, True, ddof=0), [anyv(2, 3)]),
    ("numpy.std", lambda x: np.std(x, ddof=1), tg.std, [anyv(2, 3)]),
    ("numpy.sort", lambda x: np.sort(x, axis=0), lambda x: tg.sort(x, 0).values, [anyv(2, 3)]),
    ("numpy.norm", np.linalg.norm, tg.norm, [anyv(2, 3)]),
    # shape (tinygrad_lite/ops/shape.py, gather.py)
    ("numpy.pad", lambda x: np.pad(x, ((0, 0), (1, 2))), lambda x: tg.pad(x, (1, 2)), [anyv(2, 3)]),
    ("numpy.flip", lambda x: np.flip(x, 1), lambda x: tg.flip(x, 1), [anyv(2, 3)]),
    ("numpy.roll", lambda x: np.roll(x, 1, axis=1), lambda x: tg.roll(x, 1, 1), [anyv(2, 3)]),
    ("numpy.tril", np.tril, tg.tril, [anyv(3, 3)]), ("numpy.triu", lambda x: np.triu(x, 1),
                                                     lambda x: tg.triu(x, 1), [anyv(3, 3)]),
    ("numpy.diagonal", np.diagonal, tg.diagonal, [anyv(3, 3)]),
    ("numpy.tile", lambda x: np.tile(x, (2, 1)), lambda x: tg.repeat(x, 2, 1), [anyv(2, 3)]),
    ("numpy.repeat", lambda x: np.repeat(x, 2, axis=0), lambda x: tg.repeat_interleave(x, 2, 0), [anyv(2, 3)]),
    ("numpy.split", lambda x: np.split(x, 3, axis=1)[1], lambda x: tg.split(x, 1, 1)[1], [anyv(2, 3)]),
    ("numpy.array_split", lambda x: np.array_split(x, 2, axis=1)[0], lambda x: tg.split(x, 2, 1)[0], [anyv(2, 3)]),
    ("numpy.moveaxis", lambda x: np.moveaxis(x, 0, 2), lambda x: tg.movedim(x, 0, 2), [anyv(2, 3, 4)]),
    ("numpy.take_along_axis", lambda x: np.take_along_axis(x, np.array([[0, 2], [1, 1]]), axis=1),
     lambda x: tg.gather(x, 1, np.array([[0, 2], [1, 1]])), [anyv(2, 3)]),
]

T = Tensor(np.array([[0.5, -1.0, np.inf], [np.nan, 2.0, 0.0]]), requires_grad=True)
U = Tensor(np.array([[0.5, 1.0, 3.0], [1.0, -2.0, 0.0]]), requires_grad=True)
B = Tensor(np.array([[True, False, True], [False, False, True]]))
# (name, a call on Tensors, the same call on their arrays): results carry no gradient
NO_GRADIENT = [
    ("numpy.equal", lambda t, u, b: np.equal(t, u), None),
    ("numpy.not_equal", lambda t, u, b: np.not_equal(t, u), None),
    ("numpy.less", lambda t, u, b: np.less(t, u), None),
    ("numpy.less_equal", lambda t, u, b: np.less_equal(t, 0.5), None),
    ("numpy.greater", lambda t, u, b: np.greater(0, u), None),
    ("numpy.greater_equal", lambda t, u, b: np.greater_equal(t, u), None),
    ("numpy.isfinite", lambda t, u, b: np.isfinite(t), None),
    ("numpy.isnan", lambda t, u, b: np.isnan(t), None),
    ("numpy.isinf", lambda t, u, b: np.isinf(t), None),
    ("numpy.signbit", lambda t, u, b: np.signbit(u), None),
    ("numpy.logical_and", lambda t, u, b: np.logical_and(b, u > 0), None),
    ("numpy.logical_or", lambda t, u, b: np.logical_or(b, u > 0), None),
    ("numpy.logical_xor", lambda t, u, b: np.logical_xor(b, u > 0), None),
    ("numpy.logical_not", lambda t, u, b: np.logical_not(b), None),
    ("numpy.argmax", lambda t, u, b: np.argmax(u, axis=1), None),
    ("numpy.argmin", lambda t, u, b: np.argmin(u), None),
    ("numpy.shape", lambda t, u, b: np.shape(u), None),
    ("numpy.ndim", lambda t, u, b: np.ndim(u), None),
    ("numpy.size", lambda t, u, b: np.size(u), None),
    ("numpy.zeros_like", lambda t, u, b: np.zeros_like(u), None),
    ("numpy.ones_like", lambda t, u, b: np.ones_like(u), None),
    ("numpy.empty_like", lambda t, u, b: np.empty_like(u).shape, None),
    ("numpy.full_like", lambda t, u, b: np.full_like(u, 7.0), None),
    ("numpy.result_type", lambda t, u, b: np.result_type(u, np.float32), None),
    ("numpy.isclose", lambda t, u, b: np.isclose(t, u), None),
    ("numpy.allclose", lambda t, u, b: np.allclose(u, u), None),
    ("numpy.array_equal", lambda t, u, b: np.array_equal(t, u), None),
    ("numpy.count_nonzero", lambda t, u, b: np.count_nonzero(u), None),
    ("numpy.argsort", lambda t, u, b: np.argsort(u, axis=1), None),
    ("numpy.nonzero", lambda t, u, b: np.nonzero(u)[1], None),
    ("numpy.flatnonzero", lambda t, u, b: np.flatnonzero(b), None),
    ("numpy.unravel_index", lambda t, u, b: np.unravel_index(np.argmax(u), u.shape), None),
    ("numpy.any", lambda t, u, b: np.any(b), None),
    ("numpy.all", lambda t, u, b: np.all(b), None),
    ("numpy.iscomplexobj", lambda t, u, b: np.iscomplexobj(u), None),
    ("numpy.isrealobj", lambda t, u, b: np.isrealobj(u), None),
    ("numpy.can_cast", lambda t, u, b: np.can_cast(u.dtype, np.float32), None),
    ("numpy.may_share_memory", lambda t, u, b: np.may_share_memory(u, t), None),
    ("numpy.shares_memory", lambda t, u, b: np.shares_memory(u, u), None),
    ("numpy.broadcast_shapes", lambda t, u, b: np.broadcast_shapes(u.shape, (1, 3)), None),
]


def _cotangent_grads(fn, arrays):
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    weight = np.linspace(-1.0, 2.0, out.data.size).reshape(out.shape)  # a non-uniform cotangent
    return out, tg.grad(np.sum(out * weight), tensors)


@pytest.mark.parametrize("name, numpy_call, op, arrays", DIFFERENTIABLE, ids=[d[0] for d in DIFFERENTIABLE])
def test_numpy_call_equals_the_library_op(name, numpy_call, op, arrays):
    out, grads = _cotangent_grads(numpy_call, arrays)
    expected, expected_grads = _cotangent_grads(op, arrays)
    assert isinstance(out, Tensor) and out.requires_grad
    np.testing.assert_allclose(out.data, expected.data, rtol=1e-13, atol=1e-13)
    for g, e in zip(grads, expected_grads):
        np.testing.assert_allclose(g.data, e.data, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name, call, _", NO_GRADIENT, ids=[n[0] for n in NO_GRADIENT])
def test_calls_without_gradient_compute_on_the_data(name, call, _):
    result = call(T, U, B)
    expected = call(T.detach().numpy(), U.detach().numpy(), B.data)
    if isinstance(result, Tensor):
        assert not result.requires_grad
        result = result.data
    assert type(np.asarray(result).dtype) is type(np.asarray(expected).dtype)
    np.testing.assert_array_equal(np.asarray(result, dtype=object), np.asarray(expected, dtype=object))


def test_every_supported_name_is_tested_here():
    tested = {d[0] for d in DIFFERENTIABLE} | {n[0] for n in NO_GRADIENT}
    assert tested == set(numpy_api.SUPPORTED)


# ---------------------------------------------------------------- operand orders
def _grads(fn, *arrays):
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    assert isinstance(out, Tensor) and out.dtype == np.float64, type(out)
    return out.data, [g.data for g in tg.grad(np.sum(out * out), tensors)]


A, W, V = anyv(2, 3), anyv(3, 4), anyv(2, 3)


@pytest.mark.parametrize("label, x, fn, reference, expected_grad", [
    ("ndarray @ Tensor", W, lambda w: A @ w, lambda w: A @ w, lambda w: 2 * A.T @ (A @ w)),
    ("Tensor @ ndarray", A, lambda a: a @ W, lambda a: a @ W, lambda a: 2 * (a @ W) @ W.T),
    ("np.dot(ndarray, Tensor)", W, lambda w: np.dot(A, w), lambda w: A @ w, lambda w: 2 * A.T @ (A @ w)),
    ("np.matmul(ndarray, Tensor)", W, lambda w: np.matmul(A, w), lambda w: A @ w, lambda w: 2 * A.T @ (A @ w)),
    ("Tensor.dot(ndarray)", A, lambda a: a.dot(W), lambda a: a @ W, lambda a: 2 * (a @ W) @ W.T),
    ("ndarray + Tensor", V, lambda v: A + v, lambda v: A + v, lambda v: 2 * (A + v)),
    ("ndarray - Tensor", V, lambda v: A - v, lambda v: A - v, lambda v: -2 * (A - v)),
    ("ndarray * Tensor", V, lambda v: A * v, lambda v: A * v, lambda v: 2 * A * A * v),
    ("ndarray / Tensor", V, lambda v: A / v, lambda v: A / v, lambda v: -2 * A * A / v**3),
    ("scalar / Tensor", V, lambda v: 2.0 / v, lambda v: 2.0 / v, lambda v: -8.0 / v**3),
    ("np.float64 * Tensor", V, lambda v: np.float64(3) * v, lambda v: 3 * v, lambda v: 18 * v),
    ("Tensor ** scalar", V, lambda v: v**3, lambda v: v**3, lambda v: 6 * v**5),
    ("scalar - Tensor", V, lambda v: 1 - v, lambda v: 1 - v, lambda v: -2 * (1 - v)),
    ("np.maximum(Tensor, 0)", V, lambda v: np.maximum(v, 0), lambda v: np.maximum(v, 0), lambda v: 2 * v * (v > 0)),
    ("np.maximum(0, Tensor)", V, lambda v: np.maximum(0, v), lambda v: np.maximum(v, 0), lambda v: 2 * v * (v > 0)),
    ("np.minimum(ndarray, Tensor)", V, lambda v: np.minimum(A, v), lambda v: np.minimum(A, v),
     lambda v: 2 * v * (v < A)),
], ids=lambda p: p if isinstance(p, str) else "")
def test_mixed_operand_orders(label, x, fn, reference, expected_grad):
    value, (g,) = _grads(fn, x)
    np.testing.assert_allclose(value, reference(x), rtol=1e-13)
    np.testing.assert_allclose(g, expected_grad(x), rtol=1e-12)


def test_ndarray_dot_method_cannot_be_intercepted_but_never_loses_the_gradient():
    """ndarray.dot is neither a ufunc nor a NumPy function: it converts its argument, which a
    Tensor that requires grad refuses (write np.dot(X, W) or X @ W instead)."""
    with pytest.raises(RuntimeError, match="requires grad"):
        A.dot(Tensor(W, requires_grad=True))
    np.testing.assert_allclose(A.dot(Tensor(W)), A @ W)  # no gradient wanted: plain data


def test_sequences_mixing_tensors_and_arrays():
    a, b = anyv(2, 3), anyv(1, 3)
    ta = Tensor(a, requires_grad=True)
    for joined in (tg.concatenate([ta, b]), tg.concatenate(ta, b), np.concatenate([b, ta][::-1])):
        assert isinstance(joined, Tensor) and joined.shape == (3, 3)
        (g,) = tg.grad(np.sum(joined * joined), [ta])
        np.testing.assert_allclose(g.data, 2 * a)
    stacked = np.stack([a, ta], axis=0)
    assert isinstance(stacked, Tensor) and stacked.shape == (2, 2, 3)
    (g,) = tg.grad(np.sum(stacked), [ta])
    np.testing.assert_array_equal(g.data, np.ones((2, 3)))


def test_methods_match_numpy():
    x = anyv(2, 3)
    t = Tensor(x, requires_grad=True)
    np.testing.assert_array_equal(t.T.data, x.T)
    np.testing.assert_array_equal(t.sum(axis=1, keepdims=True).data, x.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(t.max(axis=0).data, x.max(axis=0))
    np.testing.assert_array_equal(t.reshape(3, 2).data, x.reshape(3, 2))
    np.testing.assert_array_equal(t.reshape((6,)).data, x.reshape(6))
    assert t.astype(np.float32).dtype == np.float32
    c = t.copy()
    assert c.requires_grad and not np.shares_memory(c.data, x)
    loss = np.sum(t.dot(W) ** 2) + np.sum(t.T) + np.sum(t.max(axis=1)) + np.sum(c * c)
    (g,) = tg.grad(loss, [t])
    expected = 2 * (x @ W) @ W.T + 1 + (x == x.max(axis=1, keepdims=True)) + 2 * x
    np.testing.assert_allclose(g.data, expected, rtol=1e-12)


def test_tutorial_idioms():
    """Builtin sum over the rows, indexing with range, accuracy with np.argmax: as tutorials write them."""
    z, y = anyv(3, 4), np.array([0, 1, 2, 0])
    t = Tensor(z, requires_grad=True)
    S = np.exp(t) / sum(np.exp(t))  # Python's sum adds the rows
    loss = -np.mean(np.log(S[y, range(4)]))
    (g,) = tg.grad(loss, [t])
    e = np.exp(z) / np.exp(z).sum(axis=0)
    np.testing.assert_allclose(g.data, (e - np.eye(3)[:, y]) / 4, rtol=1e-12)
    accuracy = np.mean(np.argmax(t, 0) == y)
    assert float(accuracy) == np.mean(np.argmax(z, 0) == y) and not accuracy.requires_grad


# ----------------------------------------------------------------- unsupported
TRG = Tensor(anyv(2, 3), requires_grad=True)


@pytest.mark.parametrize("label, call, message", [
    ("np.add.at", lambda: np.add.at(TRG, [0], 1.0), "numpy.add.at"),
    ("np.add.accumulate", lambda: np.add.accumulate(TRG), "numpy.add.accumulate"),
    ("np.multiply.reduce", lambda: np.multiply.reduce(TRG), "numpy.multiply.reduce"),
    ("out=", lambda: np.add(TRG, 1.0, out=np.empty((2, 3))), "numpy.add with out="),
    ("ndarray += Tensor", lambda: np.zeros((2, 3)).__iadd__(TRG), "numpy.add with out="),
    ("where=", lambda: np.exp(TRG, where=np.ones((2, 3), bool)), "numpy.exp with where="),
    ("dtype=", lambda: np.exp(TRG, dtype=np.float32), "numpy.exp with dtype="),
    ("np.sum(out=)", lambda: np.sum(TRG, out=np.zeros(())), "numpy.sum with dtype=, out="),
    ("np.sum(where=)", lambda: np.sum(TRG, where=np.ones((2, 3), bool)), "numpy.sum with dtype=, out="),
    ("np.mean(dtype=)", lambda: np.mean(TRG, dtype=np.float32), "numpy.mean with dtype="),
    ("np.spacing", lambda: np.spacing(TRG), "numpy.spacing"),
    ("np.median", lambda: np.median(TRG), "numpy.median"),
    ("np.diff", lambda: np.diff(TRG), "numpy.diff"),
    ("np.linalg.norm of a matrix", lambda: np.linalg.norm(TRG, ord=2), "norm"),
    ("np.dot 3-d", lambda: np.dot(Tensor(np.ones((2, 2, 2))), np.ones((2, 2))), "more than 2 dimensions"),
    ("np.where one argument", lambda: np.where(TRG), "numpy.where with one argument"),
    ("np.clip bounds that require grad", lambda: np.clip(anyv(2, 3), TRG, 1.0), "numpy.clip with bounds"),
])
def test_unsupported_calls_raise_type_error(label, call, message):
    with pytest.raises(TypeError, match=message) as info:
        call()
    assert "not differentiable here" in str(info.value)


def test_asarray_refuses_a_tensor_that_requires_grad_and_returns_plain_data_otherwise():
    with pytest.raises(RuntimeError, match=r"\.detach\(\)\.numpy\(\)"):
        np.asarray(TRG)
    with pytest.raises(RuntimeError, match="requires grad"):
        TRG.__array__()
    x = anyv(2, 3)
    plain = np.asarray(Tensor(x))
    assert type(plain) is np.ndarray
    np.testing.assert_array_equal(plain, x)
    np.testing.assert_array_equal(np.asarray(TRG.detach()), TRG.detach().numpy())
    with tg.no_grad():  # a result made without grad is plain data too
        np.testing.assert_array_equal(np.asarray(np.exp(TRG)), np.exp(TRG.detach().numpy()))

"""The built-in ops: each is a forward on NumPy arrays and its VJPs, made with `defop`.

Notation: ``g`` is the cotangent of the op's output; each VJP returns ``gᵀ·∂out/∂input``.
Gradients of broadcast shape are summed back to the input's shape by the engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .tensor import Tensor, defop

Axis = int | tuple[int, ...] | None


def _identity(g: np.ndarray) -> np.ndarray:
    return g


def _negate(g: np.ndarray) -> np.ndarray:
    return -g


def _expand(g: np.ndarray, shape: tuple[int, ...], axis: Axis, keepdims: bool) -> np.ndarray:
    """The cotangent of a reduction over ``axis`` copied back over the input's ``shape``."""
    if not keepdims and axis is not None:
        g = np.expand_dims(g, axis)
    out = np.empty(shape, dtype=g.dtype)
    out[...] = g
    return out


# ---------------------------------------------------------------- arithmetic
@defop
def add(a, b):
    """a + b;  ∂a = g, ∂b = g."""
    return a + b, (_identity, _identity)


@defop
def sub(a, b):
    """a − b;  ∂a = g, ∂b = −g."""
    return a - b, (_identity, _negate)


@defop
def mul(a, b):
    """a ⊙ b;  ∂a = g ⊙ b, ∂b = g ⊙ a."""
    return a * b, (lambda g: g * b, lambda g: g * a)


@defop
def div(a, b):
    """a / b;  ∂a = g / b, ∂b = −g ⊙ a / b²."""
    out = a / b
    return out, (lambda g: g / b, lambda g: -g * out / b)


@defop
def neg(x):
    """−x;  ∂x = −g."""
    return -x, _negate


@defop(name="pow")
def power(x, y):
    """x ** y;  ∂x = g ⊙ y ⊙ x^(y−1), ∂y = g ⊙ x^y ⊙ log x (only computed when y needs it)."""
    out = x**y
    if isinstance(y, (int, float)) and y == 2:
        return out, (lambda g: g * (2 * x), None)
    return out, (lambda g: g * y * x ** (y - 1), lambda g: g * out * np.log(x))


@defop
def matmul(a, b):
    """a @ b (2-D, batched, or with a 1-D side);  ∂a = g @ bᵀ, ∂b = aᵀ @ g."""
    out = np.matmul(a, b)
    if a.ndim == 1 and b.ndim == 1:
        return out, (lambda g: g * b, lambda g: g * a)
    if a.ndim == 1:  # (k,) @ (..., k, m) -> (..., m)
        return out, (
            lambda g: np.matmul(g[..., None, :], np.swapaxes(b, -1, -2))[..., 0, :],
            lambda g: a[:, None] * g[..., None, :],
        )
    if b.ndim == 1:  # (..., n, k) @ (k,) -> (..., n)
        return out, (
            lambda g: g[..., None] * b,
            lambda g: np.matmul(np.swapaxes(a, -1, -2), g[..., None])[..., 0],
        )
    return out, (
        lambda g: np.matmul(g, np.swapaxes(b, -1, -2)),
        lambda g: np.matmul(np.swapaxes(a, -1, -2), g),
    )


@defop
def linear(x, w, b):
    """x @ W + b for x of shape (..., in), W (in, out), b (out,): the bias goes in place into the
    fresh product (one array, not two);  ∂x = g Wᵀ, ∂W = xᵀ g (rows of all batches), ∂b = Σ_rows g."""
    out = np.matmul(x, w)
    if type(b) is np.ndarray and b.dtype is out.dtype and out.ndim:
        out += b
    else:  # a scalar bias, a 0-d product, or a bias of another dtype: NumPy's promotion rules
        out = out + b

    def grad_w(g):
        if x.ndim == 2:
            return np.matmul(x.T, g)
        if x.ndim == 1:
            return np.multiply.outer(x, g)
        return np.matmul(x.reshape(-1, x.shape[-1]).T, g.reshape(-1, g.shape[-1]))

    grad_b = _sum_rows if out.ndim == 2 else _identity  # other shapes: the engine sums them back
    return out, (lambda g: np.matmul(g, w.T), grad_w, grad_b)


def _sum_rows(g: np.ndarray) -> np.ndarray:
    return np.add.reduce(g, axis=0)


# ------------------------------------------------------------ elementwise
@defop
def exp(x):
    """eˣ;  ∂x = g ⊙ eˣ."""
    out = np.exp(x)
    return out, lambda g: g * out


@defop
def log(x):
    """log x;  ∂x = g / x."""
    return np.log(x), lambda g: g / x


@defop
def sqrt(x):
    """√x;  ∂x = g / (2√x)."""
    out = np.sqrt(x)
    return out, lambda g: g / (2 * out)


@defop(name="abs")
def absolute(x):
    """|x|;  ∂x = g ⊙ sign(x)."""
    return np.abs(x), lambda g: g * np.sign(x)


@defop
def relu(x):
    """max(x, 0);  ∂x = g ⊙ [x > 0] (the mask is made in backward: none kept, none under no_grad)."""
    return np.maximum(x, 0), lambda g: g * (x > 0)


@defop
def tanh(x):
    """tanh x;  ∂x = g ⊙ (1 − tanh² x)."""
    out = np.tanh(x)
    return out, lambda g: g * (1 - out * out)


@defop
def sigmoid(x):
    """σ(x) = 1 / (1 + e⁻ˣ), computed as (1 + tanh(x/2)) / 2 (no overflow);  ∂x = g ⊙ σ(1 − σ)."""
    out = 0.5 * (1 + np.tanh(0.5 * x))
    return out, lambda g: g * out * (1 - out)


@defop
def clip(x, low=None, high=None):
    """x clipped to [low, high];  ∂x = g where low < x < high, else 0."""
    inside = np.ones(x.shape, dtype=bool)
    if low is not None:
        inside &= x > low
    if high is not None:
        inside &= x < high
    return np.clip(x, low, high), lambda g: g * inside


@defop
def maximum(a, b):
    """Elementwise max;  ∂a = g where a ≥ b, ∂b = g where b > a."""
    a_wins = a >= b
    return np.maximum(a, b), (lambda g: g * a_wins, lambda g: g * ~a_wins)


@defop
def minimum(a, b):
    """Elementwise min;  ∂a = g where a ≤ b, ∂b = g where b < a."""
    a_wins = a <= b
    return np.minimum(a, b), (lambda g: g * a_wins, lambda g: g * ~a_wins)


@defop
def where(condition, a, b):
    """a where condition else b;  ∂a = g ⊙ c, ∂b = g ⊙ ¬c (condition is not differentiable)."""
    c = np.asarray(condition, dtype=bool)
    return np.where(c, a, b), (None, lambda g: g * c, lambda g: g * ~c)


# --------------------------------------------------------------- reductions
@defop(name="sum")
def sum_(x, axis=None, keepdims=False):
    """Σ over ``axis``;  ∂x = g broadcast back over the summed axes."""
    return np.add.reduce(x, axis=axis, keepdims=keepdims), lambda g: _expand(g, x.shape, axis, keepdims)


@defop
def mean(x, axis=None, keepdims=False):
    """Mean over ``axis``;  ∂x = g / n broadcast back (n = number of elements averaged)."""
    total = np.add.reduce(x, axis=axis, keepdims=keepdims)  # checks the axis before anything else
    n = x.size // total.size if total.size else 1  # an empty mean is 0/0 = nan, as in NumPy
    return total / n, lambda g: _expand(g / n, x.shape, axis, keepdims)


@defop(name="max")
def max_(x, axis=None, keepdims=False):
    """Max over ``axis``;  ∂x = g at the maximum (shared equally between ties)."""
    out = x.max(axis=axis, keepdims=keepdims)

    def vjp(g):
        top = out if keepdims or axis is None else np.expand_dims(out, axis)
        winners = x == top
        share = winners / winners.sum(axis=axis, keepdims=True)
        return share * _expand(g, x.shape, axis, keepdims)

    return out, vjp


@defop
def logsumexp(x, axis=-1, keepdims=False):
    """log Σ eˣ over ``axis``, stable;  ∂x = g ⊙ softmax(x)."""
    top = x.max(axis=axis, keepdims=True)
    shifted = np.exp(x - top)
    total = shifted.sum(axis=axis, keepdims=True)
    out = np.log(total) + top
    if not keepdims:
        out = np.squeeze(out, axis=axis)
    return out, lambda g: _expand(g, x.shape, axis, keepdims) * (shifted / total)


@defop
def log_softmax(x, axis=-1):
    """x − log Σ eˣ over ``axis`` (shifted by the max: no overflow);  ∂x = g − softmax ⊙ Σg."""
    shifted = x - np.maximum.reduce(x, axis=axis, keepdims=True)
    out = shifted - np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))
    return out, lambda g: g - np.exp(out) * np.add.reduce(g, axis=axis, keepdims=True)


@defop
def softmax(x, axis=-1):
    """eˣ / Σ eˣ over ``axis`` (shifted by the max);  ∂x = s ⊙ (g − Σ g ⊙ s)."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    out = e / e.sum(axis=axis, keepdims=True)
    return out, lambda g: out * (g - (g * out).sum(axis=axis, keepdims=True))


# ------------------------------------------------------------------- shape
@defop
def reshape(x, shape=()):
    """x viewed with a new shape;  ∂x = g reshaped back."""
    return x.reshape(shape), lambda g: g.reshape(x.shape)


@defop
def transpose(x, axes=None):
    """Axes permuted (reversed by default);  ∂x = g with the inverse permutation."""
    inverse = None if axes is None else tuple(np.argsort(axes))
    return x.transpose(axes), lambda g: g.transpose(inverse)


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


@defop
def getitem(x, index=()):
    """x[index] for ints, slices and integer arrays;  ∂x = g scattered back (repeats add up)."""
    out = x[index]
    shape, dtype = x.shape, x.dtype

    def vjp(g):
        gx = np.zeros(shape, dtype=np.result_type(dtype, g.dtype))
        if _is_basic(index):
            gx[index] = g
        else:
            np.add.at(gx, index, g)
        return gx

    return np.asarray(out), vjp


@defop
def concatenate(*xs, axis=0):
    """Arrays joined along ``axis``;  ∂xᵢ = the slice of g that came from xᵢ."""
    out = np.concatenate(xs, axis=axis)  # checks shapes and axis first
    bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
    return out, tuple(
        (lambda g, i=i: np.split(g, bounds, axis=axis)[i]) for i in range(len(xs))
    )


@defop
def stack(*xs, axis=0):
    """Arrays stacked along a new ``axis``;  ∂xᵢ = g taken at index i of that axis."""
    return np.stack(xs, axis=axis), tuple(
        (lambda g, i=i: np.take(g, i, axis=axis)) for i in range(len(xs))
    )


# ------------------------------------------------- comparisons (no gradient)
def _comparison(name: str, ufunc: np.ufunc):
    def compare(a, b):
        return ufunc(a, b), (None, None)

    compare.__name__ = compare.__qualname__ = name
    compare.__doc__ = f"Elementwise {name} (a bool tensor; not differentiable)."
    return defop(compare)


eq = _comparison("eq", np.equal)
ne = _comparison("ne", np.not_equal)
lt = _comparison("lt", np.less)
le = _comparison("le", np.less_equal)
gt = _comparison("gt", np.greater)
ge = _comparison("ge", np.greater_equal)


@defop
def argmax(x, axis=None):
    """Index of the maximum along ``axis`` (an integer tensor; not differentiable)."""
    return np.argmax(x, axis=axis), None


# --------------------------------------------------- methods on the Tensor
def _shape_arg(shape: tuple) -> Any:
    return shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _index_arg(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


# Ops whose signature already reads as a method (self first, options positional or by name)
# are bound directly: one Python call less per op on the hot path.
_DIRECT = {
    "__add__": add, "__sub__": sub, "__mul__": mul, "__truediv__": div, "__pow__": power,
    "__matmul__": matmul, "__neg__": neg, "__eq__": eq, "__ne__": ne, "__lt__": lt, "__le__": le,
    "__gt__": gt, "__ge__": ge, "exp": exp, "log": log, "sqrt": sqrt, "abs": absolute, "relu": relu,
    "tanh": tanh, "sigmoid": sigmoid, "clip": clip, "sum": sum_, "mean": mean, "max": max_,
    "logsumexp": logsumexp, "log_softmax": log_softmax, "softmax": softmax, "argmax": argmax,
}
for _name, _op in _DIRECT.items():
    setattr(Tensor, _name, _op)

_METHODS = {
    "__radd__": lambda self, other: add(other, self),
    "__rsub__": lambda self, other: sub(other, self),
    "__rmul__": lambda self, other: mul(other, self),
    "__rtruediv__": lambda self, other: div(other, self),
    "__rpow__": lambda self, other: power(other, self),
    "__rmatmul__": lambda self, other: matmul(other, self),
    "__getitem__": lambda self, index: getitem(self, index=_index_arg(index)),
    "reshape": lambda self, *shape: reshape(self, shape=_shape_arg(shape)),
    "transpose": lambda self, *axes: transpose(self, axes=_shape_arg(axes) or None),
    "T": property(lambda self: transpose(self)),
}
for _name, _method in _METHODS.items():
    if not isinstance(_method, property):
        _method.__name__ = _name
        _method.__qualname__ = f"Tensor.{_name}"
    setattr(Tensor, _name, _method)

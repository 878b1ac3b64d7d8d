"""The built-in ops: each is a forward on NumPy arrays and its VJPs, made with `defop`.

Notation: ``g`` is the cotangent of the op's output; each VJP returns ``gᵀ·∂out/∂input``.
Gradients of broadcast shape are summed back to the input's shape by the engine.

Every body uses NumPy calls that Tensors also speak (ufuncs, ``np.where``, methods), so
the same code runs on Tensors when backward re-runs an op for a higher-order gradient.
Subgradients follow PyTorch: ties in max/min split evenly, clip passes the gradient at
its bounds, relu'(0) = 0, ∂(x**0) = 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import defop
from ..tensor import Tensor

Axis = int | tuple[int, ...] | None


def _identity(g):
    return g


def _negate(g):
    return -g


def _zero(g):
    return g * 0


def unreduce(g, shape: tuple[int, ...], axis: Axis, keepdims: bool):
    """The cotangent of a reduction over ``axis`` broadcast back over the input's ``shape``
    (for reductions' VJPs: a fresh array on arrays, a broadcast op on Tensors)."""
    if not keepdims and axis is not None:
        g = np.expand_dims(g, axis)
    if type(g) is np.ndarray:  # first order: a fresh array is cheaper than np.broadcast_to's view
        out = np.empty(shape, dtype=g.dtype)
        out[...] = g
        return out
    return np.broadcast_to(g, shape)


def call_op(op: Any, *args: Any, **options: Any) -> Any:
    """``op`` inside a VJP whose NumPy form has no protocol hook (a scatter, say): a recorded
    Tensor when given Tensors (a higher-order gradient), else just the array of its forward."""
    if any(isinstance(a, Tensor) for a in args):
        return op(*args, **options)
    return op.__wrapped_op__(*args, **options)[0]


# ---------------------------------------------------------------- arithmetic
@defop(fresh_grads=True)
def add(a, b):
    """a + b;  ∂a = g, ∂b = g."""
    return a + b, (_identity, _identity)


@defop(fresh_grads=True)
def sub(a, b):
    """a − b;  ∂a = g, ∂b = −g."""
    return a - b, (_identity, _negate)


@defop(fresh_grads=True)
def mul(a, b):
    """a ⊙ b;  ∂a = g ⊙ b, ∂b = g ⊙ a."""
    return a * b, (lambda g: g * b, lambda g: g * a)


@defop(fresh_grads=True)
def neg(x):
    """−x;  ∂x = −g."""
    return -x, _negate


@defop(name="pow", fresh_grads=True)
def power(x, y):
    """x ** y;  ∂x = g ⊙ y ⊙ x^(y−1) (0 where x = y = 0), ∂y = g ⊙ x^y ⊙ log x (0 where x = 0 and y ≥ 0)."""
    out = x**y
    if isinstance(y, (int, float)) and y == 2:
        return out, (lambda g: g * (2 * x), None)

    def grad_x(g):  # y · x^(y−1) is 0 · 0⁻¹ at x = y = 0: PyTorch's value there is 0
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * np.where(np.logical_and(y == 0, x == 0), 0, y * x ** (y - 1))

    def grad_y(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            log_x = np.log(x)
            if isinstance(x, (int, float)):  # a number's log stays a number (np.log makes a float64, which promotes)
                log_x = float(log_x)
            return g * np.where(np.logical_and(x == 0, y >= 0), 0, out * log_x)

    return out, (grad_x, grad_y)


@defop(fresh_grads=True)
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


@defop(fresh_grads=True)
def linear(x, w, b):
    """x @ W + b for x of shape (..., in), W (in, out), b any shape that broadcasts to the result
    (added in place into the fresh product);  ∂x = g Wᵀ, ∂W = xᵀ g (rows of all batches), ∂b = Σ g."""
    out = np.matmul(x, w)
    if type(b) is np.ndarray and type(out) is np.ndarray and b.dtype is out.dtype and out.ndim:
        try:
            out += b
        except ValueError:  # a bias that broadcasting makes wider than the product
            out = out + b
    else:  # a scalar bias, a 0-d product, another dtype, or Tensors: NumPy's rules
        out = out + b

    def grad_w(g):
        if x.ndim == 2:
            return np.matmul(x.T, g)
        if x.ndim == 1:
            return x[:, None] * g[None, :]
        return np.matmul(x.reshape(-1, x.shape[-1]).T, g.reshape(-1, g.shape[-1]))

    b_ndim = b.ndim if isinstance(b, (np.ndarray, Tensor)) else 0
    grad_b = _sum_rows if b_ndim == 1 and out.ndim == 2 else _identity  # else the engine sums back
    return out, (lambda g: np.matmul(g, w.T), grad_w, grad_b)


def _sum_rows(g):
    return np.add.reduce(g, axis=0)


# ------------------------------------------------------------ elementwise
@defop(fresh_grads=True)
def exp(x):
    """eˣ;  ∂x = g ⊙ eˣ."""
    out = np.exp(x)
    return out, lambda g: g * out


@defop(fresh_grads=True)
def expm1(x):
    """eˣ − 1 (exact for small x);  ∂x = g ⊙ eˣ."""
    return np.expm1(x), lambda g: g * np.exp(x)


@defop(fresh_grads=True)
def log(x):
    """log x;  ∂x = g / x."""
    return np.log(x), lambda g: g / x


@defop(fresh_grads=True)
def log1p(x):
    """log(1 + x) (exact for small x);  ∂x = g / (1 + x)."""
    return np.log1p(x), lambda g: g / (1 + x)


@defop(fresh_grads=True)
def sqrt(x):
    """√x;  ∂x = g / (2√x)."""
    out = np.sqrt(x)
    return out, lambda g: g / (2 * out)


@defop(name="abs", fresh_grads=True)
def absolute(x):
    """|x|;  ∂x = g ⊙ sign(x) (0 at 0)."""
    return np.abs(x), lambda g: g * np.sign(x)


@defop(fresh_grads=True)
def sign(x):
    """sign(x) ∈ {−1, 0, 1};  ∂x = 0."""
    return np.sign(x), _zero


@defop(fresh_grads=True)
def relu(x):
    """max(x, 0);  ∂x = g ⊙ [x > 0] (0 at 0; the mask is made in backward)."""
    return np.maximum(x, 0), lambda g: g * (x > 0)


@defop(fresh_grads=True)
def tanh(x):
    """tanh x;  ∂x = g ⊙ (1 − tanh² x)."""
    out = np.tanh(x)
    return out, lambda g: g * (1 - out * out)


@defop(fresh_grads=True)
def sigmoid(x):
    """σ(x) = 1 / (1 + e⁻ˣ), computed as (1 + tanh(x/2)) / 2 (no overflow);  ∂x = g ⊙ σ(1 − σ)."""
    out = 0.5 * (1 + np.tanh(0.5 * x))
    return out, lambda g: g * out * (1 - out)


def _number(bound):
    """A 0-d bound (a NumPy scalar, a 0-d array) as a Python number: it does not promote x (PyTorch's clamp)."""
    return bound.item() if isinstance(bound, (np.ndarray, np.generic)) and bound.ndim == 0 else bound


@defop(fresh_grads=True)
def clip(x, *, low=None, high=None):
    """x clipped to [low, high];  ∂x = g where low ≤ x ≤ high (bounds included, as PyTorch), else 0."""
    low, high = _number(low), _number(high)

    def vjp(g):
        inside = np.ones(x.shape, dtype=bool)
        if low is not None:
            inside = np.logical_and(inside, x >= low)
        if high is not None:
            inside = np.logical_and(inside, x <= high)
        return g * inside

    return np.clip(x, low, high), vjp


def _tie_weights(a, b, dtype):
    """1 where a wins, ½ at a tie, 0 where b wins (PyTorch splits ties evenly)."""
    return np.where(a == b, 0.5, a > b).astype(dtype)


@defop(fresh_grads=True)
def maximum(a, b):
    """Elementwise max;  ∂a = g where a > b, g/2 at ties; ∂b the rest."""
    return np.maximum(a, b), (lambda g: g * _tie_weights(a, b, g.dtype), lambda g: g * _tie_weights(b, a, g.dtype))


@defop(fresh_grads=True)
def minimum(a, b):
    """Elementwise min;  ∂a = g where a < b, g/2 at ties; ∂b the rest."""
    return np.minimum(a, b), (lambda g: g * _tie_weights(b, a, g.dtype), lambda g: g * _tie_weights(a, b, g.dtype))


@defop(fresh_grads=True)
def where(condition, a, b):
    """a where condition else b;  ∂a = g where c, ∂b = g where ¬c (condition is not differentiable)."""
    c = np.asarray(condition, dtype=bool)
    return np.where(c, a, b), (None, lambda g: np.where(c, g, 0), lambda g: np.where(c, 0, g))


def torch_axes(name: str, axis: Any, keepdims: bool, dim: Any, keepdim: Any) -> tuple[Any, bool]:
    """(axis, keepdims) from NumPy's ``axis``/``keepdims`` or PyTorch's ``dim``/``keepdim``; a list
    of axes becomes a tuple."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{name}: give axis (NumPy) or dim (PyTorch), not both")
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    return (tuple(axis) if isinstance(axis, list) else axis), bool(keepdims)


# --------------------------------------------------------------- reductions
@defop(name="sum", fresh_grads=True)
def sum_(x, *, axis=None, keepdims=False, dim=None, keepdim=None):
    """Σ over ``axis``;  ∂x = g broadcast back over the summed axes."""
    if dim is not None or keepdim is not None or type(axis) is list:
        axis, keepdims = torch_axes("sum", axis, keepdims, dim, keepdim)
    return np.add.reduce(x, axis=axis, keepdims=keepdims), lambda g: unreduce(g, x.shape, axis, keepdims)


@defop(fresh_grads=True)
def mean(x, *, axis=None, keepdims=False, dim=None, keepdim=None):
    """Mean over ``axis``;  ∂x = g / n broadcast back (n = number of elements averaged)."""
    if dim is not None or keepdim is not None or type(axis) is list:
        axis, keepdims = torch_axes("mean", axis, keepdims, dim, keepdim)
    total = np.add.reduce(x, axis=axis, keepdims=keepdims)  # checks the axis before anything else
    n = x.size // total.size if total.size else 1  # an empty mean is 0/0 = nan, as in NumPy
    return total / n, lambda g: unreduce(g / n, x.shape, axis, keepdims)


def _extremum(x, out, axis, keepdims):
    """VJP of max/min over ``axis``: g shared evenly between the elements equal to the result."""
    def vjp(g):
        top = out if keepdims or axis is None else np.expand_dims(out, axis)
        winners = (x == top).astype(g.dtype)
        return winners / winners.sum(axis=axis, keepdims=True) * unreduce(g, x.shape, axis, keepdims)

    return vjp


@defop(name="max", fresh_grads=True)
def max_(x, *, axis=None, keepdims=False, dim=None, keepdim=None):
    """Max over ``axis``;  ∂x = g at the maximum (shared equally between ties, as amax)."""
    if dim is not None or keepdim is not None or type(axis) is list:
        axis, keepdims = torch_axes("max", axis, keepdims, dim, keepdim)
    out = x.max(axis=axis, keepdims=keepdims)
    return out, _extremum(x, out, axis, keepdims)


@defop(name="min", fresh_grads=True)
def min_(x, *, axis=None, keepdims=False, dim=None, keepdim=None):
    """Min over ``axis``;  ∂x = g at the minimum (shared equally between ties, as amin)."""
    if dim is not None or keepdim is not None or type(axis) is list:
        axis, keepdims = torch_axes("min", axis, keepdims, dim, keepdim)
    out = x.min(axis=axis, keepdims=keepdims)
    return out, _extremum(x, out, axis, keepdims)


@defop(fresh_grads=True)
def logsumexp(x, *, axis=-1, keepdims=False, dim=None, keepdim=None):
    """log Σ eˣ over ``axis``, shifted by the max (by 0 where the max is ±inf);  ∂x = g ⊙ e^(x − out).

    Over an empty axis it is −inf; a slice of all −inf gives −inf (gradient 0), +inf gives +inf."""
    axis, keepdims = torch_axes("logsumexp", None if dim is not None else axis, keepdims, dim, keepdim)
    with np.errstate(divide="ignore"):
        if x.size == 0:
            top = 0
        else:
            top = x.max(axis=axis, keepdims=True)
            top = np.where(np.isfinite(top), top, 0)
        out_kept = np.log(np.exp(x - top).sum(axis=axis, keepdims=True)) + top
    out = out_kept if keepdims else np.squeeze(out_kept, axis=axis)

    def vjp(g):
        with np.errstate(invalid="ignore"):
            safe = np.where(out_kept == -np.inf, 0, out_kept)
            return unreduce(g, x.shape, axis, keepdims) * np.exp(x - safe)

    return out, vjp


@defop(fresh_grads=True)
def log_softmax(x, *, axis=-1, dim=None):
    """x − log Σ eˣ over ``axis`` (shifted by the max: no overflow);  ∂x = g − softmax ⊙ Σg."""
    axis = axis if dim is None else dim
    if x.size == 0:
        return x * 1, _identity
    shifted = x - np.maximum.reduce(x, axis=axis, keepdims=True)
    out = shifted - np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))
    return out, lambda g: g - np.exp(out) * np.add.reduce(g, axis=axis, keepdims=True)


@defop(fresh_grads=True)
def softmax(x, *, axis=-1, dim=None):
    """eˣ / Σ eˣ over ``axis`` (shifted by the max);  ∂x = s ⊙ (g − Σ g ⊙ s)."""
    axis = axis if dim is None else dim
    if x.size == 0:
        return x * 1, _identity
    e = np.exp(x - np.maximum.reduce(x, axis=axis, keepdims=True))
    out = e / np.add.reduce(e, axis=axis, keepdims=True)
    return out, lambda g: out * (g - np.add.reduce(g * out, axis=axis, keepdims=True))


# ------------------------------------------------------------------- shape
@defop(fresh_grads=True)
def reshape(x, *, shape=()):
    """x viewed with a new shape;  ∂x = g reshaped back."""
    return x.reshape(shape), lambda g: g.reshape(x.shape)


@defop(fresh_grads=True)
def transpose(x, *, axes=None):
    """Axes permuted (reversed by default; negative axes count from the end);  ∂x = g with the inverse permutation."""
    if axes is not None:
        if len(axes) != x.ndim:
            raise ValueError(f"axes {tuple(axes)} do not match an array of {x.ndim} dimensions")
        axes = tuple(int(a) % x.ndim if -x.ndim <= a < x.ndim else a for a in axes)
    inverse = None if axes is None else tuple(int(i) for i in np.argsort(axes))
    return np.transpose(x, axes), lambda g: np.transpose(g, inverse)


@defop(fresh_grads=True)
def broadcast_to(x, *, shape=()):
    """x broadcast to ``shape`` (a read-only view);  ∂x = g, summed back by the engine."""
    return np.broadcast_to(x, shape), _identity


@defop(fresh_grads=True)
def astype(x, *, dtype=np.float32):
    """x cast to ``dtype``;  ∂x = g cast back to x's dtype."""
    return x.astype(dtype), lambda g: g.astype(x.dtype)


@defop(fresh_grads=True)
def copy(x):
    """A copy in new memory;  ∂x = g."""
    return x.copy(), _identity


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


@defop(fresh_grads=True)
def index_add(g, *, index=(), shape=()):
    """zeros(shape) with g added at ``index`` (repeated indices add up);  ∂g = gg[index].

    Linear in g, so on a Tensor (a higher-order re-run) it is this op applied to it."""
    if isinstance(g, Tensor):
        return index_add(g, index=index, shape=shape), lambda gg: gg[index]
    out = np.zeros(shape, dtype=g.dtype)
    if _is_basic(index):
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out, lambda gg: gg[index]


@defop(fresh_grads=True)
def getitem(x, *, index=()):
    """x[index] for ints, slices, None, Ellipsis and integer/bool arrays;  ∂x = g scattered back (repeats add up)."""
    shape = x.shape
    return x[index], lambda g: call_op(index_add, g, index=index, shape=shape)


def _axis_slice(axis: int, part: Any) -> tuple:
    return (slice(None),) * axis + (part,)


@defop(fresh_grads=True)
def _concatenate(*xs, axis=0):
    """Arrays joined along ``axis``;  ∂xᵢ = the slice of g that came from xᵢ."""
    out = np.concatenate(xs, axis=axis)  # checks shapes and axis first
    ax = axis % out.ndim
    ends = np.cumsum([x.shape[ax] for x in xs]).tolist()
    return out, tuple(
        (lambda g, lo=lo, hi=hi: g[_axis_slice(ax, slice(lo, hi))]) for lo, hi in zip([0] + ends[:-1], ends)
    )


@defop(fresh_grads=True)
def _stack(*xs, axis=0):
    """Arrays stacked along a new ``axis``;  ∂xᵢ = g at index i of that axis."""
    out = np.stack(xs, axis=axis)
    ax = axis % out.ndim
    return out, tuple((lambda g, i=i: g[_axis_slice(ax, i)]) for i in range(len(xs)))


def _sequence(name: str, tensors: tuple) -> tuple:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise ValueError(f"{name}: need at least one array")
    return tensors


def concatenate(*tensors: Any, axis: int = 0) -> Tensor:
    """Join arrays along an existing ``axis``: ``concatenate([a, b])`` or ``concatenate(a, b)``."""
    return _concatenate(*_sequence("concatenate", tensors), axis=axis)


def stack(*tensors: Any, axis: int = 0) -> Tensor:
    """Stack arrays along a new ``axis``: ``stack([a, b])`` or ``stack(a, b)``."""
    return _stack(*_sequence("stack", tensors), axis=axis)


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
def argmax(x, *, axis=None, keepdims=False, dim=None, keepdim=None):
    """Index of the maximum along ``axis`` (an integer tensor; not differentiable)."""
    if dim is not None or keepdim is not None or type(axis) is list:
        axis, keepdims = torch_axes("argmax", axis, keepdims, dim, keepdim)
    return np.argmax(x, axis=axis, keepdims=keepdims), None


@defop
def argmin(x, *, axis=None, keepdims=False, dim=None, keepdim=None):
    """Index of the minimum along ``axis`` (an integer tensor; not differentiable)."""
    if dim is not None or keepdim is not None or type(axis) is list:
        axis, keepdims = torch_axes("argmin", axis, keepdims, dim, keepdim)
    return np.argmin(x, axis=axis, keepdims=keepdims), None

"""Reductions and scans: amax/amin, prod, var/std, norm, cumsum/cumprod/cummax/cummin,
logcumsumexp, sort/argsort/topk and PyTorch's max/min over a dim with indices.

Notation as in ``basic``: ``g`` is the cotangent of the output, each VJP returns
``gᵀ·∂out/∂input``. Reductions take NumPy's ``axis``/``keepdims`` and PyTorch's
``dim``/``keepdim`` (axis and dim together are refused; keepdim wins over keepdims, as in
``basic.torch_axes``); an axis may be an int, a tuple or a list. Scans
take one axis and, as ``np.cumsum``, run over the flattened array when none is given.

Every forward and VJP is written with NumPy calls Tensors speak (this module registers the
NumPy functions it implements: ``np.cumsum(t)`` is `cumsum`), so each op is differentiable to
any order. Indices (of a sort, a running max) are computed on the values and are constants;
values taken at them are gathers whose VJP scatters ``g`` back. Subgradients follow PyTorch:
amax/amin and the ∞-norm share ``g`` evenly between ties, a sort, topk, cummax or max over a
dim sends it to the index it returns, ‖x‖₂ and std have gradient 0 where they are 0.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..graph import defop
from ..mode import refuse_traced
from ..numpy_api import register_function
from ..tensor import Tensor, from_numpy
from .basic import index_add, max_, min_, reshape

__all__ = [
    "ValuesIndices", "amax", "amin", "argsort", "cummax", "cummin", "cumprod", "cumsum", "logcumsumexp",
    "max_dim", "min_dim", "norm", "prod", "sort", "std", "topk", "var",
]

Axis = int | tuple[int, ...] | list[int] | None


class ValuesIndices(NamedTuple):
    """``(values, indices)``, as PyTorch's sort, topk, cummax and max(dim) return them."""

    values: Tensor
    indices: Tensor


class _BadArgument(ValueError):
    """A bad axis, k or p: a defop prefixes the op's name; `_named` does it for the wrappers."""


def _named(fn: Callable) -> Callable:
    """Name the op in a `_BadArgument` raised by a wrapper (a defop names it itself)."""
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _BadArgument as exc:
            raise ValueError(f"{fn.__name__}: {exc}") from None

    return call


# ------------------------------------------------------------------ arguments
def _either(op: str, numpy_name: str, numpy_value: Any, torch_name: str, torch_value: Any) -> tuple[Any, str]:
    """The value given under NumPy's or PyTorch's name (None if neither), and the name used."""
    if numpy_value is not None and torch_value is not None:
        raise TypeError(f"{op}: give {numpy_name} (NumPy) or {torch_name} (PyTorch), not both")
    if torch_value is not None:
        return torch_value, torch_name
    return numpy_value, numpy_name


def _axis_index(op: str, ndim: int, a: Any, label: str) -> int:
    if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
        raise TypeError(f"{op}: {label} must be an int (or a tuple/list of ints), got {a!r}")
    if not -ndim <= a < ndim:
        raise _BadArgument(f"{label} {a} is out of range for an array of {ndim} dimension(s)")
    return int(a) % ndim


def _reduction_args(op: str, ndim: int, axis: Axis, keepdims: Any, dim: Axis, keepdim: Any
                    ) -> tuple[tuple[int, ...] | None, bool]:
    """(sorted non-negative axes or None for all, keepdims) from either spelling (keepdim, when
    given, wins over keepdims, as in basic.torch_axes: Tensor methods pass keepdims on)."""
    axis, label = _either(op, "axis", axis, "dim", dim)
    keep = keepdims if keepdim is None else keepdim
    if axis is None:
        return None, bool(keep)
    items = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    axes = [_axis_index(op, ndim, a, label) for a in items]
    if len(set(axes)) != len(axes):
        raise _BadArgument(f"{label} {tuple(items)} repeats an axis")
    return tuple(sorted(axes)), bool(keep)


def _one_axis(op: str, ndim: int, axis: Any, dim: Any, default: Any = None) -> int | None:
    """One axis from either spelling (``default`` if neither), in range for ``max(ndim, 1)``
    (a 0-d array has one element along axis 0 or -1, as in PyTorch)."""
    axis, label = _either(op, "axis", axis, "dim", dim)
    if axis is None:
        axis = default
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{op}: {label} must be one int, got {axis!r}")
    return _axis_index(op, max(ndim, 1), axis, label)


def _keep(v: Any, axes: tuple[int, ...] | None, keepdims: bool) -> Any:
    """A reduction's result (or its cotangent) with the reduced axes put back as size 1."""
    return v if keepdims or axes is None else np.expand_dims(v, axes)


def _count(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> int:
    return math.prod(shape) if axes is None else math.prod(shape[a] for a in axes)


def _reshaped(v: Any, shape: tuple[int, ...]) -> Any:
    return v if v.shape == shape else v.reshape(shape)


def _part(ndim: int, axis: int, part: slice) -> tuple:
    return (slice(None),) * axis + (part,) + (slice(None),) * (ndim - axis - 1)


def _flip(v: Any, axis: int) -> Any:
    return v[_part(v.ndim, axis, slice(None, None, -1))]


def _filled(v: Any, axis: int, n: int, value: float) -> np.ndarray:
    """A constant block shaped like ``v`` but ``n`` long along ``axis``."""
    shape = list(v.shape)
    shape[axis] = n
    return np.full(shape, value, dtype=v.dtype)


def _scan_input(op: str, x: Any, axis: Any, dim: Any) -> tuple[Any, int, tuple[int, ...]]:
    """(x as scanned, its axis, the result's shape): flattened when no axis is given (NumPy),
    one element long when 0-d (PyTorch)."""
    a = _one_axis(op, x.ndim, axis, dim)
    if a is None:
        return _reshaped(x, (x.size,)), 0, (x.size,)
    if x.ndim == 0:
        return x.reshape((1,)), 0, ()
    return x, a, x.shape


def _raw(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


# ------------------------------------------------------- gathers along an axis
def _along(index: np.ndarray, axis: int) -> tuple:
    """The fancy index that takes, along ``axis``, the elements ``index`` names (np.take_along_axis)."""
    nd = index.ndim
    return tuple(index if k == axis else np.arange(n).reshape((n,) + (1,) * (nd - 1 - k))
                 for k, n in enumerate(index.shape))


def _scatter(g: Any, where: tuple, shape: tuple[int, ...], unique: bool) -> Any:
    """zeros(shape) with ``g`` added at ``where``: the VJP of a gather (`index_add` on Tensors)."""
    if isinstance(g, Tensor):
        return index_add(g, index=where, shape=shape)
    out = np.zeros(shape, dtype=g.dtype)
    if unique:
        out[where] = g
    else:
        np.add.at(out, where, g)
    return out


def _selection(name: str, doc: str) -> Callable:
    """An op taking x's elements at given indices along an axis (the indices are an option)."""
    def select(x, *, index=None, axis=0, keepdims=True, unique=True):
        where = _along(index, axis)
        shape = x.shape
        out = x[where]
        if not keepdims:
            out = np.squeeze(out, axis=axis)

        def vjp(g):
            return _scatter(g if keepdims else np.expand_dims(g, axis), where, shape, unique)

        return out, vjp

    select.__name__ = select.__qualname__ = name
    select.__doc__ = doc
    return defop(select, name=name, fresh_grads=True)


_sorted = _selection("sort", "x rearranged along ``axis`` by ``index`` (an argsort);  ∂x = g put back in place.")
_top = _selection("topk", "x's k elements along ``axis`` named by ``index``;  ∂x = g at those places, 0 elsewhere.")
_running_max = _selection("cummax", "The running max y_i = x[index_i] (index_i the last j ≤ i with x_j = max "
                                    "x_{≤i});  ∂x_j = Σ_{i: index_i = j} g_i.")
_running_min = _selection("cummin", "The running min y_i = x[index_i];  ∂x_j = Σ_{i: index_i = j} g_i.")
_max_at = _selection("max_dim", "x's maximum along ``axis`` at ``index`` (its first place);  ∂x = g there.")
_min_at = _selection("min_dim", "x's minimum along ``axis`` at ``index`` (its first place);  ∂x = g there.")


def _as_vector(x: Any) -> Any:
    """A 0-d input as one element (PyTorch sorts and scans 0-d tensors along dim 0 or -1)."""
    return reshape(x, shape=(1,)) if isinstance(x, Tensor) else np.reshape(x, (1,))


# --------------------------------------------------------- amax, amin, max(dim)
@_named
def amax(x: Any, axis: Axis = None, keepdims: bool | None = None, *, dim: Axis = None,
         keepdim: bool | None = None) -> Tensor:
    """Max over ``axis`` (all by default);  ∂x = g shared evenly between the elements equal to the max."""
    axes, keep = _reduction_args("amax", np.ndim(_raw(x)), axis, keepdims, dim, keepdim)
    return max_(x, axis=axes, keepdims=keep)


@_named
def amin(x: Any, axis: Axis = None, keepdims: bool | None = None, *, dim: Axis = None,
         keepdim: bool | None = None) -> Tensor:
    """Min over ``axis`` (all by default);  ∂x = g shared evenly between the elements equal to the min."""
    axes, keep = _reduction_args("amin", np.ndim(_raw(x)), axis, keepdims, dim, keepdim)
    return min_(x, axis=axes, keepdims=keep)


def _extremum_at(op: str, select: Callable, arg: Callable, x: Any, dim: Any, keepdim: Any, axis: Any,
                 keepdims: Any) -> ValuesIndices:
    keep = bool(keepdims if keepdim is None else keepdim)
    refuse_traced(x, f"{op}'s indices (and the values taken at them)")
    data = _raw(x)
    a = _one_axis(op, data.ndim, axis, dim)
    if a is None:
        raise TypeError(f"{op}: needs a dim (for the extremum of all elements use amax/amin)")
    if data.ndim == 0:  # one element: the value and index 0, both 0-d
        return _extremum_at(op, select, arg, _as_vector(x), 0, False, None, None)
    if data.shape[a] == 0:
        raise _BadArgument(f"dim {a} has size 0 (input shape {data.shape}): it has no extremum")
    index = np.expand_dims(arg(data, axis=a), a)
    values = select(x, index=index, axis=a, keepdims=keep)
    return ValuesIndices(values, from_numpy(index if keep else np.squeeze(index, axis=a)))


@_named
def max_dim(x: Any, dim: int | None = None, keepdim: bool | None = None, *, axis: int | None = None,
            keepdims: bool | None = None) -> ValuesIndices:
    """PyTorch's ``torch.max(x, dim, keepdim)``: (values, indices) of the max along ``dim``, the
    index of its first occurrence;  ∂x = g at that index only (not shared between ties)."""
    return _extremum_at("max_dim", _max_at, np.argmax, x, dim, keepdim, axis, keepdims)


@_named
def min_dim(x: Any, dim: int | None = None, keepdim: bool | None = None, *, axis: int | None = None,
            keepdims: bool | None = None) -> ValuesIndices:
    """PyTorch's ``torch.min(x, dim, keepdim)``: (values, indices) of the min along ``dim``, the
    index of its first occurrence;  ∂x = g at that index only."""
    return _extremum_at("min_dim", _min_at, np.argmin, x, dim, keepdim, axis, keepdims)


# ------------------------------------------------------------------------ prod
def _prod_of_others(v: Any) -> Any:
    """Π_{j≠i} v_j along the last axis, without division (exact with zeros): the product of
    the elements before i (an exclusive cumprod) times those after i (a reversed one)."""
    n = v.shape[-1]
    if n == 0:
        return v
    one = _filled(v, v.ndim - 1, 1, 1)
    before = np.concatenate([one, np.cumprod(v[..., :-1], axis=-1)], axis=-1)
    after = np.concatenate([np.cumprod(v[..., :0:-1], axis=-1)[..., ::-1], one], axis=-1)
    return before * after


@defop(fresh_grads=True)
def prod(x, *, axis=None, keepdims=None, dim=None, keepdim=None):
    """Π x over ``axis`` (all by default);  ∂x_i = g · Π_{j≠i} x_j over the reduced elements, formed
    from exclusive cumprods, not out / x: one zero gets the product of the others, two or more give 0."""
    axes, keep = _reduction_args("prod", x.ndim, axis, keepdims, dim, keepdim)
    out = np.prod(x, axis=axes, keepdims=keep)

    def vjp(g):
        reduced = tuple(range(x.ndim)) if axes is None else axes
        kept = [k for k in range(x.ndim) if k not in reduced]
        order = kept + list(reduced)
        moved = x if order == sorted(order) else np.transpose(x, order)
        lead = moved.shape[: len(kept)]
        others = _prod_of_others(moved.reshape(lead + (_count(x.shape, reduced),))).reshape(moved.shape)
        if moved is not x:
            others = np.transpose(others, tuple(int(i) for i in np.argsort(order)))
        return _keep(g, axes, keep) * others

    return out, vjp


# ------------------------------------------------------------------- var, std
def _correction(op: str, correction: Any, ddof: Any, unbiased: Any) -> float:
    given = [k for k, v in (("correction", correction), ("ddof", ddof), ("unbiased", unbiased)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"{op}: give one of correction (PyTorch), ddof (NumPy) or unbiased (old PyTorch), "
                        f"got {' and '.join(given)}")
    if unbiased is not None:
        return 1 if unbiased else 0
    value = correction if correction is not None else ddof if ddof is not None else 1
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise TypeError(f"{op}: {given[0] if given else 'correction'} must be a finite number, got {value!r}")
    return value.item() if isinstance(value, np.generic) else value  # a NumPy scalar would promote float32


def _deviations(op, x, axis, keepdims, dim, keepdim, correction, ddof, unbiased):
    """(x − mean, Σ(x − mean)² / max(n − correction, 0), n − correction clipped at 0, axes, keepdims)."""
    axes, keep = _reduction_args(op, x.ndim, axis, keepdims, dim, keepdim)
    c = _correction(op, correction, ddof, unbiased)
    n = _count(x.shape, axes)
    denom = max(n - c, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = x - x.sum(axis=axes, keepdims=True) / n
        return d, (d * d).sum(axis=axes, keepdims=keep) / denom, denom, axes, keep


@defop(fresh_grads=True)
def var(x, *, axis=None, keepdims=None, correction=None, dim=None, keepdim=None, ddof=None, unbiased=None):
    """Σ(x − x̄)² / (n − correction) over ``axis`` (all by default); correction (NumPy's ddof) is 1 by
    default, as torch.var (np.var on Tensors keeps NumPy's ddof=0);  ∂x = g · 2(x − x̄) / (n − correction)."""
    d, out, denom, axes, keep = _deviations("var", x, axis, keepdims, dim, keepdim, correction, ddof, unbiased)

    def vjp(g):
        with np.errstate(invalid="ignore"):
            return _keep(g, axes, keep) * (2 / denom if denom else math.inf) * d

    return out, vjp


@defop(fresh_grads=True)
def std(x, *, axis=None, keepdims=None, correction=None, dim=None, keepdim=None, ddof=None, unbiased=None):
    """√var(x) over ``axis``, correction 1 by default as torch.std (np.std: ddof=0);
    ∂x = g · (x − x̄) / ((n − correction) · std), 0 where std = 0 (PyTorch's subgradient)."""
    d, variance, denom, axes, keep = _deviations("std", x, axis, keepdims, dim, keepdim, correction, ddof, unbiased)
    out = np.sqrt(variance)

    def vjp(g):
        v = _keep(variance, axes, keep)
        zero = v == 0
        with np.errstate(divide="ignore", invalid="ignore"):  # √ of a masked variance: no √0 to differentiate
            return np.where(zero, 0, _keep(g, axes, keep) / (np.sqrt(np.where(zero, 1, v)) * denom)) * d

    return out, vjp


# ------------------------------------------------------------------------ norm
def _norm_order(p: Any) -> float:
    if isinstance(p, str):
        if p == "fro":
            return 2.0
        raise _BadArgument(f"p={p!r} is not supported (a vector norm: p > 0, 0, inf, -inf or 'fro')")
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"norm: p must be a number or 'fro', got {p!r}")
    p = float(p)
    if math.isnan(p) or (p < 0 and p != -math.inf):
        raise _BadArgument(f"p={p} is not supported (a vector norm: p > 0, 0, inf, -inf or 'fro')")
    return p


@defop(fresh_grads=True)
def norm(x, *, p=2, axis=None, keepdims=None, dim=None, keepdim=None):
    """The vector p-norm over ``axis`` (all elements by default, as torch.norm / linalg.vector_norm).

    p = 2 or 'fro': √Σx², ∂x = g · x / ‖x‖ (0 where ‖x‖ = 0); p = 1: Σ|x|, ∂x = g · sign x;
    p = ±inf: max / min |x|, ∂x = g · sign x shared evenly between the elements at it;
    p = 0: the number of non-zeros, ∂x = 0; other p > 0: (Σ|x|ᵖ)^(1/p),
    ∂x = g · sign x · |x|^(p−1) / ‖x‖^(p−1) (0 where ‖x‖ = 0)."""
    order = _norm_order(p)
    axes, keep = _reduction_args("norm", x.ndim, axis, keepdims, dim, keepdim)
    total = None  # Σ|x|ᵖ for the p-norms taken as a root of it
    if order == 1:
        out = np.abs(x).sum(axis=axes, keepdims=keep)
    elif order == math.inf:
        out = np.abs(x).max(axis=axes, keepdims=keep)
    elif order == -math.inf:
        out = np.abs(x).min(axis=axes, keepdims=keep)
    elif order == 0:
        out = (x != 0).astype(x.dtype).sum(axis=axes, keepdims=keep)
    elif order == 2:
        total = (x * x).sum(axis=axes, keepdims=keep)
        out = np.sqrt(total)
    else:
        total = (np.abs(x) ** order).sum(axis=axes, keepdims=keep)
        out = total ** (1 / order)

    def vjp(g):
        gk = _keep(g, axes, keep)
        if order == 1:
            return gk * np.sign(x)
        if order == 0:
            return np.zeros(np.shape(x), dtype=out.dtype)
        if math.isinf(order):
            at = (np.abs(x) == _keep(out, axes, keep)).astype(out.dtype)
            return np.sign(x) * at * (gk / at.sum(axis=axes, keepdims=True))
        tk = _keep(total, axes, keep)
        zero = tk == 0
        safe = np.where(zero, 1, tk)  # masked before the root: nothing differentiates a root at 0
        if order == 2:
            return np.where(zero, 0, gk / np.sqrt(safe)) * x
        return np.where(zero, 0, gk / safe ** ((order - 1) / order)) * (np.sign(x) * np.abs(x) ** (order - 1))

    return out, vjp


# ----------------------------------------------------------------------- scans
@defop(fresh_grads=True)
def cumsum(x, *, axis=None, dim=None):
    """y_i = Σ_{j≤i} x_j along ``axis`` (over the flattened array when none is given, as np.cumsum);
    ∂x_j = Σ_{i≥j} g_i, a cumsum of g run backwards."""
    v, a, shape = _scan_input("cumsum", x, axis, dim)
    out = _reshaped(np.cumsum(v, axis=a), shape)

    def vjp(g):
        return _reshaped(_flip(np.cumsum(_flip(_reshaped(g, v.shape), a), axis=a), a), x.shape)

    return out, vjp


def _reverse_linear_scan(a: Any, b: Any, axis: int) -> Any:
    """r with r_j = b_j + a_j · r_{j+1} (r past the end = 0) in ⌈log₂ n⌉ vectorised doubling steps:
    the step of span s keeps r_j = b_j + a_j · r_{j+s} true while it makes b_j ← b_j + a_j b_{j+s},
    a_j ← a_j a_{j+s}; once s ≥ n, r = b."""
    n = b.shape[axis]
    span = 1
    while span < n:
        ahead = np.concatenate([b[_part(b.ndim, axis, slice(span, None))], _filled(b, axis, span, 0)], axis=axis)
        b = b + a * ahead
        if 2 * span < n:
            a = a * np.concatenate([a[_part(a.ndim, axis, slice(span, None))], _filled(a, axis, span, 0)], axis=axis)
        span *= 2
    return b


@defop(fresh_grads=True)
def cumprod(x, *, axis=None, dim=None):
    """y_i = Π_{j≤i} x_j along ``axis`` (flattened when none is given);  ∂x_j = (Π_{k<j} x_k) · r_j with
    r_j = Σ_{i≥j} g_i Π_{j<k≤i} x_k = g_j + x_{j+1} r_{j+1}: a reverse linear scan, exact with zeros
    (no division by x)."""
    v, a, shape = _scan_input("cumprod", x, axis, dim)
    running = np.cumprod(v, axis=a)

    def vjp(g):
        g = _reshaped(g, v.shape)
        n = v.shape[a]
        if n == 0:
            return _reshaped(g * 0, x.shape)
        before = np.concatenate([_filled(running, a, 1, 1), running[_part(v.ndim, a, slice(None, -1))]], axis=a)
        following = np.concatenate([v[_part(v.ndim, a, slice(1, None))], _filled(running, a, 1, 0)], axis=a)
        return _reshaped(before * _reverse_linear_scan(following, g, a), x.shape)

    return _reshaped(running, shape), vjp


def _logcumsumexp(v: Any, axis: int) -> Any:
    """Running log Σ e^v along ``axis``: np.logaddexp.accumulate on arrays, the op on Tensors."""
    if isinstance(v, Tensor):
        return logcumsumexp(v, axis=axis)
    return np.logaddexp.accumulate(v, axis=axis)


@defop(fresh_grads=True)
def logcumsumexp(x, *, axis=None, dim=None):
    """y_i = log Σ_{j≤i} e^{x_j} along ``axis`` (a running logaddexp: no overflow; flattened when no
    axis is given);  ∂x_j = Σ_{i≥j} g_i e^{x_j − y_i} = e^{x_j − y_j} r_j with r_j = g_j + e^{y_j − y_{j+1}}
    r_{j+1}: a reverse linear scan whose factors are all ≤ 1 (stable for any x, and linear in g)."""
    v, a, shape = _scan_input("logcumsumexp", x, axis, dim)
    running = _logcumsumexp(v, a)

    def vjp(g):
        finite = np.isfinite(running.data if isinstance(running, Tensor) else running)
        y = np.where(finite, running, 0)  # an all −inf prefix passes nothing on (e^{x − y} = 0 there)
        tail = _part(v.ndim, a, slice(1, None))
        step = np.logical_and(finite, np.concatenate([finite[tail], _filled(finite, a, 1, False)], axis=a))
        following = np.concatenate([y[tail], _filled(running, a, 1, 0)], axis=a)
        decay = np.where(step, np.exp(np.where(step, y - following, 0)), 0)  # e^{y_j − y_{j+1}} ≤ 1
        with np.errstate(invalid="ignore"):
            return _reshaped(np.exp(v - y) * _reverse_linear_scan(decay, _reshaped(g, v.shape), a), x.shape)

    return _reshaped(running, shape), vjp


def _running_index(data: np.ndarray, axis: int, largest: bool) -> np.ndarray:
    """Where the running max (min) of each prefix is: the last j ≤ i equal to it, and a NaN, once
    seen, is the extremum and each later NaN takes its place (PyTorch's cummax/cummin)."""
    best = (np.maximum if largest else np.minimum).accumulate(data, axis=axis)
    hit = data == best
    if data.dtype.kind in "fc":
        hit |= np.isnan(data)
    n = data.shape[axis]
    steps = np.arange(n).reshape((n,) + (1,) * (data.ndim - 1 - axis))
    return np.maximum.accumulate(np.where(hit, steps, 0), axis=axis)


def _running_extremum(op: str, select: Callable, x: Any, dim: Any, axis: Any, largest: bool) -> ValuesIndices:
    refuse_traced(x, f"{op}'s indices (and the values taken at them)")
    data = _raw(x)
    a = _one_axis(op, data.ndim, axis, dim)
    if a is None or data.ndim == 0:
        shape = data.shape if a is not None else (data.size,)
        x = reshape(x, shape=(data.size,)) if isinstance(x, Tensor) else data.reshape(data.size)
        values, indices = _running_extremum(op, select, x, 0, None, largest)
        if shape == ():
            values, indices = reshape(values, shape=()), from_numpy(indices.data.reshape(()))
        return ValuesIndices(values, indices)
    index = _running_index(data, a, largest)
    return ValuesIndices(select(x, index=index, axis=a, unique=False), from_numpy(index))


@_named
def cummax(x: Any, dim: int | None = None, *, axis: int | None = None) -> ValuesIndices:
    """(values, indices) of the running max along ``dim`` (flattened when none is given): values_i =
    max_{j≤i} x_j at indices_i, the last place it is reached (PyTorch's choice at ties; NaN wins);
    ∂x_j = Σ g_i over the i whose index is j."""
    return _running_extremum("cummax", _running_max, x, dim, axis, largest=True)


@_named
def cummin(x: Any, dim: int | None = None, *, axis: int | None = None) -> ValuesIndices:
    """(values, indices) of the running min along ``dim``: values_i = min_{j≤i} x_j at indices_i, the
    last place it is reached (PyTorch's choice at ties; NaN wins);  ∂x_j = Σ g_i over the i whose index is j."""
    return _running_extremum("cummin", _running_min, x, dim, axis, largest=False)


# ---------------------------------------------------------- sort, argsort, topk
def _stable_argsort(data: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable argsort; descending keeps equal elements in their order and puts NaN first (PyTorch)."""
    if not descending:
        return np.argsort(data, axis=axis, kind="stable")
    n = data.shape[axis]
    return n - 1 - _flip(np.argsort(_flip(data, axis), axis=axis, kind="stable"), axis)


def _sort_setup(op: str, x: Any, dim: Any, axis: Any) -> tuple[Any, np.ndarray, int, bool]:
    """(x, its data, the axis, whether x was 0-d and is now one element)."""
    refuse_traced(x, f"{op}'s order (and the values taken in it)")
    data = _raw(x)
    a = _one_axis(op, data.ndim, axis, dim, default=-1)
    if data.ndim == 0:
        return _as_vector(x), data.reshape(1), 0, True
    return x, data, a, False


@_named
def sort(x: Any, dim: int | None = None, descending: bool = False, stable: bool = False, *,
         axis: int | None = None) -> ValuesIndices:
    """(values, indices) of x sorted along ``dim`` (-1 by default; ascending; NaN last, first when descending). The
    sort is always stable (``stable`` is accepted for PyTorch's signature);  ∂x = g put back at indices."""
    x, data, a, scalar = _sort_setup("sort", x, dim, axis)
    index = _stable_argsort(data, a, bool(descending))
    values = _sorted(x, index=index, axis=a)
    if scalar:
        return ValuesIndices(reshape(values, shape=()), from_numpy(index.reshape(())))
    return ValuesIndices(values, from_numpy(index))


@_named
def argsort(x: Any, dim: int | None = None, descending: bool = False, stable: bool = False, *,
            axis: int | None = None) -> Tensor:
    """Indices that sort x along ``dim`` (-1 by default; stable; an integer tensor, not differentiable)."""
    x, data, a, scalar = _sort_setup("argsort", x, dim, axis)
    index = _stable_argsort(data, a, bool(descending))
    return from_numpy(index.reshape(()) if scalar else index)


@_named
def topk(x: Any, k: int, dim: int | None = None, largest: bool = True, sorted: bool = True, *,  # noqa: A002 (PyTorch's name)
         axis: int | None = None) -> ValuesIndices:
    """(values, indices) of the k largest (smallest) elements along ``dim`` (-1 by default); sorted by value, or in
    index order when ``sorted=False``. Equal elements are taken lowest index first (PyTorch leaves
    that order unspecified); NaN counts as the largest;  ∂x = g at the indices, 0 elsewhere."""
    x, data, a, scalar = _sort_setup("topk", x, dim, axis)
    n = data.shape[a]
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"topk: k must be an int, got {k!r}")
    if not 0 <= k <= n:
        raise _BadArgument(f"k={k} is out of range for dim {a} of size {n} (input shape {data.shape})")
    index = _stable_argsort(data, a, bool(largest))[_part(data.ndim, a, slice(0, int(k)))]
    if not sorted:
        index = np.sort(index, axis=a)
    values = _top(x, index=index, axis=a)
    if scalar and k == 1:
        return ValuesIndices(reshape(values, shape=()), from_numpy(index.reshape(())))
    return ValuesIndices(values, from_numpy(index))


# ------------------------------------------------- NumPy functions on Tensors
def _refuse(name: str, what: str) -> TypeError:
    return TypeError(f"numpy.{name} with {what} is not differentiable here: tinygrad_lite has no implementation "
                     f"of it for Tensors. Use a tinygrad_lite op, or t.detach().numpy() for the values")


def _np_prod(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
    if dtype is not None or out is not None or rest:
        raise _refuse("prod", "dtype=, out=, initial= or where=")
    return prod(a, axis=axis, keepdims=keepdims)


def _np_scan(op: Callable) -> Callable:
    def call(a, axis=None, dtype=None, out=None):
        if dtype is not None or out is not None:
            raise _refuse(op.record.name, "dtype= or out=")
        return op(a, axis=axis)

    return call


def _np_moment(op: Callable) -> Callable:
    def call(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None,
             correction=None):
        if dtype is not None or out is not None or where is not True or mean is not None:
            raise _refuse(op.record.name, "dtype=, out=, where= or mean=")
        if correction is not None:
            if ddof != 0:
                raise ValueError(f"numpy.{op.record.name}: ddof and correction can't be provided simultaneously.")
            ddof = correction
        return op(a, axis=axis, keepdims=keepdims, ddof=ddof)

    return call


def _np_sort(a, axis=-1, kind=None, order=None, *, stable=None):
    if order is not None:
        raise _refuse("sort", "order=")
    if axis is None:
        a, axis = (reshape(a, shape=(-1,)) if isinstance(a, Tensor) else np.reshape(a, -1)), -1
    return sort(a, axis=axis).values


def _np_argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    refuse_traced(a, "numpy.argsort's order")
    return from_numpy(np.argsort(_raw(a), axis=axis, kind=kind, order=order, stable=stable))


def _np_norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002 (NumPy's name)
    """np.linalg.norm where it is a vector norm: ord None (2-norm of all elements, or Frobenius over
    two axes), 'fro' over two axes, or a number over one axis (or a 1-D array)."""
    ndim = np.ndim(_raw(x))
    axes = tuple(range(ndim)) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    if ord is None or (ord == "fro" and len(axes) == 2):
        return norm(x, p=2, axis=axis, keepdims=keepdims)
    if len(axes) == 1 and not isinstance(ord, str):
        return norm(x, p=ord, axis=axis, keepdims=keepdims)
    raise _refuse("linalg.norm", f"ord={ord!r} over {len(axes)} axes (a matrix norm)")


register_function(np.prod, _np_prod)
register_function(np.cumsum, _np_scan(cumsum))
register_function(np.cumprod, _np_scan(cumprod))
register_function(np.var, _np_moment(var))
register_function(np.std, _np_moment(std))
register_function(np.sort, _np_sort)
register_function(np.argsort, _np_argsort)
register_function(np.linalg.norm, _np_norm)

"""Gather and scatter along a dimension, with PyTorch's names and rules.

For an index array of x's number of dimensions and ``dim``, position i = (i₀, …, iₙ) of the
index names the element of x at i with coordinate ``dim`` replaced by ``index[i]``:

    gather:          out[i] = x[i with i_dim → index[i]]
    scatter_add:     out = x, then out[i with i_dim → index[i]] += src[i] for every i

Both are linear: ``gather``'s VJP scatter-adds g into zeros (basic's ``index_add``, whose
VJP gathers again; repeated indices add up) and ``scatter_add``'s VJP for src gathers g, so
both are differentiable to any order; ``scatter`` and ``scatter_reduce`` write their VJPs
with them. Index arrays are copied when the op is called and are options, never differentiated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import defop
from ..mode import TraceError, is_traced, is_tracing, refuse_traced
from ..numpy_api import register_function
from ..tensor import Tensor
from .basic import astype, broadcast_to, call_op, getitem, index_add, reshape
from .shape import _pad, normalize_dim, shape_of

__all__ = ["gather", "index_select", "scatter", "scatter_add", "scatter_reduce", "take_along_axis", "take_along_dim"]

REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def _along(index: np.ndarray, dim: int) -> tuple[np.ndarray, ...]:
    """The NumPy index that reads element [i with i_dim → index[i]] at every position i of ``index``."""
    ndim = index.ndim
    return tuple(index if d == dim else np.arange(n).reshape((-1,) + (1,) * (ndim - 1 - d))
                 for d, n in enumerate(index.shape))


def _crop(a: Any, shape: tuple[int, ...]) -> Any:
    """The leading block of ``a`` of ``shape`` (a itself when it already has that shape)."""
    if tuple(a.shape) == tuple(shape):
        return a
    return a[tuple(slice(0, n) for n in shape)]


def _zero_extend(a: Any, shape: tuple[int, ...]) -> Any:
    """``a`` padded with zeros after its end to ``shape`` (a gradient for a larger src)."""
    if len(shape) == 0 or tuple(a.shape) == tuple(shape):
        return a
    widths = tuple((0, n - m) for n, m in zip(shape, a.shape))
    return call_op(_pad, a, widths=widths, mode="constant", value=0)


def _data(a: Any) -> Any:
    return a.data if isinstance(a, Tensor) else a


# -------------------------------------------------------------- the linear pair
@defop(name="gather", fresh_grads=True)
def _gather(x, *, dim=0, index=None):
    """out[i] = x[i with i_dim → index[i]] (out has index's shape);  ∂x = g scatter-added into zeros."""
    where, shape = _along(index, dim), x.shape
    return x[where], lambda g: call_op(index_add, g, index=where, shape=shape)


@defop(name="scatter_add", fresh_grads=True)
def _scatter_add(x, src, *, dim=0, index=None):
    """out = x with src[i] added at [i with i_dim → index[i]] (repeats add up; only the leading
    block of src of index's shape is read);  ∂x = g, ∂src = gather(g), zero where src is not read."""
    if isinstance(x, Tensor) or isinstance(src, Tensor):  # a higher-order re-run: the op itself
        out = _scatter_add(x, src, dim=dim, index=index)
    else:
        out = np.array(x, copy=True)
        np.add.at(out, _along(index, dim), np.asarray(_crop(src, index.shape), dtype=out.dtype))
    src_shape = shape_of(src)
    return out, (lambda g: g, lambda g: _zero_extend(call_op(_gather, g, dim=dim, index=index), src_shape))


# -------------------------------------------------------------------- scatter
@defop(name="scatter", fresh_grads=True)
def _scatter(x, src, *, dim=0, index=None):
    """out = x with src[i] (or the scalar src) written at [i with i_dim → index[i]];
    ∂x = g where nothing was written, 0 there; ∂src = gather(g) (PyTorch's rule: with repeated
    indices one of the candidates is written, yet each gets the gradient of its position)."""
    where = _along(index, dim)
    keep = np.ones(x.shape, dtype=bool)
    keep[where] = False
    if isinstance(x, Tensor) or isinstance(src, Tensor):
        out = _scatter(x, src, dim=dim, index=index)
    else:
        out = np.array(x, copy=True)
        out[where] = _crop(src, index.shape) if np.ndim(src) else src
    src_shape = shape_of(src)
    return out, (lambda g: g * keep, lambda g: _zero_extend(call_op(_gather, g, dim=dim, index=index), src_shape))


# ------------------------------------------------------------- scatter_reduce
def _reduce_forward(x: np.ndarray, s: np.ndarray, where: tuple, hit: np.ndarray, count: np.ndarray,
                    reduce: str, include_self: bool) -> np.ndarray:
    """scatter_reduce on arrays: ``s`` (index-shaped) reduced into the positions it names."""
    s = np.asarray(s, dtype=x.dtype)
    if reduce in ("sum", "mean"):
        acc = np.zeros(x.shape, dtype=x.dtype)
        np.add.at(acc, where, s)
        if include_self:
            acc = acc + x
        if reduce == "mean":
            n = np.where(hit, count + include_self, 1).astype(x.dtype)
            acc = acc // n if x.dtype.kind in "iub" else acc / n
        return np.where(hit, acc, x)
    if reduce == "prod":
        acc = np.ones(x.shape, dtype=x.dtype)
        np.multiply.at(acc, where, s)
        return np.where(hit, x * acc if include_self else acc, x)
    ufunc = np.maximum if reduce == "amax" else np.minimum
    if x.dtype.kind == "f":
        start = -np.inf if reduce == "amax" else np.inf
    else:
        info = np.iinfo(x.dtype) if x.dtype.kind in "iu" else None
        start = (info.min if reduce == "amax" else info.max) if info else (reduce == "amin")
    acc = np.full(x.shape, start, dtype=x.dtype)
    ufunc.at(acc, where, s)
    return np.where(hit, ufunc(x, acc) if include_self else acc, x)


def _counts(where: tuple, shape: tuple[int, ...], weights: np.ndarray | None = None) -> np.ndarray:
    """How many indexed positions (or how many where ``weights`` is True) land on each element of ``shape``."""
    flat = np.ravel_multi_index(np.broadcast_arrays(*where), shape).ravel()
    if weights is not None:
        flat = flat[np.asarray(weights).ravel()]
    return np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)


@defop(name="scatter_reduce", fresh_grads=True)
def _scatter_reduce(x, src, *, dim=0, index=None, reduce="sum", include_self=True):
    """out[j] = reduce over {x[j] if include_self} ∪ {src[i] : [i with i_dim → index[i]] = j}
    where some i lands on j, else x[j]; reduce is sum, prod, mean, amax or amin.

    sum: ∂x = g (0 where hit and not include_self), ∂src = gather(g).  mean: both divided by
    the count (self included).  amax/amin: g shared evenly among the members equal to the
    result.  prod: ∂member = g · (product of the other members), exact to any order with zeros."""
    where = _along(index, dim)
    xv, sv = _data(x), _crop(_data(src), index.shape)
    count = _counts(where, xv.shape)
    hit = count > 0
    if isinstance(x, Tensor) or isinstance(src, Tensor):
        out = _scatter_reduce(x, src, dim=dim, index=index, reduce=reduce, include_self=include_self)
    else:
        out = _reduce_forward(x, sv, where, hit, count, reduce, include_self)
    src_shape, dtype = shape_of(src), xv.dtype
    miss = ~hit

    def gather_(a):
        return call_op(_gather, a, dim=dim, index=index)

    def to_src(a):
        return _zero_extend(a, src_shape)

    if reduce == "sum":
        return out, ((lambda g: g) if include_self else (lambda g: g * miss), lambda g: to_src(gather_(g)))
    if reduce == "mean":
        scale = (1 / np.where(hit, count + include_self, 1)).astype(dtype)
        x_weight = scale if include_self else miss
        return out, (lambda g: g * x_weight, lambda g: to_src(gather_(g * scale)))
    if reduce in ("amax", "amin"):
        outv = _data(out)
        win_s = sv == outv[where]
        win_x = hit & (xv == outv) if include_self else np.zeros(xv.shape, dtype=bool)
        inv = (1 / np.maximum(_counts(where, xv.shape, win_s) + win_x, 1)).astype(dtype)
        x_weight = np.where(hit, win_x * inv, 1).astype(dtype)
        return out, (lambda g: g * x_weight, lambda g: to_src(gather_(g * inv) * win_s))
    # prod: a member's derivative is the product of the others: out / member for a nonzero one
    # (exact as a function there); for a zero, the product with that member replaced by 1
    return out, _prod_vjps(x, src, out, where, hit, dim, index, include_self)


def _zero_ranks(where: tuple, shape: tuple[int, ...], zero_x: np.ndarray, zero_s: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """For each zero member of a product, how many zero members of the same position come
    before it (x's own value first, then src in index order); −1 for the nonzero ones."""
    flat = np.ravel_multi_index(np.broadcast_arrays(*where), shape)
    targets = np.concatenate([np.flatnonzero(zero_x), flat[zero_s]])
    order = np.argsort(targets, kind="stable")
    position = np.arange(targets.size)
    first = np.r_[True, targets[order][1:] != targets[order][:-1]] if targets.size else np.zeros(0, bool)
    ranks = np.empty_like(position)
    ranks[order] = position - np.maximum.accumulate(np.where(first, position, 0))
    rank_x = np.full(shape, -1)
    rank_x.flat[np.flatnonzero(zero_x)] = ranks[:zero_x.sum()]
    rank_s = np.full(zero_s.shape, -1)
    rank_s[zero_s] = ranks[zero_x.sum():]
    return rank_x, rank_s


def _prod_vjps(x, src, out, where, hit, dim, index, include_self):
    """VJPs of scatter_reduce(prod): g times the product of the other members of each position.

    A nonzero member m: out / m. The r-th zero member of each position: the product with that
    member replaced by 1 (one scatter_reduce per rank r, so only as many as the most zeros
    that share a position): 0 when other zeros share it, yet with their exact derivatives."""
    xv, sv = _data(x), _crop(_data(src), index.shape)
    src_shape = shape_of(src)
    zero_x = hit & (xv == 0) if include_self else np.zeros(xv.shape, dtype=bool)
    zero_s = sv == 0
    rank_x, rank_s = _zero_ranks(where, xv.shape, zero_x, zero_s)
    rank_s_full = np.full(src_shape, -1)
    rank_s_full[tuple(slice(0, n) for n in index.shape)] = rank_s
    n_ranks = int(max(rank_x.max(initial=-1), rank_s.max(initial=-1))) + 1
    cache: list = []

    def gather_(a):
        return call_op(_gather, a, dim=dim, index=index)

    def zero_products():  # (for x's zeros, for src's zeros), computed once for both VJPs
        if not cache:
            px = ps = 0
            for r in range(n_ranks):
                out_r = call_op(_scatter_reduce, np.where(rank_x == r, 1, x), np.where(rank_s_full == r, 1, src),
                                dim=dim, index=index, reduce="prod", include_self=include_self)
                px = np.where(rank_x == r, out_r, px)
                ps = np.where(rank_s == r, gather_(out_r), ps)
            cache.append((px, ps))
        return cache[0]

    def grad_x(g):
        if not include_self:
            return g * ~hit
        others = np.where(zero_x, zero_products()[0], out / np.where(xv == 0, 1, x))
        return g * np.where(hit, others, 1)

    def grad_src(g):
        others = np.where(zero_s, zero_products()[1], gather_(out) / np.where(zero_s, 1, _crop(src, index.shape)))
        return _zero_extend(gather_(g) * others, src_shape)

    return grad_x, grad_src


# ----------------------------------------------------------------- public API
def _index_array(op: str, index: Any) -> np.ndarray:
    """A private integer copy of ``index`` (later changes to the caller's array cannot reach backward); inside
    a function being compiled, a traced index is used as it is (in-place changes are refused there), so a
    replay uses each call's index."""
    a = index.data if isinstance(index, Tensor) else index
    if not is_tracing() or not isinstance(a, np.ndarray) or a.dtype.kind not in "iu":
        a = np.array(a)
    elif a.dtype != np.intp:  # inside a compiled function an index array is used as it is, or cast by an op
        if not (isinstance(index, Tensor) and is_traced(index)):
            raise TraceError(f"{op}: an index array of dtype {a.dtype} inside a compiled function would be cast in "
                             f"Python and frozen into every replay; pass {np.dtype(np.intp)} indices")
        a = astype(index, dtype=np.intp).data  # an op: each call's index is cast
    if a.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must hold integers, got dtype {a.dtype}")
    return a.astype(np.intp, copy=False)


def _in_range(op: str, index: np.ndarray, d: int, n: int) -> None:
    if index.size and (index.min() < 0 or index.max() >= n):
        bad = index.min() if index.min() < 0 else index.max()
        raise IndexError(f"{op}: index {bad} is out of range for dimension {d} of size {n}")


def _check(op: str, x: Any, dim: Any, index: Any, src: Any = None) -> tuple[int, np.ndarray]:
    """(dim, index) after PyTorch's checks: index has x's number of dimensions and fits x
    outside ``dim`` (and fits src everywhere), its values lie in [0, x.shape[dim])."""
    shape = shape_of(x)
    index = _index_array(op, index)
    d = normalize_dim(op, "dim", dim, len(shape))
    if index.ndim != len(shape):
        raise ValueError(f"{op}: index has {index.ndim} dimension(s) but the input has {len(shape)} "
                         f"(index shape {index.shape}, input shape {shape})")
    if any(k != d and m > n for k, (m, n) in enumerate(zip(index.shape, shape))):
        raise ValueError(f"{op}: index shape {index.shape} is larger than the input shape {shape} outside dim {d}")
    if src is not None and np.ndim(_data(src)):
        src_shape = shape_of(src)
        if len(src_shape) != index.ndim or any(m > n for m, n in zip(index.shape, src_shape)):
            raise ValueError(f"{op}: index shape {index.shape} is larger than the src shape {src_shape}")
    _in_range(op, index, d, shape[d])
    return d, index


def gather(x: Any, dim: int, index: Any) -> Tensor:
    """out[i] = x[i with coordinate ``dim`` replaced by index[i]] (out has index's shape; index
    has x's number of dimensions and is no larger outside ``dim``), as torch.gather.
    ∂x = g added back at the gathered positions (repeats add up)."""
    d, index = _check("gather", x, dim, index)
    return _gather(x, dim=d, index=index)


def scatter_add(x: Any, dim: int, index: Any, src: Any) -> Tensor:
    """x with src[i] added at [i with coordinate ``dim`` replaced by index[i]] (repeats add up),
    as torch.scatter_add. ∂x = g, ∂src = gather(g, dim, index) (0 where src is not read)."""
    d, index = _check("scatter_add", x, dim, index, src)
    if np.ndim(_data(src)) != index.ndim:
        raise ValueError(f"scatter_add: src must have the index's {index.ndim} dimension(s), got shape {shape_of(src)}")
    return _scatter_add(x, src, dim=d, index=index)


def scatter(x: Any, dim: int, index: Any, src: Any) -> Tensor:
    """x with src[i] (or the number src) written at [i with coordinate ``dim`` replaced by
    index[i]], as torch.scatter (with repeated indices, which candidate lands is unspecified).
    ∂x = g with the written positions zeroed, ∂src = gather(g, dim, index)."""
    d, index = _check("scatter", x, dim, index, src)
    if np.ndim(_data(src)) not in (0, index.ndim):
        raise ValueError(f"scatter: src must be a number or have the index's {index.ndim} dimension(s), "
                         f"got shape {shape_of(src)}")
    return _scatter(x, src, dim=d, index=index)


def scatter_reduce(x: Any, dim: int, index: Any, src: Any, reduce: str, include_self: bool = True) -> Tensor:
    """x with the src elements that index sends to each position reduced into it ("sum",
    "prod", "mean", "amax", "amin"; with x's own value when ``include_self``), as
    torch.scatter_reduce. Gradients as PyTorch: mean divides by the count (self included),
    amax/amin share g evenly among the tied members, prod handles zeros exactly."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"scatter_reduce: reduce must be one of {', '.join(REDUCTIONS)}; got {reduce!r}")
    d, index = _check("scatter_reduce", x, dim, index, src)
    if np.ndim(_data(src)) != index.ndim:
        raise ValueError(f"scatter_reduce: src must have the index's {index.ndim} dimension(s), "
                         f"got shape {shape_of(src)}")
    return _scatter_reduce(x, src, dim=d, index=index, reduce=reduce, include_self=bool(include_self))


def index_select(x: Any, dim: int, index: Any) -> Tensor:
    """The slices of x at positions ``index`` (1-D, or a single number) along ``dim``, as
    torch.index_select. ∂x = g added back at those positions (repeats add up)."""
    shape = shape_of(x)
    index = _index_array("index_select", index)
    d = normalize_dim("index_select", "dim", dim, len(shape))
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D, got shape {index.shape}")
    _in_range("index_select", index, d, shape[d])
    return getitem(x, index=(slice(None),) * d + (index if index.ndim == 1 else index.reshape(-1),))


def take_along_axis(x: Any, indices: Any, axis: int | None = -1) -> Tensor:
    """NumPy's take_along_axis: out[i] = x[i with coordinate ``axis`` replaced by indices[i]],
    where indices and x broadcast against each other outside ``axis`` and negative indices
    count from the end (axis None: x flattened, indices 1-D). ∂x = g added back."""
    indices = _index_array("take_along_axis", indices)
    refuse_traced(indices, "take_along_axis's indices (negative ones made positive)")
    if axis is None:
        x = reshape(x, shape=(-1,))
        if indices.ndim != 1:
            raise ValueError(f"take_along_axis: with axis=None indices must be 1-D, got shape {indices.shape}")
        axis = 0
    shape = shape_of(x)
    d = normalize_dim("take_along_axis", "axis", axis, len(shape))
    if indices.ndim != len(shape):
        raise ValueError(f"take_along_axis: indices have {indices.ndim} dimension(s) but x has {len(shape)} "
                         f"(indices shape {indices.shape}, x shape {shape})")
    n = shape[d]
    if indices.size and (indices.min() < -n or indices.max() >= n):
        bad = indices.min() if indices.min() < -n else indices.max()
        raise IndexError(f"take_along_axis: index {bad} is out of range for axis {d} of size {n}")
    indices = np.where(indices < 0, indices + n, indices)
    try:
        rest = [np.broadcast_shapes((a,), (b,))[0] if k != d else None
                for k, (a, b) in enumerate(zip(shape, indices.shape))]
    except ValueError:
        raise ValueError(f"take_along_axis: indices shape {indices.shape} does not broadcast against x shape {shape} "
                         f"outside axis {d}") from None
    x_shape = tuple(n if k == d else r for k, r in enumerate(rest))
    i_shape = tuple(indices.shape[d] if k == d else r for k, r in enumerate(rest))
    if x_shape != tuple(shape):
        x = broadcast_to(x, shape=x_shape)
    return _gather(x, dim=d, index=np.ascontiguousarray(np.broadcast_to(indices, i_shape)))


def take_along_dim(x: Any, indices: Any, dim: int | None = None) -> Tensor:
    """torch.take_along_dim: take_along_axis with both x and indices flattened when dim is None."""
    if dim is None:
        return take_along_axis(reshape(x, shape=(-1,)), _index_array("take_along_dim", indices).reshape(-1), 0)
    return take_along_axis(x, indices, dim)


register_function(np.take_along_axis, lambda arr, indices, axis=-1: take_along_axis(arr, indices, axis))

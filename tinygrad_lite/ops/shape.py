"""Shape ops with PyTorch's names: padding, repetition, flips, rolls, triangles, diagonals,
splits, and the views ``expand``, ``squeeze``, ``unsqueeze``, ``flatten``, ``permute``,
``view``, ``movedim`` (those reuse ``basic``'s reshape, transpose, broadcast_to, getitem).

Each public function checks its arguments first (errors name the function and the
argument; nothing is recorded before that) and then calls an op made with `defop`.
Every op here is linear in its input and each VJP is again an op: constant ``pad`` is
undone by ``pad`` with the widths negated, the other pads by ``pad_adjoint`` (and back),
``diagonal`` and ``diagonal_scatter`` are each other's VJPs, gathers made by indexing
scatter back with ``index_add``. On a Tensor (a higher-order re-run) a forward is the op
itself, recorded on that Tensor, so all of them are differentiable to any order.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph import defop
from ..numpy_api import register_function
from ..tensor import Tensor
from .basic import broadcast_to, call_op, getitem, reshape, transpose

__all__ = [
    "chunk", "diagonal", "diagonal_scatter", "expand", "flatten", "flip", "movedim", "narrow", "pad", "permute",
    "repeat", "repeat_interleave", "roll", "split", "squeeze", "tile", "tril", "triu", "unsqueeze", "view",
]

PAD_MODES = ("constant", "reflect", "replicate", "circular")
AxisError = np.exceptions.AxisError  # both a ValueError and an IndexError, as in NumPy


# ------------------------------------------------------------------ argument checks
def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of a Tensor, an array or anything NumPy reads as one."""
    return x.shape if isinstance(x, (Tensor, np.ndarray)) else np.shape(x)


def _int(op: str, arg: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {arg} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {arg} must be an integer, got {value!r}") from None


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str)


def _ints(op: str, arg: str, values: Any) -> tuple[int, ...]:
    """An int or a sequence of ints, as a tuple."""
    if _is_sequence(values):
        return tuple(_int(op, arg, v) for v in values)
    return (_int(op, arg, values),)


def _sizes(op: str, sizes: tuple) -> tuple[int, ...]:
    """``f(x, 2, 3)`` or ``f(x, (2, 3))``: the sizes as a tuple of ints."""
    if len(sizes) == 1 and _is_sequence(sizes[0]):
        sizes = tuple(sizes[0])
    return tuple(_int(op, "sizes", s) for s in sizes)


def normalize_dim(op: str, arg: str, dim: Any, ndim: int) -> int:
    """``dim`` in [−ndim, ndim) as an index in [0, ndim), else an AxisError naming ``op`` and ``arg``."""
    d = _int(op, arg, dim)
    if not -ndim <= d < ndim:
        if not ndim:
            raise AxisError(f"{op}: {arg}={d} is out of range for a 0-d tensor (it has no dimensions)")
        raise AxisError(f"{op}: {arg}={d} is out of range for a tensor of {ndim} dimension(s) "
                        f"(expected {-ndim} to {ndim - 1})")
    return d % ndim


def normalize_dims(op: str, arg: str, dims: Any, ndim: int) -> tuple[int, ...]:
    """An int or a sequence of distinct dims, each normalized (see `normalize_dim`)."""
    out = tuple(normalize_dim(op, arg, d, ndim) for d in _ints(op, arg, dims))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: {arg}={_ints(op, arg, dims)} repeats a dimension")
    return out


# --------------------------------------------------------------------------- pad
def _source_index(n: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """For each output position along one padded dimension, the input position it copies."""
    i = np.arange(-lo, n + hi)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":
        return i % n
    if n == 1:  # reflect: period 2(n − 1), mirrored about 0 and n − 1 (np.pad's "reflect")
        return np.zeros_like(i)
    i = i % (2 * (n - 1))
    return np.where(i < n, i, 2 * (n - 1) - i)


def _pad_constant(x: np.ndarray, widths: tuple, value: Any) -> np.ndarray:
    """x inside a new array filled with ``value``; negative widths crop."""
    out = np.full(tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, widths)), value, dtype=x.dtype)
    src, dst = [], []
    for n, (lo, hi) in zip(x.shape, widths):
        start, stop = max(-lo, 0), n - max(-hi, 0)
        if stop <= start:
            return out  # everything cropped away along this dimension
        src.append(slice(start, stop))
        dst.append(slice(max(lo, 0), max(lo, 0) + stop - start))
    out[tuple(dst)] = x[tuple(src)]
    return out


_NUMPY_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@defop(name="pad", fresh_grads=True)
def _pad(x, *, widths=(), mode="constant", value=0.0):
    """x padded by ``widths`` ((before, after) per dimension, NumPy's order).

    constant: ``value`` outside, negative widths crop;  ∂x = pad(g, −widths) (g cropped back).
    reflect / replicate / circular: out[i] = x[s(i)] for a source index s per dimension;
    ∂x = g summed into the elements each output copied (pad_adjoint)."""
    padded = any(lo or hi for lo, hi in widths)
    if isinstance(x, Tensor):  # a higher-order re-run: the op itself, recorded on the Tensor
        out = _pad(x, widths=widths, mode=mode, value=value)
    elif mode != "constant":
        out = np.pad(x, widths, mode=_NUMPY_MODE[mode]) if padded else x.copy()
    else:
        out = _pad_constant(x, widths, value)
    if mode != "constant" and padded:
        shape = x.shape
        return out, lambda g: call_op(_pad_adjoint, g, widths=widths, mode=mode, shape=shape)
    back = tuple((-lo, -hi) for lo, hi in widths)
    return out, lambda g: call_op(_pad, g, widths=back, mode="constant", value=0)


@defop(name="pad_adjoint", fresh_grads=True)
def _pad_adjoint(g, *, widths=(), mode="reflect", shape=()):
    """The adjoint of a reflect / replicate / circular ``pad`` to ``widths``: each element of g
    added into the element of an array of ``shape`` that it copied (one dimension at a time:
    the padding is separable);  ∂g = pad(gg, widths, mode)."""
    if isinstance(g, Tensor):
        out = _pad_adjoint(g, widths=widths, mode=mode, shape=shape)
    else:
        out = g
        for d, (lo, hi) in enumerate(widths):
            if lo or hi:
                lead, n = (slice(None),) * d, shape[d]
                border = np.r_[0:lo, lo + n:lo + n + hi]
                folded = out[lead + (slice(lo, lo + n),)].copy()
                np.add.at(folded, lead + (_source_index(n, lo, hi, mode)[border],), out[lead + (border,)])
                out = folded
    return out, lambda gg: call_op(_pad, gg, widths=widths, mode=mode, value=0)


def _check_widths(op: str, shape: tuple[int, ...], widths: tuple, mode: str, torch_limits: bool) -> None:
    for d, (n, (lo, hi)) in enumerate(zip(shape, widths)):
        if mode == "constant":
            if n + lo + hi < 0:
                raise ValueError(f"{op}: padding ({lo}, {hi}) of dimension {d} (size {n}) leaves a negative size")
            continue
        if lo < 0 or hi < 0:
            raise ValueError(f"{op}: negative padding ({lo}, {hi}) of dimension {d} needs mode='constant', "
                             f"got mode={mode!r}")
        if (lo or hi) and n == 0:
            raise ValueError(f"{op}: cannot pad dimension {d} of size 0 in mode {mode!r} (nothing to copy)")
        if torch_limits and mode == "reflect" and max(lo, hi) >= n:
            raise ValueError(f"{op}: reflect padding ({lo}, {hi}) must be smaller than the size {n} of dimension {d}")
        if torch_limits and mode == "circular" and max(lo, hi) > n:
            raise ValueError(f"{op}: circular padding ({lo}, {hi}) must be at most the size {n} of dimension {d}")


def pad(x: Any, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """x padded on its last ``len(pad) // 2`` dimensions, as ``torch.nn.functional.pad``:
    ``pad = (before, after)`` of the last dimension, then of the one before it, and so on.

    mode "constant": ``value`` outside (negative widths crop); "reflect": mirrored about the
    edge, not repeating it (widths < size); "replicate": the edge repeated; "circular":
    wrapped around (widths ≤ size). ∂x = g cropped back (constant), or g summed back into the
    elements each padded position copied (the others)."""
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(PAD_MODES)}; got {mode!r}")
    pads = _ints("pad", "pad", pad)
    shape = shape_of(x)
    if len(pads) % 2 or len(pads) // 2 > len(shape):
        raise ValueError(f"pad: pad={pads} must have an even length of at most 2 × {len(shape)} (two widths per "
                         f"padded dimension, last dimension first) for a tensor of shape {shape}")
    k = len(pads) // 2
    widths = ((0, 0),) * (len(shape) - k) + tuple((pads[2 * i], pads[2 * i + 1]) for i in reversed(range(k)))
    _check_widths("pad", shape, widths, mode, torch_limits=True)
    return _pad(x, widths=widths, mode=mode, value=value)


_NUMPY_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _np_pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Tensor:
    """``np.pad`` on Tensors (modes constant, reflect, edge, wrap; a scalar constant_values)."""
    if mode not in _NUMPY_PAD_MODES:
        raise TypeError(f"numpy.pad with mode={mode!r} is not differentiable here: tinygrad_lite has "
                        f"{', '.join(_NUMPY_PAD_MODES)}")
    value = kwargs.pop("constant_values", 0) if mode == "constant" else 0
    if kwargs.pop("reflect_type", "even") != "even" or kwargs or np.ndim(value) != 0:
        raise TypeError("numpy.pad on Tensors takes one scalar constant_values and no other options")
    shape = shape_of(array)
    try:
        widths = np.broadcast_to(np.asarray(pad_width), (len(shape), 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit a tensor of shape {shape}") from None
    widths = tuple((_int("pad", "pad_width", lo), _int("pad", "pad_width", hi)) for lo, hi in widths.tolist())
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        raise ValueError(f"pad: pad_width {pad_width!r} has negative values")
    _check_widths("pad", shape, widths, _NUMPY_PAD_MODES[mode], torch_limits=False)
    return _pad(array, widths=widths, mode=_NUMPY_PAD_MODES[mode], value=value)


# --------------------------------------------------------- views (basic's ops)
def expand(x: Any, *sizes: int) -> Tensor:
    """x broadcast to ``sizes`` (PyTorch's expand: −1 keeps a dimension, new dimensions go in
    front, only size-1 dimensions grow); a read-only view. ∂x = g summed over what was expanded."""
    sizes = _sizes("expand", sizes)
    shape = shape_of(x)
    lead = len(sizes) - len(shape)
    if lead < 0:
        raise ValueError(f"expand: sizes {sizes} have fewer dimensions than the tensor's shape {shape}")
    target = list(sizes[:lead])
    if any(s < 0 for s in target):
        raise ValueError(f"expand: sizes {sizes}: a new leading dimension needs a size ≥ 0 (-1 keeps existing ones)")
    for i, (s, n) in enumerate(zip(sizes[lead:], shape), start=lead):
        if s == -1 or s == n:
            target.append(n)
        elif n == 1 and s >= 0:
            target.append(s)
        else:
            raise ValueError(f"expand: size {s} at dimension {i} does not fit the tensor's size {n} there "
                             f"(only size-1 dimensions expand); shape {shape}, sizes {sizes}")
    return broadcast_to(x, shape=tuple(target))


def squeeze(x: Any, dim: int | Sequence[int] | None = None) -> Tensor:
    """x without its size-1 dimensions (all of them, or those in ``dim``; others in ``dim`` are
    kept, as PyTorch does). ∂x = g reshaped back."""
    shape = shape_of(x)
    if dim is None:
        drop = {d for d, n in enumerate(shape) if n == 1}
    else:
        drop = {d for d in normalize_dims("squeeze", "dim", dim, max(len(shape), 1)) if len(shape) and shape[d] == 1}
    return reshape(x, shape=tuple(n for d, n in enumerate(shape) if d not in drop))


def unsqueeze(x: Any, dim: int) -> Tensor:
    """x with a new size-1 dimension at ``dim`` (−1 appends one). ∂x = g reshaped back."""
    shape = shape_of(x)
    d = normalize_dim("unsqueeze", "dim", dim, len(shape) + 1)
    return reshape(x, shape=shape[:d] + (1,) + shape[d:])


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """x with dimensions ``start_dim`` … ``end_dim`` merged into one (a 0-d x becomes 1-d).
    ∂x = g reshaped back."""
    shape = shape_of(x)
    n = max(len(shape), 1)
    s = normalize_dim("flatten", "start_dim", start_dim, n)
    e = normalize_dim("flatten", "end_dim", end_dim, n)
    if s > e:
        raise ValueError(f"flatten: start_dim={start_dim} comes after end_dim={end_dim} for a tensor of shape {shape}")
    if not shape:
        return reshape(x, shape=(1,))
    return reshape(x, shape=shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


def permute(x: Any, *dims: int) -> Tensor:
    """x with its dimensions reordered: dimension i of the result is ``dims[i]`` of x.
    ∂x = g permuted back."""
    dims = _sizes("permute", dims)
    shape = shape_of(x)
    order = normalize_dims("permute", "dims", dims, len(shape))
    if len(order) != len(shape):
        raise ValueError(f"permute: dims {dims} must name each of the {len(shape)} dimensions of shape {shape} once")
    return transpose(x, axes=order)


def movedim(x: Any, source: int | Sequence[int], destination: int | Sequence[int]) -> Tensor:
    """x with dimensions ``source`` moved to positions ``destination`` (the rest keep their
    order), as np.moveaxis. ∂x = g moved back."""
    ndim = len(shape_of(x))
    src = normalize_dims("movedim", "source", source, ndim)
    dst = normalize_dims("movedim", "destination", destination, ndim)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {source} and destination {destination} must have the same length")
    order = [d for d in range(ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, axes=tuple(order))


def view(x: Any, *shape: int) -> Tensor:
    """x with a new shape of as many elements (one size may be −1: inferred), as reshape.
    ∂x = g reshaped back."""
    shape = _sizes("view", shape)
    old = shape_of(x)
    size = math.prod(old)
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        raise ValueError(f"view: shape {shape} may have one -1 and otherwise sizes ≥ 0")
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if known == 0 or size % known:
            raise ValueError(f"view: shape {shape} is invalid for a tensor of {size} elements (shape {old})")
        shape = tuple(size // known if s == -1 else s for s in shape)
    elif known != size:
        raise ValueError(f"view: shape {shape} is invalid for a tensor of {size} elements (shape {old})")
    return reshape(x, shape=shape)


def narrow(x: Any, dim: int, start: int, length: int) -> Tensor:
    """x[…, start : start + length, …] along ``dim`` (start may be negative). ∂x = g put back, zeros elsewhere."""
    shape = shape_of(x)
    d = normalize_dim("narrow", "dim", dim, len(shape))
    n = shape[d]
    start, length = _int("narrow", "start", start), _int("narrow", "length", length)
    if -n <= start < 0:
        start += n
    if not 0 <= start <= n or length < 0 or start + length > n:
        raise IndexError(f"narrow: start={start}, length={length} do not fit dimension {d} of size {n}")
    return getitem(x, index=(slice(None),) * d + (slice(start, start + length),))


# ------------------------------------------------------------- repeat and tile
@defop(name="tile", fresh_grads=True)
def _tile(x, *, reps=()):
    """x tiled ``reps`` times along each dimension (len(reps) ≥ x.ndim, x padded with leading 1s);
    ∂x = g reshaped to (r₀, n₀, r₁, n₁, …) and summed over the r axes."""
    out = _tile(x, reps=reps) if isinstance(x, Tensor) else np.tile(x, reps)
    shape = x.shape
    split = tuple(v for r, n in zip(reps, (1,) * (len(reps) - len(shape)) + shape) for v in (r, n))
    axes = tuple(range(0, 2 * len(reps), 2))
    return out, lambda g: g.reshape(split).sum(axis=axes).reshape(shape)


def repeat(x: Any, *sizes: int) -> Tensor:
    """x repeated ``sizes[i]`` times along dimension i (PyTorch's ``Tensor.repeat``, NumPy's
    tile; extra sizes add leading dimensions). ∂x = g summed over the copies."""
    sizes = _sizes("repeat", sizes)
    shape = shape_of(x)
    if len(sizes) < len(shape):
        raise ValueError(f"repeat: sizes {sizes} have fewer dimensions than the tensor's shape {shape}")
    if any(s < 0 for s in sizes):
        raise ValueError(f"repeat: sizes {sizes} must be ≥ 0")
    return _tile(x, reps=sizes)


def tile(x: Any, dims: int | Sequence[int]) -> Tensor:
    """x repeated ``dims[i]`` times along dimension i; fewer dims than x has are padded with
    leading 1s (torch.tile, np.tile). ∂x = g summed over the copies."""
    dims = _ints("tile", "dims", dims)
    if any(s < 0 for s in dims):
        raise ValueError(f"tile: dims {dims} must be ≥ 0")
    return _tile(x, reps=(1,) * (len(shape_of(x)) - len(dims)) + dims)


def repeat_interleave(x: Any, repeats: int | Sequence[int], dim: int | None = None) -> Tensor:
    """Each element repeated ``repeats`` times (or ``repeats[i]`` times for element i) along
    ``dim`` (x flattened when None), as np.repeat. ∂x = g summed over each element's copies."""
    if dim is None:
        x, dim = flatten(x), 0
    shape = shape_of(x)
    d = normalize_dim("repeat_interleave", "dim", dim, len(shape))
    counts = np.asarray(repeats.data if isinstance(repeats, Tensor) else repeats)
    if counts.dtype.kind not in "iu" or counts.ndim > 1 or (counts < 0).any():
        raise ValueError(f"repeat_interleave: repeats must be an integer ≥ 0 or a 1-D array of them, got {repeats!r}")
    try:
        source = np.repeat(np.arange(shape[d]), counts)
    except ValueError:
        raise ValueError(f"repeat_interleave: {counts.size} repeats do not match the size {shape[d]} of "
                         f"dimension {d}") from None
    return getitem(x, index=(slice(None),) * d + (source,))


# ------------------------------------------------------------------ flip, roll
@defop(name="flip", fresh_grads=True)
def _flip(x, *, dims=()):
    """x reversed along ``dims`` (a view);  ∂x = g reversed along the same dims."""
    index = tuple(slice(None, None, -1) if d in dims else slice(None) for d in range(x.ndim))
    return x[index], lambda g: g[index]


def flip(x: Any, dims: int | Sequence[int] | None = None) -> Tensor:
    """x reversed along ``dims`` (all dimensions when None, as np.flip). ∂x = g reversed."""
    ndim = len(shape_of(x))
    return _flip(x, dims=tuple(range(ndim)) if dims is None else normalize_dims("flip", "dims", dims, ndim))


@defop(name="roll", fresh_grads=True)
def _roll(x, *, shifts=0, dims=None):
    """x rolled by ``shifts`` along ``dims`` (elements leaving one end come back at the other;
    the flattened x when dims is None);  ∂x = g rolled by −shifts."""
    out = _roll(x, shifts=shifts, dims=dims) if isinstance(x, Tensor) else np.roll(x, shifts, dims)
    back = -shifts if dims is None else tuple(-s for s in shifts)
    return out, lambda g: call_op(_roll, g, shifts=back, dims=dims)


def roll(x: Any, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None) -> Tensor:
    """x rolled by ``shifts[i]`` along ``dims[i]``; with ``dims=None`` the flattened x is rolled
    and the shape restored. ∂x = g rolled back."""
    ndim = len(shape_of(x))
    steps = _ints("roll", "shifts", shifts)
    if dims is None:
        if len(steps) != 1:
            raise ValueError(f"roll: with dims=None shifts must be one integer, got {shifts!r}")
        return _roll(x, shifts=steps[0], dims=None)
    axes = tuple(normalize_dim("roll", "dims", d, ndim) for d in _ints("roll", "dims", dims))
    if len(axes) != len(steps):
        raise ValueError(f"roll: shifts {shifts!r} and dims {dims!r} must have the same length")
    return _roll(x, shifts=steps, dims=axes)


# ---------------------------------------------------------- triangles, diagonals
def _lower(shape: tuple[int, ...], k: int) -> np.ndarray:
    """[j − i ≤ k] over the last two dimensions of ``shape``."""
    return np.tri(shape[-2], shape[-1], k, dtype=bool)


@defop(name="tril", fresh_grads=True)
def _tril(x, *, diagonal=0):
    """x with the elements above diagonal ``k`` of the last two dimensions zeroed (j − i > k);
    ∂x = g with the same elements zeroed."""
    keep = _lower(x.shape, diagonal)
    return np.where(keep, x, 0), lambda g: np.where(keep, g, 0)


@defop(name="triu", fresh_grads=True)
def _triu(x, *, diagonal=0):
    """x with the elements below diagonal ``k`` of the last two dimensions zeroed (j − i < k);
    ∂x = g with the same elements zeroed."""
    drop = _lower(x.shape, diagonal - 1)
    return np.where(drop, 0, x), lambda g: np.where(drop, 0, g)


def _triangle(op: Any, name: str, x: Any, diagonal: int) -> Tensor:
    shape = shape_of(x)
    if len(shape) < 2:
        raise ValueError(f"{name}: needs a tensor of at least 2 dimensions, got shape {shape}")
    return op(x, diagonal=_int(name, "diagonal", diagonal))


def tril(x: Any, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dimensions: x[…, i, j] where j − i ≤ diagonal, else 0.
    ∂x = g masked the same way."""
    return _triangle(_tril, "tril", x, diagonal)


def triu(x: Any, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dimensions: x[…, i, j] where j − i ≥ diagonal, else 0.
    ∂x = g masked the same way."""
    return _triangle(_triu, "triu", x, diagonal)


def _diagonal_index(shape: tuple[int, ...], offset: int, dim1: int, dim2: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices (in dims dim1, dim2) of the diagonal ``offset``."""
    rows, cols = shape[dim1], shape[dim2]
    n = max(0, min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols))
    return np.arange(n) + max(-offset, 0), np.arange(n) + max(offset, 0)


@defop(name="diagonal", fresh_grads=True)
def _diagonal(x, *, offset=0, dim1=0, dim2=1):
    """The diagonal ``offset`` of the (dim1, dim2) planes, as a last dimension (a read-only view);
    ∂x = zeros with g on that diagonal (diagonal_scatter)."""
    if isinstance(x, Tensor):
        out = _diagonal(x, offset=offset, dim1=dim1, dim2=dim2)
    else:
        out = np.diagonal(x, offset, dim1, dim2)
    shape = x.shape
    return out, lambda g: call_op(_diagonal_scatter, np.zeros(shape, dtype=g.dtype), g,
                                  offset=offset, dim1=dim1, dim2=dim2)


@defop(name="diagonal_scatter", fresh_grads=True)
def _diagonal_scatter(x, src, *, offset=0, dim1=0, dim2=1):
    """x with its diagonal ``offset`` of the (dim1, dim2) planes replaced by ``src``;
    ∂x = g with that diagonal zeroed, ∂src = diagonal(g)."""
    if isinstance(x, Tensor) or isinstance(src, Tensor):
        out = _diagonal_scatter(x, src, offset=offset, dim1=dim1, dim2=dim2)
    else:
        out = np.array(x, copy=True)
        rows, cols = _diagonal_index(out.shape, offset, dim1, dim2)
        np.moveaxis(out, (dim1, dim2), (-2, -1))[..., rows, cols] = src
    diag_shape = shape_of(src)

    def grad_x(g):
        return call_op(_diagonal_scatter, g, np.zeros(diag_shape, dtype=g.dtype), offset=offset, dim1=dim1, dim2=dim2)

    return out, (grad_x, lambda g: call_op(_diagonal, g, offset=offset, dim1=dim1, dim2=dim2))


def _diagonal_args(name: str, shape: tuple[int, ...], offset: int, dim1: int, dim2: int) -> tuple[int, int, int]:
    if len(shape) < 2:
        raise ValueError(f"{name}: needs a tensor of at least 2 dimensions, got shape {shape}")
    d1 = normalize_dim(name, "dim1", dim1, len(shape))
    d2 = normalize_dim(name, "dim2", dim2, len(shape))
    if d1 == d2:
        raise ValueError(f"{name}: dim1={dim1} and dim2={dim2} are the same dimension")
    return _int(name, "offset", offset), d1, d2


def diagonal(x: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal ``offset`` (> 0 above the main one) of the planes of dims (dim1, dim2),
    as a new last dimension. ∂x = zeros with g placed on that diagonal."""
    offset, d1, d2 = _diagonal_args("diagonal", shape_of(x), offset, dim1, dim2)
    return _diagonal(x, offset=offset, dim1=d1, dim2=d2)


def diagonal_scatter(x: Any, src: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """x with ``diagonal(x, offset, dim1, dim2)`` replaced by src (of that diagonal's shape).
    ∂x = g with the diagonal zeroed, ∂src = diagonal(g)."""
    shape = shape_of(x)
    offset, d1, d2 = _diagonal_args("diagonal_scatter", shape, offset, dim1, dim2)
    rest = tuple(n for d, n in enumerate(shape) if d not in (d1, d2))
    expected = rest + (len(_diagonal_index(shape, offset, d1, d2)[0]),)
    if tuple(shape_of(src)) != expected:
        raise ValueError(f"diagonal_scatter: src has shape {tuple(shape_of(src))}; the diagonal of x (shape {shape}, "
                         f"offset {offset}, dims {d1}, {d2}) has shape {expected}")
    return _diagonal_scatter(x, src, offset=offset, dim1=d1, dim2=d2)


# ---------------------------------------------------------------- split, chunk
def _pieces(x: Any, d: int, bounds: list[int]) -> tuple[Tensor, ...]:
    """x cut along ``d`` at ``bounds`` (Python slice semantics); each piece is its own op, so
    pieces that are not used contribute zero gradient."""
    lead = (slice(None),) * d
    return tuple(getitem(x, index=lead + (slice(lo, hi),)) for lo, hi in zip(bounds[:-1], bounds[1:]))


def split(x: Any, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
    """x cut along ``dim`` into pieces of ``split_size_or_sections`` (an int: that size each, the
    last one smaller if need be) or of the given sizes (which must add up to the dimension's
    size). ∂x = each piece's gradient put back in place."""
    shape = shape_of(x)
    d = normalize_dim("split", "dim", dim, len(shape))
    n = shape[d]
    if _is_sequence(split_size_or_sections):
        sizes = _ints("split", "split_size_or_sections", split_size_or_sections)
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise ValueError(f"split: split_size_or_sections {sizes} must be sizes ≥ 0 adding up to {n}, the size "
                             f"of dimension {d} (shape {shape})")
        return _pieces(x, d, np.concatenate([[0], np.cumsum(sizes, dtype=int)]).tolist())
    size = _int("split", "split_size_or_sections", split_size_or_sections)
    if size <= 0 and not (size == 0 and n == 0):
        raise ValueError(f"split: split_size_or_sections={size} must be > 0")
    return _pieces(x, d, list(range(0, n, size)) + [n] if n else [0, 0])


def chunk(x: Any, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """x cut along ``dim`` into at most ``chunks`` pieces of ceil(size / chunks) elements (the
    last may be smaller; fewer pieces when that is enough). ∂x = each piece's gradient in place."""
    chunks = _int("chunk", "chunks", chunks)
    if chunks <= 0:
        raise ValueError(f"chunk: chunks={chunks} must be > 0")
    shape = shape_of(x)
    d = normalize_dim("chunk", "dim", dim, len(shape))
    return split(x, max(-(-shape[d] // chunks), 1), d)


# ------------------------------------------------------------- NumPy's spellings
def _np_split(ary: Any, indices_or_sections: Any, axis: int = 0, *, equal: bool = True) -> list[Tensor]:
    name = "split" if equal else "array_split"
    shape = shape_of(ary)
    d = normalize_dim(name, "axis", axis, len(shape))
    n = shape[d]
    if _is_sequence(indices_or_sections):
        return list(_pieces(ary, d, [0, *_ints(name, "indices_or_sections", indices_or_sections), n]))
    parts = _int(name, "indices_or_sections", indices_or_sections)
    if parts <= 0:
        raise ValueError(f"{name}: indices_or_sections={parts} must be > 0")
    if equal and n % parts:
        raise ValueError(f"split: {parts} sections do not divide dimension {d} of size {n} equally "
                         f"(np.array_split allows that)")
    sizes = [n // parts + 1] * (n % parts) + [n // parts] * (parts - n % parts)
    return list(_pieces(ary, d, np.concatenate([[0], np.cumsum(sizes, dtype=int)]).tolist()))


def _np_repeat(a: Any, repeats: Any, axis: int | None = None) -> Tensor:
    return repeat_interleave(a, repeats, axis)


def _np_roll(a: Any, shift: Any, axis: Any = None) -> Tensor:
    if axis is not None and not _is_sequence(axis) and _is_sequence(shift):  # one axis, several shifts: they add
        shift = sum(_ints("roll", "shift", shift))
    if axis is not None and _is_sequence(axis) and not _is_sequence(shift):
        shift = (shift,) * len(axis)
    return roll(a, shift, axis)


register_function(np.pad, _np_pad)
register_function(np.flip, lambda m, axis=None: flip(m, axis))
register_function(np.roll, _np_roll)
register_function(np.tril, lambda m, k=0: tril(m, k))
register_function(np.triu, lambda m, k=0: triu(m, k))
register_function(np.diagonal, lambda a, offset=0, axis1=0, axis2=1: diagonal(a, offset, axis1, axis2))
register_function(np.tile, lambda A, reps: tile(A, reps))
register_function(np.repeat, _np_repeat)
register_function(np.split, lambda ary, indices_or_sections, axis=0: _np_split(ary, indices_or_sections, axis))
register_function(np.array_split, lambda ary, indices_or_sections, axis=0: _np_split(
    ary, indices_or_sections, axis, equal=False))
register_function(np.moveaxis, lambda a, source, destination: movedim(a, source, destination))

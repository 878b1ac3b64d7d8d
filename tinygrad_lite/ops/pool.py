"""Pooling and resampling (NCHW, PyTorch's signatures and semantics), each a closed pair of ops.

* max_pool2d records, per output, which element of its window won (the first maximum, as
  PyTorch); its VJP scatters g to the winners, a linear op whose VJP is the gather of the
  same positions, whose VJP is the scatter again.
* avg_pool2d is linear: its VJP is avg_pool2d_backward (g spread over each window), whose
  VJP is avg_pool2d again.
* adaptive_avg_pool2d and interpolate are separable linear maps, out = R·x·Cᵀ on each
  plane for a row matrix R (Ho, H) and a column matrix C (Wo, W); the VJP is resample2d,
  the same map with Rᵀ and Cᵀ, whose VJP is resample2d again.

Windows are strided views: a pool is kh·kw whole-array operations, never a loop over pixels.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ..graph import defop
from .basic import call_op
from .conv import Pair, _check_ndim, _pair, _raw

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "interpolate", "max_pool2d"]


class Pool(NamedTuple):
    """A pooling window: kernel, stride, padding, dilation, and the input and output sizes (H, W)."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    size: Pair
    out: Pair

    def padded(self) -> Pair:
        """Rows and columns of the padded input that the windows reach (and the input itself)."""
        return tuple(max(self.size[a] + 2 * self.padding[a],
                         (self.out[a] - 1) * self.stride[a] + self.dilation[a] * (self.kernel[a] - 1) + 1)
                     for a in (0, 1))

    def window(self, p: int, q: int) -> tuple:
        """The index of element (p, q) of every window in the padded input."""
        (sh, sw), (dh, dw), (ho, wo) = self.stride, self.dilation, self.out
        return (Ellipsis, slice(p * dh, p * dh + sh * (ho - 1) + 1, sh), slice(q * dw, q * dw + sw * (wo - 1) + 1, sw))

    def tiles(self) -> bool:
        """Whether the windows cover the input exactly once (stride = kernel, no padding or dilation)."""
        return (self.stride == self.kernel and self.padding == (0, 0) and self.dilation == (1, 1)
                and self.size == (self.out[0] * self.kernel[0], self.out[1] * self.kernel[1]))

    def inside(self) -> tuple:
        """The index of the input in the padded input."""
        (t, l), (h, w) = self.padding, self.size
        return Ellipsis, slice(t, t + h), slice(l, l + w)


def _pool_geometry(size: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool) -> Pool:
    """Checked pooling options for an input of spatial ``size`` (H, W): PyTorch's output size and padding rule."""
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _pair(
        stride, "stride", 1)
    padding, dilation = _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"padding {padding} must be at most half the kernel size {kernel}")
    size = tuple(int(n) for n in size)
    out = []
    for a in (0, 1):
        span = dilation[a] * (kernel[a] - 1) + 1
        room = size[a] + 2 * padding[a] - span
        n = (room + (stride[a] - 1 if ceil_mode else 0)) // stride[a] + 1
        if ceil_mode and (n - 1) * stride[a] >= size[a] + padding[a]:
            n -= 1  # the last window must start inside the input or its left padding
        if n < 1:
            raise ValueError(f"input x of spatial size {size} (padded: {size[a] + 2 * padding[a]} along axis "
                             f"{a + 2}) is smaller than the kernel {kernel} dilated by {dilation} (span {span})")
        out.append(n)
    return Pool(kernel, stride, padding, dilation, size, tuple(out))


def _padded(x: np.ndarray, pool: Pool, fill: float) -> np.ndarray:
    """x in a (N, C, Hp, Wp) array filled with ``fill`` around it (x itself when nothing is added)."""
    hp, wp = pool.padded()
    if (hp, wp) == pool.size:
        return x
    out = np.full(x.shape[:2] + (hp, wp), fill, dtype=x.dtype)
    out[pool.inside()] = x
    return out


def _cropped(xp: np.ndarray, pool: Pool) -> np.ndarray:
    """The input's part of a padded array, as a new array (``xp`` itself when nothing was padded)."""
    return xp if xp.shape[2:] == pool.size else xp[pool.inside()].copy()


def _kernel_offsets(pool: Pool) -> list[tuple[int, int, int]]:
    kh, kw = pool.kernel
    return [(k, k // kw, k % kw) for k in range(kh * kw)]


# ------------------------------------------------------------------------------------ max pool
def _first_maximum(xp: np.ndarray, pool: Pool) -> tuple[np.ndarray, np.ndarray]:
    """(max, index k = p·kw + q of its first occurrence) over each window, in whole-array passes:
    a running maximum, then the count of leading elements that differ from it."""
    offsets = _kernel_offsets(pool)
    best = xp[pool.window(0, 0)].copy()
    for _, p, q in offsets[1:]:
        np.maximum(best, xp[pool.window(p, q)], out=best)
    winner = np.zeros(best.shape, dtype=np.uint8 if len(offsets) <= 255 else np.int32)
    if np.isnan(best).any():  # PyTorch's rule, element by element: `val > max || isnan(val)` (the last NaN)
        best = xp[pool.window(0, 0)].copy()
        for k, p, q in offsets[1:]:
            v = xp[pool.window(p, q)]
            better = (v > best) | (v != v)
            np.copyto(best, v, where=better)
            np.copyto(winner, k, where=better)
        return best, winner
    before = np.ones(best.shape, dtype=bool)
    for _, p, q in offsets[:-1]:
        before &= xp[pool.window(p, q)] != best
        winner += before
    return best, winner


def _pick(values: np.ndarray, winner: np.ndarray, k: int) -> np.ndarray:
    """``values`` where ``winner == k``, else 0 (a product, unless a non-finite value would leak as NaN)."""
    mask = winner == k
    return values * mask if np.isfinite(values).all() else np.where(mask, values, 0)


@defop(fresh_grads=True)
def max_pool2d(x, *, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over each window (padding is −inf; NaN wins);  ∂x = g at the window's first maximum, as PyTorch."""
    _check_ndim(x, 4, "input x (N, C, H, W)")
    pool = _pool_geometry(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    x = _raw(x)
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min if x.dtype.kind in "iu" else False
    best, winner = _first_maximum(_padded(x, pool, lowest), pool)
    return best, lambda g: call_op(max_pool2d_scatter, g, winner=winner, pool=pool)


@defop(fresh_grads=True)
def max_pool2d_scatter(g, *, winner, pool):
    """g (N, C, Ho, Wo) added into zeros (N, C, H, W) at element ``winner`` of each window (overlaps add up);
    linear in g, ∂g = max_pool2d_gather(gg)."""
    g = _raw(g)
    finite = np.isfinite(g).all()
    if pool.tiles():  # every input element in exactly one window: one write each
        out = np.empty(g.shape[:2] + pool.size, dtype=g.dtype)
        for k, p, q in _kernel_offsets(pool):
            if finite:
                np.multiply(g, winner == k, out=out[pool.window(p, q)])
            else:
                out[pool.window(p, q)] = np.where(winner == k, g, 0)
        return out, lambda gg: call_op(max_pool2d_gather, gg, winner=winner, pool=pool)
    out = np.zeros(g.shape[:2] + pool.padded(), dtype=g.dtype)
    for k, p, q in _kernel_offsets(pool):
        out[pool.window(p, q)] += g * (winner == k) if finite else np.where(winner == k, g, 0)
    return _cropped(out, pool), lambda gg: call_op(max_pool2d_gather, gg, winner=winner, pool=pool)


@defop(fresh_grads=True)
def max_pool2d_gather(x, *, winner, pool):
    """Element ``winner`` of each window of x (zero padding): the adjoint of max_pool2d_scatter."""
    xp = _padded(_raw(x), pool, 0)
    out = np.zeros(winner.shape, dtype=xp.dtype)
    for k, p, q in _kernel_offsets(pool):
        out += _pick(xp[pool.window(p, q)], winner, k)
    return out, lambda g: call_op(max_pool2d_scatter, g, winner=winner, pool=pool)


# ------------------------------------------------------------------------------------ avg pool
def _divisor(pool: Pool, count_include_pad: bool, divisor_override: Any) -> np.ndarray:
    """1 / (elements averaged) for each output (Ho, Wo), as PyTorch counts them."""
    if divisor_override is not None:
        return np.full(pool.out, 1 / divisor_override)
    counts = []
    for a in (0, 1):
        start = np.arange(pool.out[a]) * pool.stride[a] - pool.padding[a]
        end = np.minimum(start + pool.kernel[a], pool.size[a] + pool.padding[a])
        if count_include_pad:
            counts.append(end - start)
        else:
            counts.append(np.minimum(end, pool.size[a]) - np.maximum(start, 0))
    return 1 / np.outer(counts[0], counts[1])


def _avg_pool(size: Any, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool, count_include_pad: bool,
              divisor_override: Any) -> tuple[Pool, np.ndarray]:
    """The checked window of avg_pool2d over an input of spatial ``size``, and 1/divisor per output."""
    if divisor_override is not None and (isinstance(divisor_override, bool) or not isinstance(
            divisor_override, (int, np.integer)) or divisor_override < 1):
        raise ValueError(f"divisor_override must be a positive int, got {divisor_override!r}")
    pool = _pool_geometry(size, kernel_size, stride, padding, 1, ceil_mode)
    return pool, _divisor(pool, count_include_pad, divisor_override)


@defop(fresh_grads=True)
def avg_pool2d(x, *, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over each window (zero padding; the divisor counts the padding when ``count_include_pad``, as
    PyTorch); linear, ∂x = avg_pool2d_backward(g)."""
    _check_ndim(x, 4, "input x (N, C, H, W)")
    options = {"kernel_size": kernel_size, "stride": stride, "padding": padding, "ceil_mode": ceil_mode,
               "count_include_pad": count_include_pad, "divisor_override": divisor_override}
    pool, scale = _avg_pool(x.shape[2:], **options)
    xp = _padded(_raw(x), pool, 0)
    out = xp[pool.window(0, 0)].copy()
    for _, p, q in _kernel_offsets(pool)[1:]:
        out += xp[pool.window(p, q)]
    out *= scale.astype(out.dtype)
    return out, lambda g: call_op(avg_pool2d_backward, g, input_size=pool.size, **options)


@defop(fresh_grads=True)
def avg_pool2d_backward(g, *, input_size, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """The adjoint of avg_pool2d on inputs of spatial ``input_size``: g (N, C, Ho, Wo) divided by each
    window's divisor and spread over the window, windows adding up;  ∂g = avg_pool2d(gg)."""
    _check_ndim(g, 4, "grad_output (N, C, Ho, Wo)")
    options = {"kernel_size": kernel_size, "stride": stride, "padding": padding, "ceil_mode": ceil_mode,
               "count_include_pad": count_include_pad, "divisor_override": divisor_override}
    pool, scale = _avg_pool(tuple(input_size), **options)
    if tuple(g.shape[2:]) != pool.out:
        raise ValueError(f"grad_output has spatial size {tuple(g.shape[2:])}, avg_pool2d of input size "
                         f"{pool.size} gives {pool.out}")
    gs = _raw(g) * scale.astype(g.dtype)
    tiles = pool.tiles()  # every input element in exactly one window: written once
    out = (np.empty if tiles else np.zeros)(g.shape[:2] + pool.padded(), dtype=gs.dtype)
    for _, p, q in _kernel_offsets(pool):
        if tiles:
            out[pool.window(p, q)] = gs
        else:
            out[pool.window(p, q)] += gs
    return _cropped(out, pool), lambda gg: call_op(avg_pool2d, gg, **options)


# ------------------------------------------------------------------------ separable resampling
def _separable(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """R·x·Cᵀ on every (H, W) plane of x (N, C, H, W): two matrix products over all planes at once,
    each after a transposing copy that puts the contracted axis last."""
    n, c, h, w = x.shape
    ho, wo = rows.shape[0], cols.shape[0]
    t = np.ascontiguousarray(x.swapaxes(2, 3)).reshape(-1, h) @ rows.T.astype(x.dtype)  # (N·C·W, Ho)
    t = np.ascontiguousarray(t.reshape(n * c, w, ho).swapaxes(1, 2)).reshape(-1, w)  # (N·C·Ho, W)
    return (t @ cols.T.astype(x.dtype)).reshape(n, c, ho, wo)


@defop(fresh_grads=True)
def resample2d(x, *, rows, cols):
    """out = R·x·Cᵀ on each plane of x (N, C, H, W), for R (Ho, H) and C (Wo, W);  ∂x = Rᵀ·g·C."""
    _check_ndim(x, 4, "input x (N, C, H, W)")
    if rows.shape[1] != x.shape[2] or cols.shape[1] != x.shape[3]:
        raise ValueError(f"rows {rows.shape} and cols {cols.shape} do not match the input's spatial size "
                         f"{tuple(x.shape[2:])}")
    return _separable(_raw(x), rows, cols), lambda g: call_op(resample2d, g, rows=rows.T, cols=cols.T)


def _sizes(x: Any, value: Any, name: str) -> Pair:
    """An output size: an int or a pair (None keeps that side of the input)."""
    items = (value, value) if value is None or isinstance(value, (int, np.integer)) else tuple(value)
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {value!r}")
    items = tuple(x.shape[2 + a] if v is None else v for a, v in enumerate(items))
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in items):
        raise ValueError(f"{name} must be positive ints, got {value!r}")
    return int(items[0]), int(items[1])


def _adaptive_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Row i averages input [⌊i·n_in/n_out⌋, ⌈(i + 1)·n_in/n_out⌉), as PyTorch's adaptive pools."""
    i = np.arange(n_out)
    start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
    j = np.arange(n_in)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return inside / (end - start)[:, None]


@defop(fresh_grads=True)
def adaptive_avg_pool2d(x, *, output_size):
    """Mean over PyTorch's adaptive windows to ``output_size`` (int or pair; None keeps the input's side);
    linear, out = R·x·Cᵀ, ∂x = Rᵀ·g·C."""
    _check_ndim(x, 4, "input x (N, C, H, W)")
    ho, wo = _sizes(x, output_size, "output_size")
    rows, cols = _adaptive_matrix(x.shape[2], ho), _adaptive_matrix(x.shape[3], wo)
    return _separable(_raw(x), rows, cols), lambda g: call_op(resample2d, g, rows=rows.T, cols=cols.T)


def _nearest_matrix(n_in: int, n_out: int, scale: Any, exact: bool) -> np.ndarray:
    """Output i copies input ⌊i·s⌋ ("nearest") or ⌊(i + ½)·s⌋ ("nearest-exact"), s = 1/scale_factor or
    n_in/n_out, with PyTorch's float32 arithmetic and its shortcuts for sizes ×1 and ×2."""
    s = np.float32(1 / scale) if scale is not None else np.float32(n_in) / np.float32(n_out)
    i = np.arange(n_out)
    if exact:
        src = np.floor(((i + 0.5) * np.float64(s)).astype(np.float32))
    elif n_out == n_in:
        src = i
    elif n_out == 2 * n_in:
        src = i // 2
    else:
        src = np.floor(i.astype(np.float32) * s)
    return (np.minimum(src.astype(np.int64), n_in - 1)[:, None] == np.arange(n_in)).astype(np.float64)


def _linear_matrix(n_in: int, n_out: int, scale: Any, align_corners: bool) -> np.ndarray:
    """Output i interpolates input at src = i·(n_in − 1)/(n_out − 1) (align_corners) or
    max((i + ½)·s − ½, 0), s = 1/scale_factor or n_in/n_out (PyTorch's source index; a side that keeps
    its size is copied, whatever the scale)."""
    i = np.arange(n_out, dtype=np.float64)
    if n_out == n_in:
        return np.eye(n_in)
    if align_corners:
        src = i * ((n_in - 1) / (n_out - 1)) if n_out > 1 else i * 0
    else:
        s = 1 / scale if scale is not None else n_in / n_out
        src = np.maximum((i + 0.5) * s - 0.5, 0)
    low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = np.clip(src - low, 0, 1)
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), low), 1 - frac)
    np.add.at(m, (np.arange(n_out), high), frac)
    return m


_MODES = ("nearest", "nearest-exact", "bilinear", "area")


@defop(fresh_grads=True)
def interpolate(x, *, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize x (N, C, H, W) to ``size`` or by ``scale_factor`` (output ⌊H·scale⌋), with PyTorch's
    "nearest", "nearest-exact", "bilinear" (``align_corners``) or "area" (adaptive average);
    linear, out = R·x·Cᵀ, ∂x = Rᵀ·g·C."""
    _check_ndim(x, 4, "input x (N, C, H, W)")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}")
    if align_corners is not None and mode != "bilinear":
        raise ValueError(f"align_corners can only be set with mode='bilinear', got mode={mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor")
    h, w = x.shape[2:]
    if size is not None:
        out, scales = _sizes(x, size, "size"), (None, None)
    else:
        number = (int, float, np.integer, np.floating)
        scales = (scale_factor,) * 2 if isinstance(scale_factor, number) else tuple(scale_factor)
        if len(scales) != 2 or not all(isinstance(s, number) and not isinstance(s, bool) and s > 0
                                       and math.isfinite(s) for s in scales):
            raise ValueError(f"scale_factor must be a positive number or a pair of them, got {scale_factor!r}")
        out = (math.floor(h * scales[0]), math.floor(w * scales[1]))
        if min(out) < 1:
            raise ValueError(f"scale_factor {scale_factor!r} makes an empty output from spatial size {(h, w)}")
    if mode == "area":
        rows, cols = _adaptive_matrix(h, out[0]), _adaptive_matrix(w, out[1])
    elif mode == "bilinear":
        rows = _linear_matrix(h, out[0], scales[0], bool(align_corners))
        cols = _linear_matrix(w, out[1], scales[1], bool(align_corners))
    else:
        exact = mode == "nearest-exact"
        rows, cols = _nearest_matrix(h, out[0], scales[0], exact), _nearest_matrix(w, out[1], scales[1], exact)
    return _separable(_raw(x), rows, cols), lambda g: call_op(resample2d, g, rows=rows.T, cols=cols.T)

"""Convolutions (NCHW, PyTorch's signatures and semantics): a closed family of bilinear ops.

With x̃ the zero-padded input, s the stride, d the dilation and G groups,

    y = conv2d(x, w)                 y[n, o, i, j] = Σ_{c, p, q} x̃[n, c, s·i + d·p, s·j + d·q] · w[o, c, p, q]
    x' = conv_transpose2d(y, w)      the adjoint of x ↦ conv2d(x, w):   ⟨conv2d(x, w), y⟩ = ⟨x, x'⟩
    w' = conv2d_weight(x, y)         the adjoint of w ↦ conv2d(x, w):   ⟨conv2d(x, w), y⟩ = ⟨w, w'⟩

(c runs over the input channels of o's group). Each map is linear in each argument, so each
one's VJPs are the other two (with the cotangent in the place of y, x or w), and gradients of
any order stay inside the family: on arrays a VJP calls the forward kernel, on Tensors the op.

Speed: im2col is one copy out of an ``as_strided`` view into a (C·kh·kw, N·Ho·Wo) matrix,
and each map is one matrix product (one per group); the adjoint's col2im adds kh·kw strided
slices of whole arrays. conv2d keeps its columns for the weight gradient of first-order
backward.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..graph import defop
from ..tensor import Tensor
from .basic import call_op, reshape

__all__ = ["conv1d", "conv2d", "conv2d_weight", "conv_transpose2d"]

Pair = tuple[int, int]


def _raw(a: Any) -> Any:
    """The array of a Tensor (an op re-run for a higher-order gradient computes its value on arrays)."""
    return a.data if isinstance(a, Tensor) else a


def _pair(value: Any, name: str, low: int) -> Pair:
    """An int or a pair of ints, each ≥ ``low``, as a pair (height, width)."""
    items = (value, value) if isinstance(value, (int, np.integer)) else value
    try:
        ok = len(items) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items)
    except TypeError:
        ok = False
    if not ok or isinstance(value, bool) or min(items) < low:
        kind = "positive" if low > 0 else "non-negative"
        raise ValueError(f"{name} must be a {kind} int or a pair of them, got {value!r}")
    return int(items[0]), int(items[1])


def _check_ndim(a: Any, ndim: int, what: str) -> None:
    a = _raw(a)
    if np.ndim(a) != ndim:
        raise ValueError(f"{what} must be {ndim}-D, got shape {np.shape(a)}")


class Geometry(NamedTuple):
    """A 2-D sliding window: kernel, stride, padding ((top, bottom), (left, right)), dilation, groups."""

    kernel: Pair
    stride: Pair
    padding: tuple[Pair, Pair]
    dilation: Pair
    groups: int

    def span(self, axis: int) -> int:
        """Extent of the dilated kernel along ``axis`` (0: height, 1: width)."""
        return self.dilation[axis] * (self.kernel[axis] - 1) + 1

    def out_size(self, size: Pair) -> Pair:
        """(Ho, Wo) = ⌊(H + pads − d·(k − 1) − 1) / s⌋ + 1 per axis."""
        return tuple((size[a] + sum(self.padding[a]) - self.span(a)) // self.stride[a] + 1 for a in (0, 1))

    def output_padding(self, size: Pair, out: Pair) -> Pair:
        """The rows/columns of an input of ``size`` that no window of the ``out`` outputs reaches (< stride)."""
        return tuple(size[a] + sum(self.padding[a]) - (out[a] - 1) * self.stride[a] - self.span(a) for a in (0, 1))

    def transposed_size(self, size: Pair, output_padding: Pair) -> Pair:
        """Size of the input whose conv2d output has ``size``, plus ``output_padding``."""
        return tuple((size[a] - 1) * self.stride[a] - sum(self.padding[a]) + self.span(a) + output_padding[a]
                     for a in (0, 1))


def _padding(padding: Any, kernel: Pair, stride: Pair, dilation: Pair, same_ok: bool) -> tuple[Pair, Pair]:
    """padding: an int, a pair (height, width), a pair of pairs ((top, bottom), (left, right)),
    "valid" (0) or "same" (stride 1 only; an odd total puts the extra row/column at the end, as PyTorch)."""
    if isinstance(padding, str):
        if padding == "valid" and same_ok:
            return (0, 0), (0, 0)
        if padding == "same" and same_ok:
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride {stride}")
            totals = [dilation[a] * (kernel[a] - 1) for a in (0, 1)]
            return tuple((t // 2, t - t // 2) for t in totals)
        valid = "an int, a pair, a pair of pairs, 'same' or 'valid'" if same_ok else "an int, a pair or a pair of pairs"
        raise ValueError(f"padding must be {valid}, got {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(isinstance(p, (tuple, list)) for p in padding):
        pads = (_pair(tuple(padding[0]), "padding", 0), _pair(tuple(padding[1]), "padding", 0))
        return pads
    h, w = _pair(padding, "padding", 0)
    return (h, h), (w, w)


def _geometry(w_shape: tuple, stride: Any, padding: Any, dilation: Any, groups: Any,
              transposed: bool = False) -> Geometry:
    """Checked options of a convolution whose conv2d form has a weight of ``w_shape``."""
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    kernel = (int(w_shape[2]), int(w_shape[3]))
    if min(kernel) < 1:
        raise ValueError(f"weight has an empty kernel: shape {tuple(w_shape)}")
    stride, dilation = _pair(stride, "stride", 1), _pair(dilation, "dilation", 1)
    pads = _padding(padding, kernel, stride, dilation, same_ok=not transposed)
    return Geometry(kernel, stride, pads, dilation, int(groups))


def _check_conv(geom: Geometry, x_shape: tuple, w_shape: tuple, bias: Any, what: str = "input x") -> Pair:
    """Channel and size checks of conv2d(x, w) with x of ``x_shape``: returns (Ho, Wo)."""
    g = geom.groups
    if x_shape[1] % g or w_shape[0] % g:
        raise ValueError(f"{what} has {x_shape[1]} channels and weight {w_shape[0]} output channels; "
                         f"both must be divisible by groups={g}")
    if w_shape[1] * g != x_shape[1]:
        raise ValueError(f"weight {tuple(w_shape)} expects {w_shape[1] * g} input channels "
                         f"({w_shape[1]} per group × groups={g}), {what} has {x_shape[1]}")
    if bias is not None and np.shape(bias) != (w_shape[0],):
        raise ValueError(f"bias must have shape ({w_shape[0]},), got {np.shape(bias)}")
    size = (int(x_shape[2]), int(x_shape[3]))
    for a in (0, 1):
        padded = size[a] + sum(geom.padding[a])
        if padded < geom.span(a):
            raise ValueError(f"{what} of spatial size {size} (padded: {padded} along axis {a + 2}) is smaller "
                             f"than the kernel {geom.kernel} dilated by {geom.dilation} (span {geom.span(a)})")
    return geom.out_size(size)


# ------------------------------------------------------------------------------- kernels on arrays
def _pad(x: np.ndarray, padding: tuple[Pair, Pair], dtype: Any = None) -> np.ndarray:
    """x zero-padded on its last two axes (x itself when there is nothing to pad)."""
    (t, b), (l, r) = padding
    if not (t or b or l or r):
        return x
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + t + b, w + l + r), dtype=dtype or x.dtype)
    out[:, :, t:t + h, l:l + w] = x
    return out


def _im2col(x: np.ndarray, geom: Geometry, out: Pair) -> np.ndarray:
    """Columns (C·kh·kw, N·Ho·Wo): row (c, p, q), column (n, i, j) holds x̃[n, c, s·i + d·p, s·j + d·q]."""
    xp = _pad(x, geom.padding)
    n, c = x.shape[:2]
    (kh, kw), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    s_n, s_c, s_h, s_w = xp.strides
    view = as_strided(xp, (c, kh, kw, n, out[0], out[1]), (s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw),
                      writeable=False)
    return view.reshape(c * kh * kw, n * out[0] * out[1])  # the one copy


def _channels_first(y: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> contiguous (C, N·H·W)."""
    n, c = y.shape[:2]
    out = np.empty((c, n) + y.shape[2:], dtype=y.dtype)
    np.copyto(out, y.swapaxes(0, 1))
    return out.reshape(c, -1)


def _batch_first(y: np.ndarray, bias: Any) -> np.ndarray:
    """(C, N, H, W) -> a new contiguous (N, C, H, W), with ``bias`` (C,) added in the same pass."""
    c, n = y.shape[:2]
    dtype = y.dtype if bias is None else np.result_type(y, bias)
    out = np.empty((n, c) + y.shape[2:], dtype=dtype)
    if bias is None:
        np.copyto(out, y.swapaxes(0, 1))
    else:
        np.add(y.swapaxes(0, 1), np.reshape(bias, (c, 1, 1)), out=out)
    return out


def _conv_forward(x: np.ndarray, w: np.ndarray, bias: Any, geom: Geometry, out: Pair) -> tuple:
    """conv2d on arrays: (y, columns) with y = W·columns per group."""
    n, g, o = x.shape[0], geom.groups, w.shape[0]
    cols = _im2col(x, geom, out)
    y = np.matmul(w.reshape(g, o // g, -1), cols.reshape(g, -1, cols.shape[1]))
    return _batch_first(y.reshape(o, n, out[0], out[1]), bias), cols


def _conv_adjoint_x(y: np.ndarray, w: np.ndarray, bias: Any, geom: Geometry, size: Pair) -> np.ndarray:
    """conv_transpose2d on arrays: columns Wᵀ·y per group, then col2im (kh·kw strided adds) onto x̃, cropped."""
    n, o, ho, wo = y.shape
    g, cg = geom.groups, w.shape[1]
    (kh, kw), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    (t, b), (l, r) = geom.padding
    ym = _channels_first(y).reshape(g, o // g, -1)
    cols = np.matmul(w.reshape(g, o // g, -1).transpose(0, 2, 1), ym).reshape(g * cg, kh, kw, n, ho, wo)
    xp = np.zeros((g * cg, n, size[0] + t + b, size[1] + l + r), dtype=cols.dtype)
    for p in range(kh):
        rows = slice(p * dh, p * dh + sh * (ho - 1) + 1, sh)
        for q in range(kw):
            xp[:, :, rows, q * dw:q * dw + sw * (wo - 1) + 1:sw] += cols[:, p, q]
    return _batch_first(xp[:, :, t:t + size[0], l:l + size[1]], bias)


def _conv_adjoint_w(cols: np.ndarray, y: np.ndarray, geom: Geometry, w_shape: tuple) -> np.ndarray:
    """conv2d_weight on arrays, from the columns of x: y·columnsᵀ per group."""
    g, o = geom.groups, y.shape[1]
    ym = _channels_first(y).reshape(g, o // g, -1)
    dw = np.matmul(ym, cols.reshape(g, -1, cols.shape[1]).transpose(0, 2, 1))
    return dw.reshape(w_shape)


def _sum_nhw(g: Any) -> Any:
    return g.sum(axis=(0, 2, 3))


def _options(geom: Geometry) -> dict:
    return {"stride": geom.stride, "padding": geom.padding, "dilation": geom.dilation, "groups": geom.groups}


# ------------------------------------------------------------------------------------------ ops
@defop(fresh_grads=True)
def conv2d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation y = Σ x̃ ⋆ w + b (x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,)).

    ``padding``: int, (h, w), ((top, bottom), (left, right)), "valid" or "same" (stride 1).
    ∂x = conv_transpose2d(g, w), ∂w = conv2d_weight(x, g), ∂b = Σ_{n,i,j} g."""
    _check_ndim(x, 4, "input x (N, C, H, W)")
    _check_ndim(weight, 4, "weight (O, C/groups, kh, kw)")
    geom = _geometry(weight.shape, stride, padding, dilation, groups)
    out = _check_conv(geom, x.shape, weight.shape, bias)
    size = x.shape[2:]
    y, cols = _conv_forward(_raw(x), _raw(weight), _raw(bias), geom, out)
    opts = _options(geom)
    output_padding = geom.output_padding(size, out)

    def grad_x(g):
        return call_op(conv_transpose2d, g, weight, output_padding=output_padding, **opts)

    def grad_w(g):
        if type(g) is np.ndarray:  # first order: the columns of the forward
            return _conv_adjoint_w(cols, g, geom, weight.shape)
        return call_op(conv2d_weight, x, g, kernel_size=geom.kernel, **opts)

    return y, (grad_x, grad_w, _sum_nhw)


@defop(fresh_grads=True)
def conv_transpose2d(x, weight, bias=None, *, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The adjoint of conv2d in its input (x (N, Cin, H, W), weight (Cin, Cout/groups, kh, kw), bias (Cout,)):
    out size (H − 1)·s − pads + d·(k − 1) + output_padding + 1, output_padding < stride; ``padding``: int,
    (h, w) or ((top, bottom), (left, right)).
    ∂x = conv2d(g, w), ∂w = conv2d_weight(g, x), ∂b = Σ_{n,i,j} g."""
    _check_ndim(x, 4, "input x (N, Cin, H, W)")
    _check_ndim(weight, 4, "weight (Cin, Cout/groups, kh, kw)")
    geom = _geometry(weight.shape, stride, padding, dilation, groups, transposed=True)
    extra = _pair(output_padding, "output_padding", 0)
    if extra[0] >= geom.stride[0] or extra[1] >= geom.stride[1]:
        raise ValueError(f"output_padding {extra} must be smaller than the stride {geom.stride}")
    g = geom.groups
    if x.shape[1] != weight.shape[0] or weight.shape[0] % g:
        raise ValueError(f"input x has {x.shape[1]} channels, weight {tuple(weight.shape)} takes {weight.shape[0]}, "
                         f"which must be divisible by groups={g}")
    if bias is not None and np.shape(bias) != (weight.shape[1] * g,):
        raise ValueError(f"bias must have shape ({weight.shape[1] * g},), got {np.shape(bias)}")
    size = geom.transposed_size(x.shape[2:], extra)
    if min(size) < 1:
        raise ValueError(f"the output size {size} is not positive for an input of spatial size {x.shape[2:]}")
    out = _conv_adjoint_x(_raw(x), _raw(weight), _raw(bias), geom, size)
    opts = _options(geom)
    return out, (
        lambda gg: call_op(conv2d, gg, weight, **opts),
        lambda gg: call_op(conv2d_weight, gg, x, kernel_size=geom.kernel, **opts),
        _sum_nhw,
    )


@defop(fresh_grads=True)
def conv2d_weight(x, grad_output, *, kernel_size, stride=1, padding=0, dilation=1, groups=1):
    """The adjoint of conv2d in its weight (PyTorch's torch.nn.grad.conv2d_weight): for x (N, C, H, W) and
    grad_output (N, O, Ho, Wo), dW[o, c, p, q] = Σ_{n,i,j} grad_output[n, o, i, j] · x̃[n, c, s·i + d·p, s·j + d·q].
    ∂x = conv_transpose2d(grad_output, g), ∂grad_output = conv2d(x, g)."""
    _check_ndim(x, 4, "input x (N, C, H, W)")
    _check_ndim(grad_output, 4, "grad_output (N, O, Ho, Wo)")
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    o = grad_output.shape[1]
    if not isinstance(groups, (int, np.integer)) or groups < 1 or x.shape[1] % groups:
        raise ValueError(f"input x has {x.shape[1]} channels, not divisible by groups={groups!r}")
    w_shape = (o, x.shape[1] // groups, kh, kw)
    geom = _geometry(w_shape, stride, padding, dilation, groups)
    out = _check_conv(geom, x.shape, w_shape, None)
    if grad_output.shape[0] != x.shape[0] or tuple(grad_output.shape[2:]) != out:
        raise ValueError(f"grad_output must have shape ({x.shape[0]}, {o}, {out[0]}, {out[1]}) for this input "
                         f"and geometry, got {tuple(grad_output.shape)}")
    cols = _im2col(_raw(x), geom, out)
    dw = _conv_adjoint_w(cols, _raw(grad_output), geom, w_shape)
    opts = _options(geom)
    output_padding = geom.output_padding(x.shape[2:], out)
    return dw, (
        lambda gg: call_op(conv_transpose2d, grad_output, gg, output_padding=output_padding, **opts),
        lambda gg: call_op(conv2d, x, gg, **opts),
    )


def conv1d(x: Any, weight: Any, bias: Any = None, *, stride: int = 1, padding: Any = 0, dilation: int = 1,
           groups: int = 1) -> Tensor:
    """1-D cross-correlation (x (N, C, L), weight (O, C/groups, k), bias (O,)): conv2d on a height-1 image.

    ``padding``: int, (left, right), "valid" or "same" (stride 1)."""
    shapes = f"(argument shapes {np.shape(x)}, {np.shape(weight)}, {np.shape(bias)})"
    try:
        _check_ndim(x, 3, "input x (N, C, L)")
        _check_ndim(weight, 3, "weight (O, C/groups, k)")
        for name, value in (("stride", stride), ("dilation", dilation)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(padding, str):
            pad2: Any = padding
        elif isinstance(padding, (tuple, list)):
            pad2 = ((0, 0), tuple(padding))
        else:
            pad2 = (0, padding)
        x_shape, w_shape = np.shape(x), np.shape(weight)
        geom = _geometry((*w_shape[:2], 1, w_shape[2]),
                         (1, stride), pad2, (1, dilation), groups)
        _check_conv(geom, (*x_shape[:2], 1, x_shape[2]), (*w_shape[:2], 1, w_shape[2]), bias)
    except ValueError as exc:
        raise ValueError(f"conv1d: {exc} {shapes}") from None
    n, c, length = x_shape
    y = conv2d(reshape(x, shape=(n, c, 1, length)), reshape(weight, shape=(*w_shape[:2], 1, w_shape[2])), bias,
               stride=geom.stride, padding=geom.padding, dilation=geom.dilation, groups=geom.groups)
    return reshape(y, shape=(y.shape[0], y.shape[1], y.shape[3]))

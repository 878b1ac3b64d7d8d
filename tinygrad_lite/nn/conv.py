"""Convolution layers (PyTorch's signatures, NCHW): ``Conv1d``, ``Conv2d``, ``ConvTranspose2d``.

Weights have PyTorch's layout: (out, in/groups, kh, kw) for a convolution, (in, out/groups,
kh, kw) for a transposed one, and PyTorch's default initialisation: weight and bias drawn
from U(−1/√fan_in, 1/√fan_in), fan_in = weight.shape[1] · kh · kw.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ops.conv import conv1d, conv2d, conv_transpose2d
from ..ops.shape import pad
from ..tensor import Tensor, no_grad
from .checks import check_input, int_tuple, positive_int
from .init import fan_in_uniform
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """What the convolutions share: checked hyperparameters, parameters, PyTorch's initialisation."""

    _n = 2
    _transposed = False
    _layout = "(N, C, H, W)"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any, padding: Any,
                 dilation: Any, groups: int, bias: bool, padding_mode: str, output_padding: Any,
                 rng: np.random.Generator | int | None, dtype: Any) -> None:
        where, n = type(self).__name__, self._n
        self.in_channels = positive_int(where, "in_channels", in_channels)
        self.out_channels = positive_int(where, "out_channels", out_channels)
        self.groups = positive_int(where, "groups", groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{where}: in_channels={in_channels} and out_channels={out_channels} must both be "
                             f"divisible by groups={groups}")
        self.kernel_size = int_tuple(where, "kernel_size", kernel_size, n, 1)
        self.stride = int_tuple(where, "stride", stride, n, 1)
        self.dilation = int_tuple(where, "dilation", dilation, n, 1)
        self.output_padding = int_tuple(where, "output_padding", output_padding, n, 0)
        if any(o >= s for o, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"{where}: output_padding {self.output_padding} must be smaller than the stride "
                             f"{self.stride}")
        if padding_mode not in PADDING_MODES or (self._transposed and padding_mode != "zeros"):
            valid = "'zeros'" if self._transposed else ", ".join(map(repr, PADDING_MODES))
            raise ValueError(f"{where}: padding_mode must be one of {valid}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        if isinstance(padding, str) and not self._transposed:
            if padding not in ("same", "valid"):
                raise ValueError(f"{where}: padding must be an int, {n} ints, 'same' or 'valid', got {padding!r}")
            if padding == "same" and self.stride != (1,) * n:
                raise ValueError(f"{where}: padding='same' needs stride 1, got stride {self.stride}")
            self.padding: Any = padding
            totals = [d * (k - 1) if padding == "same" else 0 for d, k in zip(self.dilation, self.kernel_size)]
            self._pads = tuple((t // 2, t - t // 2) for t in totals)  # the extra one at the end, as PyTorch
        else:
            self.padding = int_tuple(where, "padding", padding, n, 0)
            self._pads = tuple((p, p) for p in self.padding)
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        rng = np.random.default_rng(rng)
        fan_in = shape[1] * int(np.prod(self.kernel_size))
        self.weight = Parameter(fan_in_uniform(shape, fan_in, rng, dtype))
        self.bias = Parameter(fan_in_uniform((self.out_channels,), fan_in, rng, dtype)) if bias else None

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw the weight and bias again from PyTorch's default U(−1/√fan_in, 1/√fan_in)."""
        rng = np.random.default_rng(rng)
        fan_in = self.weight.shape[1] * int(np.prod(self.kernel_size))
        with no_grad():
            self.weight.copy_(fan_in_uniform(self.weight.shape, fan_in, rng, self.weight.dtype))
            if self.bias is not None:
                self.bias.copy_(fan_in_uniform(self.bias.shape, fan_in, rng, self.bias.dtype))

    def _checked(self, x: Any) -> Any:
        """The input after the checks every convolution makes: dimensions, channels, dtype, size ≥ kernel."""
        x = check_input(self, x, (self._n + 2,), self._layout, self.in_channels, self.weight.dtype)
        if not self._transposed:
            size = x.shape[2:]
            for a, (lo, hi) in enumerate(self._pads):
                span = self.dilation[a] * (self.kernel_size[a] - 1) + 1
                if size[a] + lo + hi < span:
                    raise ValueError(f"{self!r}: input of spatial size {tuple(size)} (shape {tuple(x.shape)}) is "
                                     f"smaller than the kernel {self.kernel_size} dilated by {self.dilation} "
                                     f"(span {span}) along axis {a + 2}, even with padding {self._pads[a]}")
        return x

    def _padded(self, x: Any) -> tuple[Any, Any]:
        """(input, padding for the op): a padding mode other than zeros pads here, as PyTorch does."""
        if self.padding_mode == "zeros":
            return x, self._pads
        widths = [w for pair in reversed(self._pads) for w in pair]  # last dimension first
        try:
            return pad(x, widths, mode=self.padding_mode), tuple((0, 0) for _ in self._pads)
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None

    def __repr__(self) -> str:
        s = f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding != (0,) * self._n:
            s += f", padding={self.padding!r}"
        if self.output_padding != (0,) * self._n:
            s += f", output_padding={self.output_padding}"
        if self.dilation != (1,) * self._n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s + ")"


class Conv2d(_ConvNd):
    """y[n, o] = b[o] + Σ_c w[o, c] ⋆ x[n, c] (2-D cross-correlation) over (N, C, H, W) inputs.

    ``padding``: an int, a pair, "valid" or "same" (stride 1; an odd total pads one more at the end);
    ``padding_mode``: "zeros", "reflect", "replicate" or "circular"."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *,
                 rng: np.random.Generator | int | None = None, dtype: Any = np.float32) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, 0, rng, dtype)

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        x, pads = self._padded(self._checked(x))
        try:
            return conv2d(x, self.weight, self.bias, stride=self.stride, padding=pads, dilation=self.dilation,
                          groups=self.groups)
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None


class Conv1d(_ConvNd):
    """y[n, o] = b[o] + Σ_c w[o, c] ⋆ x[n, c] (1-D cross-correlation) over (N, C, L) inputs."""

    _n = 1
    _layout = "(N, C, L)"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *,
                 rng: np.random.Generator | int | None = None, dtype: Any = np.float32) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, 0, rng, dtype)

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        x, pads = self._padded(self._checked(x))
        try:
            return conv1d(x, self.weight, self.bias, stride=self.stride[0], padding=pads[0],
                          dilation=self.dilation[0], groups=self.groups)
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None


class ConvTranspose2d(_ConvNd):
    """The adjoint of Conv2d in its input (a "deconvolution"), weight (in, out/groups, kh, kw):
    output size (H − 1)·s − 2p + d·(k − 1) + output_padding + 1 per axis."""

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                 padding_mode: str = "zeros", *, rng: np.random.Generator | int | None = None,
                 dtype: Any = np.float32) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, rng, dtype)

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        x = self._checked(x)
        size = [(x.shape[2 + a] - 1) * self.stride[a] - 2 * self.padding[a]
                + self.dilation[a] * (self.kernel_size[a] - 1) + self.output_padding[a] + 1 for a in (0, 1)]
        if min(size) < 1:
            raise ValueError(f"{self!r}: input of shape {tuple(x.shape)} gives an output of spatial size "
                             f"{tuple(size)}, which is not positive")
        try:
            return conv_transpose2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                                    output_padding=self.output_padding, groups=self.groups,
                                    dilation=self.dilation)
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None

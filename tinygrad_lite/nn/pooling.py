"""Pooling layers (PyTorch's signatures, NCHW): ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from ..tensor import Tensor
from .checks import check_input, int_tuple, positive_int
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]


class _Pool2d(Module):
    """Checked window hyperparameters (kernel, stride defaulting to the kernel, padding ≤ kernel/2)."""

    def __init__(self, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool) -> None:
        where = type(self).__name__
        self.kernel_size = int_tuple(where, "kernel_size", kernel_size, 2, 1)
        self.stride = self.kernel_size if stride is None else int_tuple(where, "stride", stride, 2, 1)
        self.padding = int_tuple(where, "padding", padding, 2, 0)
        self.dilation = int_tuple(where, "dilation", dilation, 2, 1)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{where}: padding {self.padding} must be at most half the kernel size "
                             f"{self.kernel_size}")
        self.ceil_mode = bool(ceil_mode)

    def _checked(self, x: Any) -> Any:
        x = check_input(self, x, (4,), "(N, C, H, W)")
        for a in (0, 1):
            span = self.dilation[a] * (self.kernel_size[a] - 1) + 1
            if x.shape[2 + a] + 2 * self.padding[a] < span:
                raise ValueError(f"{self!r}: input of spatial size {tuple(x.shape[2:])} (shape {tuple(x.shape)}) "
                                 f"is smaller than the kernel {self.kernel_size} (span {span} along axis {a + 2}, "
                                 f"padding {self.padding[a]})")
        return x

    def _fields(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        return s + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """Max over each kh×kw window (padding counts as −∞); the gradient goes to the window's first maximum."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        if return_indices:
            raise ValueError("MaxPool2d: return_indices=True is not supported")
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        x = self._checked(x)
        try:
            return max_pool2d(x, kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                              dilation=self.dilation, ceil_mode=self.ceil_mode)
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None

    def __repr__(self) -> str:
        return f"MaxPool2d({self._fields()})"


class AvgPool2d(_Pool2d):
    """Mean over each kh×kw window (zero padding; ``count_include_pad`` counts it in the divisor)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = None if divisor_override is None else positive_int(
            "AvgPool2d", "divisor_override", divisor_override)

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        x = self._checked(x)
        try:
            return avg_pool2d(x, kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                              ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                              divisor_override=self.divisor_override)
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None

    def __repr__(self) -> str:
        extra = "" if self.count_include_pad else ", count_include_pad=False"
        return f"AvgPool2d({self._fields()}{extra})"


class AdaptiveAvgPool2d(Module):
    """Mean over PyTorch's adaptive windows: output (N, C, Ho, Wo) for ``output_size`` (Ho, Wo) (an int for
    both; None keeps that side of the input); window i covers [⌊i·H/Ho⌋, ⌈(i + 1)·H/Ho⌉)."""

    def __init__(self, output_size: Any) -> None:
        items = (output_size, output_size) if output_size is None or isinstance(output_size, (int, np.integer)) \
            else tuple(output_size)
        if len(items) != 2 or any(v is not None and positive_int("AdaptiveAvgPool2d", "output_size", v) < 1
                                  for v in items):
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be an int or a pair, got {output_size!r}")
        self.output_size = tuple(None if v is None else int(v) for v in items)

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        x = check_input(self, x, (4,), "(N, C, H, W)")
        return adaptive_avg_pool2d(x, output_size=self.output_size)

    def __repr__(self) -> str:
        return f"AdaptiveAvgPool2d(output_size={self.output_size})"

"""Activation modules (PyTorch's names, arguments and defaults), each a wrapper of one op."""

from __future__ import annotations

from typing import Any

from .. import ops
from ..ops import activations as act
from ..tensor import Tensor
from .checks import check_float
from .module import Module

__all__ = ["ReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "Softplus", "ELU", "CELU", "SELU", "LeakyReLU", "ReLU6",
           "Hardtanh", "Hardswish", "Hardsigmoid", "Mish", "LogSigmoid", "Softsign", "Softmax", "LogSoftmax"]


class _Elementwise(Module):
    """An activation with no arguments: ``forward`` applies ``_op``."""

    _op: Any = None

    def forward(self, x: Tensor) -> Tensor:
        return type(self)._op(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(_Elementwise):
    """max(x, 0)."""

    _op = ops.relu


class Tanh(_Elementwise):
    """tanh x."""

    _op = ops.tanh


class Sigmoid(_Elementwise):
    """σ(x) = 1 / (1 + e⁻ˣ)."""

    _op = ops.sigmoid


class SiLU(_Elementwise):
    """x σ(x)."""

    _op = act.silu


class SELU(_Elementwise):
    """scale · (max(x, 0) + min(0, α (eˣ − 1))), α ≈ 1.6733, scale ≈ 1.0507."""

    _op = act.selu


class ReLU6(_Elementwise):
    """min(max(x, 0), 6)."""

    _op = act.relu6


class Hardswish(_Elementwise):
    """x · relu6(x + 3) / 6."""

    _op = act.hardswish


class Hardsigmoid(_Elementwise):
    """relu6(x + 3) / 6."""

    _op = act.hardsigmoid


class Mish(_Elementwise):
    """x · tanh(softplus(x))."""

    _op = act.mish


class LogSigmoid(_Elementwise):
    """log σ(x) = −softplus(−x)."""

    _op = act.logsigmoid


class Softsign(_Elementwise):
    """x / (1 + |x|)."""

    _op = act.softsign


class GELU(Module):
    """x Φ(x) (``approximate="none"``) or its tanh approximation (``approximate="tanh"``)."""

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return act.gelu(x, approximate=self.approximate)

    def __repr__(self) -> str:
        return f"GELU(approximate={self.approximate!r})"


class Softplus(Module):
    """log(1 + e^(βx)) / β, and x where βx > ``threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        self.beta = check_float("Softplus", "beta", beta, low_open=True)
        self.threshold = check_float("Softplus", "threshold", threshold, low=-float("inf"))

    def forward(self, x: Tensor) -> Tensor:
        return act.softplus(x, beta=self.beta, threshold=self.threshold)

    def __repr__(self) -> str:
        return f"Softplus(beta={self.beta}, threshold={self.threshold})"


class _Alpha(Module):
    """An activation with one parameter α."""

    _op: Any = None

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = check_float(type(self).__name__, "alpha", alpha, low=-float("inf"))

    def forward(self, x: Tensor) -> Tensor:
        return type(self)._op(x, alpha=self.alpha)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"


class ELU(_Alpha):
    """x for x > 0, α (eˣ − 1) otherwise."""

    _op = act.elu


class CELU(_Alpha):
    """max(0, x) + min(0, α (e^(x/α) − 1))."""

    _op = act.celu

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha)
        if self.alpha == 0:
            raise ValueError("CELU: alpha must not be 0")


class LeakyReLU(Module):
    """x for x > 0, ``negative_slope`` · x otherwise."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = check_float("LeakyReLU", "negative_slope", negative_slope, low=-float("inf"))

    def forward(self, x: Tensor) -> Tensor:
        return act.leaky_relu(x, negative_slope=self.negative_slope)

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"


class Hardtanh(Module):
    """x clipped to [min_val, max_val]."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        self.min_val = check_float("Hardtanh", "min_val", min_val, low=-float("inf"))
        self.max_val = check_float("Hardtanh", "max_val", max_val, low=-float("inf"))
        if self.max_val <= self.min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})")

    def forward(self, x: Tensor) -> Tensor:
        return act.hardtanh(x, min_val=self.min_val, max_val=self.max_val)

    def __repr__(self) -> str:
        return f"Hardtanh(min_val={self.min_val}, max_val={self.max_val})"


def _implicit_dim(ndim: int) -> int:
    """PyTorch's choice when Softmax is built with dim=None: 0 for 0-, 1- and 3-D inputs, else 1."""
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """eˣ / Σ eˣ along ``dim`` (None: PyTorch's legacy choice, 0 for 0-, 1- and 3-D inputs, else 1)."""

    _op = ops.softmax

    def __init__(self, dim: int | None = None) -> None:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)):
            raise ValueError(f"{type(self).__name__}: dim must be an int or None, got {dim!r}")
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        ndim = len(x.shape)
        dim = _implicit_dim(ndim) if self.dim is None else self.dim
        if not -max(ndim, 1) <= dim < max(ndim, 1):
            raise ValueError(f"{self!r}: dim {dim} is out of range for an input of shape {tuple(x.shape)}")
        return type(self)._op(x, axis=dim)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class LogSoftmax(Softmax):
    """x − log Σ eˣ along ``dim`` (None: as Softmax)."""

    _op = ops.log_softmax

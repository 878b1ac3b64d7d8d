"""Normalisation layers (PyTorch's signatures and semantics): ``BatchNorm1d``, ``BatchNorm2d``,
``LayerNorm``, ``GroupNorm``, and the op they share, ``normalize``.

All of them compute x̂ = (x − μ) / √(σ² + ε) over some axes (μ the mean, σ² the biased
variance) and then γ ⊙ x̂ + β. BatchNorm's running statistics, updated in training mode,
use the unbiased variance σ² · n / (n − 1), as PyTorch's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import defop
from ..ops import sqrt
from ..tensor import Tensor, from_numpy, no_grad
from .checks import check_float, check_input, int_tuple, positive_int
from .module import Module, Parameter

__all__ = ["normalize", "layer_norm", "group_norm", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm"]

Axes = tuple[int, ...]


def _moments(x: Any, axis: Axes) -> tuple[Any, Any]:
    """(μ, σ²) over ``axis`` (kept as size-1 axes), σ² the biased variance."""
    mu = x.mean(axis=axis, keepdims=True)
    d = x - mu
    return mu, (d * d).mean(axis=axis, keepdims=True)


@defop(fresh_grads=True)
def normalize(x, *, axis=(-1,), eps=1e-5, stats=None, track=None):
    """x̂ = (x − μ) / √(σ² + ε), μ and σ² (biased) the mean and variance over ``axis``;
    ∂x = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / √(σ² + ε), the means over ``axis``.

    ``stats``: (μ, σ²) already computed on the same array (used on arrays only; a re-run for a
    higher-order gradient computes them on Tensors, so they are differentiated too).
    ``track``: called as ``track(μ, σ², n)`` (n values per statistic) when the forward runs on
    arrays, not on a re-run: BatchNorm's running statistics, updated inside the op so that a
    compiled step updates them at every replay."""
    mu, var = stats if stats is not None and type(x) is np.ndarray else _moments(x, axis)
    if track is not None and type(x) is np.ndarray:
        track(mu, var, x.size // mu.size)
    r = 1 / np.sqrt(var + eps)
    xhat = (x - mu) * r

    def vjp(g):
        return (g - g.mean(axis=axis, keepdims=True) - xhat * (g * xhat).mean(axis=axis, keepdims=True)) * r

    return xhat, vjp


def _affine(xhat: Any, weight: Any, bias: Any, shape: tuple[int, ...]) -> Any:
    """γ ⊙ x̂ + β with γ and β reshaped to ``shape`` (either may be None)."""
    if weight is not None:
        xhat = xhat * weight.reshape(shape)
    if bias is not None:
        xhat = xhat + bias.reshape(shape)
    return xhat


def layer_norm(x: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` axes, then γ ⊙ x̂ + β (γ, β of ``normalized_shape``)."""
    k = len(tuple(normalized_shape))
    return _affine(normalize(x, axis=tuple(range(-k, 0)), eps=eps), weight, bias, tuple(normalized_shape))


def group_norm(x: Any, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Tensor:
    """Split the C channels of x (N, C, ...) into ``num_groups`` groups and normalise each sample's group
    over its channels and positions, then γ ⊙ x̂ + β per channel (γ, β of shape (C,))."""
    n, c = x.shape[:2]
    xhat = normalize(x.reshape((n, num_groups, -1)), axis=(2,), eps=eps).reshape(x.shape)
    return _affine(xhat, weight, bias, (1, c) + (1,) * (len(x.shape) - 2))


class _BatchNorm(Module):
    """BatchNorm over the channels (axis 1): batch statistics in training mode, running ones in eval mode."""

    _ndims: tuple[int, ...] = (4,)
    _layout = "(N, C, H, W)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, dtype: Any = np.float32) -> None:
        where = type(self).__name__
        self.num_features = positive_int(where, "num_features", num_features)
        self.eps = check_float(where, "eps", eps, low_open=True)
        self.momentum = None if momentum is None else check_float(where, "momentum", momentum, 0.0, 1.0)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        self._dtype = np.dtype(dtype)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked (eval mode then needs training first)."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        """Running statistics reset, γ = 1, β = 0."""
        self.reset_running_stats()
        if self.affine:
            with no_grad():
                self.weight.fill_(1)
                self.bias.fill_(0)

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        x = check_input(self, x, self._ndims, self._layout, self.num_features, self._dtype)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        if not self.training and self.track_running_stats:
            return self._eval_forward(x, shape)
        n = x.size // self.num_features
        if self.training and n <= 1:
            raise ValueError(f"{self!r}: expected more than 1 value per channel when training, got input of shape "
                             f"{tuple(x.shape)}")
        track = self._track if self.training and self.track_running_stats else None
        return _affine(normalize(x, axis=axes, eps=self.eps, track=track), self.weight, self.bias, shape)

    def _track(self, mu: Any, var: Any, n: int) -> None:
        """Move the running statistics towards this batch's μ and unbiased σ² · n / (n − 1)."""
        self.num_batches_tracked += 1
        f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean *= 1 - f
        self.running_mean += f * mu.reshape(-1)
        self.running_var *= 1 - f
        self.running_var += (f * n / (n - 1)) * var.reshape(-1)

    def _eval_forward(self, x: Any, shape: tuple[int, ...]) -> Tensor:
        """(x − running_mean) / √(running_var + ε) ⊙ γ + β, as x ⊙ s + (β − running_mean ⊙ s)."""
        if int(self.num_batches_tracked) == 0:
            raise ValueError(f"{self!r}: eval() mode before any running statistics (num_batches_tracked is 0, input "
                             f"shape {tuple(x.shape)}); run it in training mode first, load a state dict, or build it "
                             f"with track_running_stats=False")
        # ops on views of the buffers (not NumPy on their values), so a compiled step reads them at each replay
        inv = 1 / sqrt(from_numpy(self.running_var.reshape(shape)) + self.eps)
        mean = from_numpy(self.running_mean.reshape(shape))
        scale = inv if self.weight is None else self.weight.reshape(shape) * inv
        shift = -mean * scale
        if self.bias is not None:
            shift = self.bias.reshape(shape) + shift
        return x * scale + shift

    def __repr__(self) -> str:
        s = f"{type(self).__name__}({self.num_features}, eps={self.eps}, momentum={self.momentum}"
        s += f", affine={self.affine}" if not self.affine else ""
        s += ", track_running_stats=False" if not self.track_running_stats else ""
        return s + ")"


class BatchNorm1d(_BatchNorm):
    """BatchNorm over (N, C) or (N, C, L) inputs: statistics per channel over the batch (and L)."""

    _ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """BatchNorm over (N, C, H, W) inputs: statistics per channel over the batch and the positions."""


class LayerNorm(Module):
    """Normalise each sample over its last dimensions ``normalized_shape``, then γ ⊙ x̂ + β elementwise."""

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, *, dtype: Any = np.float32) -> None:
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        self.normalized_shape = int_tuple("LayerNorm", "normalized_shape", shape, max(len(shape), 1), 1)
        self.eps = check_float("LayerNorm", "eps", eps, low_open=True)
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype)) if elementwise_affine and bias else None
        self._dtype = np.dtype(dtype)

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        k = len(self.normalized_shape)
        x = check_input(self, x, tuple(range(k, k + 8)), f"(..., {', '.join(map(str, self.normalized_shape))})",
                        dtype=self._dtype)
        if tuple(x.shape[-k:]) != self.normalized_shape:
            raise ValueError(f"{self!r}: input of shape {tuple(x.shape)} does not end in normalized_shape "
                             f"{self.normalized_shape}")
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def __repr__(self) -> str:
        extra = "" if self.elementwise_affine else ", elementwise_affine=False"
        return f"LayerNorm({self.normalized_shape}, eps={self.eps}{extra})"


class GroupNorm(Module):
    """Normalise each sample's channel groups (C / num_groups channels, all positions), then γ ⊙ x̂ + β
    per channel; inputs (N, C, ...)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *,
                 dtype: Any = np.float32) -> None:
        self.num_groups = positive_int("GroupNorm", "num_groups", num_groups)
        self.num_channels = positive_int("GroupNorm", "num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by num_groups={num_groups}")
        self.eps = check_float("GroupNorm", "eps", eps, low_open=True)
        self.affine = bool(affine)
        self.weight = Parameter(np.ones(num_channels, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dtype=dtype)) if affine else None
        self._dtype = np.dtype(dtype)

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        x = check_input(self, x, tuple(range(2, 10)), "(N, C, ...)", self.num_channels, self._dtype)
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def __repr__(self) -> str:
        return f"GroupNorm({self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine})"

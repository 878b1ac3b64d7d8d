"""Layers: ``Linear``, the activation modules, ``Dropout`` and ``Sequential`` (PyTorch-style names).

``Linear`` computes ``y = x @ W + b`` with ``W`` of shape (in_features, out_features): rows
are samples, as in the reference systems.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import ops
from ..tensor import Tensor
from .functional import dropout
from .init import INITS, init_weight
from .module import Module, Parameter

__all__ = ["Linear", "ReLU", "Tanh", "Sigmoid", "Dropout", "Sequential"]

Array = np.ndarray


class Linear(Module):
    """y = x @ W + b, with W of shape (in_features, out_features) and b of shape (out_features,)."""

    def __init__(
        self, in_features: int, out_features: int, init: str = "xavier_uniform", bias: bool = True,
        *, std: float = 0.01, rng: np.random.Generator | int | None = None, dtype: Any = np.float32,
    ) -> None:
        if init not in INITS:
            raise ValueError(f"Linear: unknown init {init!r}; valid names: {', '.join(INITS)}")
        if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
                   for n in (in_features, out_features)):
            raise ValueError(f"Linear: sizes must be positive integers, got {in_features!r}→{out_features!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(init_weight(init, in_features, out_features, rng, std, dtype))
        self.bias = Parameter(np.zeros(out_features, dtype=dtype)) if bias else None

    def forward(self, x: Tensor | Array) -> Tensor:
        if not isinstance(x, (Tensor, np.ndarray)):
            x = np.asarray(x, dtype=self.weight.dtype)
        width = x.shape[-1] if x.ndim else None
        if width != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}→{self.out_features}): input has {width} features "
                f"(shape {tuple(x.shape)}), expected {self.in_features}"
            )
        dtype = self.weight.data.dtype
        if x.dtype is not dtype and x.dtype != dtype:
            raise TypeError(
                f"Linear({self.in_features}→{self.out_features}): input has dtype {x.dtype} but the parameters "
                f"have dtype {self.weight.dtype}; convert the input (x.astype(np.{self.weight.dtype})) or build "
                f"the model with dtype=np.{x.dtype}"
            )
        if self.bias is None:
            return ops.matmul(x, self.weight)
        return ops.linear(x, self.weight, self.bias)  # one fused op: x @ W + b

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, bias={self.bias is not None})"


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class Tanh(Module):
    """tanh x."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class Sigmoid(Module):
    """σ(x) = 1 / (1 + e⁻ˣ)."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale the rest by 1/(1 − p).

    Identity in eval mode, so the expected activation is the same in both modes.
    """

    def __init__(self, p: float = 0.5, seed: np.random.Generator | int | None = None) -> None:
        if isinstance(p, (str, bytes)) or not 0.0 <= p <= 1.0 or p != p:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self._rng = np.random.default_rng(seed)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        dtype = data.dtype if data.dtype.kind == "f" else np.float32
        if self.p == 1.0:
            keep = np.zeros(data.shape, dtype=dtype)
        else:
            keep = (self._rng.random(data.shape, dtype=np.float32) >= self.p).astype(dtype)
            keep *= 1.0 / (1.0 - self.p)
        return dropout(x, keep=keep)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


class Sequential(Module):
    """Modules applied in order; parameters are named by position (``0.weight``, ``2.bias``, ...)."""

    def __init__(self, *modules: Module) -> None:
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {i} is a {type(m).__name__}, not a Module")
        self._layers = list(modules)

    def _children(self) -> Iterator[tuple[str, Any]]:
        yield from ((str(i), m) for i, m in enumerate(self._layers))

    def __getitem__(self, i: int) -> Module:
        return self._layers[i]

    def __len__(self) -> int:
        return len(self._layers)

    def forward(self, x: Any) -> Any:
        for m in self._layers:
            x = m(x)
        return x

"""A multilayer perceptron for MNIST-style data built from ``tinygrad_lite.nn``.

Hidden layer l computes A_l = g_l(A_{l−1} @ W_l + b_l); the output layer gives the logits
Z_L = A_{L−1} @ W_L + b_L (no activation; use ``nn.cross_entropy`` on them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import tinygrad_lite.nn as nn
from models import registry
from models.spec import check_sizes, parse_activations
from tinygrad_lite import ops
from tinygrad_lite.tensor import Tensor

__all__ = ["MLP", "ACTIVATIONS", "parse_activations"]

#: The registry's activations as ``tinygrad_lite.ops`` functions.
ACTIVATIONS = {name: getattr(ops, a.op) for name, a in registry.ACTIVATIONS.items()}


class MLP(nn.Module):
    """Fully connected network ``sizes = [784, 128, 64, 10]``: Linear layers with activations between them.

    ``activations`` is one name or a list with one per hidden layer ("relu", "tanh",
    "sigmoid"); ``dropout`` (inverted, training mode only) follows each hidden activation.
    Weights are drawn by ``init`` from one generator seeded with ``seed``, layer by layer; biases are
    zero, or with ``bias_init="uniform"`` drawn from U(−0.5, 0.5) right after their layer's weights.
    Parameters: ``layers.<l>.weight`` (in, out) and ``layers.<l>.bias`` (out,).
    """

    def __init__(
        self, sizes: Sequence[int], activations: str | Sequence[str] = "relu", dropout: float = 0.0,
        init: str = "xavier_uniform", seed: int | np.random.Generator | None = 0, dtype: Any = np.float32,
        *, std: float = 0.01, bias_init: str = "zeros",
    ) -> None:
        self.sizes = check_sizes(sizes)
        self.activations = parse_activations(activations, len(self.sizes) - 2)
        if init not in nn.INITS:
            raise ValueError(f"MLP: unknown init {init!r}; valid names: {', '.join(nn.INITS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLP: dropout must be in [0, 1), got {dropout}")
        if bias_init not in registry.BIAS_INITS:
            raise ValueError(f"MLP: unknown bias_init {bias_init!r}; valid names: {', '.join(registry.BIAS_INITS)}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.layers = []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            layer = nn.Linear(n_in, n_out, init=init, std=std, rng=rng, dtype=dtype)
            if bias_init == "uniform":  # b = rand − 0.5, drawn after the layer's weights
                layer.bias = nn.Parameter(rng.uniform(-0.5, 0.5, size=n_out).astype(dtype))
            self.layers.append(layer)
        self.dropout = float(dropout)
        self.dropouts = [nn.Dropout(dropout, seed=rng) for _ in self.activations] if dropout else []
        self._g = [ACTIVATIONS[a] for a in self.activations]

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        """Logits (m, sizes[-1]) for inputs x of shape (m, sizes[0])."""
        if not isinstance(x, (Tensor, np.ndarray)):
            x = np.asarray(x, dtype=self.layers[0].weight.dtype)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"MLP: expected input of shape (m, {self.sizes[0]}), got {tuple(x.shape)}")
        layers = self.layers
        for l, g in enumerate(self._g):
            x = g(layers[l].forward(x))
            if self.dropouts:
                x = self.dropouts[l](x)
        return layers[-1].forward(x)

    def __repr__(self) -> str:
        return f"MLP(sizes={self.sizes}, activations={self.activations}, dropout={self.dropout})"

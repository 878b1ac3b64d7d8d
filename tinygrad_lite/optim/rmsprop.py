"""RMSprop: steps scaled by a running average of squared gradients."""

from __future__ import annotations

import numpy as np

from .optimizer import Array, Optimizer, ParamsT, check_number

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop: s ← α s + (1 − α) g²;  p ← p − η g / (√s + ε)  (α the decay of the squared-gradient average)."""

    _buffers = ("square_avg",)

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.9, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        self.alpha = check_number(alpha, "alpha", "RMSprop", 0.0, 1.0, high_open=True)
        self.eps = check_number(eps, "eps", "RMSprop")
        super().__init__(params, lr, weight_decay)

    def _update(self, i: int, p: Array, g: Array, lr: float, weight_decay: float) -> None:
        g = self._grad(i, p, g, weight_decay)
        sq, s = self.state["square_avg"][i], self._work[i]
        sq *= self.alpha
        np.multiply(g, g, out=s)
        s *= 1.0 - self.alpha
        sq += s
        np.sqrt(sq, out=s)
        s += self.eps
        np.divide(g, s, out=s)
        s *= lr
        p -= s

"""Adam with bias correction (Kingma & Ba) and L2 weight decay."""

from __future__ import annotations

import math

import numpy as np

from .optimizer import Array, Optimizer, ParamsT, check_number

__all__ = ["Adam"]


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba):

    m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g²;  m̂ = m / (1 − β₁ᵗ);  v̂ = v / (1 − β₂ᵗ);
    p ← p − η m̂ / (√v̂ + ε).  Weight decay adds ``weight_decay · p`` to g (L2, as in PyTorch's Adam).
    """

    _buffers = ("m", "v")

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        if len(betas) != 2:
            raise ValueError(f"{type(self).__name__}: betas must be a pair (β1, β2), got {betas!r}")
        self.beta1 = check_number(betas[0], "betas[0]", type(self).__name__, 0.0, 1.0, high_open=True)
        self.beta2 = check_number(betas[1], "betas[1]", type(self).__name__, 0.0, 1.0, high_open=True)
        self.eps = check_number(eps, "eps", type(self).__name__)
        super().__init__(params, lr, weight_decay)

    @property
    def betas(self) -> tuple[float, float]:
        return (self.beta1, self.beta2)

    def _update(self, i: int, p: Array, g: Array, lr: float, weight_decay: float) -> None:
        g = self._grad(i, p, g, weight_decay)
        m, v, s = self.state["m"][i], self.state["v"][i], self._work[i]
        t = self._t[i]
        m *= self.beta1
        np.multiply(g, 1.0 - self.beta1, out=s)
        m += s
        v *= self.beta2
        np.multiply(g, g, out=s)
        s *= 1.0 - self.beta2
        v += s
        # p ← p − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
        np.sqrt(v, out=s)
        s *= 1.0 / math.sqrt(1.0 - self.beta2**t)
        s += self.eps
        np.divide(m, s, out=s)
        s *= lr / (1.0 - self.beta1**t)
        p -= s

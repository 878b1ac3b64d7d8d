"""Stochastic gradient descent, with momentum, Nesterov momentum and L2 weight decay."""

from __future__ import annotations

import numpy as np

from .optimizer import Array, Optimizer, ParamsT, check_number

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum μ, Nesterov momentum and L2 weight decay.

    Plain: p ← p − η g.  Momentum: b ← μ b + g, then p ← p − η b (Nesterov: p ← p − η (g + μ b)).
    """

    def __init__(self, params: ParamsT, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        self.momentum = check_number(momentum, "momentum", "SGD")
        if nesterov and self.momentum == 0.0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self.nesterov = bool(nesterov)
        self._buffers = ("momentum_buffer",) if self.momentum else ()
        super().__init__(params, lr, weight_decay)

    def _apply(self, updates: list[tuple[int, Array, Array]], hyper: list[tuple[float, float]]) -> None:
        if self.momentum or any(wd for _, wd in hyper):
            return super()._apply(updates, hyper)
        work, group_of = self._work, self._group_of
        for i, p, g in updates:  # plain SGD: p −= η g, in one loop (the hot case)
            u = work[i]
            np.multiply(g, hyper[group_of[i]][0], out=u)
            p -= u

    def _update(self, i: int, p: Array, g: Array, lr: float, weight_decay: float) -> None:
        u = self._work[i]
        g = self._grad(i, p, g, weight_decay)
        if self.momentum:
            b = self.state["momentum_buffer"][i]
            b *= self.momentum
            b += g
            if self.nesterov:  # u = g + μ b
                np.multiply(b, self.momentum, out=u)
                u += g
                u *= lr
            else:
                np.multiply(b, lr, out=u)
        else:
            np.multiply(g, lr, out=u)
        p -= u

"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter)."""

from __future__ import annotations

from .adam import Adam
from .optimizer import Array, ParamsT

__all__ = ["AdamW"]


class AdamW(Adam):
    """Adam with decoupled weight decay: first p ← p (1 − η λ), then the Adam step on the plain gradient

    m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g²;  p ← p − η m̂ / (√v̂ + ε),

    m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ), as PyTorch's ``AdamW`` (defaults too: λ = ``weight_decay``
    = 0.01). Unlike Adam's L2 decay, λ p never enters m and v. ``param_groups_no_decay`` builds
    groups that exempt biases and normalisation parameters.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)

    def _update(self, i: int, p: Array, g: Array, lr: float, weight_decay: float) -> None:
        if weight_decay:
            p *= 1.0 - lr * weight_decay
        super()._update(i, p, g, lr, 0.0)

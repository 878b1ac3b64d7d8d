"""Helpers for training loops and state dicts: ``clip_grad_norm_``, ``clip_grad_value_`` (PyTorch's
semantics) and ``key_problems``, the state-dict key check modules, optimizers and schedulers share."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..mode import replayed
from ..tensor import Tensor

__all__ = ["key_problems", "clip_grad_norm_", "clip_grad_value_"]


def key_problems(expected: Iterable[str], given: Iterable[str]) -> list[str]:
    """``["missing keys [...]", "unexpected keys [...]"]`` for the keys of a state dict against
    the keys it should have (each entry only when non-empty; ``[]`` when they match)."""
    expected, given = list(expected), list(given)
    want, have = set(expected), set(given)
    missing = [k for k in expected if k not in have]
    extra = [k for k in given if k not in want]
    return ([f"missing keys {missing}"] if missing else []) + ([f"unexpected keys {extra}"] if extra else [])


def _grads(parameters: Tensor | Iterable[Tensor], where: str) -> list[Tensor]:
    """The tensors of ``parameters`` that have a gradient."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: parameter {i} is a {type(p).__name__}, not a Tensor")
    return [p for p in params if p.grad is not None]


def _scale_in_place(p: Tensor, factor: float) -> None:
    g = p.grad
    if g.flags.writeable:
        g *= g.dtype.type(factor)
    else:  # a gradient someone made read-only: replace it
        p.grad = g * g.dtype.type(factor)


@replayed
def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> np.float64:
    """Scale every gradient in place by min(1, max_norm / (‖g‖ + 10⁻⁶)), ‖g‖ the ``norm_type`` norm of all
    gradients together (as one vector; ``inf`` for the largest |g|). Returns ‖g‖ before clipping.

    Parameters without a gradient are skipped (total 0 when none has one). A non-finite total raises a
    RuntimeError when ``error_if_nonfinite``; otherwise the gradients are scaled by NaN, as PyTorch's."""
    max_norm, norm_type = float(max_norm), float(norm_type)
    if math.isnan(max_norm) or max_norm < 0 or math.isnan(norm_type) or norm_type <= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0 and norm_type > 0, got {max_norm}, {norm_type}")
    params = _grads(parameters, "clip_grad_norm_")
    if not params:
        return np.float64(0.0)
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(p.grad), initial=0.0)) for p in params)
    else:
        norms = [np.linalg.norm(p.grad.reshape(-1).astype(np.float64), ord=norm_type) for p in params]
        total = float(np.linalg.norm(np.array(norms), ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}, so "
                           f"they cannot be clipped; pass error_if_nonfinite=False to scale them anyway")
    with np.errstate(invalid="ignore"):
        factor = min(max_norm / (total + 1e-6), 1.0) if not math.isnan(total) else math.nan
    with np.errstate(invalid="ignore"):  # inf · 0 = NaN, as PyTorch's
        for p in params:
            _scale_in_place(p, factor)
    return np.float64(total)


@replayed
def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient in place to [−clip_value, clip_value]."""
    clip_value = float(clip_value)
    if math.isnan(clip_value) or clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in _grads(parameters, "clip_grad_value_"):
        g = p.grad
        if g.flags.writeable:
            np.clip(g, -clip_value, clip_value, out=g)
        else:
            p.grad = np.clip(g, -clip_value, clip_value)

"""Regression and binary losses (PyTorch's functional signatures): ``mse_loss``, ``l1_loss``,
``huber_loss``, ``smooth_l1_loss``, ``binary_cross_entropy``, ``binary_cross_entropy_with_logits``,
``kl_div``. (``cross_entropy`` and ``nll_loss`` live in ``functional``.)

Each computes a loss per element, Lᵢ, then reduces it: ``reduction="mean"`` (the mean over all
elements), ``"sum"`` or ``"none"`` (the elementwise losses); ``kl_div`` also takes ``"batchmean"``
(the sum divided by the batch size, the true KL divergence). Input and target must have the
same shape; the target may be a Tensor that requires grad.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..graph import defop
from ..mode import refuse_traced
from ..ops.activations import logsigmoid
from ..tensor import Tensor

__all__ = ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div"]

REDUCTIONS = ("mean", "sum", "none")


def _operands(where: str, input: Any, target: Any, reduction: str, reductions: tuple = REDUCTIONS,  # noqa: A002
              ) -> tuple[Tensor, Any, np.ndarray]:
    """(input as a Tensor, target as given or as an array, the target's values), after checking the
    reduction, the shapes (equal) and that neither holds NaN."""
    if reduction not in reductions:
        raise ValueError(f"{where}: unknown reduction {reduction!r}; valid: {', '.join(reductions)}")
    x = input if isinstance(input, Tensor) else Tensor(np.asarray(input))
    t = target if isinstance(target, Tensor) else np.asarray(target)
    values = t.data if isinstance(t, Tensor) else t
    if x.dtype.kind != "f" or values.dtype.kind not in "fiub":
        raise ValueError(f"{where}: input must be floating point and target numeric, got dtypes {x.dtype} and "
                         f"{values.dtype}")
    if tuple(x.shape) != tuple(values.shape):
        raise ValueError(f"{where}: input has shape {tuple(x.shape)} but target {tuple(values.shape)}; they must be "
                         f"the same (reshape the target, e.g. target.reshape({tuple(x.shape)}))")
    if values.dtype.kind != "f":
        if isinstance(t, Tensor):  # an op, so a compiled step casts each call's targets
            t = ops.astype(t, dtype=x.dtype)
            values = t.data
        else:
            refuse_traced(values, f"{where}: the cast of the targets")
            t = values = values.astype(x.dtype)
    if np.isnan(values).any():
        raise ValueError(f"{where}: target contains NaN (shape {values.shape})")
    return x, t, values


def _in_unit_interval(where: str, name: str, values: np.ndarray) -> None:
    bad = ~((values >= 0) & (values <= 1))
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{where}: every element of {name} must be in [0, 1]; {name}[{', '.join(map(str, i))}] = "
                         f"{values[i]} ({int(bad.sum())} out of range, shape {values.shape})")


def _constant(where: str, name: str, value: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray | None:
    """A weight array that broadcasts to ``shape`` (not differentiated, as PyTorch's), or None."""
    if value is None:
        return None
    refuse_traced(value, f"{where}: the {name} array (cast and checked in Python)")
    w = np.asarray(value.data if isinstance(value, Tensor) else value)
    try:
        np.broadcast_shapes(w.shape, shape)
    except ValueError:
        raise ValueError(f"{where}: {name} of shape {w.shape} does not broadcast to the input's {shape}") from None
    if w.dtype.kind not in "fiu" or not np.isfinite(w).all():
        raise ValueError(f"{where}: {name} must hold finite numbers, got dtype {w.dtype}")
    return w.astype(dtype)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Lᵢ = (xᵢ − yᵢ)²."""
    x, t, _ = _operands("mse_loss", input, target, reduction)
    d = x - t
    return _reduce(d * d, reduction)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Lᵢ = |xᵢ − yᵢ| (gradient sign(xᵢ − yᵢ), 0 at 0)."""
    x, t, _ = _operands("l1_loss", input, target, reduction)
    return _reduce(ops.absolute(x - t), reduction)


def _piecewise(d: Tensor, size: float, inner_scale: float, outer_shift: float, outer_scale: float) -> Tensor:
    """inner_scale · d² where |d| < size, else outer_scale · (|d| − outer_shift)."""
    # Python floats: a delta or beta given as np.float64 would promote float32
    inner_scale, outer_shift, outer_scale = float(inner_scale), float(outer_shift), float(outer_scale)
    inside = ops.lt(ops.absolute(d.detach()), size)  # an op, so a compiled step recomputes it
    return ops.where(inside, (d * d) * inner_scale, (ops.absolute(d) - outer_shift) * outer_scale)


def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:  # noqa: A002
    """Lᵢ = ½ dᵢ² where |dᵢ| < δ, else δ (|dᵢ| − ½ δ), dᵢ = xᵢ − yᵢ."""
    if not (isinstance(delta, (int, float, np.floating)) and 0 < delta < np.inf):
        raise ValueError(f"huber_loss: delta must be a positive number, got {delta!r}")
    x, t, _ = _operands("huber_loss", input, target, reduction)
    return _reduce(_piecewise(x - t, delta, 0.5, 0.5 * delta, delta), reduction)


def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean", beta: float = 1.0) -> Tensor:  # noqa: A002
    """Lᵢ = ½ dᵢ² / β where |dᵢ| < β, else |dᵢ| − ½ β, dᵢ = xᵢ − yᵢ (β = 0: the L1 loss)."""
    if not (isinstance(beta, (int, float, np.floating)) and 0 <= beta < np.inf):
        raise ValueError(f"smooth_l1_loss: beta must be a non-negative number, got {beta!r}")
    x, t, _ = _operands("smooth_l1_loss", input, target, reduction)
    if beta == 0:
        return _reduce(ops.absolute(x - t), reduction)
    return _reduce(_piecewise(x - t, beta, 0.5 / beta, 0.5 * beta, 1.0), reduction)


@defop(name="binary_cross_entropy", fresh_grads=True)
def _bce(x, y, *, weight=None):
    """L = −w (y max(log x, −100) + (1 − y) max(log(1 − x), −100)) (PyTorch's clamp);
    ∂x = g w (x − y) / max(x (1 − x), 10⁻¹²), ∂y = g w (max(log(1 − x), −100) − max(log x, −100))."""
    w = 1.0 if weight is None else weight
    with np.errstate(divide="ignore"):
        log_x = np.maximum(np.log(x), -100.0)
        log_1mx = np.maximum(np.log1p(-x), -100.0)
    loss = -(y * log_x + (1 - y) * log_1mx) * w
    return loss, (lambda g: g * w * (x - y) / np.maximum(x * (1 - x), 1e-12),
                  lambda g: g * w * (log_1mx - log_x))


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None,  # noqa: A002
                         reduction: str = "mean") -> Tensor:
    """Lᵢ = −wᵢ (yᵢ log xᵢ + (1 − yᵢ) log(1 − xᵢ)) for probabilities xᵢ ∈ [0, 1] and targets yᵢ ∈ [0, 1];
    each log is clamped to ≥ −100, as PyTorch's (a finite loss at x = 0 or 1)."""
    x, t, values = _operands("binary_cross_entropy", input, target, reduction)
    _in_unit_interval("binary_cross_entropy", "input", x.data)
    _in_unit_interval("binary_cross_entropy", "target", values)
    w = _constant("binary_cross_entropy", "weight", weight, x.shape, x.dtype)
    return _reduce(_bce(x, t, weight=w), reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,  # noqa: A002
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """Lᵢ = −wᵢ (pᵢ yᵢ log σ(xᵢ) + (1 − yᵢ) log(1 − σ(xᵢ))) for logits xᵢ, computed stably as
    −wᵢ (pᵢ yᵢ logsigmoid(xᵢ) + (1 − yᵢ) logsigmoid(−xᵢ)); ``pos_weight`` p broadcasts along the
    last dimension (one per class), ``weight`` w to the input."""
    where = "binary_cross_entropy_with_logits"
    x, t, values = _operands(where, input, target, reduction)
    _in_unit_interval(where, "target", values)
    w = _constant(where, "weight", weight, x.shape, x.dtype)
    p = _constant(where, "pos_weight", pos_weight, x.shape, x.dtype)
    positive = t * logsigmoid(x) if p is None else (t * p) * logsigmoid(x)
    loss = -(positive + (1 - t) * logsigmoid(-x))
    return _reduce(loss if w is None else loss * w, reduction)


def kl_div(input: Tensor, target: Any, reduction: str = "mean", log_target: bool = False) -> Tensor:  # noqa: A002
    """Lᵢ = yᵢ (log yᵢ − xᵢ) (0 where yᵢ = 0) for log-probabilities x and probabilities y, or
    e^(yᵢ) (yᵢ − xᵢ) with ``log_target`` (y given as log-probabilities).

    ``reduction="batchmean"`` divides the sum by the batch size (input.shape[0]): the KL divergence
    per sample; ``"mean"`` divides by the number of elements, as PyTorch's."""
    x, t, values = _operands("kl_div", input, target, reduction, REDUCTIONS + ("batchmean",))
    if log_target:
        loss = np.exp(t) * (t - x)
    else:
        if (values < 0).any():
            raise ValueError(f"kl_div: target probabilities must be non-negative, got min {values.min()} "
                             f"(shape {values.shape}); for log-probabilities pass log_target=True")
        positive = ops.gt(t, 0) if isinstance(t, Tensor) else values > 0  # an op on a tensor: recomputed each call
        loss = np.where(positive, t * np.log(np.where(positive, t, 1)), 0) - t * x
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction)

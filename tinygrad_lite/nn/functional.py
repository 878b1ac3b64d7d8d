"""Losses and functional forms: ``cross_entropy``, ``nll_loss`` and the ``dropout`` op.

``cross_entropy`` is ``log_softmax`` followed by ``nll_loss``, fused into one op; its
gradient with respect to the logits is exactly ``(softmax − Y) / m`` for the mean reduction.
``dropout(x, keep=mask)`` multiplies by a given keep mask (``Dropout`` draws the mask).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import defop
from ..ops import index_add
from ..tensor import Tensor

__all__ = ["cross_entropy", "nll_loss", "dropout"]

Array = np.ndarray


@defop(fresh_grads=True)
def dropout(x, *, keep=None):
    """x ⊙ keep, keep = mask / (1 − p) (inverted dropout);  ∂x = g ⊙ keep."""
    return x * keep, lambda g: g * keep


_REDUCTIONS = ("mean", "sum", "none")


@defop(name="nll", fresh_grads=True)
def _nll_indices(logp, *, rows=None, labels=None, reduction="mean"):
    """L = −Σᵢ logp[i, yᵢ] (/m for the mean);  ∂logp = −g (/m) at [i, yᵢ], 0 elsewhere."""
    m = logp.shape[0]
    picked = logp[rows, labels]

    def vjp(g):
        share = -g / m if reduction == "mean" else -g
        if reduction != "none":
            share = np.broadcast_to(share, (m,))
        if isinstance(share, Tensor):
            return index_add(share, index=(rows, labels), shape=logp.shape)
        grad = np.zeros_like(logp)
        grad[rows, labels] = share
        return grad

    if reduction == "none":
        return -picked, vjp
    total = -picked.sum()
    return (total / m if reduction == "mean" else total), vjp


@defop(name="nll", fresh_grads=True)
def _nll_probs(logp, *, probs=None, reduction="mean"):
    """L = −Σᵢⱼ Yᵢⱼ logpᵢⱼ (/m for the mean);  ∂logp = −g ⊙ Y (/m)."""
    m = logp.shape[0]
    if reduction == "none":
        return -(probs * logp).sum(axis=1), lambda g: -g[:, None] * probs
    total = -(probs * logp).sum()
    if reduction == "mean":
        return total / m, lambda g: probs * (-g / m)
    return total, lambda g: probs * -g


def _check_target(target: Any, m: int, c: int, dtype: np.dtype, where: str) -> tuple[str, Array]:
    """Validate the labels; returns ("indices", y) or ("probs", Y as ``dtype``)."""
    y = target.data if isinstance(target, Tensor) else np.asarray(target)
    kind = y.dtype.kind
    if kind in "iu" and y.shape == (m,):  # the common case, with one reduction: class indices
        unsigned = y if kind == "u" else y.view(f"u{y.itemsize}")  # negative labels become huge
        if m == 0 or unsigned.max() < c:
            return "indices", y
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind not in "iuf":
        raise ValueError(f"{where}: labels must be integers or float rows, got dtype {y.dtype}")
    if y.shape[:1] != (m,):
        raise ValueError(
            f"{where}: batch mismatch: predictions have {m} rows (shape {(m, c)}), labels have shape {y.shape}"
        )
    if y.dtype.kind == "f" and np.isnan(y).any():
        rows = np.flatnonzero(np.isnan(y).reshape(m, -1).any(axis=1))
        raise ValueError(f"{where}: labels contain NaN (rows {rows[:10].tolist()})")
    if y.ndim == 1:
        if y.dtype.kind == "f":
            hint = " (integer-valued: pass them as an integer array, e.g. y.astype(np.int64))" if np.all(
                y == np.round(y)) else ""
            raise ValueError(
                f"{where}: got float labels of shape {y.shape}{hint}; class indices must be integers, "
                f"and one-hot/probability targets must have shape {(m, c)}"
            )
        bad = (y < 0) | (y >= c)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{where}: label {int(y[i])} at row {i} is outside [0, {c}) "
                f"({int(bad.sum())} labels out of range; labels range {int(y.min())}..{int(y.max())})"
            )
        return "indices", y
    if y.ndim == 2 and y.shape[1] == c:
        if (y < 0).any():
            raise ValueError(f"{where}: one-hot/probability targets have negative entries (min {y.min()})")
        sums = y.sum(axis=1, dtype=np.float64)
        tol = 1e-3 if np.dtype(dtype).itemsize <= 4 or y.dtype.itemsize <= 4 else 1e-6
        bad = np.abs(sums - 1.0) > tol
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{where}: target row {i} sums to {sums[i]:.6g}, not 1 ({int(bad.sum())} such rows); one-hot or "
                f"probability rows must sum to 1 (for class indices pass an integer array of shape ({m},))"
            )
        return "probs", y.astype(dtype, copy=False)
    raise ValueError(
        f"{where}: labels have shape {y.shape}; expected class indices of shape ({m},) or one-hot/probability "
        f"rows of shape {(m, c)}"
    )


def _check_reduction(reduction: str, where: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{where}: unknown reduction {reduction!r}; valid: {', '.join(_REDUCTIONS)}")


def nll_loss(log_probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: −(1/m) Σᵢ log pᵢ[yᵢ] for class indices, −(1/m) Σᵢⱼ Yᵢⱼ log pᵢⱼ for rows.

    ``log_probs`` has shape (m, C); ``target`` is class indices (m,) or one-hot/probability
    rows (m, C). ``reduction``: "mean" (default), "sum" or "none" (one loss per row).
    """
    _check_reduction(reduction, "nll_loss")
    shape = tuple(log_probs.shape)
    if len(shape) != 2:
        raise ValueError(f"nll_loss: predictions must have shape (m, classes), got {shape}")
    dtype = log_probs.dtype
    kind, y = _check_target(target, shape[0], shape[1], dtype, "nll_loss")
    if kind == "indices":
        return _nll_indices(log_probs, rows=np.arange(shape[0]), labels=y, reduction=reduction)
    return _nll_probs(log_probs, probs=y, reduction=reduction)


@defop(name="cross_entropy", fresh_grads=True)
def _softmax_cross_entropy(z, *, target=None, reduction="mean"):
    """L = −Σᵢ Σⱼ Yᵢⱼ log softmax(zᵢ)ⱼ (/m for the mean), log-softmax shifted by the row max;
    ∂z = g ⊙ (softmax(z) − Y) (/m) — the hand-derived dZ_L = (A_L − Y)/m, in one node.

    ``target`` is class indices (m,) or probability rows (m, C), already validated."""
    m = z.shape[0]
    shifted = z - np.maximum.reduce(z, axis=1, keepdims=True)
    e = np.exp(shifted)
    total = np.add.reduce(e, axis=1, keepdims=True)
    logp = shifted - np.log(total)
    indices = target.ndim == 1
    rows = np.arange(m) if indices else None
    losses = -logp[rows, target] if indices else -np.add.reduce(target * logp, axis=1)

    def vjp(g):
        A = e / total  # softmax, made only when a gradient is wanted
        scale = g[:, None] if reduction == "none" else (g / m if reduction == "mean" else g)
        if isinstance(A, Tensor) or isinstance(g, Tensor):  # higher order: no in-place updates
            Y = target
            if indices:
                Y = np.zeros(A.shape, dtype=A.dtype)
                Y[rows, target] = 1
            return (A - Y) * scale
        if indices:
            A[rows, target] -= 1
        else:
            A -= target
        A *= scale
        return A

    if reduction == "none":
        return losses, vjp
    loss = np.add.reduce(losses)
    return (loss / m if reduction == "mean" else loss), vjp


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy: ``nll_loss(log_softmax(logits), target)`` fused into one op.

    ``target`` is class indices (an integer array or Tensor of shape (m,)) or one-hot/probability
    rows (m, C). For the mean reduction the gradient with respect to the logits is exactly
    (softmax(logits) − Y)/m, Y the one-hot (or probability) rows of ``target``.
    """
    if reduction not in _REDUCTIONS:
        _check_reduction(reduction, "cross_entropy")
    shape = logits.shape
    if len(shape) != 2:
        raise ValueError(f"cross_entropy: logits must have shape (m, classes), got {shape}")
    dtype = logits.dtype if logits.dtype.kind == "f" else np.dtype(np.float32)
    _, y = _check_target(target, shape[0], shape[1], dtype, "cross_entropy")
    return _softmax_cross_entropy(logits, target=y, reduction=reduction)

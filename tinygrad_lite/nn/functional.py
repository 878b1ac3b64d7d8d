"""Losses and functional forms: ``cross_entropy``, ``nll_loss`` and the ``dropout`` op.

``cross_entropy`` is ``log_softmax`` followed by ``nll_loss``, fused into one op; its
gradient with respect to the logits is exactly ``(softmax − Y) / m`` for the mean reduction.
``dropout(x, keep=mask)`` multiplies by a keep mask; ``dropout_mask`` draws one (``Dropout``
does both, so a compiled step draws a fresh mask at every replay, as eager steps do).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import defop
from ..mode import is_traced, is_tracing, refuse_traced
from ..ops import index_add, reshape, transpose
from ..tensor import Tensor

__all__ = ["cross_entropy", "nll_loss", "dropout", "dropout_mask"]

Array = np.ndarray


@defop(fresh_grads=True)
def dropout(x, keep):
    """x ⊙ keep, keep = mask / (1 − p) (inverted dropout);  ∂x = g ⊙ keep (∂keep = g ⊙ x)."""
    return x * keep, (lambda g: g * keep, lambda g: g * x)


@defop
def dropout_mask(*, shape=(), p=0.5, rng=None, dtype=np.float32):
    """keep = [u ≥ p] / (1 − p), u ~ U[0, 1) drawn from ``rng`` (a NumPy Generator); all zeros for p = 1.

    An op without array arguments (nothing to differentiate), so a compiled function draws
    it again at each replay, from the same generator in the same order as an eager call."""
    if p == 1.0:
        return np.zeros(shape, dtype), ()
    keep = (rng.random(shape, dtype=np.float32) >= p).astype(dtype)
    keep *= 1.0 / (1.0 - p)
    return keep, ()


_REDUCTIONS = ("mean", "sum", "none")


@defop(name="nll", fresh_grads=True)
def _nll_indices(logp, *, rows=None, labels=None, reduction="mean"):
    """L = −Σᵢ logp[i, yᵢ] (/m for the mean);  ∂logp = −g (/m) at [i, yᵢ], 0 elsewhere."""
    m = logp.shape[0]
    check_labels(labels, logp.shape[1], "nll_loss")
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


def check_labels(labels: Any, c: int, where: str) -> None:
    """Raise ValueError unless every class index lies in [0, c) (negative indices would wrap around)."""
    y = np.asarray(labels)
    if y.size and y.dtype.kind in "iu" and y.view(f"u{y.itemsize}").max() >= c:
        i = int(np.flatnonzero((y < 0) | (y >= c))[0])
        raise ValueError(f"{where}: label {int(y.flat[i])} at row {i} is outside [0, {c})")


def _check_target(target: Any, m: int, c: int, dtype: np.dtype, where: str,
                  ignore_index: int | None = None) -> tuple[str, Array]:
    """Validate the labels; returns ("indices", y) or ("probs", Y as ``dtype``). Class indices must lie in
    [0, c) or equal ``ignore_index``."""
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
        if ignore_index is not None:
            bad &= y != ignore_index
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            ignored = f" and is not ignore_index={ignore_index}" if ignore_index is not None else ""
            raise ValueError(
                f"{where}: label {int(y[i])} at row {i} is outside [0, {c}){ignored} "
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


@defop(name="cross_entropy", fresh_grads=True)
def _softmax_cross_entropy(z, *, target=None, reduction="mean"):
    """L = −Σᵢ Σⱼ Yᵢⱼ log softmax(zᵢ)ⱼ (/m for the mean), log-softmax shifted by the row max;
    ∂z = g ⊙ (softmax(z) − Y) (/m) — the hand-derived dZ_L = (A_L − Y)/m, in one node.

    ``target`` is class indices (m,) or probability rows (m, C), already validated (class indices
    are checked again here, so a compiled step checks each new batch's labels too)."""
    m = z.shape[0]
    if target.ndim == 1:
        check_labels(target, z.shape[1], "cross_entropy")
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


@defop(name="nll", fresh_grads=True)
def _nll_dense(logp, *, T=None, denom=1.0, reduction="mean"):
    """Lᵢ = −Σⱼ Tᵢⱼ logpᵢⱼ (Σᵢ Lᵢ / denom for the mean);  ∂logp = −g ⊙ T (/denom)."""
    losses = -(T * logp).sum(axis=1)
    if reduction == "none":
        return losses, lambda g: -g[:, None] * T
    total = losses.sum()
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):  # everything ignored: 0/0 = NaN, as PyTorch
            return total / denom, lambda g: T * (-g / denom)
    return total, lambda g: T * -g


@defop(name="cross_entropy", fresh_grads=True)
def _softmax_cross_entropy_dense(z, *, T=None, denom=1.0, reduction="mean"):
    """Lᵢ = −Σⱼ Tᵢⱼ log softmax(zᵢ)ⱼ (Σᵢ Lᵢ / denom for the mean), T the weighted (smoothed) targets;
    ∂zᵢ = gᵢ ⊙ (sᵢ softmax(zᵢ) − Tᵢ) (/denom), sᵢ = Σⱼ Tᵢⱼ."""
    shifted = z - np.maximum.reduce(z, axis=1, keepdims=True)
    e = np.exp(shifted)
    total = np.add.reduce(e, axis=1, keepdims=True)
    losses = -np.add.reduce(T * (shifted - np.log(total)), axis=1)
    s = T.sum(axis=1, keepdims=True)

    def vjp(g):
        scale = g[:, None] if reduction == "none" else (g / denom if reduction == "mean" else g)
        return (e / total * s - T) * scale

    if reduction == "none":
        return losses, vjp
    loss = np.add.reduce(losses)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (loss / denom if reduction == "mean" else loss), vjp


def _class_rows(x: Any, target: Any, where: str, what: str) -> tuple[Any, Any, tuple[int, ...] | None]:
    """(x as (m, C) rows, target for them, the shape of the per-element losses or None when x is 2-D):
    inputs (N, C, d1, ...) become N·d1·… rows of C, their targets (N, d1, ...) or (N, C, d1, ...) alike."""
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise ValueError(f"{where}: {what} must have shape (m, classes), got {shape} (or (m, classes, d1, ...))")
    if len(shape) == 2:
        return x, target, None
    y = target.data if isinstance(target, Tensor) else np.asarray(target)
    n, c, rest = shape[0], shape[1], shape[2:]
    if y.shape == (n,) + rest:
        y = y.reshape(-1)
    elif y.shape == shape:
        y = np.moveaxis(y, 1, -1).reshape(-1, c)
    else:
        raise ValueError(f"{where}: for {what} of shape {shape} the target must have shape {(n,) + rest} (class "
                         f"indices) or {shape} (probabilities), got {y.shape}")
    rows = reshape(transpose(x, axes=(0, *range(2, len(shape)), 1)), shape=(-1, c))
    return rows, y, (n,) + rest


def _class_weights(weight: Any, c: int, dtype: Any, where: str) -> Array | None:
    if weight is None:
        return None
    w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if w.shape != (c,) or w.dtype.kind not in "fiu" or not np.isfinite(w).all():
        raise ValueError(f"{where}: weight must hold {c} finite numbers (one per class), got shape {w.shape}, "
                         f"dtype {w.dtype}")
    return w.astype(dtype, copy=not is_tracing())  # compiled: the caller's array itself, read at each replay


def _dense_targets(kind: str, y: Array, c: int, w: Array | None, ignore_index: int, smoothing: float,
                   dtype: Any) -> tuple[Array, float]:
    """(T, denominator of the mean): Tᵢ = w ⊙ ((1 − ε) Yᵢ + ε / C) (0 for an ignored row), Y the one-hot
    rows of the labels or the probability rows; the mean divides by Σ w[yᵢ] over the rows not ignored
    (class indices) or by m (probability rows), as PyTorch."""
    m = y.shape[0]
    if kind == "indices":
        valid = y != ignore_index
        labels = np.where(valid, y, 0)
        T = np.zeros((m, c), dtype=dtype)
        T[np.arange(m), labels] = 1 - smoothing
        if smoothing:
            T += smoothing / c
        T *= valid[:, None]
        denom = float((w[labels] * valid).sum()) if w is not None else float(valid.sum())
    else:
        T = (y * (1 - smoothing) + smoothing / c).astype(dtype)
        denom = float(m)
    if w is not None:
        T *= w
    return T, denom


def _class_loss(fused: Any, fast: Any, where: str, what: str, x: Any, target: Any, weight: Any,
                ignore_index: int, reduction: str, smoothing: float) -> Tensor:
    _check_reduction(reduction, where)
    x, target, out_shape = _class_rows(x, target, where, what)
    m, c = x.shape
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    kind, y = _check_target(target, m, c, dtype, where, ignore_index)
    w = _class_weights(weight, c, dtype, where)
    fast_path = w is None and not smoothing and (kind == "probs" or not (y == ignore_index).any())
    if is_traced(target) and (out_shape is not None or not fast_path or y is not (
            target.data if isinstance(target, Tensor) else target)):
        refuse_traced(target, f"{where}'s target rows (for label smoothing, class weights, ignored labels, targets "
                              f"of another dtype or (N, C, d1, ...) inputs)")
    if fast_path:
        out = fast(x, kind, y)
    else:
        T, denom = _dense_targets(kind, y, c, w, ignore_index, smoothing, dtype)
        out = fused(x, T=T, denom=denom, reduction=reduction)
    return out if out_shape is None or reduction != "none" else reshape(out, shape=out_shape)


def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (m, C) (or (m, C, d1, ...)):
    Lᵢ = −w[yᵢ] logpᵢ[yᵢ] for class indices, Lᵢ = −Σⱼ wⱼ Yᵢⱼ logpᵢⱼ for probability rows.

    ``weight``: one weight per class; rows whose label is ``ignore_index`` count for nothing.
    ``reduction``: "mean" (Σᵢ Lᵢ / Σᵢ w[yᵢ] over the rows not ignored; / m for probability rows),
    "sum" or "none" (one loss per row), as PyTorch.
    """
    def fast(x: Any, kind: str, y: Array) -> Tensor:
        if kind == "indices":
            return _nll_indices(x, rows=np.arange(x.shape[0]), labels=y, reduction=reduction)
        return _nll_probs(x, probs=y, reduction=reduction)

    return _class_loss(_nll_dense, fast, "nll_loss", "predictions", input, target, weight, ignore_index, reduction,
                       0.0)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,  # noqa: A002
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy: ``nll_loss(log_softmax(input), target)`` fused into one op.

    ``target`` is class indices (an integer array or Tensor of shape (m,)) or one-hot/probability
    rows (m, C) (and (m, d1, ...) / (m, C, d1, ...) for inputs (m, C, d1, ...)). ``weight``,
    ``ignore_index`` and ``reduction`` as in `nll_loss`; ``label_smoothing`` ε mixes the targets
    with the uniform distribution: (1 − ε) Y + ε / C. Without these options the gradient with
    respect to the logits is exactly (softmax(input) − Y)/m for the mean reduction.
    """
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.floating)) or not (
            0.0 <= label_smoothing <= 1.0):
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return _class_loss(_softmax_cross_entropy_dense,
                       lambda x, kind, y: _softmax_cross_entropy(x, target=y, reduction=reduction),
                       "cross_entropy", "logits", input, target, weight, ignore_index, reduction,
                       float(label_smoothing))

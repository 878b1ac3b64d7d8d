"""Gradient checking: compare reverse-mode gradients with central finite differences.

Full mode builds both Jacobians, ∂out/∂input, element by element:
analytic rows by backpropagating one-hot cotangents, numeric columns by
(f(x + εeⱼ) − f(x − εeⱼ)) / 2ε. Fast mode compares vᵀ·J·u for a random cotangent v and a
random unit direction u per input: one backward pass, and two forward passes per direction.
An element passes when |analytic − numeric| ≤ atol + rtol·|numeric| (PyTorch's defaults).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .tensor import Tensor, no_grad

__all__ = ["GradcheckError", "GradcheckWarning", "gradcheck", "numeric_jacobian"]


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree (the message says where and by how much)."""


class GradcheckWarning(UserWarning):
    """Gradient checking with less than float64 precision."""


def _prepare(inputs: Sequence[Any]) -> tuple[list[Tensor], list[int]]:
    """float64 copies of the inputs, and the indices of those checked (float and requiring grad)."""
    if isinstance(inputs, (np.ndarray, Tensor)):
        inputs = [inputs]
    tensors, checked = [], []
    for i, value in enumerate(inputs):
        wants_grad = value.requires_grad if isinstance(value, Tensor) else True
        data = value.data if isinstance(value, Tensor) else np.asarray(value)
        if data.dtype.kind != "f":
            tensors.append(Tensor(data))
            continue
        if data.dtype != np.float64:
            warnings.warn(
                f"gradcheck: input {i} has dtype {data.dtype}; it is checked as float64 "
                f"(finite differences need float64 precision)",
                GradcheckWarning,
                stacklevel=3,
            )
        tensors.append(Tensor(np.array(data, dtype=np.float64), requires_grad=wants_grad))
        if wants_grad:
            checked.append(i)
    if not checked:
        raise ValueError(
            "gradcheck: no input needs a gradient (give float arrays, or Tensors with requires_grad=True)"
        )
    return tensors, checked


def _evaluate(fn: Callable[..., Tensor], tensors: list[Tensor]) -> Tensor:
    out = fn(*tensors)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if out.dtype.kind != "f":
        raise TypeError(f"gradcheck: fn must return a float Tensor, got dtype {out.dtype}")
    return out


def _forward(fn: Callable[..., Tensor], tensors: list[Tensor]) -> np.ndarray:
    with no_grad():
        return np.array(_evaluate(fn, tensors).data, dtype=np.float64)


def numeric_jacobian(
    fn: Callable[..., Tensor], tensors: list[Tensor], i: int, eps: float = 1e-6
) -> np.ndarray:
    """∂fn/∂tensors[i] by central differences, shape (out.size, tensors[i].size)."""
    x = tensors[i].data
    flat = x.reshape(-1)
    columns = []
    for j in range(flat.size):
        saved = flat[j]
        flat[j] = saved + eps
        plus = _forward(fn, tensors)
        flat[j] = saved - eps
        minus = _forward(fn, tensors)
        flat[j] = saved
        columns.append(((plus - minus) / (2 * eps)).reshape(-1))
    return np.stack(columns, axis=1) if columns else np.zeros((_forward(fn, tensors).size, 0))


def _analytic_vjp(fn: Callable[..., Tensor], tensors: list[Tensor], cotangent: np.ndarray,
                  checked: list[int]) -> list[np.ndarray]:
    for t in tensors:
        t.grad = None
    out = _evaluate(fn, tensors)
    if not out.requires_grad:
        return [np.zeros_like(tensors[i].data) for i in checked]
    out.backward(cotangent.reshape(out.shape).astype(out.dtype))
    return [np.zeros_like(tensors[i].data) if tensors[i].grad is None else tensors[i].grad for i in checked]


def _fail(mode: str, i: int, where: str, analytic: float, numeric: float, note: str = "") -> GradcheckError:
    err = abs(analytic - numeric)
    rel = err / max(abs(numeric), 1e-300)
    return GradcheckError(
        f"gradcheck ({mode}) failed for input {i}{where}: analytic {analytic:.10g} vs numeric "
        f"{numeric:.10g} (absolute error {err:.3g}, relative error {rel:.3g}){note}"
    )


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Any],
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast: bool = False,
    seed: int | None = None,
) -> bool:
    """Check ``fn``'s reverse-mode gradients against central finite differences, in float64.

    ``inputs``: arrays or Tensors; float arrays and Tensors with ``requires_grad`` are
    checked, the rest are constants. ``fn(*tensors)`` must return a Tensor (any shape).
    Returns True, or raises GradcheckError naming the input, the worst element, the analytic
    and numeric values and their absolute and relative error.
    """
    if eps <= 0 or atol < 0 or rtol < 0:
        raise ValueError(f"gradcheck: need eps > 0, atol >= 0, rtol >= 0; got {eps}, {atol}, {rtol}")
    tensors, checked = _prepare(inputs)
    out_size = _forward(fn, tensors).size
    if out_size == 0:
        return True  # an empty output has no derivatives to compare
    if fast:
        _check_fast(fn, tensors, checked, out_size, eps, atol, rtol, np.random.default_rng(seed))
    else:
        _check_full(fn, tensors, checked, out_size, eps, atol, rtol)
    return True


def _check_full(fn, tensors, checked, out_size, eps, atol, rtol) -> None:
    rows = []
    for k in range(out_size):
        onehot = np.zeros(out_size)
        onehot[k] = 1.0
        rows.append(_analytic_vjp(fn, tensors, onehot, checked))
    for position, i in enumerate(checked):
        analytic = np.stack([r[position].reshape(-1) for r in rows])
        numeric = numeric_jacobian(fn, tensors, i, eps)
        excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if excess.size and excess.max() > 0:
            k, j = np.unravel_index(int(np.argmax(excess)), excess.shape)
            element = np.unravel_index(j, tensors[i].shape) if tensors[i].ndim else ()
            where = f" at element {tuple(int(e) for e in element)}"
            if out_size > 1:
                where += f" (output element {k})"
            raise _fail("full", i, where, float(analytic[k, j]), float(numeric[k, j]))


def _directional(fn, tensors, x, saved, u, v, eps) -> float:
    """Numeric vᵀ·J·u by central differences along u (x is the perturbed input's array)."""
    x[...] = saved + eps * u
    plus = _forward(fn, tensors)
    x[...] = saved - eps * u
    minus = _forward(fn, tensors)
    x[...] = saved
    return float(np.dot((plus - minus).reshape(-1), v) / (2 * eps))


def _check_fast(fn, tensors, checked, out_size, eps, atol, rtol, rng, directions: int = 2) -> None:
    v = rng.standard_normal(out_size)
    v /= np.linalg.norm(v) or 1.0
    grads = _analytic_vjp(fn, tensors, v, checked)
    for position, i in enumerate(checked):
        x, grad = tensors[i].data, grads[position]
        saved = x.copy()
        for _ in range(directions):
            u = rng.standard_normal(x.shape)
            u /= np.linalg.norm(u) or 1.0
            analytic = float(np.sum(grad * u))
            numeric = _directional(fn, tensors, x, saved, u, v, eps)
            if abs(analytic - numeric) > atol + rtol * abs(numeric):
                note = _locate(fn, tensors, x, saved, grad, u, v, eps, atol, rtol)
                raise _fail("fast", i, " along a random direction (vᵀJu)", analytic, numeric, note)


def _locate(fn, tensors, x, saved, grad, u, v, eps, atol, rtol) -> str:
    """Bisect the failing direction u to one offending element (2 forward passes per halving)."""
    candidates = np.arange(x.size)
    while candidates.size > 1:
        halves = np.array_split(candidates, 2)
        errors = []
        for half in halves:
            part = np.zeros(x.size)
            part[half] = u.reshape(-1)[half]
            part = part.reshape(x.shape)
            errors.append(abs(float(np.sum(grad * part)) - _directional(fn, tensors, x, saved, part, v, eps)))
        candidates = halves[int(np.argmax(errors))]
    unit = np.zeros(x.size)
    unit[candidates[0]] = 1.0
    analytic = float(grad.reshape(-1)[candidates[0]])
    numeric = _directional(fn, tensors, x, saved, unit.reshape(x.shape), v, eps)
    element = tuple(int(e) for e in np.unravel_index(int(candidates[0]), x.shape))
    verdict = "fails" if abs(analytic - numeric) > atol + rtol * abs(numeric) else "passes alone"
    return (f"; bisecting the direction points at element {element}, which {verdict}: "
            f"analytic {analytic:.10g} vs numeric {numeric:.10g} there")

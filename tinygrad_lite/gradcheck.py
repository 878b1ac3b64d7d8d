"""Gradient checking: compare reverse-mode gradients with central finite differences.

Full mode builds both Jacobians, ∂out/∂input, element by element:
analytic rows by backpropagating one-hot cotangents, numeric columns by
(f(x + εeⱼ) − f(x − εeⱼ)) / 2ε. Fast mode compares vᵀ·J·u for a random cotangent v and a
random unit direction u per input: one backward pass, and two forward passes per direction.
An element passes when |analytic − numeric| ≤ atol + rtol·|numeric| (PyTorch's defaults);
a NaN on either side always fails.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .inplace import writable
from .tensor import Tensor, no_grad

__all__ = ["GradcheckError", "GradcheckWarning", "gradcheck", "numeric_jacobian"]


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree (the message says where and by how much)."""


class GradcheckWarning(UserWarning):
    """Gradient checking with less than float64 precision."""


def _as_input_list(inputs: Any) -> list[Any]:
    """``inputs`` as a list: one array or Tensor, or a sequence of array-likes."""
    if isinstance(inputs, (np.ndarray, Tensor)):
        return [inputs]
    if isinstance(inputs, (str, bytes, Mapping)) or not isinstance(inputs, Sequence):
        raise TypeError(
            f"gradcheck: inputs must be a list or tuple of arrays or Tensors, got {type(inputs).__name__}"
            f" (for a single input pass [x])"
        )
    return list(inputs)


def _prepare(inputs: Sequence[Any]) -> tuple[list[Tensor], list[int]]:
    """float64 copies of the inputs, and the indices of those checked (float and requiring grad)."""
    tensors, checked = [], []
    for i, value in enumerate(_as_input_list(inputs)):
        wants_grad = value.requires_grad if isinstance(value, Tensor) else True
        try:
            data = value.data if isinstance(value, Tensor) else np.asarray(value)
        except (TypeError, ValueError) as exc:  # ragged nested lists, objects NumPy cannot read
            raise TypeError(f"gradcheck: input {i} is not an array: {exc}") from None
        if data.dtype.kind not in "fiub":
            raise TypeError(f"gradcheck: input {i} has dtype {data.dtype}; need float (or integer/bool constants)")
        if data.dtype.kind != "f":
            tensors.append(Tensor(data))
            continue
        if wants_grad and not np.all(np.isfinite(data)):
            bad = tuple(int(e) for e in np.argwhere(~np.isfinite(data))[0])
            raise ValueError(f"gradcheck: input {i} has a non-finite value {data[bad]} at element {bad}")
        if data.dtype != np.float64 and wants_grad:
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
            "gradcheck: no input needs a gradient (give float arrays, or Tensors with requires_grad=True; "
            "integer and bool inputs, and Tensors without requires_grad, are constants)"
        )
    return tensors, checked


def _evaluate(fn: Callable[..., Tensor], tensors: list[Tensor]) -> Tensor:
    out = fn(*tensors)
    if not isinstance(out, Tensor):
        hint = " (check one output at a time, or combine them into one Tensor)" if isinstance(
            out, (tuple, list)) else ""
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}{hint}")
    if out.dtype.kind != "f":
        raise TypeError(f"gradcheck: fn must return a float Tensor, got dtype {out.dtype}")
    return out


def _forward(fn: Callable[..., Tensor], tensors: list[Tensor]) -> np.ndarray:
    with no_grad():
        return np.array(_evaluate(fn, tensors).data, dtype=np.float64)


def _first_forward(fn: Callable[..., Tensor], tensors: list[Tensor]) -> np.ndarray:
    """The first evaluation, with errors from bad input turned into messages about the inputs."""
    shapes = ", ".join(str(t.shape) for t in tensors)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: just call
        signature = None
    if signature is not None:
        try:
            signature.bind(*tensors)
        except TypeError as exc:
            raise TypeError(f"gradcheck: fn cannot take the {len(tensors)} inputs given ({exc})") from None
    try:
        with no_grad():
            out = _evaluate(fn, tensors)
    except ValueError as exc:
        raise ValueError(f"gradcheck: fn failed on inputs of shapes {shapes}: {exc}") from exc
    if out.dtype != np.float64:
        warnings.warn(
            f"gradcheck: fn returned dtype {out.dtype} for float64 inputs; the check loses precision "
            f"(keep the computation in float64)",
            GradcheckWarning,
            stacklevel=3,
        )
    value = np.array(out.data, dtype=np.float64)
    if not np.all(np.isfinite(value)):
        bad = tuple(int(e) for e in np.argwhere(~np.isfinite(value))[0])
        raise ValueError(
            f"gradcheck: fn's output is {value[bad]} at element {bad} for these inputs (shapes {shapes}); "
            f"finite differences need a finite output: are the inputs inside fn's domain?"
        )
    return value


def numeric_jacobian(
    fn: Callable[..., Tensor], tensors: list[Tensor], i: int, eps: float = 1e-6
) -> np.ndarray:
    """∂fn/∂tensors[i] by central differences, shape (out.size, tensors[i].size)."""
    columns = []
    with writable(tensors[i]):  # the input's own array is perturbed in place
        flat = tensors[i].data.reshape(-1)  # a view: the float64 copies made by gradcheck are contiguous
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
                  checked: list[int]) -> tuple[list[np.ndarray], bool]:
    """vᵀ·∂out/∂input for each checked input, and whether the output was connected to any."""
    for t in tensors:
        t.grad = None
    out = _evaluate(fn, tensors)
    if not out.requires_grad:
        return [np.zeros_like(tensors[i].data) for i in checked], False
    out.backward(cotangent.reshape(out.shape).astype(out.dtype))
    grads = [np.zeros_like(tensors[i].data) if tensors[i].grad is None else tensors[i].grad for i in checked]
    return grads, True


_CUT = ("; fn's output does not require grad, so its analytic gradient is 0: is the graph cut "
        "(.detach(), .data, no_grad, or a new Tensor made from arrays)?")


def _fail(mode: str, i: int, where: str, analytic: float, numeric: float, note: str = "") -> GradcheckError:
    err = abs(analytic - numeric)
    rel = err / abs(numeric) if numeric != 0 else (0.0 if err == 0 else float("inf"))
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

    ``inputs``: a list or tuple of arrays or Tensors; float arrays and Tensors with
    ``requires_grad`` are checked, the rest are constants. ``fn(*tensors)`` must return a
    float Tensor (any shape). ``fast=True`` compares vᵀJu for a random cotangent v and
    random directions u (drawn from ``seed``) instead of the full Jacobian.
    Returns True, or raises GradcheckError naming the input, the worst element, the analytic
    and numeric values and their absolute and relative error. Bad input (a non-Tensor
    output, nothing to check, shapes fn cannot combine, a non-finite output) raises
    TypeError or ValueError before any comparison.
    """
    if not callable(fn):
        raise TypeError(f"gradcheck: fn must be callable, got {type(fn).__name__}")
    if not (0 < eps < math.inf and 0 <= atol < math.inf and 0 <= rtol < math.inf):  # NaN fails too
        raise ValueError(f"gradcheck: need eps > 0, atol >= 0, rtol >= 0, all finite; got {eps}, {atol}, {rtol}")
    tensors, checked = _prepare(inputs)
    out_size = _first_forward(fn, tensors).size
    if out_size == 0:
        return True  # an empty output has no derivatives to compare
    if fast:
        _check_fast(fn, tensors, checked, out_size, eps, atol, rtol, np.random.default_rng(seed))
    else:
        _check_full(fn, tensors, checked, out_size, eps, atol, rtol)
    return True


def _excess(analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """How far each pair is outside the tolerance (> 0 fails); NaN on either side counts as +inf."""
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    return np.where(np.isnan(excess), np.inf, excess)


def _check_full(fn, tensors, checked, out_size, eps, atol, rtol) -> None:
    rows, connected = [], True
    out_shape = None
    for k in range(out_size):
        onehot = np.zeros(out_size)
        onehot[k] = 1.0
        grads, connected = _analytic_vjp(fn, tensors, onehot, checked)
        rows.append(grads)
    for position, i in enumerate(checked):
        analytic = np.stack([r[position].reshape(-1) for r in rows])
        numeric = numeric_jacobian(fn, tensors, i, eps)
        excess = _excess(analytic, numeric, atol, rtol)
        if excess.size and excess.max() > 0:
            k, j = np.unravel_index(int(np.argmax(excess)), excess.shape)
            element = np.unravel_index(j, tensors[i].shape) if tensors[i].ndim else ()
            where = f" at element {tuple(int(e) for e in element)}"
            if out_size > 1:
                out_shape = out_shape or _forward(fn, tensors).shape
                where += f" (output element {tuple(int(e) for e in np.unravel_index(k, out_shape))})"
            bad = int((excess > 0).sum())
            note = f"; {bad} of {excess.size} Jacobian entries are out of tolerance" if bad > 1 else ""
            raise _fail("full", i, where, float(analytic[k, j]), float(numeric[k, j]),
                        note + ("" if connected else _CUT))


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
    grads, connected = _analytic_vjp(fn, tensors, v, checked)
    for position, i in enumerate(checked):
        x, grad = tensors[i].data, grads[position]
        if x.size == 0:
            continue
        saved = x.copy()
        with writable(tensors[i]):  # the input's own array is perturbed in place
            for _ in range(directions):
                u = np.asarray(rng.standard_normal(x.shape))
                u /= np.linalg.norm(u) or 1.0
                analytic = float(np.sum(grad * u))
                numeric = _directional(fn, tensors, x, saved, u, v, eps)
                if _excess(np.float64(analytic), np.float64(numeric), atol, rtol) > 0:
                    note = _locate(fn, tensors, x, saved, grad, u, v, eps, atol, rtol)
                    raise _fail("fast", i, " along a random direction (vᵀJu)", analytic, numeric,
                                note + ("" if connected else _CUT))


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
            error = abs(float(np.sum(grad * part)) - _directional(fn, tensors, x, saved, part, v, eps))
            errors.append(np.inf if np.isnan(error) else error)
        candidates = halves[int(np.argmax(errors))]
    unit = np.zeros(x.size)
    unit[candidates[0]] = 1.0
    analytic = float(grad.reshape(-1)[candidates[0]])
    numeric = _directional(fn, tensors, x, saved, unit.reshape(x.shape), v, eps)
    element = tuple(int(e) for e in np.unravel_index(int(candidates[0]), x.shape))
    verdict = "fails" if _excess(np.float64(analytic), np.float64(numeric), atol, rtol) > 0 else "passes alone"
    return (f"; bisecting the direction points at element {element}, which {verdict}: "
            f"analytic {analytic:.10g} vs numeric {numeric:.10g} there")

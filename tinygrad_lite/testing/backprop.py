"""`check_backprop`: check a hand-derived backward pass written in NumPy against exact gradients.

    loss = loss_fn(params, *data)     # your forward pass and loss, written with NumPy
    grads = grads_fn(params, *data)   # your hand-derived backward pass (same structure as params)
    check_backprop(loss_fn, grads_fn, params, *data)

``loss_fn`` runs on float64 Tensor copies of the parameters (NumPy calls on Tensors are
recorded, see `tinygrad_lite.numpy_api`); reverse mode gives the exact ∂loss/∂p of every
parameter p, which is compared with yours element by element, with NumPy's rule:

    ok  ⇔  |yours − correct| ≤ atol + rtol·|correct|  for every element.

The report gives, per parameter, max |yours − correct| and the max relative error
|yours − correct| / max(|yours| + |correct|, 1e-8). A mismatch raises `BackpropMismatch`
(an AssertionError) naming the parameter, its worst element, your value and the correct
one, and a hint when the pattern is a common mistake: a uniform factor (a missing or extra
1/m, a sign), a transposed gradient, a sum over the wrong axis or a lost ``keepdims``.
Your arrays are never passed to your functions: each call gets its own float64 copies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd import grad
from ..tensor import Tensor

__all__ = ["BackpropMismatch", "BackpropReport", "ParamCheck", "check_backprop", "compare_arrays", "format_table"]

Params = Mapping[str, Any] | Sequence[Any]


class BackpropMismatch(AssertionError):
    """Your gradient of a parameter differs from the exact one (``.parameter``, ``.report``)."""

    def __init__(self, message: str, report: BackpropReport, check: ParamCheck) -> None:
        super().__init__(message)
        self.report, self.check, self.parameter = report, check, check.name


# ------------------------------------------------------------------ one array
@dataclass
class ParamCheck:
    """One parameter's comparison. ``index``/``yours``/``correct``: the worst element;
    ``problem``: why no element-wise comparison was possible (a missing gradient, a shape)."""

    name: str
    shape: tuple[int, ...] | None
    max_abs: float = math.inf
    max_rel: float = math.inf
    ok: bool = False
    bad: int = 0
    index: tuple[int, ...] | None = None
    yours: float | None = None
    correct: float | None = None
    problem: str = ""
    hints: list[str] = field(default_factory=list)

    def describe(self, yours: str = "yours", correct: str = "correct") -> str:
        """The worst element, or the problem, and the hints, as lines of text."""
        if self.problem:
            lines = [f"{self.name!r}: {self.problem}"]
        else:
            index = f"[{', '.join(map(str, self.index or ()))}]"
            at = f"element {index}" if " " in self.name else self.name + (index if self.index else "")
            size = int(np.prod(self.shape)) if self.shape is not None else 0
            lines = [f"{self.name!r}: worst element {at}: {yours} {self.yours:.6g}, {correct} {self.correct:.6g} "
                     f"(|difference| {abs(self.yours - self.correct):.3g}); {self.bad} of {size} element(s) "
                     f"out of tolerance"]
        return "\n".join(lines + [f"  hint: {h}" for h in self.hints])


def _shape(shape: tuple[int, ...] | None) -> str:
    return "-" if shape is None else "x".join(map(str, shape)) or "scalar"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], failed: Sequence[bool],
                 flag: str = "  <-- mismatch", left: int = 2) -> str:
    """A text table: the first ``left`` columns left-aligned, the others right-aligned; ``flag`` ends failing rows."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:<{w}}" if i < left else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header)] + [line(r) + (flag if bad else "") for r, bad in zip(rows, failed)])


def _nonzero_factor(yours: np.ndarray, correct: np.ndarray) -> float | None:
    """c when yours ≈ c·correct everywhere (c ≠ 0 and correct not all zero), else None."""
    energy = float(np.vdot(correct, correct))
    if energy == 0 or not np.any(yours):
        return None
    c = float(np.vdot(yours, correct)) / energy
    scale = abs(c) * float(np.abs(correct).max())
    if c == 0 or not np.allclose(yours, c * correct, rtol=1e-4, atol=1e-4 * scale):
        return None
    return c


def _near(x: float, y: float) -> bool:
    return abs(x - y) <= 1e-6 * max(abs(y), 1.0)


def _factor_hint(c: float, batch: frozenset[int], general: bool) -> str | None:
    """Words for "yours = c × correct": a sign, a missing or extra 1/m, or any constant."""
    sign, a = c < 0, abs(c)
    n, inv = round(a), round(1 / a)
    what = None
    if _near(a, 1):
        return "wrong sign: yours is −1 × the correct gradient (e.g. Y − A for A − Y, or a dropped minus of the loss)"
    if n >= 2 and _near(a, n):
        m = f"m = {n}, the batch size of your data" if n in batch else f"is m = {n}?"
        what = f"yours is {n} × the correct gradient everywhere: a missing 1/m ({m})"
    elif inv >= 2 and _near(1 / a, inv):
        m = f"m = {inv}, the batch size of your data" if inv in batch else f"is m = {inv}?"
        what = f"yours is 1/{inv} of the correct gradient everywhere: an extra 1/m, divided by m twice? ({m})"
    elif general:
        what = (f"yours is {a:.6g} × the correct gradient everywhere: a uniform factor (a constant missing or "
                f"extra, such as the ½ of a squared error)")
    if what is None:
        return None
    return f"wrong sign and {what[0].lower()}{what[1:]}" if sign else what


def _values_hint(yours: np.ndarray, correct: np.ndarray, batch: frozenset[int], prefix: str = "") -> str | None:
    c = _nonzero_factor(yours, correct)
    if c is None:
        return None
    if _near(c, 1):
        return prefix + "the values are right"
    hint = _factor_hint(c, batch, general=np.count_nonzero(correct) >= 2)
    return None if hint is None else prefix + hint


def _same_shape_hints(yours: np.ndarray, correct: np.ndarray, batch: frozenset[int]) -> list[str]:
    if not np.any(yours) and np.any(correct):
        return ["yours is zero everywhere (a mask or a cached array that is never set?)"]
    hint = _values_hint(yours, correct, batch)
    if hint is not None and hint != "the values are right":
        return [hint]
    if correct.ndim == 2 and correct.shape[0] == correct.shape[1] and not np.allclose(correct, correct.T):
        hint = _values_hint(yours.T, correct, batch)
        if hint == "the values are right":
            return ["transposed: yours is the transpose of the correct gradient (e.g. dZ.T @ A for A.T @ dZ)"]
        if hint is not None:
            return [f"transposed: yours.T is the correct gradient up to a factor; {hint}"]
    return []


def _shape_hints(yours: np.ndarray, correct: np.ndarray, batch: frozenset[int]) -> list[str]:
    """Why the shapes differ: a transpose, a lost keepdims, no sum or a sum over the wrong axis."""
    if yours.ndim == correct.ndim == 2 and yours.shape == correct.shape[::-1]:
        hint = _values_hint(yours.T, correct, batch, prefix="; yours.T: ")
        return ["transposed: yours has the parameter's shape reversed (e.g. dZ.T @ A for A.T @ dZ)"
                + ("" if hint is None else hint)]
    if yours.size == correct.size and np.squeeze(yours).shape == np.squeeze(correct).shape:
        hint = _values_hint(yours.reshape(correct.shape), correct, batch, prefix="; reshaped: ")
        return [f"a lost keepdims? yours has the right elements in shape {yours.shape}; keep the parameter's "
                f"shape {correct.shape} (np.sum(..., keepdims=True))" + ("" if hint is None else hint)]
    for axis in range(yours.ndim):
        summed = yours.sum(axis=axis)
        if summed.size == correct.size and np.allclose(summed.reshape(correct.shape), correct):
            return [f"not summed over axis {axis}: np.sum(yours, axis={axis}) is the correct gradient "
                    f"(reshaped to {correct.shape})"]
    per_example = [n for n in yours.shape if n in batch and n not in correct.shape]
    if per_example:
        return [f"summed over the wrong axis? yours has an axis of size {per_example[0]}, one entry per example "
                f"(the batch size); sum over the examples' axis instead, keeping the parameter's shape "
                f"{correct.shape} (keepdims=True)"]
    return []


def compare_arrays(name: str, yours: Any, correct: np.ndarray, *, rtol: float = 1e-5, atol: float = 1e-8,
                   batch_sizes: Sequence[int] = ()) -> ParamCheck:
    """Compare ``yours`` with ``correct`` element by element (see the module docstring) and
    diagnose a mismatch; ``batch_sizes`` are the sizes a 1/m or a per-example axis can have."""
    correct = np.asarray(correct, dtype=np.float64)
    batch = frozenset(int(n) for n in batch_sizes if n > 1)
    if yours is None:
        return ParamCheck(name, correct.shape, problem="grads_fn returned no gradient for it (a missing key?)")
    if isinstance(yours, Tensor):
        yours = yours.detach().numpy()
    try:
        yours = np.asarray(yours, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return ParamCheck(name, correct.shape, problem=f"grads_fn returned a {type(yours).__name__} that is not "
                                                       f"an array of numbers ({exc})")
    if yours.shape != correct.shape:
        return ParamCheck(name, correct.shape, problem=f"grads_fn returned shape {yours.shape} for a parameter "
                                                       f"of shape {correct.shape}",
                          hints=_shape_hints(yours, correct, batch))
    diff = np.abs(yours - correct)
    excess = np.where(np.isnan(diff), np.inf, diff - (atol + rtol * np.abs(correct)))
    bad = int((excess > 0).sum())
    check = ParamCheck(name, correct.shape, ok=bad == 0, bad=bad)
    if diff.size == 0:
        check.max_abs = check.max_rel = 0.0
        return check
    check.max_abs = float(np.max(diff))
    check.max_rel = float(np.max(diff / np.maximum(np.abs(yours) + np.abs(correct), 1e-8)))
    worst = np.unravel_index(int(np.argmax(excess)), correct.shape)
    check.index = tuple(int(i) for i in worst)
    check.yours, check.correct = float(yours[worst]), float(correct[worst])
    if not check.ok:
        check.hints = _same_shape_hints(yours, correct, batch)
    return check


# ----------------------------------------------------------------- the report
@dataclass
class BackpropReport:
    """Per-parameter results of `check_backprop`; ``str(report)`` is the table."""

    checks: list[ParamCheck]
    loss: float
    rtol: float
    atol: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def __getitem__(self, name: str) -> ParamCheck:
        return {c.name: c for c in self.checks}[name]

    def table(self) -> str:
        rows = [[c.name, _shape(c.shape), "-" if c.problem else f"{c.max_abs:.2e}",
                 "-" if c.problem else f"{c.max_rel:.2e}", "OK" if c.ok else "WRONG"] for c in self.checks]
        return format_table(["parameter", "shape", "max abs err", "max rel err", "ok"], rows,
                            [not c.ok for c in self.checks])

    def __str__(self) -> str:
        verdict = "OK: every gradient matches" if self.ok else "WRONG: some gradients differ"
        return f"{self.table()}\n{verdict} (loss {self.loss:.6g}; rtol {self.rtol:g}, atol {self.atol:g})"

    def failure(self) -> str:
        """The mismatch message: the wrong parameters, each one's worst element and hints, and the table."""
        wrong = [c for c in self.checks if not c.ok]
        head = (f"check_backprop: wrong gradient for {wrong[0].name!r} ({len(wrong)} of {len(self.checks)} "
                f"parameter(s) wrong: {', '.join(c.name for c in wrong)}; rtol {self.rtol:g}, atol {self.atol:g})")
        return "\n".join([head, *(c.describe() for c in wrong), "", self.table()])


# ------------------------------------------------------------- check_backprop
def _names_and_values(params: Any) -> tuple[list[str], list[Any]]:
    if isinstance(params, Mapping):
        return [str(k) for k in params], list(params.values())
    if isinstance(params, (list, tuple)):
        return [f"params[{i}]" for i in range(len(params))], list(params)
    raise TypeError(f"check_backprop: params must be a dict, list or tuple of arrays, got {type(params).__name__}")


def _rebuild(params: Any, values: list[Any]) -> Any:
    if isinstance(params, Mapping):
        return dict(zip(params.keys(), values))
    return type(params)(values) if type(params) in (list, tuple) else list(values)


def _float64_param(name: str, value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().numpy()
    array = np.asarray(value) if isinstance(value, (np.ndarray, np.generic, float)) else None
    if array is None or array.dtype.kind != "f":
        what = f"dtype {array.dtype}" if array is not None else f"type {type(value).__name__}"
        raise TypeError(f"check_backprop: parameter {name!r} has {what}; parameters must be float NumPy arrays "
                        f"(e.g. np.asarray({name}, dtype=np.float64))")
    return np.array(array, dtype=np.float64)


def _copy_data(x: Any) -> Any:
    """A copy for one call: float arrays as float64, other arrays as they are, containers recursively."""
    if isinstance(x, Tensor):
        x = x.detach().numpy()
    if isinstance(x, np.ndarray):
        return np.array(x, dtype=np.float64) if x.dtype.kind == "f" else x.copy()
    if isinstance(x, Mapping):
        return {k: _copy_data(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_copy_data(v) for v in x) if type(x) in (list, tuple) else x
    return x


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and bool(
            np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return True


def _batch_sizes(data: tuple) -> set[int]:
    """Axis sizes shared by every data array (the batch size, whichever layout), else all of them."""
    shapes = [np.shape(x) for x in data if isinstance(x, (np.ndarray, Tensor)) and np.ndim(x) > 0]
    if not shapes:
        return set()
    shared = set.intersection(*(set(s) for s in shapes))
    return shared or set().union(*(set(s) for s in shapes))


def _run_loss(loss_fn: Callable, tensors: Any, data: tuple, originals: tuple) -> Any:
    try:
        loss = loss_fn(tensors, *data)
    except (TypeError, RuntimeError) as exc:
        hint = ""
        if "cannot convert a Tensor" in str(exc):  # NumPy converted a parameter: ndarray.dot has no protocol
            hint = ("; an ndarray method called with a Tensor (X.dot(W)) converts it: write np.dot(X, W) or X @ W")
        raise type(exc)(f"check_backprop: loss_fn failed on Tensor parameters: {exc}{hint}") from exc
    for i, (now, before) in enumerate(zip(data, originals)):
        if not _same(now, before):
            raise ValueError(f"check_backprop: loss_fn changed data argument {i} in place (e.g. X -= X.mean() or "
                             f"Y[...] = ...); your training code would see that change too: compute new arrays "
                             f"instead")
    if isinstance(loss, (tuple, list)):
        raise TypeError(f"check_backprop: loss_fn returned a {type(loss).__name__}; return only the scalar loss "
                        f"(e.g. lambda params, *data: forward(params, *data)[0])")
    if not isinstance(loss, Tensor) or not loss.requires_grad:
        what = (f"a Tensor that does not require grad ({loss.detach().numpy()!r})" if isinstance(loss, Tensor)
                else f"a plain {type(loss).__name__} ({loss!r})")
        raise TypeError(
            f"check_backprop: loss_fn returned {what}, not a Tensor that depends on the parameters: the loss is "
            f"detached from them. The parameters arrive as Tensors; compute the loss from them with NumPy calls "
            f"and return it as it is (no float(), .item(), .data, .detach(), np.array(...) or parameters left unused)")
    if loss.data.size != 1:
        raise ValueError(f"check_backprop: loss_fn must return a scalar loss, got a Tensor of shape {loss.shape}; "
                         f"reduce it over the examples (np.sum or np.mean)")
    if not np.isfinite(loss.data).all():
        raise ValueError(f"check_backprop: loss_fn returned {float(loss.data.reshape(-1)[0])} for these parameters; "
                         f"a finite loss is needed (log of 0? overflow in exp?)")
    return loss


def _user_grads(result: Any, params: Any, names: list[str]) -> tuple[list[Any], list[str]]:
    """Your gradients in params' order (None when missing) and the names of extra ones."""
    if isinstance(params, Mapping):
        if not isinstance(result, Mapping):
            raise TypeError(f"check_backprop: grads_fn must return a dict keyed like params ({', '.join(names)}), "
                            f"got {type(result).__name__}")
        keys = list(params.keys())
        if not any(k in result for k in keys):  # tutorials' names: dW1 for W1
            keys = [f"d{k}" if f"d{k}" in result else k for k in keys]
        used = set(keys)
        return [result.get(k) for k in keys], [str(k) for k in result if k not in used]
    if isinstance(result, Mapping) or not isinstance(result, (list, tuple)):
        raise TypeError(f"check_backprop: grads_fn must return a list or tuple like params ({len(names)} arrays), "
                        f"got {type(result).__name__}")
    values = list(result) + [None] * (len(names) - len(result))
    return values[: len(names)], [f"params[{i}]" for i in range(len(names), len(result))]


def _check_finite(name: str, yours: Any, correct: np.ndarray) -> None:
    """NaN or inf in your gradient is an error of its own (the correct gradient is finite)."""
    try:
        y = np.asarray(yours.detach().numpy() if isinstance(yours, Tensor) else yours)
    except (TypeError, ValueError):  # not an array at all: compare_arrays reports it
        return
    if yours is None or y.dtype.kind not in "fc" or np.isfinite(y).all():
        return
    where = tuple(int(i) for i in np.argwhere(~np.isfinite(y))[0])
    hint = f"; the correct value there is {correct[where]:.6g}" if y.shape == correct.shape else ""
    raise ValueError(f"check_backprop: grads_fn returned {y[where]} in the gradient of {name!r} at element {where} "
                     f"({int((~np.isfinite(y)).sum())} of {y.size} elements are not finite){hint}")


def check_backprop(loss_fn: Callable[..., Any], grads_fn: Callable[..., Any], params: Params, *data: Any,
                   rtol: float = 1e-5, atol: float = 1e-8) -> BackpropReport:
    """Check your hand-derived gradients ``grads_fn(params, *data)`` against exact ones of ``loss_fn``.

    ``params``: a dict, list or tuple of float arrays; ``grads_fn`` returns gradients in the same
    structure (a dict may name them ``dW1`` for ``W1``). ``loss_fn(params, *data)`` returns the
    scalar loss; it runs with the parameters as float64 Tensors and float data as float64 copies.
    Returns the per-parameter `BackpropReport`; raises `BackpropMismatch` when any gradient is
    wrong (or missing, extra, of the wrong shape), TypeError/ValueError for bad input.
    """
    __tracebackhide__ = True  # pytest shows the caller's line
    if not (0 <= rtol < math.inf and 0 <= atol < math.inf):
        raise ValueError(f"check_backprop: need finite rtol >= 0 and atol >= 0, got {rtol} and {atol}")
    names, values = _names_and_values(params)
    arrays = [_float64_param(n, v) for n, v in zip(names, values)]
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    originals = tuple(_copy_data(x) for x in data)
    loss = _run_loss(loss_fn, _rebuild(params, tensors), tuple(_copy_data(x) for x in data), originals)
    exact = grad(loss, tensors, allow_unused=True)
    correct = [np.zeros_like(a) if g is None else g.detach().numpy() for a, g in zip(arrays, exact)]
    result = grads_fn(_rebuild(params, [a.copy() for a in arrays]), *(_copy_data(x) for x in data))
    yours, extra = _user_grads(result, params, names)
    for name, y, c in zip(names, yours, correct):
        _check_finite(name, y, c)
    batch = sorted(_batch_sizes(data))
    checks = [compare_arrays(n, y, c, rtol=rtol, atol=atol, batch_sizes=batch)
              for n, y, c in zip(names, yours, correct)]
    checks += [ParamCheck(n, None, problem="grads_fn returned a gradient for it, but it is not a parameter")
               for n in extra]
    report = BackpropReport(checks, float(loss.data.reshape(-1)[0]), rtol, atol)
    if not report.ok:
        raise BackpropMismatch(report.failure(), report, next(c for c in checks if not c.ok))
    return report

"""Second-derivative checking: gradcheck applied to the gradient itself (PyTorch's gradgradcheck).

For ``out = fn(x₁, …, xₙ)`` and a cotangent v of out's shape, the VJP

    F(x₁, …, xₙ, v) = (vᵀ·∂out/∂x₁, …, vᵀ·∂out/∂xₙ)

is a function of the inputs *and* of v. Its analytic derivatives come from backpropagating
through the gradient recorded with ``autograd.grad(create_graph=True)``:

    ∂F_a/∂x_b = Σₖ vₖ ∂²outₖ/∂x_b∂x_a        (the Hessian blocks of vᵀ·out)
    ∂F_a/∂v   = ∂out/∂x_a                      (the Jacobian, as the recorded graph sees it)

and gradcheck compares them with central differences of F, whose values are the gradients
``backward()`` computes (first order, on arrays). Before that, F's value recorded with
``create_graph=True`` must equal backward's at the point itself: finite differences cannot
see a constant offset between the two.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .autograd import grad
from .gradcheck import GradcheckError, GradcheckWarning, _excess, _first_forward, _prepare, gradcheck
from .ops import concatenate
from .tensor import Tensor, enable_grad, is_grad_enabled

__all__ = ["gradgradcheck"]


def gradgradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Any],
    grad_outputs: Any = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast: bool = False,
    seed: int | None = None,
) -> bool:
    """Check ``fn``'s second derivatives: gradcheck of (x, v) ↦ vᵀ·∂fn(x)/∂x, in float64.

    ``inputs`` as for `gradcheck` (float arrays and Tensors with ``requires_grad`` are
    differentiated, the rest are constants). ``grad_outputs`` is the cotangent v (fn's
    output shape); by default a standard normal one drawn from ``seed``. v is an input of the
    checked function too, so the Jacobian recorded for the gradient is checked as well.
    ``fast=True`` uses gradcheck's vᵀJu mode. Returns True, or raises GradcheckError naming
    the input whose gradient, and the input (or the cotangent) in which its derivative, is
    wrong. Bad input raises TypeError or ValueError, as in gradcheck; an op that cannot be
    differentiated twice raises the engine's error. As in gradcheck, finite differences run
    fn under no_grad: a fn that calls autograd.grad itself enters enable_grad().
    """
    if not callable(fn):
        raise TypeError(f"gradgradcheck: fn must be callable, got {type(fn).__name__}")
    if not (0 < eps < math.inf and 0 <= atol < math.inf and 0 <= rtol < math.inf):  # NaN fails too
        raise ValueError(f"gradgradcheck: need eps > 0, atol >= 0, rtol >= 0, all finite; got {eps}, {atol}, {rtol}")
    with _renamed():
        tensors, checked = _prepare(inputs)
        out = _first_forward(fn, tensors)
    if out.size == 0:
        return True  # no output, no gradient to differentiate
    rng = np.random.default_rng(seed)
    v = Tensor(_cotangent(grad_outputs, out.shape, rng), requires_grad=True)
    _check_recorded_value(fn, tensors, checked, v, atol, rtol)
    n = len(tensors)
    options = {"eps": eps, "atol": atol, "rtol": rtol, "fast": fast, "seed": int(rng.integers(2**63 - 1))}
    try:
        gradcheck(_vjp(fn, n, checked, checked), [*tensors, v], **options)
    except GradcheckError as failure:
        raise _locate(fn, [*tensors, v], checked, options) or GradcheckError(
            f"gradgradcheck failed (all second derivatives checked together): {failure}") from None
    return True


def _vjp(fn: Callable[..., Tensor], n: int, wrt: list[int], rows: list[int]) -> Callable[..., Tensor]:
    """(x₁, …, xₙ, v) ↦ the gradients of vᵀ·fn(x) for inputs ``rows`` (of the differentiated ``wrt``).

    One row keeps its input's shape; several are flattened and joined. Recorded
    (create_graph=True) when grad mode is on, as in gradcheck's analytic pass; plain first
    order under gradcheck's no_grad finite differences."""
    def vjp(*args: Tensor) -> Tensor:
        xs, v = list(args[:n]), args[n]
        create_graph = is_grad_enabled()
        with enable_grad():
            for i in wrt:  # an input that is a constant of this check is still differentiated in fn
                if not xs[i].requires_grad:
                    xs[i] = Tensor(xs[i].data, requires_grad=True)
            grads = _gradients(fn(*xs), [xs[i] for i in wrt], v, create_graph)
            picked = [grads[wrt.index(i)] for i in rows]
            return picked[0] if len(picked) == 1 else concatenate([g.reshape(-1) for g in picked])

    return vjp


def _gradients(out: Tensor, wrt: list[Tensor], v: Tensor, create_graph: bool) -> list[Tensor]:
    """vᵀ·∂out/∂x for each x in ``wrt`` (zeros where out does not depend on x)."""
    if not out.requires_grad:
        return [Tensor(np.zeros(x.shape, dtype=x.dtype)) for x in wrt]
    found = grad(out, wrt, v, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return [Tensor(np.zeros(x.shape, dtype=x.dtype)) if g is None else g for x, g in zip(wrt, found)]


def _cotangent(grad_outputs: Any, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """The cotangent v as a float64 array of fn's output ``shape``: the given one, checked, or a random one."""
    if grad_outputs is None:
        return rng.standard_normal(shape)
    try:
        v = np.asarray(grad_outputs.data if isinstance(grad_outputs, Tensor) else grad_outputs)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"gradgradcheck: grad_outputs is not an array: {exc}") from None
    if v.dtype.kind not in "fiu":
        raise TypeError(f"gradgradcheck: grad_outputs has dtype {v.dtype}; need a float array")
    if v.shape != shape:
        raise ValueError(f"gradgradcheck: grad_outputs has shape {v.shape} but fn's output has shape {shape}")
    if not np.all(np.isfinite(v)):
        bad = tuple(int(e) for e in np.argwhere(~np.isfinite(v))[0])
        raise ValueError(f"gradgradcheck: grad_outputs has a non-finite value {v[bad]} at element {bad}")
    if v.dtype.kind == "f" and v.dtype != np.float64:
        warnings.warn(f"gradgradcheck: grad_outputs has dtype {v.dtype}; it is used as float64",
                      GradcheckWarning, stacklevel=3)
    return np.array(v, dtype=np.float64)


def _check_recorded_value(fn, tensors, checked, v, atol, rtol) -> None:
    """The gradients must be finite, and the same with create_graph=True as from plain backward."""
    with enable_grad():
        wrt = [tensors[i] for i in checked]
        out = fn(*tensors)
        plain = _gradients(out, wrt, v, create_graph=False)
        recorded = _gradients(out, wrt, v, create_graph=True)
    for i, p, r in zip(checked, plain, recorded):
        p, r = p.data, r.data
        if not np.all(np.isfinite(p)):
            bad = tuple(int(e) for e in np.argwhere(~np.isfinite(p))[0])
            raise ValueError(
                f"gradgradcheck: the gradient of input {i} is {p[bad]} at element {bad} for these inputs; finite "
                f"differences need a finite gradient: are the inputs inside the domain where fn is twice "
                f"differentiable?"
            )
        excess = _excess(np.asarray(r, dtype=np.float64), np.asarray(p, dtype=np.float64), atol, rtol)
        if excess.size and excess.max() > 0:
            bad = np.unravel_index(int(np.argmax(excess)), p.shape) if p.ndim else ()
            raise GradcheckError(
                f"gradgradcheck failed for input {i}: its gradient recorded with create_graph=True is "
                f"{float(r[bad]):.10g} at element {tuple(int(e) for e in bad)}, but backward() gives "
                f"{float(p[bad]):.10g}: an op's VJP computes something else on Tensors than on arrays"
            )


def _locate(fn, tensors, checked, options) -> GradcheckError | None:
    """The first failing block ∂(gradient of input a)/∂(input b or the cotangent), checked alone."""
    n = len(tensors) - 1
    for a in checked:
        for b in [*checked, n]:
            alone = [t if j == b else Tensor(t.data) for j, t in enumerate(tensors)]  # only b is perturbed
            try:
                gradcheck(_vjp(fn, n, checked, [a]), alone, **options)
            except GradcheckError as failure:
                if b == n:
                    what = (f"for the cotangent v (input {n} below): the derivative of input {a}'s gradient with "
                            f"respect to v, the Jacobian ∂out/∂input {a} recorded with create_graph=True, is wrong")
                else:
                    what = (f"for input {b}: the derivative of input {a}'s gradient with respect to it, "
                            f"vᵀ·∂²out/∂input {b}∂input {a}, is wrong")
                return GradcheckError(
                    f"gradgradcheck failed {what} (output elements index input {a}'s gradient): {failure}")
    return None


@contextmanager
def _renamed() -> Iterator[None]:
    """gradcheck's input checks, with their errors and warnings named after gradgradcheck."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except (TypeError, ValueError) as exc:
            if str(exc).startswith("gradcheck:"):
                raise type(exc)("gradgradcheck:" + str(exc)[len("gradcheck:"):]) from None
            raise
    for w in caught:
        if issubclass(w.category, GradcheckWarning):
            warnings.warn(str(w.message).replace("gradcheck:", "gradgradcheck:", 1), w.category, stacklevel=4)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

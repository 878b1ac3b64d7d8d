"""Function transforms with JAX / torch.func names: grad, value_and_grad, vjp, jvp, jacobian,
hessian, hvp.

Each transform runs ``f`` on Tensors made from its inputs and differentiates the recorded
graph with `autograd.grad`. Inputs may be NumPy arrays, Python numbers or Tensors; arrays and
Tensors keep their dtype, Python floats follow NumPy (float64). Integer inputs cannot be
differentiated (arguments outside ``argnums`` are passed to ``f`` as they are).

Outermost, a transform returns NumPy arrays. Inside another transform (or given a Tensor
that requires grad) it returns Tensors recorded with ``create_graph=True``, so transforms
nest: ``grad(grad(f))``, ``jacobian(grad(f)) == hessian(f)``. Each input enters ``f`` as a
new node (a copy), so an inner transform differentiates only through its own arguments.
An input ``f`` does not use gets a zero gradient (JAX's rule), not an error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import autograd, ops
from .mode import enable_grad
from .tensor import Tensor, from_numpy

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp"]

Argnums = int | tuple[int, ...]
Value = Any  # a NumPy array outermost, a Tensor inside another transform


class _Depth(threading.local):
    """How many transforms are running ``f`` in this thread (0: the next call is outermost)."""

    level = 0


_DEPTH = _Depth()


# ------------------------------------------------------------------ helpers
def _check_f(f: Any, name: str) -> None:
    if not callable(f):
        raise TypeError(f"{name}: f must be callable, got {type(f).__name__}")


def _check_argnums(argnums: Any, name: str) -> tuple[int, ...]:
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    if not nums or any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in nums):
        raise TypeError(f"{name}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    return tuple(int(i) for i in nums)


def _primal(x: Any, where: str) -> Tensor:
    """A Tensor that requires grad holding ``x``: a fresh leaf (a copy) for values, a
    differentiable copy ∂ = g for a Tensor of an outer graph."""
    if isinstance(x, Tensor):
        if x.requires_grad:
            return ops.copy(x)
        data = x.data
    else:
        data = np.asarray(x)
    if data.dtype.kind != "f":
        raise TypeError(f"{where} has dtype {data.dtype}; only floating-point inputs can be differentiated")
    return Tensor(data, requires_grad=True)


def _prepare(args: Sequence[Any], nums: tuple[int, ...], name: str) -> tuple[bool, list, list[Tensor]]:
    """(nested?, the arguments with Tensors at ``nums``, those Tensors in ``nums`` order)."""
    n = len(args)
    if any(not -n <= i < n for i in nums):
        raise TypeError(f"{name}: argnums={nums} but f was called with {n} positional argument(s)")
    nested = _DEPTH.level > 0 or any(isinstance(a, Tensor) and a.requires_grad for a in args)
    args = list(args)
    for i in dict.fromkeys(i % n for i in nums):
        args[i] = _primal(args[i], f"{name}: argument {i}")
    return nested, args, [args[i % n] for i in nums]


def _call(f: Callable, args: list, kwargs: dict, name: str, many: bool = False) -> Any:
    """f(*args, **kwargs) with grad mode on, one level deeper; checks it returned Tensors."""
    _DEPTH.level += 1
    try:
        with enable_grad():
            out = f(*args, **kwargs)
    finally:
        _DEPTH.level -= 1
    outs = out if many and isinstance(out, (tuple, list)) else (out,)
    for o in outs:
        if not isinstance(o, Tensor):
            fname = getattr(f, "__name__", type(f).__name__)
            raise TypeError(f"{name}: f ({fname}) must return a Tensor{' or a tuple of Tensors' if many else ''}, "
                            f"got {type(out).__name__}; compute it with tinygrad_lite ops on its arguments")
    return out


def _check_scalar(out: Tensor, name: str) -> None:
    if out.size != 1 or out.dtype.kind != "f":
        raise TypeError(f"{name}: f must return a one-element floating-point Tensor, got shape {out.shape}, "
                        f"dtype {out.dtype}; reduce it first (e.g. .sum()) or use jacobian / vjp")


def _pullback(out: Tensor, xs: list[Tensor], g: Any, create: bool, retain: bool = True) -> list[Tensor]:
    """gᵀ·∂out/∂x for each x (g = 1 when None); zeros where ``out`` does not depend on x."""
    found = (autograd.grad(out, xs, g, create_graph=create, retain_graph=retain or create, allow_unused=True)
             if out.requires_grad else (None,) * len(xs))
    return [from_numpy(np.zeros(x.shape, x.dtype)) if d is None else d for x, d in zip(xs, found)]


def _like(v: Any, shape: tuple[int, ...], dtype: np.dtype, where: str) -> Any:
    """A tangent or cotangent ``v`` checked against ``shape`` and cast to ``dtype``."""
    if not isinstance(v, Tensor):
        v = np.asarray(v)
    if v.shape != shape:
        raise ValueError(f"{where} has shape {tuple(v.shape)}, expected {shape}")
    if v.dtype != dtype:
        v = v.astype(dtype)
    return v if isinstance(v, Tensor) else from_numpy(v)


def _inner(xs: list[Tensor], vs: list[Any]) -> Tensor:
    """⟨xs, vs⟩ = Σᵢ sum(xᵢ ⊙ vᵢ)."""
    total = None
    for x, v in zip(xs, vs):
        term = ops.sum_(ops.mul(x, v))
        total = term if total is None else ops.add(total, term)
    return total


def _result(t: Tensor, nested: bool, copy: bool = False) -> Value:
    if nested:
        return t
    return np.array(t.data) if copy else t.data


def _pairs(primals: Any, tangents: Any, name: str) -> tuple[tuple, tuple]:
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(f"{name}: primals and tangents must be tuples (e.g. (x,) and (v,)), got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    if not primals or len(primals) != len(tangents):
        raise ValueError(f"{name}: need one tangent per primal (at least one), got {len(primals)} primals "
                         f"and {len(tangents)} tangents")
    return tuple(primals), tuple(tangents)


# --------------------------------------------------------------- transforms
def _value_and_grad(f: Callable, argnums: Any, name: str) -> Callable[..., tuple[Value, Any]]:
    _check_f(f, name)
    nums = _check_argnums(argnums, name)

    @enable_grad()
    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple[Value, Any]:
        nested, args, xs = _prepare(args, nums, name)
        out = _call(f, args, kwargs, name)
        _check_scalar(out, name)
        grads = tuple(_result(g, nested) for g in _pullback(out, xs, None, create=nested, retain=False))
        return _result(out, nested, copy=True), grads if isinstance(argnums, tuple) else grads[0]

    return value_and_grad_f


def value_and_grad(f: Callable, argnums: Argnums = 0) -> Callable[..., tuple[Value, Any]]:
    """``(f(*args), ∇f)``: ∂f/∂args[argnums] for a scalar-valued f (a tuple for tuple argnums)."""
    return _value_and_grad(f, argnums, "value_and_grad")


def grad(f: Callable, argnums: Argnums = 0) -> Callable[..., Any]:
    """∇f: ∂f/∂args[argnums] for a scalar-valued f, each of its argument's shape (a tuple for tuple argnums)."""
    vg = _value_and_grad(f, argnums, "grad")

    def grad_f(*args: Any, **kwargs: Any) -> Any:
        return vg(*args, **kwargs)[1]

    return grad_f


def vjp(f: Callable, *primals: Any) -> tuple[Value, Callable[[Any], tuple]]:
    """``(f(*primals), vjp_fn)`` with vjp_fn(ḡ) = (ḡᵀ·∂f/∂primal for each primal); ḡ has f's output shape."""
    _check_f(f, "vjp")
    if not primals:
        raise TypeError("vjp: need at least one primal, as in vjp(f, x)")
    with enable_grad():
        nested, args, xs = _prepare(primals, tuple(range(len(primals))), "vjp")
        out = _call(f, args, {}, "vjp")

    @enable_grad()
    def vjp_fn(cotangent: Any) -> tuple:
        g = _like(cotangent, out.shape, out.dtype, "vjp_fn: the cotangent")
        create = nested or g.requires_grad
        return tuple(_result(d, create) for d in _pullback(out, xs, g, create=create))

    return _result(out, nested, copy=True), vjp_fn


@enable_grad()
def jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Value, Value]:
    """``(f(x), J·t)``, J = ∂f/∂x, by two reverse passes (the double-VJP trick): u ↦ Jᵀu is
    recorded for a dummy cotangent u, and since ⟨Jᵀu, t⟩ = uᵀ(J·t) is linear in u, its
    gradient with respect to u is J·t."""
    _check_f(f, "jvp")
    primals, tangents = _pairs(primals, tangents, "jvp")
    nested, args, xs = _prepare(primals, tuple(range(len(primals))), "jvp")
    ts = [_like(t, x.shape, x.dtype, f"jvp: tangent {i}") for i, (t, x) in enumerate(zip(tangents, xs))]
    nested = nested or any(t.requires_grad for t in ts)
    out = _call(f, args, {}, "jvp")
    u = Tensor(np.zeros(out.shape, out.dtype), requires_grad=True)
    (tangent_out,) = _pullback(_inner(_pullback(out, xs, u, create=True), ts), [u], None, create=nested)
    return _result(out, nested, copy=True), _result(tangent_out, nested)


@enable_grad()
def hvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Value, tuple]:
    """``(f(x), H·v)`` for a scalar f, H = ∂²f/∂x² (one block row per primal): ∇f is recorded
    (create_graph), then H·v = ∂⟨∇f(x), v⟩/∂x; the Hessian itself is never formed."""
    _check_f(f, "hvp")
    primals, tangents = _pairs(primals, tangents, "hvp")
    nested, args, xs = _prepare(primals, tuple(range(len(primals))), "hvp")
    vs = [_like(v, x.shape, x.dtype, f"hvp: tangent {i}") for i, (v, x) in enumerate(zip(tangents, xs))]
    nested = nested or any(v.requires_grad for v in vs)
    out = _call(f, args, {}, "hvp")
    _check_scalar(out, "hvp")
    hv = _pullback(_inner(_pullback(out, xs, None, create=True), vs), xs, None, create=nested)
    return _result(out, nested, copy=True), tuple(_result(h, nested) for h in hv)


def _jacobian(out: Tensor, xs: list[Tensor], nested: bool) -> list[Value]:
    """[∂out/∂x for each x], shape out.shape + x.shape: row k is e_kᵀJ, one VJP per element of out."""
    rows: list[list[Tensor]] = [[] for _ in xs]
    for k in range(out.size):
        e = np.zeros(out.size, out.dtype)
        e[k] = 1
        for r, d in zip(rows, _pullback(out, xs, e.reshape(out.shape), create=nested)):
            r.append(d)
    jacs = []
    for x, r in zip(xs, rows):
        shape = out.shape + x.shape
        if not r:
            jacs.append(_result(from_numpy(np.zeros(shape, x.dtype)), nested))
        elif nested:
            jacs.append(ops.reshape(ops.stack(r), shape=shape))
        else:
            jacs.append(np.stack([d.data for d in r]).reshape(shape))
    return jacs


def jacobian(f: Callable, argnums: Argnums = 0) -> Callable[..., Any]:
    """Reverse-mode Jacobian (jacrev): J[i…, j…] = ∂f(x)[i…]/∂x[j…], shape f(x).shape + x.shape.

    For tuple argnums, a tuple of Jacobians; for f returning a tuple, a tuple over its outputs."""
    _check_f(f, "jacobian")
    nums = _check_argnums(argnums, "jacobian")

    @enable_grad()
    def jacobian_f(*args: Any, **kwargs: Any) -> Any:
        nested, args, xs = _prepare(args, nums, "jacobian")
        out = _call(f, args, kwargs, "jacobian", many=True)
        per_out = [_jacobian(o, xs, nested) for o in (out if isinstance(out, (tuple, list)) else (out,))]
        per_out = [tuple(j) if isinstance(argnums, tuple) else j[0] for j in per_out]
        return tuple(per_out) if isinstance(out, (tuple, list)) else per_out[0]

    return jacobian_f


def hessian(f: Callable, argnums: Argnums = 0) -> Callable[..., Any]:
    """H = ∂²f/∂x² = jacobian(grad(f)) for a scalar f, shape x.shape + x.shape (for tuple
    argnums the blocks H[i][j] = ∂²f/∂xᵢ∂xⱼ)."""
    vg = _value_and_grad(f, argnums, "hessian")
    return jacobian(lambda *args, **kwargs: vg(*args, **kwargs)[1], argnums)

"""Tensors speak NumPy: ufuncs and NumPy functions applied to Tensors become recorded ops.

``np.exp(t)``, ``np.sum(t, axis=0, keepdims=True)``, ``W.dot(X)``, ``ndarray @ Tensor`` all
return Tensors in the graph, with the same gradients as the library's ops. Anything without
a differentiable implementation here (an unlisted function, ``out=``, ``where=``, a ufunc
method like ``np.add.at``) raises TypeError naming it: never an object array, never a
silently detached result. Functions that only read shapes, or build constants
(``np.zeros_like``), work on the data and return plain NumPy values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .mode import refuse_traced
from .tensor import Tensor, _wrap

__all__ = ["array_ufunc", "array_function", "register_function", "register_ufunc", "supported"]

# What NumPy calls on Tensors become. The op modules register their own entries as they load
# (below, ``from . import ops``), so these two tables and their registration functions come first.
_UFUNCS: dict[np.ufunc, Callable[..., Tensor]] = {}
_FUNCTIONS: dict[Callable, Callable] = {}


def register_ufunc(ufunc: np.ufunc, op: Callable[..., Tensor]) -> None:
    """Make ``ufunc(tensor, ...)`` call ``op`` (op modules register the ufuncs they implement)."""
    _UFUNCS[ufunc] = op


def register_function(func: Callable, impl: Callable) -> None:
    """Make the NumPy function ``func`` on Tensors call ``impl`` with the same arguments."""
    _FUNCTIONS[func] = impl


from . import ops  # noqa: E402  (loads every op module, which register into the tables above)
from .einsum import einsum  # noqa: E402


def _unsupported(what: str, why: str = "") -> TypeError:
    return TypeError(
        f"{what} is not differentiable here{why}: tinygrad_lite has no implementation of it for Tensors. Use a "
        f"tinygrad_lite op, or t.detach().numpy() for the values without a gradient"
    )


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _wrap_constant(result: Any) -> Tensor:
    """A non-differentiable result (a bool mask) as a Tensor without a graph."""
    return _wrap(np.asarray(result))


# ------------------------------------------------------------------- ufuncs
_BUILTIN_UFUNCS: dict[np.ufunc, Callable[..., Tensor]] = {
    np.add: ops.add,
    np.subtract: ops.sub,
    np.multiply: ops.mul,
    np.true_divide: ops.div,
    np.power: ops.power,
    np.float_power: ops.power,
    np.negative: ops.neg,
    np.positive: lambda x: ops.mul(x, 1),
    np.exp: ops.exp,
    np.expm1: ops.expm1,
    np.log: ops.log,
    np.log1p: ops.log1p,
    np.sqrt: ops.sqrt,
    np.square: lambda x: ops.mul(x, x),
    np.reciprocal: lambda x: ops.div(1, x),
    np.absolute: ops.absolute,
    np.fabs: ops.absolute,
    np.sign: ops.sign,
    np.tanh: ops.tanh,
    np.maximum: ops.maximum,
    np.minimum: ops.minimum,
    np.fmax: ops.maximum,
    np.fmin: ops.minimum,
    np.matmul: ops.matmul,
    np.equal: ops.eq,
    np.not_equal: ops.ne,
    np.less: ops.lt,
    np.less_equal: ops.le,
    np.greater: ops.gt,
    np.greater_equal: ops.ge,
}
# Ufuncs whose result carries no gradient (bool or integer results): computed on the data.
_CONSTANT_UFUNCS = {np.isfinite, np.isnan, np.isinf, np.logical_and, np.logical_or, np.logical_not,
                    np.logical_xor, np.signbit}
_REDUCTIONS = {np.add: ops.sum_, np.maximum: ops.max_, np.minimum: ops.min_}


def _check_ufunc_kwargs(name: str, kwargs: dict) -> None:
    out = kwargs.pop("out", None)
    if out is not None and any(o is not None for o in (out if isinstance(out, tuple) else (out,))):
        raise _unsupported(f"numpy.{name} with out=", " (it writes into an existing array, outside the graph)")
    where = kwargs.pop("where", True)
    if where is not True:
        raise _unsupported(f"numpy.{name} with where=", " (masked writes are not recorded)")
    for key in ("casting", "order", "subok"):
        kwargs.pop(key, None)
    if kwargs.pop("dtype", None) is not None or kwargs.pop("signature", None) is not None:
        raise _unsupported(f"numpy.{name} with dtype=", "; cast with t.astype(dtype) first")
    if kwargs:
        raise _unsupported(f"numpy.{name} with {', '.join(kwargs)}=")


def array_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_ufunc__``: a ufunc call on Tensors as a recorded op."""
    name = ufunc.__name__
    kwargs = dict(kwargs)
    if method == "reduce" and ufunc in _REDUCTIONS:
        axis = kwargs.pop("axis", 0)
        keepdims = kwargs.pop("keepdims", False)
        if kwargs.pop("initial", np._NoValue) is not np._NoValue:
            raise _unsupported(f"numpy.{name}.reduce with initial=")
        _check_ufunc_kwargs(f"{name}.reduce", kwargs)
        return _REDUCTIONS[ufunc](inputs[0], axis=axis, keepdims=keepdims)
    if method != "__call__":
        raise _unsupported(f"numpy.{name}.{method}", " (a ufunc method other than a plain call or "
                           "add/maximum/minimum.reduce)")
    _check_ufunc_kwargs(name, kwargs)
    if ufunc in _CONSTANT_UFUNCS:  # an op (no gradient): a compiled function computes it again at each replay
        return ops.elementwise.apply_ufunc(*inputs, ufunc=ufunc)
    op = _UFUNCS.get(ufunc)
    if op is None:
        raise _unsupported(f"numpy.{name}")
    return op(*inputs)


# ---------------------------------------------------------------- functions
def _reduction(op: Callable) -> Callable:
    def call(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
        if dtype is not None or out is not None or rest.get("where", True) is not True or "initial" in rest:
            raise _unsupported(f"numpy.{op.record.name} with dtype=, out=, where= or initial=")
        return op(a, axis=axis, keepdims=keepdims)

    return call


def _dot(a, b, out=None):
    if out is not None:
        raise _unsupported("numpy.dot with out=")
    if np.ndim(_data(a)) == 0 or np.ndim(_data(b)) == 0:
        return ops.mul(a, b)
    if np.ndim(_data(a)) > 2 or np.ndim(_data(b)) > 2:
        raise _unsupported("numpy.dot of arrays with more than 2 dimensions", "; use np.matmul or np.einsum")
    return ops.matmul(a, b)


def _transpose(a, axes=None):
    return ops.transpose(a, axes=None if axes is None else tuple(axes))


def _swapaxes(a, axis1, axis2):
    order = list(range(np.ndim(_data(a))))
    order[axis1], order[axis2] = order[axis2], order[axis1]
    return ops.transpose(a, axes=tuple(order))


def _squeeze(a, axis=None):
    return ops.reshape(a, shape=np.squeeze(np.empty(np.shape(_data(a)), dtype=bool), axis=axis).shape)


def _expand_dims(a, axis):
    return ops.reshape(a, shape=np.expand_dims(np.empty(np.shape(_data(a)), dtype=bool), axis).shape)


def _reshape(a, *args, **kwargs):
    shape = args[0] if args else kwargs.get("shape", kwargs.get("newshape"))
    if kwargs.get("order", "C") != "C":
        raise _unsupported("numpy.reshape with order other than 'C'")
    return ops.reshape(a, shape=shape)


def _where(condition, *xy):
    if len(xy) != 2:
        raise _unsupported("numpy.where with one argument", " (it returns indices)")
    return ops.where(condition, *xy)  # a condition Tensor stays an argument: its version is checked


def _clip(a, a_min=None, a_max=None, out=None, **kwargs):
    low, high = kwargs.pop("min", a_min), kwargs.pop("max", a_max)
    if out is not None or kwargs:
        raise _unsupported("numpy.clip with out= or other options")
    if any(isinstance(b, Tensor) and b.requires_grad for b in (low, high)):
        raise _unsupported("numpy.clip with bounds that require grad", "; use tg.maximum(tg.minimum(x, high), low)")
    return ops.clip(a, low=_data(low), high=_data(high))


def _concatenate(arrays, axis=0, out=None, **kwargs):
    if out is not None or kwargs:
        raise _unsupported("numpy.concatenate with out=, dtype= or casting=")
    return ops.concatenate(*arrays, axis=axis)


def _stack(arrays, axis=0, out=None, **kwargs):
    if out is not None or kwargs:
        raise _unsupported("numpy.stack with out=, dtype= or casting=")
    return ops.stack(*arrays, axis=axis)


def _einsum(*operands, out=None, dtype=None, order="K", casting="safe", optimize=False):
    if out is not None or dtype is not None:
        raise _unsupported("numpy.einsum with out= or dtype=")
    return einsum(*operands)


def _on_data(func: Callable, values: bool = False) -> Callable:
    """Functions whose result has no gradient (shapes, constants, comparisons of values); those that read
    the values (``values``) refuse a traced tensor inside a function being compiled (the result would be frozen)."""
    def call(*args, **kwargs):
        if values:
            for a in (*args, *kwargs.values()):
                refuse_traced(a, f"numpy.{func.__name__} of a tensor")
        return func(*[_data(a) for a in args], **{k: _data(v) for k, v in kwargs.items()})

    return call


def _arg(op: Callable) -> Callable:
    def call(a, axis=None, out=None, **kwargs):
        if out is not None or kwargs:
            raise _unsupported(f"numpy.{op.record.name} with out= or keepdims=")
        return op(a, axis=axis)

    return call


_BUILTIN_FUNCTIONS: dict[Callable, Callable] = {
    np.sum: _reduction(ops.sum_),
    np.mean: _reduction(ops.mean),
    np.max: _reduction(ops.max_),
    np.amax: _reduction(ops.max_),
    np.min: _reduction(ops.min_),
    np.amin: _reduction(ops.min_),
    np.argmax: _arg(ops.argmax),
    np.argmin: _arg(ops.argmin),
    np.dot: _dot,
    np.einsum: _einsum,
    np.transpose: _transpose,
    np.swapaxes: _swapaxes,
    np.squeeze: _squeeze,
    np.expand_dims: _expand_dims,
    np.reshape: _reshape,
    np.broadcast_to: lambda a, shape, subok=False: ops.broadcast_to(
        a, shape=tuple(shape) if np.iterable(shape) else (int(shape),)),
    np.where: _where,
    np.clip: _clip,
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.copy: lambda a, order="K", subok=False: ops.copy(a),
}
for _f in (np.shape, np.ndim, np.size, np.zeros_like, np.ones_like, np.empty_like, np.full_like, np.result_type,
           np.iscomplexobj, np.isrealobj, np.can_cast, np.may_share_memory, np.shares_memory, np.broadcast_shapes):
    _BUILTIN_FUNCTIONS[_f] = _on_data(_f)
for _f in (np.isclose, np.allclose, np.array_equal, np.count_nonzero, np.argsort, np.nonzero, np.flatnonzero,
           np.unravel_index, np.any, np.all):
    _BUILTIN_FUNCTIONS[_f] = _on_data(_f, values=True)
for _table, _builtins in ((_UFUNCS, _BUILTIN_UFUNCS), (_FUNCTIONS, _BUILTIN_FUNCTIONS)):
    for _key, _impl in _builtins.items():  # an op module's own registration wins
        _table.setdefault(_key, _impl)

def supported() -> tuple[str, ...]:
    """The NumPy ufuncs and functions that work on Tensors."""
    return tuple(sorted(
        {f"numpy.{u.__name__}" for u in (*_UFUNCS, *_CONSTANT_UFUNCS)}
        | {f"numpy.{u.__name__}.reduce" for u in _REDUCTIONS}
        | {f"numpy.{f.__name__}" for f in _FUNCTIONS}
    ))


def __getattr__(name: str) -> Any:
    if name == "SUPPORTED":  # computed when asked: op modules register more as they load
        return supported()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def array_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_function__``: a NumPy function on Tensors as recorded ops."""
    impl = _FUNCTIONS.get(func)
    if impl is None:
        raise _unsupported(f"numpy.{getattr(func, '__name__', func)}")
    return impl(*args, **kwargs)

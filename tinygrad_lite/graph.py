"""`defop`: how every op, built-in or the user's, is made and recorded in the graph.

An op is a function of NumPy arrays returning ``(out, vjps)``: the forward value and, per
array argument, a VJP ``g ↦ gᵀ·∂out/∂argument``. The Tensor it returns remembers the op,
its arguments (with the version of each Tensor argument, checked again in backward) and
the VJPs of the arguments that require grad. Options are keyword-only parameters.

Any order: for a gradient that is itself differentiated, backward runs the same function
again on Tensors (``create_graph=True``): the NumPy calls in its forward and VJPs then
dispatch to ops through Tensor's NumPy protocols and record their own graph.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .mode import _CLOCK, _MODE
from .tensor import AnomalyError, Tensor

__all__ = ["defop", "OpRecord"]

Array = np.ndarray
_SCALARS = (int, float, bool, np.number, np.bool_)
_NO_OPTIONS: dict[str, Any] = {}
_F64 = np.dtype(np.float64)


class OpRecord:
    """What a recorded node keeps of its op: the name, the function and how to bind a call."""

    __slots__ = ("name", "fn", "n_arrays", "array_names", "array_defaults", "option_names", "fresh")

    def __init__(self, fn: Callable, name: str, fresh: bool) -> None:
        self.name, self.fn, self.fresh = name, fn, fresh
        params = list(inspect.signature(fn).parameters.values())
        if any(p.kind is p.VAR_KEYWORD for p in params):
            raise TypeError(f"defop: '{name}' takes **kwargs; declare its options as keyword-only parameters")
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
        self.n_arrays = None if variadic else len(positional)
        self.array_names = [p.name for p in positional]
        self.array_defaults = {p.name: p.default for p in positional if p.default is not p.empty}
        self.option_names = [p.name for p in params if p.kind is p.KEYWORD_ONLY]

    def bind(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """(array arguments, options) of a call: arrays by position or by name, extra positional
        values fill the options in declaration order; a Tensor given as an option is refused."""
        options = dict(kwargs)
        if self.n_arrays is not None:
            arrays, extra = list(args[: self.n_arrays]), args[self.n_arrays:]
            if len(extra) > len(self.option_names):
                most = self.n_arrays + len(self.option_names)
                raise TypeError(f"{self.name}() takes at most {most} positional arguments, got {len(args)}")
            for name, value in zip(self.option_names, extra):
                if name in options:
                    raise TypeError(f"{self.name}() got multiple values for option '{name}'")
                options[name] = value
            for name in self.array_names[len(arrays):]:
                if name in options:
                    arrays.append(options.pop(name))
                elif name in self.array_defaults:
                    arrays.append(self.array_defaults[name])
                else:
                    raise TypeError(f"{self.name}() missing array argument '{name}'")
            args = tuple(arrays)
        unknown = [k for k in options if k not in self.option_names]
        if unknown:
            valid = ", ".join(self.option_names) or "none"
            raise TypeError(f"{self.name}() got unknown option(s) {', '.join(unknown)} (options: {valid})")
        for k, v in options.items():
            if isinstance(v, Tensor):
                raise TypeError(
                    f"{self.name}(): option '{k}' got a Tensor (shape {v.shape}); options are not differentiated, "
                    f"pass an array or a number (t.detach().numpy()), or make it an array argument of the op"
                )
        return args, options


def _operand(value: Any) -> Any:
    """What an op's forward sees for a non-Tensor argument: numbers and None as they are, a NumPy
    scalar as the Python number it holds (so it does not promote an array: PyTorch's rule), else arrays."""
    if isinstance(value, (np.number, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (np.ndarray,) + _SCALARS):
        return value
    return np.asarray(value)


def _promote(arrays: list) -> list:
    """PyTorch's promotion where NumPy's differs: when an op has a float operand with dimensions, its
    0-d operands and integer operands take that float dtype (``t32 * np.array(2.0)`` stays float32).
    Arrays, or Tensors in a higher-order re-run; returns ``arrays`` itself when nothing changes."""
    target, cast = None, False
    for a in arrays:
        if isinstance(a, (np.ndarray, Tensor)):
            kind = a.dtype.kind
            if kind == "f" and a.ndim:
                target = a.dtype if target is None else np.promote_types(target, a.dtype)
            elif kind in "fiu":
                cast = True
    if target is None or not cast:
        return arrays
    return [a.astype(target) if isinstance(a, (np.ndarray, Tensor)) and a.dtype != target
            and (a.dtype.kind in "iu" or (a.dtype.kind == "f" and not a.ndim)) else a for a in arrays]


def _call(fn: Callable, name: str, arrays: list, options: dict) -> tuple:
    """``fn(*arrays, **options)`` checked: (out as an array, vjps); errors name the op and shapes. For the
    rare calls (a promotion redone, a replay's); `defop`'s hot path writes the same lines out inline."""
    try:
        result = fn(*arrays, **options)
    except ValueError as exc:
        shapes = ", ".join(str(np.shape(a)) for a in arrays)
        raise ValueError(f"{name}: {exc} (argument shapes {shapes})") from None
    if type(result) is not tuple or len(result) != 2:
        raise TypeError(f"op '{name}' must return a pair (out, vjps), got {type(result).__name__}")
    out, vjps = result
    if type(out) is not np.ndarray:
        if isinstance(out, Tensor):
            raise TypeError(f"op '{name}' returned a Tensor; its forward must compute on the arrays it is given")
        out = np.asarray(out)
    return out, vjps


def defop(fn: Callable | None = None, *, name: str | None = None, fresh_grads: bool = False) -> Callable:
    """Turn ``fn(*arrays, **options) -> (out, vjps)`` into an op on Tensors.

    ``fn`` gets NumPy arrays (Python scalars stay scalars) for its positional parameters and
    options for its keyword-only ones. It returns the forward result and one VJP per array
    argument (a tuple, or a single function for a one-argument op); ``vjps[i](g)`` maps the
    cotangent ``g`` of ``out`` to the gradient for argument ``i`` (any shape broadcasting could
    have produced: the engine sums it back). A VJP is called only when its argument requires
    grad; use ``None`` for an argument the op is not differentiable in (``vjps=None``: none).

    ``fresh_grads=True`` promises that every VJP returns a new array nobody else holds (or
    ``g`` itself, or a view, which the engine detects), so backward may add into it in place.

    ``fn`` must be a pure function of its arguments. Written with NumPy calls that Tensors
    support, it is differentiable to any order (backward re-runs it on Tensors).
    """
    if fn is None:
        return lambda f: defop(f, name=name, fresh_grads=fresh_grads)
    record = OpRecord(fn, name or fn.__name__, fresh_grads)
    n_arrays, name = record.n_arrays, record.name
    option_set = frozenset(record.option_names)

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Tensor:
        if kwargs:
            if len(args) == n_arrays and kwargs.keys() <= option_set:  # the common call: options by name
                options = kwargs
                for v in kwargs.values():
                    if isinstance(v, Tensor):
                        args, options = record.bind(args, kwargs)  # raises, naming the option
            else:
                args, options = record.bind(args, kwargs)
        elif n_arrays is not None and len(args) != n_arrays:
            args, options = record.bind(args, kwargs)
        else:
            options = _NO_OPTIONS
        # The rest runs once per op: it is the engine's hot path, so it is written out here.
        arrays = [a.data if isinstance(a, Tensor) else _operand(a) for a in args]
        clock = next(_CLOCK)  # before the forward reads anything: a later in-place change stamps later
        try:
            result = fn(*arrays, **options)
        except ValueError as exc:
            shapes = ", ".join(str(np.shape(a)) for a in arrays)
            raise ValueError(f"{name}: {exc} (argument shapes {shapes})") from None
        if type(result) is not tuple or len(result) != 2:
            raise TypeError(f"op '{name}' must return a pair (out, vjps), got {type(result).__name__}")
        out, vjps = result
        if type(out) is not np.ndarray:
            if isinstance(out, Tensor):
                raise TypeError(f"op '{name}' returned a Tensor; its forward must compute on the arrays it is given")
            out = np.asarray(out)
        if out.dtype is _F64 and len(arrays) > 1:  # did a 0-d or integer operand promote float32? (rare)
            promoted = _promote(arrays)
            if promoted is not arrays:
                arrays = promoted
                out, vjps = _call(fn, name, arrays, options)
        t = Tensor.__new__(Tensor)
        t.data = out
        t.grad = None
        t._rg = False
        t._ctx = None
        t._op = record
        t._args = t._opts = t._vbase = t._hooks = None
        t._clock = clock
        t._version = t._stamp = 0
        if out.base is not None:  # a view of an argument: share its version counter
            _share_version(t, out.base, args)
        else:
            for a in arrays:
                if out is a:  # the argument itself
                    _share_version(t, out, args)
                    break
        if _MODE.enabled and out.dtype.kind == "f":
            ctx = None
            for i, a in enumerate(args):
                if isinstance(a, Tensor) and a._rg:
                    if ctx is None:
                        ctx = []
                        if type(vjps) is not tuple or len(vjps) != len(args):
                            vjps = _vjp_tuple(record, vjps, len(args))
                    vjp = vjps[i]
                    if vjp is None:
                        raise TypeError(f"op '{name}' is not differentiable with respect to argument {i}")
                    ctx.append((a, vjp, i))
            if ctx is not None:
                t._ctx = ctx
                t._rg = True
                t._args = args
                t._opts = options
        if _MODE.anomaly:
            _watch(name, t)
        if _MODE.trace is not None:  # inside `tinygrad_lite.compile`'s trace: remember the call
            _MODE.trace.op(record, args, options, t, arrays)
        return t

    op.__wrapped_op__ = fn  # type: ignore[attr-defined]
    op.record = record  # type: ignore[attr-defined]
    return op


def _vjp_tuple(record: OpRecord, vjps: Any, n: int) -> tuple:
    if callable(vjps):
        vjps = (vjps,)
    elif vjps is None:
        vjps = (None,) * n
    if len(vjps) != n:
        raise ValueError(
            f"op '{record.name}' returned {len(vjps)} VJP function(s) for {n} array argument(s); "
            f"it needs one per argument (None where not differentiable)"
        )
    return tuple(vjps)


def _share_version(t: Tensor, root: Any, args: tuple) -> None:
    for a in args:
        if isinstance(a, Tensor):
            d = a.data
            if (d if d.base is None else d.base) is root:
                t._vbase = a._vbase if a._vbase is not None else a
                return


# ------------------------------------------------------------------ anomaly mode
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _creation_site() -> str:
    """``file:line in function`` of the innermost caller outside tinygrad_lite."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def _bad_values(a: Any) -> str | None:
    """'NaN' or 'Inf' when a float array holds such values, else None."""
    a = np.asarray(a.data if isinstance(a, Tensor) else a)
    if a.dtype.kind not in "fc" or np.isfinite(a).all():
        return None
    return "NaN" if np.isnan(a).any() else "Inf"


def _watch(opname: str, t: Tensor) -> None:
    """Anomaly mode: check the forward value now, and wrap each VJP to check its gradient."""
    site = _creation_site()
    bad = _bad_values(t.data)
    if bad:
        raise AnomalyError(f"op '{opname}' produced {bad} in its output of shape {t.shape}; created at {site}")
    if not t._ctx:
        return

    def checked(vjp: Callable, index: int) -> Callable:
        def vjp_checked(g: Any) -> Any:
            grad = vjp(g)
            bad = _bad_values(grad)
            if bad:
                raise AnomalyError(
                    f"backward of op '{opname}' produced {bad} in the gradient of its argument {index}; "
                    f"the op was created at {site}"
                )
            return grad

        return vjp_checked

    t._ctx = [(parent, checked(vjp, index), index) for parent, vjp, index in t._ctx]

"""The Tensor, the `defop` mechanism every op is made with, and the backward pass.

A Tensor wraps a NumPy array. When grad mode is on and an op gets at least one input that
requires grad, the result remembers, for each such input, the input and the op's
vector-Jacobian product (VJP) ``g ↦ gᵀ·∂out/∂input``. ``backward`` walks that graph once in
reverse topological order (no recursion), sums the gradients of reused nodes, reduces
broadcast gradients back to each input's shape (in one place, here) and adds the result
into the leaves' ``.grad``.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "Tensor",
    "defop",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "GraphFreedError",
    "AnomalyError",
    "detect_anomaly",
]

Array = np.ndarray
VJP = Callable[[Array], Any]


class GraphFreedError(RuntimeError):
    """Raised by a backward pass that reaches a graph whose saved arrays were released."""


class AnomalyError(FloatingPointError):
    """Under ``detect_anomaly()``: an op produced NaN or Inf, forward or backward."""


class _GradMode(threading.local):
    """Grad and anomaly mode, per thread (as in PyTorch): no_grad() in one thread leaves the others alone."""

    enabled = True
    anomaly = False


_MODE = _GradMode()
_refcount = getattr(sys, "getrefcount", lambda _: 1 << 30)  # no reference counts: never in place
_SOLE_OWNER = 2  # getrefcount's own argument plus the local variable holding the gradient
_FREED = object()  # a node's ``_ctx`` after backward has released it
_SCALARS = (int, float, bool, np.number, np.bool_)
_DEFAULT_FLOAT = np.dtype(np.float32)


def is_grad_enabled() -> bool:
    """True when new ops record the graph (the default)."""
    return _MODE.enabled


class _GradModeContext:
    _enabled: bool

    def __enter__(self) -> None:
        self._previous = _MODE.enabled
        _MODE.enabled = self._enabled

    def __exit__(self, *exc: object) -> None:
        _MODE.enabled = self._previous

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Context manager and decorator: ops inside record no graph (inference, updates)."""

    _enabled = False


class enable_grad(_GradModeContext):
    """Context manager and decorator: turn graph recording back on inside ``no_grad``."""

    _enabled = True


class detect_anomaly:
    """Context manager: raise AnomalyError as soon as an op's output, or the gradient its VJP
    returns, holds NaN or Inf — naming the op and the source line that created it.

    It checks every array every op makes, so it is for debugging, not for training speed.
    """

    def __enter__(self) -> detect_anomaly:
        self._previous = _MODE.anomaly
        _MODE.anomaly = True
        return self

    def __exit__(self, *exc: object) -> None:
        _MODE.anomaly = self._previous


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
    a = np.asarray(a)
    if a.dtype.kind not in "fc" or np.isfinite(a).all():
        return None
    return "NaN" if np.isnan(a).any() else "Inf"


def _watch(opname: str, out: Array, ctx: list | None) -> list | None:
    """Anomaly mode: check the forward value now, and wrap each VJP to check its gradient."""
    site = _creation_site()
    bad = _bad_values(out)
    if bad:
        raise AnomalyError(f"op '{opname}' produced {bad} in its output of shape {out.shape}; created at {site}")
    if not ctx:
        return ctx

    def checked(vjp: VJP, index: int) -> VJP:
        def vjp_checked(g: Array) -> Any:
            grad = vjp(g)
            bad = _bad_values(grad)
            if bad:
                raise AnomalyError(
                    f"backward of op '{opname}' produced {bad} in the gradient of its argument {index}; "
                    f"the op was created at {site}"
                )
            return grad

        return vjp_checked

    return [(parent, checked(vjp, index), index) for parent, vjp, index in ctx]


def _as_array(data: Any, dtype: Any = None) -> Array:
    """Data for a new Tensor: Python floats become float32; NumPy arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    given_array = isinstance(data, (np.ndarray, np.generic))
    try:
        arr = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Tensor: cannot make an array from {type(data).__name__}: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(
            f"Tensor: unsupported dtype {arr.dtype} (need float, integer or bool data)"
        )
    if dtype is None and not given_array and arr.dtype.kind == "f":
        arr = arr.astype(_DEFAULT_FLOAT, copy=False)
    return arr


class Tensor:
    """An n-dimensional array that can record the ops applied to it.

    ``Tensor(data, requires_grad=False, dtype=None)``: Python numbers and lists of floats
    become float32, NumPy arrays keep their dtype (float64 stays float64), integer and bool
    data are allowed but are constants (they cannot require grad).

    ``.grad`` holds the accumulated gradient of a leaf after ``backward``: gradients add up
    across calls until you reset them with ``t.grad = None`` (or an optimizer's
    ``zero_grad()``).
    """

    # _sweep, _n, _g, _gown: per-node scratch of the backward sweep in progress (the sweep that
    # last counted this node, its consumers still to come, its gradient so far, whether the
    # sweep owns that array) — attribute slots are cheaper than dicts keyed by id().
    __slots__ = ("data", "grad", "_rg", "_ctx", "_op", "_sweep", "_n", "_g", "_gown", "__weakref__")
    __array_ufunc__ = None  # make NumPy defer to our reflected operators (ndarray + Tensor)
    __hash__ = object.__hash__

    data: Array
    grad: Array | None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data = _as_array(data, dtype)
        self.grad = None
        self._rg = False
        self._ctx: Any = None
        self._op: str | None = None
        self._sweep: object = None
        if requires_grad:
            self.requires_grad = True

    # ----------------------------------------------------------------- attributes
    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to (and, for a leaf, accumulate in) this tensor."""
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        value = bool(value)
        if value and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require grad; this one has dtype {self.data.dtype}"
            )
        if self._ctx is not None:
            raise RuntimeError(
                f"requires_grad can only be set on a leaf tensor; this one is the result of "
                f"'{self._op}' (use .detach() for a new leaf)"
            )
        self._rg = value

    def requires_grad_(self, value: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return self."""
        self.requires_grad = value
        return self

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an op that recorded a graph."""
        return self._ctx is None

    @property
    def op(self) -> str | None:
        """Name of the op that produced this tensor (None for a tensor made directly)."""
        return self._op

    def numpy(self) -> Array:
        """The underlying NumPy array (shares memory with the tensor)."""
        return self.data

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element; this one has shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph."""
        return _wrap(self.data)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", threshold=100)
        extra = f", dtype={self.data.dtype}"
        if self._ctx is not None and self._ctx is not _FREED:
            extra += f", grad_fn=<{self._op}>"
        elif self._rg:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # ------------------------------------------------------------------ backward
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Reverse-mode sweep: add d(self)/d(leaf) · grad into every leaf's ``.grad``.

        ``grad`` is the cotangent of this tensor (default 1 for a one-element tensor). Each
        node's saved arrays are released as soon as its VJPs have run, unless
        ``retain_graph=True``. Leaf gradients are written only once the whole sweep has
        succeeded.
        """
        if not self._rg:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True (or it ran under no_grad())"
            )
        data = self.data
        if grad is None:
            if data.size != 1:
                raise RuntimeError(
                    f"backward() without a grad needs a one-element output; this one has shape "
                    f"{self.shape}: pass grad= of that shape, or reduce first (e.g. .sum())"
                )
            grad = np.empty(data.shape, data.dtype)
            grad.fill(1)
            owned = True
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
            if grad.shape != data.shape:
                raise ValueError(
                    f"backward(): grad has shape {grad.shape} but the tensor has shape {self.shape}"
                )
            owned = grad.dtype != data.dtype
            grad = grad.astype(data.dtype, copy=False)

        _count_consumers(self, object())
        self._g, self._gown = grad, owned
        ready = [self]
        leaves = []
        while ready:
            node = ready.pop()
            g = node._g
            node._g = None
            ctx = node._ctx
            if ctx is None:
                leaves.append((node, g, node._gown))
                continue
            if not retain_graph:
                node._ctx = _FREED  # release the saved arrays as soon as they are used
            for parent, vjp, index in ctx:
                pg = vjp(g)
                pdata = parent.data
                if type(pg) is not np.ndarray:
                    pg = _as_gradient(pg, node._op, index)
                if pg.shape != pdata.shape:
                    pg = _unbroadcast(pg, pdata.shape, node._op, index)
                    fresh = True
                else:
                    # ours to add into in place only if nothing else holds it: not g, not a
                    # view, not an array the VJP closed over (CPython reference count)
                    fresh = pg.base is None and _refcount(pg) <= _SOLE_OWNER
                if pg.dtype is not pdata.dtype and pg.dtype != pdata.dtype:
                    pg = pg.astype(pdata.dtype)
                    fresh = True
                previous = parent._g
                if previous is None:
                    parent._g = pg
                    parent._gown = fresh
                elif parent._gown:
                    previous += pg
                else:
                    total = previous + pg
                    parent._g = total if type(total) is np.ndarray else np.asarray(total)  # 0-d
                    parent._gown = True
                left = parent._n - 1
                parent._n = left
                if not left:
                    ready.append(parent)
        for leaf, g, own in leaves:
            if leaf.grad is None:
                leaf.grad = g if own else g.copy()
            else:
                leaf.grad += g

    # ------------------------------------------------------------- graph export
    def to_dot(self) -> str:
        """Graphviz DOT text of the graph recorded behind this tensor (ops and shapes)."""
        order = _graph_nodes(self)
        lines = ["digraph tinygrad_lite {", "  rankdir=BT;", '  node [fontname="Helvetica"];']
        names = {id(n): f"n{i}" for i, n in enumerate(order)}
        for node in order:
            shape = "x".join(map(str, node.shape)) or "scalar"
            if node._ctx is None:
                label, style = f"leaf\\n{shape} {node.dtype}", "shape=box, style=filled, fillcolor=lightblue"
            else:
                label, style = f"{node._op}\\n{shape}", "shape=ellipse"
            lines.append(f'  {names[id(node)]} [label="{label}", {style}];')
            for parent, _, index in node._ctx or ():
                lines.append(f'  {names[id(parent)]} -> {names[id(node)]} [label="{index}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"


def _wrap(data: Array) -> Tensor:
    """A leaf Tensor around an existing array, without conversion or checks (fast path)."""
    t = Tensor.__new__(Tensor)
    t.data = data
    t.grad = None
    t._rg = False
    t._ctx = None
    t._op = None
    t._sweep = None
    return t


def _count_consumers(root: Tensor, sweep: object) -> None:
    """Mark every node behind ``root`` for this ``sweep``: ``_n`` = how many recorded edges
    lead out of it (its consumers), ``_g`` = no gradient yet.

    Backward processes a node once all its consumers have passed their gradients on (Kahn's
    algorithm), so no recursion is needed and a chain of any length works. Raises
    GraphFreedError, before anything is computed, on reaching a graph an earlier backward
    released.
    """
    stack = [root]
    while stack:
        node = stack.pop()
        ctx = node._ctx
        if ctx is _FREED:
            raise GraphFreedError(
                f"backward through the graph a second time: the saved arrays of '{node._op}' "
                f"(shape {node.shape}) were released by an earlier backward(); pass "
                f"retain_graph=True to the first backward() to keep them"
            )
        if ctx:
            for parent, _, _ in ctx:
                if parent._sweep is sweep:
                    parent._n += 1
                else:
                    parent._sweep = sweep
                    parent._n = 1
                    parent._g = None
                    stack.append(parent)


def _graph_nodes(root: Tensor) -> list[Tensor]:
    """Every node behind ``root`` (root first, inputs after the ops that consume them)."""
    _count_consumers(root, object())
    order, ready = [], [root]
    while ready:
        node = ready.pop()
        order.append(node)
        for parent, _, _ in node._ctx or ():
            parent._n -= 1
            if not parent._n:
                ready.append(parent)
    return order


def _as_gradient(value: Any, opname: str | None, index: int) -> Array:
    """A VJP's non-ndarray result as an array: scalars and array-likes, not sequences of
    gradients (a tuple of two (3,) arrays would otherwise become one (2, 3) array)."""
    if isinstance(value, (tuple, list)) or value is None:
        raise TypeError(
            f"the VJP of op '{opname}' returned a {type(value).__name__} for its argument {index}; "
            f"a VJP returns one array, the gradient for that argument"
        )
    return np.asarray(value)


def _unbroadcast(g: Array, shape: tuple[int, ...], opname: str | None, index: int) -> Array:
    """Sum a gradient of a broadcast shape back to ``shape`` (the one place we undo broadcasting)."""
    lead = g.ndim - len(shape)
    if lead == 1 and g.shape[1:] == shape:  # the common case: a bias broadcast over rows
        return np.add.reduce(g, axis=0)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, g.shape[lead:])):
        raise ValueError(
            f"the VJP of op '{opname}' returned a gradient of shape {g.shape} for its argument "
            f"{index}, which has shape {shape} (a gradient must have the argument's shape or "
            f"one that broadcasting could have produced from it)"
        )
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def _operand(value: Any) -> Any:
    """What an op's forward sees for a non-Tensor argument: scalars as they are, else arrays."""
    if isinstance(value, (np.ndarray,) + _SCALARS):
        return value
    return np.asarray(value)


def _array_params(fn: Callable) -> tuple[int | None, list[str]]:
    """How many leading positional parameters are arrays (None: *args), and the option names."""
    params = list(inspect.signature(fn).parameters.values())
    n, options = 0, []
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return None, []
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty and not options:
            n += 1
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            options.append(p.name)
    return n, options


def defop(fn: Callable | None = None, *, name: str | None = None) -> Callable:
    """Turn ``fn(*arrays, **options) -> (out, vjps)`` into an op on Tensors.

    ``fn`` gets NumPy arrays (Python scalars stay scalars) and returns the forward result
    and one VJP per array argument (a tuple, or a single function for a one-argument op).
    ``vjps[i](g)`` maps the cotangent ``g`` of ``out`` to the gradient for argument ``i``; it
    may return a gradient of the broadcast shape, which the engine sums back, and it is
    called only when argument ``i`` requires grad. Use ``None`` for an argument the op is
    not differentiable in (or ``vjps=None`` for none of them). Parameters with defaults are
    options, passed as they are.

    The decorated function takes Tensors, arrays or scalars and returns a Tensor.
    """
    if fn is None:
        return lambda f: defop(f, name=name)
    opname = name or fn.__name__
    n_arrays, option_names = _array_params(fn)

    @functools.wraps(fn)
    def op(*args: Any, **options: Any) -> Tensor:
        if n_arrays is not None and len(args) > n_arrays:
            extra = args[n_arrays:]
            if len(extra) > len(option_names):
                most = n_arrays + len(option_names)
                raise TypeError(f"{opname}() takes at most {most} positional arguments, got {len(args)}")
            options.update(zip(option_names, extra))
            args = args[:n_arrays]
        arrays = [a.data if isinstance(a, Tensor) else _operand(a) for a in args]
        try:
            result = fn(*arrays, **options)
        except ValueError as exc:
            shapes = ", ".join(str(np.shape(a)) for a in arrays)
            raise ValueError(f"{opname}: {exc} (argument shapes {shapes})") from None
        if type(result) is not tuple or len(result) != 2:
            raise TypeError(f"op '{opname}' must return a pair (out, vjps), got {type(result).__name__}")
        out, vjps = result
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        if callable(vjps):
            vjps = (vjps,)
        elif vjps is None:  # not differentiable in any argument
            vjps = (None,) * len(args)
        if len(vjps) != len(args):
            raise ValueError(
                f"op '{opname}' returned {len(vjps)} VJP function(s) for {len(args)} array "
                f"argument(s); it needs one per argument (None where not differentiable)"
            )
        t = Tensor.__new__(Tensor)  # _wrap(out), inlined: this runs once per op
        t.data = out
        t.grad = None
        t._op = opname
        t._ctx = None
        t._rg = False
        t._sweep = None
        if _MODE.enabled and out.dtype.kind == "f":
            ctx = []
            for i, a in enumerate(args):
                if isinstance(a, Tensor) and a._rg:
                    vjp = vjps[i]
                    if vjp is None:
                        raise TypeError(f"op '{opname}' is not differentiable with respect to argument {i}")
                    ctx.append((a, vjp, i))
            if ctx:
                t._ctx = ctx
                t._rg = True
        if _MODE.anomaly:
            t._ctx = _watch(opname, out, t._ctx)
        return t

    op.__wrapped_op__ = fn  # type: ignore[attr-defined]
    return op

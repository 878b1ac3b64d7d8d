"""The Tensor: a NumPy array that can record the ops applied to it.

When grad mode is on and an op gets an input that requires grad, the result remembers the
op, its arguments and one vector-Jacobian product (VJP) per such input (see `graph.defop`);
`autograd` walks that record backwards. Every in-place change bumps the tensor's version
(shared with its views), and backward refuses to use an argument whose version changed
since the op saw it (PyTorch's rule). Operators and methods below are thin calls into
`ops`; NumPy functions and ufuncs applied to a Tensor go through `numpy_api`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .inplace import bump_version, inplace_refused, store_inplace, writable
from .mode import _MODE, TraceError, detect_anomaly, enable_grad, is_grad_enabled, no_grad

__all__ = [
    "Tensor",
    "from_numpy",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "GraphFreedError",
    "AnomalyError",
    "detect_anomaly",
]

Array = np.ndarray
_DEFAULT_FLOAT = np.dtype(np.float32)


class GraphFreedError(RuntimeError):
    """Raised on reaching a graph whose saved arrays an earlier backward released."""


class AnomalyError(FloatingPointError):
    """Under ``detect_anomaly()``: an op produced NaN or Inf, forward or backward."""


def _as_array(data: Any, dtype: Any, copy: bool) -> Array:
    """Data for a new Tensor: Python floats become float32; NumPy arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    given_array = isinstance(data, (np.ndarray, np.generic))
    try:
        arr = np.array(data, dtype=dtype, copy=True) if copy else np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Tensor: cannot make an array from {type(data).__name__}: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"Tensor: unsupported dtype {arr.dtype} (need float, integer or bool data)")
    if dtype is None and not given_array and arr.dtype.kind == "f":
        arr = arr.astype(_DEFAULT_FLOAT, copy=False)
    return arr


def _inplace_value(value: Any) -> Any:
    """A non-Tensor operand of an in-place op: its array (Tensors that require grad refused by the caller)."""
    return value.data if isinstance(value, Tensor) else value


class Tensor:
    """An n-dimensional array that can record the ops applied to it.

    ``Tensor(data, requires_grad=False, dtype=None)`` copies ``data`` (use `from_numpy` to
    share an array): Python numbers and lists of floats become float32, NumPy arrays keep
    their dtype, integer and bool data are constants (they cannot require grad).

    ``.grad`` holds the accumulated gradient of a leaf after ``backward``: gradients add up
    across calls until reset with ``t.grad = None`` (or an optimizer's ``zero_grad()``).
    The array of a tensor that requires grad is read-only: change it with the in-place
    methods (``add_``, ``-=``, ``copy_``, ...) under ``no_grad()``, which bump its version.
    """

    # _op: the op that made it (graph.OpRecord) or None for a leaf; _ctx: [(parent, vjp, index)]
    # for the arguments that require grad; _args/_opts: the call, kept for version checks and
    # higher-order re-runs; _clock: when the op ran; _version/_stamp: how many in-place changes
    # and when the last one was, kept on _vbase, the tensor whose memory this one views.
    __slots__ = ("data", "grad", "_rg", "_ctx", "_op", "_args", "_opts", "_clock", "_version", "_stamp",
                 "_vbase", "_hooks", "__weakref__")
    __hash__ = object.__hash__
    __array_priority__ = 1000

    data: Array
    grad: Array | None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if _MODE.trace is not None and isinstance(data, Tensor):
            _check_rerun(data, "Tensor(t) (a copy of its values)")
        _init(self, _as_array(data, dtype, copy=True))
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
            raise TypeError(f"only floating-point tensors can require grad; this one has dtype {self.data.dtype}")
        if self._op is not None:
            raise RuntimeError(
                f"requires_grad can only be set on a leaf tensor; this one is the result of "
                f"'{self._op.name}' (use .detach() for a new leaf)"
            )
        if value and self.data.flags.writeable:  # writes go through the versioned in-place API
            view = self.data.view()
            view.setflags(write=False)
            self.data = view
        self._rg = value

    def requires_grad_(self, value: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return self."""
        self.requires_grad = value
        return self

    shape = property(lambda self: self.data.shape, doc="The array's shape.")
    dtype = property(lambda self: self.data.dtype, doc="The array's dtype.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
    size = property(lambda self: self.data.size, doc="Number of elements.")

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an op that recorded a graph."""
        return self._ctx is None

    @property
    def op(self) -> str | None:
        """Name of the op that produced this tensor (None for a tensor made directly)."""
        return None if self._op is None else self._op.name

    @property
    def version(self) -> int:
        """How many in-place changes this tensor's memory has had (shared with its views)."""
        return (self._vbase if self._vbase is not None else self)._version

    def numpy(self) -> Array:
        """The underlying array (shares memory; read-only when the tensor requires grad)."""
        _check_rerun(self, "numpy()")
        return self.data

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        _check_rerun(self, "item()")
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element; this one has shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        """The values as nested Python lists."""
        _check_rerun(self, "tolist()")
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data (and version counter), cut from the graph."""
        t = _wrap(self.data)
        t._vbase = self._vbase if self._vbase is not None else self
        tracer = _MODE.trace
        if tracer is not None:  # inside a compiled function: still the traced value, or still read from self
            if tracer.traced(self):
                tracer.alias(t, tracer.slot_of(self))
            else:
                tracer.follow(t, self)
        return t

    def register_hook(self, hook: Callable[[Array], Array | None]) -> Callable[[], None]:
        """Call ``hook(grad)`` when backward has this tensor's whole gradient; a non-None
        return value replaces the gradient. Returns a function that removes the hook."""
        if not self._rg:
            raise RuntimeError("register_hook: this tensor does not require grad, so backward never reaches it")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return lambda: self._hooks.remove(hook) if hook in self._hooks else None

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __bool__(self) -> bool:
        _check_rerun(self, "bool()")
        return bool(self.data)

    def __float__(self) -> float: return float(self.item())
    def __int__(self) -> int: return int(self.item())
    def __index__(self) -> int:
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError(f"only integer tensors of one element can be used as an index, not {self.dtype}")
        return int(self.item())

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", threshold=100)
        extra = f", dtype={self.data.dtype}"
        if self._op is not None and self._ctx is not None:
            extra += f", grad_fn=<{self._op.name}>"
        elif self._rg:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # --------------------------------------------------------------- NumPy protocols
    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Array:
        _check_rerun(self, "np.asarray()")
        if self._rg:
            raise RuntimeError(
                f"cannot convert a Tensor that requires grad (shape {self.shape}, dtype {self.dtype}) to a NumPy "
                f"array: the gradient would be lost silently; use t.detach().numpy() for its values (for "
                f"ndarray.dot(tensor), which NumPy gives no hook, write np.dot(a, t) or a @ t)"
            )
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return numpy_api.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Callable, types: tuple, args: tuple, kwargs: dict) -> Any:
        return numpy_api.array_function(func, args, kwargs)

    # ------------------------------------------------------------------ backward
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Reverse-mode sweep: add d(self)/d(leaf) · grad into every leaf's ``.grad``.

        ``grad`` is the cotangent of this tensor (default 1 for a one-element tensor). Saved
        arrays are released as each node is done, unless ``retain_graph=True``. Leaf gradients
        are written, atomically, only once the whole sweep has succeeded. For gradients that
        can be differentiated again use ``tinygrad_lite.autograd.grad(..., create_graph=True)``.
        """
        autograd.backward(self, grad, retain_graph=retain_graph)

    def to_dot(self) -> str:
        """Graphviz DOT text of the graph recorded behind this tensor (ops and shapes)."""
        return autograd.to_dot(self)

    # ------------------------------------------------- operators and methods (ops)
    def __add__(self, other: Any) -> Tensor: return ops.add(self, other)
    def __radd__(self, other: Any) -> Tensor: return ops.add(other, self)
    def __sub__(self, other: Any) -> Tensor: return ops.sub(self, other)
    def __rsub__(self, other: Any) -> Tensor: return ops.sub(other, self)
    def __mul__(self, other: Any) -> Tensor: return ops.mul(self, other)
    def __rmul__(self, other: Any) -> Tensor: return ops.mul(other, self)
    def __truediv__(self, other: Any) -> Tensor: return ops.div(self, other)
    def __rtruediv__(self, other: Any) -> Tensor: return ops.div(other, self)
    def __pow__(self, other: Any) -> Tensor: return ops.power(self, other)
    def __rpow__(self, other: Any) -> Tensor: return ops.power(other, self)
    def __matmul__(self, other: Any) -> Tensor: return ops.matmul(self, other)
    def __rmatmul__(self, other: Any) -> Tensor: return ops.matmul(other, self)
    def __neg__(self) -> Tensor: return ops.neg(self)
    def __pos__(self) -> Tensor: return self
    def __abs__(self) -> Tensor: return ops.absolute(self)
    def __eq__(self, other: Any) -> Tensor: return ops.eq(self, other)  # type: ignore[override]
    def __ne__(self, other: Any) -> Tensor: return ops.ne(self, other)  # type: ignore[override]
    def __lt__(self, other: Any) -> Tensor: return ops.lt(self, other)
    def __le__(self, other: Any) -> Tensor: return ops.le(self, other)
    def __gt__(self, other: Any) -> Tensor: return ops.gt(self, other)
    def __ge__(self, other: Any) -> Tensor: return ops.ge(self, other)
    def __getitem__(self, index: Any) -> Tensor: return ops.getitem(self, index=_index_arg(index))

    def exp(self) -> Tensor: return ops.exp(self)
    def log(self) -> Tensor: return ops.log(self)
    def sqrt(self) -> Tensor: return ops.sqrt(self)
    def abs(self) -> Tensor: return ops.absolute(self)
    def relu(self) -> Tensor: return ops.relu(self)
    def tanh(self) -> Tensor: return ops.tanh(self)
    def sigmoid(self) -> Tensor: return ops.sigmoid(self)
    def clip(self, low: Any = None, high: Any = None) -> Tensor: return ops.clip(self, low=low, high=high)
    def dot(self, other: Any) -> Tensor: return ops.matmul(self, other)
    def sum(self, axis: Any = None, keepdims: bool = False, **dim_keepdim: Any) -> Tensor:
        return ops.sum_(self, axis=axis, keepdims=keepdims, **dim_keepdim)
    def mean(self, axis: Any = None, keepdims: bool = False, **dim_keepdim: Any) -> Tensor:
        return ops.mean(self, axis=axis, keepdims=keepdims, **dim_keepdim)
    def max(self, axis: Any = None, keepdims: bool = False, **dim_keepdim: Any) -> Tensor:
        return ops.max_(self, axis=axis, keepdims=keepdims, **dim_keepdim)
    def min(self, axis: Any = None, keepdims: bool = False, **dim_keepdim: Any) -> Tensor:
        return ops.min_(self, axis=axis, keepdims=keepdims, **dim_keepdim)
    def argmax(self, axis: Any = None, **kw: Any) -> Tensor: return ops.argmax(self, axis=axis, **kw)
    def argmin(self, axis: Any = None, **kw: Any) -> Tensor: return ops.argmin(self, axis=axis, **kw)
    def logsumexp(self, axis: Any = -1, keepdims: bool = False, **dim_keepdim: Any) -> Tensor:
        return ops.logsumexp(self, axis=axis, keepdims=keepdims, **dim_keepdim)
    def log_softmax(self, axis: int = -1, **dim: Any) -> Tensor: return ops.log_softmax(self, axis=axis, **dim)
    def softmax(self, axis: int = -1, **dim: Any) -> Tensor: return ops.softmax(self, axis=axis, **dim)
    def reshape(self, *shape: Any) -> Tensor: return ops.reshape(self, shape=_shape_arg(shape))
    def transpose(self, *axes: Any) -> Tensor: return ops.transpose(self, axes=_shape_arg(axes) or None)
    T = property(lambda self: ops.transpose(self), doc="The transpose (axes reversed).")
    def astype(self, dtype: Any) -> Tensor: return ops.astype(self, dtype=np.dtype(dtype))  # ∂ cast back
    def to(self, dtype: Any = None) -> Tensor: return ops.to(self, dtype)
    def float(self) -> Tensor: return ops.astype(self, dtype=np.dtype(np.float32))
    def double(self) -> Tensor: return ops.astype(self, dtype=np.dtype(np.float64))
    def copy(self) -> Tensor: return ops.copy(self)  # new memory, in the graph
    def __floordiv__(self, other: Any) -> Tensor: return ops.floor_divide(self, other)
    def __rfloordiv__(self, other: Any) -> Tensor: return ops.floor_divide(other, self)
    def __mod__(self, other: Any) -> Tensor: return ops.remainder(self, other)
    def __rmod__(self, other: Any) -> Tensor: return ops.remainder(other, self)

    # elementwise (PyTorch's method names; the functions are tinygrad_lite.<name>)
    def expm1(self) -> Tensor: return ops.expm1(self)
    def log1p(self) -> Tensor: return ops.log1p(self)
    def log2(self) -> Tensor: return ops.log2(self)
    def sign(self) -> Tensor: return ops.sign(self)
    def square(self) -> Tensor: return ops.square(self)
    def rsqrt(self) -> Tensor: return ops.rsqrt(self)
    def sin(self) -> Tensor: return ops.sin(self)
    def cos(self) -> Tensor: return ops.cos(self)
    def tan(self) -> Tensor: return ops.tan(self)
    def asin(self) -> Tensor: return ops.asin(self)
    def acos(self) -> Tensor: return ops.acos(self)
    def atan(self) -> Tensor: return ops.atan(self)
    def atan2(self, other: Any) -> Tensor: return ops.atan2(self, other)
    arcsin, arccos, arctan, arctan2 = asin, acos, atan, atan2
    def sinh(self) -> Tensor: return ops.sinh(self)
    def cosh(self) -> Tensor: return ops.cosh(self)
    def erf(self) -> Tensor: return ops.erf(self)
    def erfc(self) -> Tensor: return ops.erfc(self)
    def floor(self) -> Tensor: return ops.floor(self)
    def ceil(self) -> Tensor: return ops.ceil(self)
    def trunc(self) -> Tensor: return ops.trunc(self)
    def round(self, decimals: int = 0) -> Tensor: return ops.round_(self, decimals=decimals)
    def copysign(self, other: Any) -> Tensor: return ops.copysign(self, other)
    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        return ops.div(self, other, rounding_mode=rounding_mode)
    divide = div
    def floor_divide(self, other: Any) -> Tensor: return ops.floor_divide(self, other)
    def remainder(self, other: Any) -> Tensor: return ops.remainder(self, other)
    def fmod(self, other: Any) -> Tensor: return ops.fmod(self, other)
    def maximum(self, other: Any) -> Tensor: return ops.maximum(self, other)
    def minimum(self, other: Any) -> Tensor: return ops.minimum(self, other)
    def clamp(self, min: Any = None, max: Any = None) -> Tensor: return ops.clip(self, low=min, high=max)  # noqa: A002
    def isclose(self, other: Any, **kw: Any) -> Tensor: return ops.isclose(self, other, **kw)
    def allclose(self, other: Any, **kw: Any) -> bool: return ops.allclose(self, other, **kw)
    def equal(self, other: Any) -> bool: return ops.equal(self, other)
    def isfinite(self) -> Tensor: return ops.isfinite(self)
    def isnan(self) -> Tensor: return ops.isnan(self)
    def isinf(self) -> Tensor: return ops.isinf(self)

    # reductions, scans and sorting
    def amax(self, *a: Any, **kw: Any) -> Tensor: return ops.amax(self, *a, **kw)
    def amin(self, *a: Any, **kw: Any) -> Tensor: return ops.amin(self, *a, **kw)
    def prod(self, *a: Any, **kw: Any) -> Tensor: return ops.prod(self, *a, **kw)
    def var(self, *a: Any, **kw: Any) -> Tensor: return ops.var(self, *a, **kw)
    def std(self, *a: Any, **kw: Any) -> Tensor: return ops.std(self, *a, **kw)
    def norm(self, *a: Any, **kw: Any) -> Tensor: return ops.norm(self, *a, **kw)
    def cumsum(self, *a: Any, **kw: Any) -> Tensor: return ops.cumsum(self, *a, **kw)
    def cumprod(self, *a: Any, **kw: Any) -> Tensor: return ops.cumprod(self, *a, **kw)
    def logcumsumexp(self, *a: Any, **kw: Any) -> Tensor: return ops.logcumsumexp(self, *a, **kw)
    def cummax(self, *a: Any, **kw: Any) -> Any: return ops.cummax(self, *a, **kw)  # (values, indices)
    def cummin(self, *a: Any, **kw: Any) -> Any: return ops.cummin(self, *a, **kw)
    def sort(self, *a: Any, **kw: Any) -> Any: return ops.sort(self, *a, **kw)  # (values, indices)
    def argsort(self, *a: Any, **kw: Any) -> Tensor: return ops.argsort(self, *a, **kw)
    def topk(self, *a: Any, **kw: Any) -> Any: return ops.topk(self, *a, **kw)  # (values, indices)

    # shape, gather and scatter
    def expand(self, *sizes: Any) -> Tensor: return ops.expand(self, *sizes)
    def expand_as(self, other: Any) -> Tensor: return ops.expand(self, *other.shape)
    def broadcast_to(self, shape: Any) -> Tensor: return ops.broadcast_to(self, shape=tuple(shape))
    def repeat(self, *sizes: Any) -> Tensor: return ops.repeat(self, *sizes)
    def tile(self, *a: Any) -> Tensor: return ops.tile(self, *a)
    def repeat_interleave(self, *a: Any, **kw: Any) -> Tensor: return ops.repeat_interleave(self, *a, **kw)
    def squeeze(self, *a: Any, **kw: Any) -> Tensor: return ops.squeeze(self, *a, **kw)
    def unsqueeze(self, *a: Any, **kw: Any) -> Tensor: return ops.unsqueeze(self, *a, **kw)
    def flatten(self, *a: Any, **kw: Any) -> Tensor: return ops.flatten(self, *a, **kw)
    def permute(self, *dims: Any) -> Tensor: return ops.permute(self, *dims)
    def movedim(self, *a: Any, **kw: Any) -> Tensor: return ops.movedim(self, *a, **kw)
    def view(self, *shape: Any) -> Tensor: return ops.view(self, *shape)
    def narrow(self, *a: Any, **kw: Any) -> Tensor: return ops.narrow(self, *a, **kw)
    def flip(self, *a: Any, **kw: Any) -> Tensor: return ops.flip(self, *a, **kw)
    def roll(self, *a: Any, **kw: Any) -> Tensor: return ops.roll(self, *a, **kw)
    def tril(self, *a: Any, **kw: Any) -> Tensor: return ops.tril(self, *a, **kw)
    def triu(self, *a: Any, **kw: Any) -> Tensor: return ops.triu(self, *a, **kw)
    def diagonal(self, *a: Any, **kw: Any) -> Tensor: return ops.diagonal(self, *a, **kw)
    def diagonal_scatter(self, *a: Any, **kw: Any) -> Tensor: return ops.diagonal_scatter(self, *a, **kw)
    def split(self, *a: Any, **kw: Any) -> tuple: return ops.split(self, *a, **kw)
    def chunk(self, *a: Any, **kw: Any) -> tuple: return ops.chunk(self, *a, **kw)
    def gather(self, *a: Any, **kw: Any) -> Tensor: return ops.gather(self, *a, **kw)
    def take_along_dim(self, *a: Any, **kw: Any) -> Tensor: return ops.take_along_dim(self, *a, **kw)
    def index_select(self, *a: Any, **kw: Any) -> Tensor: return ops.index_select(self, *a, **kw)
    def scatter(self, *a: Any, **kw: Any) -> Tensor: return ops.scatter(self, *a, **kw)
    def scatter_add(self, *a: Any, **kw: Any) -> Tensor: return ops.scatter_add(self, *a, **kw)
    def scatter_reduce(self, *a: Any, **kw: Any) -> Tensor: return ops.scatter_reduce(self, *a, **kw)

    # ----------------------------------------------------------------- in place
    def _inplace(self, name: str, ufunc: np.ufunc | None, other: Any) -> Tensor:
        """Apply ``self.data ← ufunc(self.data, other)`` (or a plain store) in place and bump the version."""
        if _MODE.trace is not None:
            _check_inplace(self, name, other)
        if _MODE.enabled and (self._rg or (isinstance(other, Tensor) and other._rg)):
            raise inplace_refused(self, name, other)
        value = _inplace_value(other)
        data = self.data
        if not data.flags.writeable:  # a parameter: writable only here, through the versioned API
            store_inplace(data, ufunc, value, name, self)
        elif ufunc is None:
            data[...] = value
        else:
            ufunc(data, value, out=data, casting="same_kind")
        bump_version(self)
        return self

    def add_(self, other: Any) -> Tensor:
        """self ← self + other, in place; returns self."""
        return self._inplace("add_", np.add, other)

    def sub_(self, other: Any) -> Tensor:
        """self ← self − other, in place; returns self."""
        return self._inplace("sub_", np.subtract, other)

    def mul_(self, other: Any) -> Tensor:
        """self ← self ⊙ other, in place; returns self."""
        return self._inplace("mul_", np.multiply, other)

    def div_(self, other: Any) -> Tensor:
        """self ← self / other, in place; returns self."""
        return self._inplace("div_", np.true_divide, other)

    def zero_(self) -> Tensor:
        """self ← 0, in place; returns self."""
        return self._inplace("zero_", None, 0)

    def fill_(self, value: Any) -> Tensor:
        """self ← value everywhere, in place; returns self."""
        return self._inplace("fill_", None, value)

    def copy_(self, src: Any) -> Tensor:
        """self ← src (broadcast to self's shape, cast to its dtype), in place; returns self."""
        return self._inplace("copy_", None, src)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 (PyTorch's names)
        """self ← clip(self, min, max), in place; returns self."""
        if min is not None:
            self._inplace("clamp_", np.maximum, min)
        if max is not None:
            self._inplace("clamp_", np.minimum, max)
        return self

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def __setitem__(self, index: Any, value: Any) -> None:
        if _MODE.trace is not None:
            _check_inplace(self, "__setitem__", value)
        if _MODE.enabled and (self._rg or (isinstance(value, Tensor) and value._rg)):
            raise inplace_refused(self, "__setitem__", value)
        value = _inplace_value(value)
        index = _index_arg(index)
        data = self.data
        if data.flags.writeable:
            data[index] = value
        else:
            with writable(self):
                data[index] = value
        bump_version(self)


# ------------------------------------------------------------------- helpers
def _init(t: Tensor, data: Array) -> None:
    if _MODE.trace is not None:  # made inside a function being compiled (its values may be read there)
        _MODE.trace.created(t)
    t.data = data
    t.grad = None
    t._rg = False
    t._ctx = None
    t._op = None
    t._args = None
    t._opts = None
    t._clock = None
    t._version = t._stamp = 0
    t._vbase = None
    t._hooks = None


def _wrap(data: Array) -> Tensor:
    """A leaf Tensor around an existing array, without conversion or checks."""
    t = Tensor.__new__(Tensor)
    _init(t, data)
    return t


def from_numpy(array: Array) -> Tensor:
    """A Tensor sharing ``array``'s memory (no copy). Writes to ``array`` through NumPy are
    the caller's responsibility: the tensor's version does not see them."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"from_numpy: unsupported dtype {array.dtype} (need float, integer or bool data)")
    return _wrap(array)


def _check_rerun(t: Tensor, what: str) -> None:
    """Refuse to read a value into Python where the value would be wrong later: in an op re-run for a
    higher-order gradient, and, inside a function being compiled, from a traced tensor or a parameter."""
    if _MODE.rerun is not None and t._rg:
        raise RuntimeError(
            f"op '{_MODE.rerun}' calls {what} on a Tensor that requires grad while it is re-run for a "
            f"higher-order gradient: the value would leave the graph and the derivative would be wrong; "
            f"write its forward and VJPs with NumPy calls or tinygrad_lite ops instead"
        )
    tracer = _MODE.trace
    if tracer is not None and not tracer.constant(t):
        raise TraceError(
            f"{what} on a tensor (shape {t.shape}, dtype {t.dtype}) inside a compiled function: its value would be "
            f"read once, while tracing, and frozen into every replay. Return the tensor and read it outside the "
            f"function (or call the function without compile)"
        )


def _check_inplace(t: Tensor, name: str, other: Any) -> None:
    """Inside a function being compiled, in-place changes to traced tensors or parameters are not replayed."""
    tracer = _MODE.trace
    if tracer is not None and (t._rg or tracer.traced(t) or (isinstance(other, Tensor) and tracer.traced(other))):
        raise TraceError(
            f"{name}: in-place change of a tensor (shape {t.shape}, dtype {t.dtype}) inside a compiled function is "
            f"not replayed; use the out-of-place form, and update parameters with an optimizer (opt.step() is "
            f"replayed)"
        )


def _shape_arg(shape: tuple) -> Any:
    return shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _index_arg(index: Any) -> Any:
    """An index as arrays the op can keep: index arrays and Tensors are copied, so changing them
    after the op ran cannot change which elements its backward scatters into."""
    if isinstance(index, tuple):
        return tuple(_index_arg(i) for i in index)
    if isinstance(index, (Tensor, np.ndarray, list)):
        a = index.data if isinstance(index, Tensor) else index
        # inside a compiled function an index array stays itself: a replay reads each call's (or its current) values
        return a if _MODE.trace is not None and type(a) is np.ndarray else np.array(a)
    return index


# The ops are made with graph.defop, which needs the class above: imported last, on purpose.
from . import autograd, numpy_api, ops  # noqa: E402

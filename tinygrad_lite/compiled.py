"""`compile`: record a training step once, then replay it without building a graph.

    step = tg.compile(step)          # or @tg.compile
    loss = step(x, y)                # calls 1 and 2 run eagerly and are recorded; later ones replay

For each combination of argument shapes and dtypes (and values of non-array arguments) the
function runs eagerly twice while `trace.Tracer` records it; the two recordings must agree
(an op argument that differs between them was computed in Python, outside the ops, and would
be frozen: `TraceError`). Later calls replay the recording, written out as one Python
function (`codegen.generate`): the same ops on the new arrays, the same VJPs in the same
order, the same optimizer calls, so the results equal eager ones exactly. A replay first
checks that the modules it ran are in the same mode and hold the same parameters; otherwise
it traces again. See the README for what is replayed.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from .codegen import generate, generate_guard
from .mode import _MODE, TraceError
from .tensor import Tensor, _wrap, from_numpy
from .trace import BACKWARD, CALL, LEAF, OP, SLOT, Plan, Tracer

__all__ = ["compile", "CompiledFunction", "TraceError"]

Array = np.ndarray


def _same(a: Any, b: Any) -> bool:
    """Whether two recorded values are the same (arrays and Tensors by value, others by ==)."""
    if a is b:
        return True
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a._rg is b._rg and _same(a.data, b.data)
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if _memory(a) == _memory(b):  # the same memory (a buffer read by reference, e.g. through a view)
            return True
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - objects whose == is not a truth value are simply different
        return False


def _memory(a: Array) -> tuple:
    """Where an array's elements are: the array that owns the memory, the address and the strides."""
    owner = a
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    return id(owner), a.__array_interface__["data"][0], a.strides


def _difference(first: Plan, second: Plan) -> str | None:
    """Where two recordings of the same call differ (a description), or None."""
    if len(first.steps) != len(second.steps):
        return (f"the two calls ran {len(first.steps)} and {len(second.steps)} steps: the function's Python control "
                f"flow depends on something other than the shapes and dtypes of its arguments")
    for a, b in zip(_specs(first.outputs), _specs(second.outputs)):
        if a[0] != b[0] or (a[0] == SLOT and a[1] != b[1]) or (a[0] == LEAF and a[1] is not b[1]):
            return ("it returns a tensor that no op inside it computed (made in Python, e.g. from .data or by a "
                    "function computed on arrays): a replay would return the second call's; return op results")
    for i, (s, t) in enumerate(zip(first.steps, second.steps)):
        if s[0] != t[0] or (s[0] == OP and s[1] is not t[1]) or (s[0] == CALL and s[1] != t[1]):
            return f"step {i} was {_name(s)} on the first call and {_name(t)} on the second"
        if s[0] == OP:
            if s[7] != t[7]:
                return (f"op '{s[1].name}' (step {i}) gave shapes {s[7]} and {t[7]} on the two calls: its output shape "
                        f"depends on the values (a boolean mask, nonzero), which a replay cannot follow")
            for j, (a, b) in enumerate(zip(s[2], t[2])):
                if a[0] != b[0] or (a[0] == SLOT and a[1] != b[1]) or (a[0] != SLOT and not _same(a[1], b[1])):
                    return f"op '{s[1].name}' (step {i}): its argument {j} {_differs}"
            for key in s[3].keys() | t[3].keys():
                if key not in s[3] or key not in t[3] or not _same(s[3][key], t[3][key]):
                    return f"op '{s[1].name}' (step {i}): its option {key}= {_differs}"
            if not _same([d[:2] for d in s[4]], [d[:2] for d in t[4]]):
                return f"op '{s[1].name}' (step {i}): an option {_differs}"
        elif s[0] == BACKWARD:
            if s[1] != t[1] or [(n, [e[0] if not isinstance(e[0], Tensor) else None for e in entries])
                                for n, _, entries in s[4]] != [(n, [e[0] if not isinstance(e[0], Tensor) else None
                                                                   for e in entries]) for n, _, entries in t[4]]:
                return f"backward() (step {i}) swept a different graph"
        elif not (_same(s[2], t[2]) and _same(s[3], t[3])):
            return f"{_name(s)} (step {i}) got different arguments"
    return None


_differs = ("differs between the first two calls, but no op inside the function computed it: it was computed in "
            "Python (e.g. from .data, or drawn from a random generator outside an op) and a replay would freeze it")


def _name(step: tuple) -> str:
    if step[0] == OP:
        return f"op '{step[1].name}'"
    return "backward()" if step[0] == BACKWARD else f"{getattr(step[1], '__qualname__', step[1])}()"


class _Entry:
    """The recordings for one call signature: the first trace (awaiting its check), then the plan."""

    __slots__ = ("first", "plan", "replay", "outputs", "guard")

    def __init__(self) -> None:
        self.first: Plan | None = None
        self.plan: Plan | None = None
        self.replay: Callable[[list, list], tuple] | None = None
        self.outputs: Callable[[tuple, list], Any] | None = None
        self.guard: Callable[[], str | None] | None = None  # the plan's `stale`, generated (None: nothing to check)


class CompiledFunction:
    """A function of Tensors whose calls after the first two (per call signature) are replays.

    Array arguments (Tensors, NumPy arrays) are the inputs: a call with a new shape or dtype
    (a smaller last batch, say) traces again. Other arguments must be hashable and are part of
    the signature (a new value traces again). NumPy array arguments arrive in the function as
    Tensors that do not require grad. The function must return a Tensor, or a tuple, list or
    dict of Tensors; a replay returns new Tensors (without graph) holding the values.
    ``cache_size`` signatures are kept (least recently used dropped).
    """

    def __init__(self, fn: Callable, cache_size: int = 8) -> None:
        if not callable(fn) or isinstance(fn, (type, Tensor)):
            raise TypeError(f"compile() needs a function (a step of Tensor operations), got {type(fn).__name__}")
        if isinstance(fn, CompiledFunction):
            fn = fn.fn
        self.fn = fn
        self.cache_size = int(cache_size)
        if self.cache_size < 1:
            raise ValueError(f"compile(): cache_size must be >= 1, got {cache_size}")
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._last: _Entry | None = None  # the most recently used entry (no reordering needed)
        self._lock = threading.Lock()
        self.traces = 0  # how many eager, recorded calls were made (two per signature, more on retraces)
        self.replays = 0
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"compile({getattr(self.fn, '__qualname__', self.fn)!r})"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        """As a method: the instance is the first argument (part of the signature, by identity)."""
        return self if obj is None else functools.partial(self, obj)

    # -------------------------------------------------------------------- calls
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        mode = _MODE
        if mode.trace is not None or mode.anomaly or mode.rerun is not None:
            return self.fn(*args, **kwargs)  # inside another trace (recorded there), or debugging: eager
        key, arrays, values = _signature(args, kwargs)
        entry = self._entries.get(key)
        if entry is None or entry is not self._last:
            with self._lock:
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = _Entry()
                    while len(self._entries) > self.cache_size:
                        self._entries.popitem(last=False)
                else:
                    self._entries.move_to_end(key)
                self._last = entry
        plan = entry.plan
        if plan is not None and (entry.guard is None or entry.guard() is None):
            self.replays += 1
            return entry.outputs(entry.replay(arrays, values), values)
        if plan is not None or (entry.first is not None and entry.first.stale() is not None):
            entry.plan = entry.first = None  # a module changed: start over (two traces) for this signature
        tensors = [v if isinstance(v, Tensor) else from_numpy(v) for v in values]
        return self._trace(entry, args, kwargs, tensors)

    def _trace(self, entry: _Entry, args: tuple, kwargs: dict, tensors: list[Tensor]) -> Any:
        inputs = iter(tensors)  # in _signature's order: the positional arguments, then keywords by name
        call_args = [next(inputs) if _is_array(a) else a for a in args]
        named = {k: next(inputs) for k in sorted(kwargs) if _is_array(kwargs[k])}
        call_kwargs = {k: named.get(k, v) for k, v in kwargs.items()}
        tracer = Tracer(tensors)
        if entry.first is not None:  # the second trace: what the first one read is watched from the start
            tracer.watch([leaf for leaf, *_ in entry.first.leaves])
        _MODE.trace = tracer
        try:
            result = self.fn(*call_args, **call_kwargs)
            plan = tracer.plan
            plan.outputs = _output_specs(result, tracer, getattr(self.fn, "__qualname__", "the function"))
        finally:
            _MODE.trace = None
            tracer.finish()
        self.traces += 1
        if entry.first is None:
            entry.first = plan
        else:
            problem = _difference(entry.first, plan)
            if problem:
                entry.first = None
                raise TraceError(f"compile({getattr(self.fn, '__qualname__', 'fn')}): {problem}")
            slots = _out_slots(plan.outputs, plan.n_inputs)
            entry.replay = generate(plan, slots, self.__qualname__)
            entry.outputs = _output_builder(plan.outputs, slots, plan.n_inputs)
            entry.guard = generate_guard(plan)
            entry.plan, entry.first = plan, None
        return result


def compile(fn: Callable | None = None, *, cache_size: int = 8) -> Any:  # noqa: A001 (the name users expect)
    """Compile a step function of Tensors (forward, loss, ``backward()``, optimizer step) so that its
    calls replay a recording instead of building a graph; ``@compile`` or ``compile(fn)``.

    The results equal the eager ones (same ops, same order). Inside the function, reading a
    traced value into Python (``.item()``, ``bool(t)``, ``.numpy()``, ``float(t)``), in-place
    changes of traced tensors or parameters, ``tg.grad`` and hooks raise `TraceError` while
    tracing. ``optimizer.step()``, ``zero_grad()``, schedulers' ``step()`` and the
    ``clip_grad_*_`` functions are replayed; other Python code runs only while tracing."""
    if fn is None:
        return lambda f: CompiledFunction(f, cache_size)
    return CompiledFunction(fn, cache_size)


# ---------------------------------------------------------------------- helpers
def _is_array(value: Any) -> bool:
    return isinstance(value, (Tensor, np.ndarray))


def _signature(args: tuple, kwargs: dict) -> tuple[Hashable, list[Array], list[Any]]:
    """(cache key, input arrays, the Tensors or arrays they came from): arrays by shape, dtype,
    requires_grad and which earlier argument is the same object (the same Tensor passed twice is
    another signature than two Tensors); other arguments by value; and whether grad mode is on."""
    key: list[Any] = [_MODE.enabled]  # under no_grad() the eager step records no graph: another signature
    arrays: list[Array] = []
    values: list[Any] = []
    for name, value in [*enumerate(args), *sorted(kwargs.items())] if kwargs else enumerate(args):
        if isinstance(value, (Tensor, np.ndarray)):
            tensor = isinstance(value, Tensor)
            d = value.data if tensor else value
            same = -1
            if values:
                for i, v in enumerate(values):
                    if v is value:
                        same = i
                        break
            key.append((name, d.shape, d.dtype, tensor and value._rg, same))
        else:
            try:
                hash(value)
            except TypeError:
                raise TypeError(f"compiled function: argument {name!r} is a {type(value).__name__}; pass Tensors, "
                                f"NumPy arrays or hashable constants (numbers, strings, tuples)") from None
            if isinstance(value, (list, tuple)) and any(_is_array(v) for v in value):
                raise TypeError(f"compiled function: argument {name!r} holds arrays inside a {type(value).__name__}; "
                                f"pass each array as an argument of its own")
            key.append((name, _typed(value)))
            continue
        arrays.append(d)
        values.append(value)
    return tuple(key), arrays, values


def _typed(value: Any) -> Any:
    """A key for a non-array argument that tells apart what == does not: 2, 2.0 and True; 0.0 and -0.0."""
    if isinstance(value, tuple):
        return (tuple, *map(_typed, value))
    if isinstance(value, float):
        return (float, value.hex())
    return (type(value), value)


def _output_specs(result: Any, tracer: Tracer, name: str) -> Any:
    """How a replay rebuilds the function's return value: (kind, structure) of slots and leaves."""
    def spec(t: Any) -> tuple:
        if not isinstance(t, Tensor):
            raise TypeError(f"compile({name}): the function returned a {type(t).__name__}; a compiled step returns "
                            f"the Tensors it computes (e.g. the loss), or a tuple, list or dict of them")
        k = tracer.slot_of(t)
        return (SLOT, k) if k is not None else (LEAF, t)

    if result is None:
        raise TypeError(f"compile({name}): the function returned nothing; a compiled step returns the Tensors it "
                        f"computes (e.g. return loss), since a replay runs no Python code of its own")
    if isinstance(result, Tensor):
        return ("one", spec(result))
    if isinstance(result, (tuple, list)):
        return (type(result), [spec(t) for t in result])
    if isinstance(result, dict):
        return (dict, {k: spec(t) for k, t in result.items()})
    spec(result)  # raises, naming the type


def _specs(outputs: Any) -> list[tuple]:
    kind, body = outputs
    return [body] if kind == "one" else list(body.values() if kind is dict else body)


def _out_slots(outputs: Any, n_inputs: int) -> list[int]:
    """The slots a replay returns (in order, each once): the outputs computed by ops."""
    return list(dict.fromkeys(s[1] for s in _specs(outputs) if s[0] == SLOT and s[1] >= n_inputs))


def _output_builder(specs: Any, slots: list[int], n: int) -> Callable[[tuple, list], Any]:
    """``build(arrays, values)``: the replay's return value, new Tensors around the arrays it returned
    (in ``slots`` order; input Tensors and outside tensors returned as they are)."""
    at = {k: i for i, k in enumerate(slots)}

    def one(s: tuple) -> Callable[[tuple, list], Any]:
        if s[0] == LEAF:
            return lambda arrays, values, t=s[1]: t
        if s[1] < n:
            return lambda arrays, values, k=s[1]: values[k] if isinstance(values[k], Tensor) else from_numpy(values[k])
        return lambda arrays, values, i=at[s[1]]: _wrap(arrays[i])

    kind, body = specs
    if kind == "one":
        if body[0] == SLOT and body[1] >= n:  # the common case: one computed tensor (the loss)
            return lambda arrays, values: _wrap(arrays[0])
        return one(body)
    if kind is dict:
        parts = {k: one(s) for k, s in body.items()}
        return lambda arrays, values: {k: f(arrays, values) for k, f in parts.items()}
    items = [one(s) for s in body]
    return lambda arrays, values: kind(f(arrays, values) for f in items)


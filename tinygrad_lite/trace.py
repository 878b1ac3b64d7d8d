"""Recording one eager call of a function as a plan (what `tinygrad_lite.compile` replays).

A `Tracer` is installed in the thread's mode while the function runs eagerly; the engine
reports to it every op (`graph.defop`), every ``backward()`` and every call of a
`mode.replayed` method (optimizer steps, ``zero_grad``, schedulers). The plan is a flat
list of steps over numbered values (slots: the inputs, then each op's output):

    op        out_k = fn(*args, **options)   args: slots, leaves read by reference, constants
    backward  the VJPs in the order the eager sweep called them, gradients summed as it summed
              them, leaves' ``.grad`` written as it wrote them
    call      the recorded method, called again with the same arguments

`codegen.generate` turns a plan into the function a replay calls: no Tensor or graph object,
each op's forward makes its VJPs, the backward step calls them. What cannot be repeated
exactly is refused while tracing (`mode.TraceError`): reading a traced value into Python,
in-place Tensor operations, ``tg.grad``, hooks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from .autograd import _count_consumers
from .graph import OpRecord
from .mode import _MODE, TraceError
from .tensor import Tensor, _wrap

__all__ = ["Tracer", "Plan", "SLOT", "LEAF", "CONST", "OP", "BACKWARD", "CALL"]

Array = np.ndarray
SLOT, LEAF, CONST = 0, 1, 2  # how an op argument is found at replay
OP, BACKWARD, CALL = 0, 1, 2  # kinds of plan steps
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_DATA, _GRAD = Tensor.data, Tensor.grad  # the slot descriptors


def _outside(what: str, t: Tensor) -> None:
    """Raise TraceError when the caller's caller is not the library (user code touching a traced tensor) in
    the thread that is tracing (another thread's eager code may read the same parameters)."""
    if _MODE.trace is not None and not sys._getframe(2).f_code.co_filename.startswith(_PACKAGE_DIR):
        raise TraceError(
            f"{what} of a tensor (shape {_DATA.__get__(t).shape}) inside a compiled function: a replay would not "
            f"repeat it (a value read would be frozen, a value set would be lost). Use tensor operations and an "
            f"optimizer (opt.zero_grad(), opt.step() are replayed), or do it outside the function")


def _get_data(self: Tensor) -> Array:
    _outside("reading .data", self)
    return _DATA.__get__(self)


def _set_data(self: Tensor, value: Array) -> None:
    _outside("setting .data", self)
    _DATA.__set__(self, value)


def _get_grad(self: Tensor) -> Array | None:
    _outside("reading .grad", self)
    return _GRAD.__get__(self)


def _set_grad(self: Tensor, value: Array | None) -> None:
    _outside("setting .grad", self)
    _GRAD.__set__(self, value)


def _reduce_ex(self: Tensor, protocol: int) -> tuple:
    """Pickle (and copy) a tensor with a traced twin class as its own class (another thread may save the
    model while this one traces)."""
    state = object.__reduce_ex__(self, max(protocol, 2))[2]  # (instance dict or None, slot values)
    return _rebuild, (type(self)._traced_from, state)


def _rebuild(cls: type, state: Any) -> Tensor:
    t = cls.__new__(cls)
    attrs, slots = state if isinstance(state, tuple) else (state, None)
    for k, v in {**(attrs or {}), **(slots or {})}.items():
        setattr(t, k, v)
    return t


_TRACED: dict[type, type] = {}  # Tensor class -> its traced twin


def _traced_class(cls: type) -> type:
    """The twin of a Tensor class (Tensor, nn.Parameter, ...) that traced tensors and the tensors a trace
    reads have while tracing: reading or setting ``.data`` or ``.grad`` from outside the library raises
    (the library's own use is its business)."""
    twin = _TRACED.get(cls)
    if twin is None:
        twin = _TRACED[cls] = type(f"Traced{cls.__name__}", (cls,), {
            "__slots__": (), "__module__": __name__, "_traced_from": cls,
            "data": property(_get_data, _set_data), "grad": property(_get_grad, _set_grad),
            "__reduce_ex__": _reduce_ex})
    return twin


def _mark(t: Tensor) -> None:
    """Give ``t`` its traced twin class (until `_unmark`)."""
    if not hasattr(type(t), "_traced_from"):
        t.__class__ = _traced_class(type(t))


def _unmark(t: Tensor) -> None:
    cls = getattr(type(t), "_traced_from", None)
    if cls is not None:
        t.__class__ = cls


_PLAIN = (bool, int, float, complex, str, bytes, np.generic, type(None))


def _snapshot(value: Any) -> Any:
    """What a guard remembers of a module attribute: containers copied (their elements remembered in turn),
    everything else as it is (plain values are compared by value, other objects by identity)."""
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v) for v in value) if type(value) in (list, tuple) else value
    return value


def _unchanged(now: Any, snap: Any) -> bool:
    """Whether an attribute still is what `_snapshot` remembered: the same objects, equal plain values."""
    if isinstance(snap, dict):
        return type(now) is dict and now.keys() == snap.keys() and all(_unchanged(now[k], snap[k]) for k in snap)
    if type(snap) in (list, tuple):
        return type(now) is type(snap) and len(now) == len(snap) and all(map(_unchanged, now, snap))
    if isinstance(snap, _PLAIN):
        return type(now) is type(snap) and now == snap
    return now is snap


class Plan:
    """What a trace recorded: ``steps`` (see the module docstring), ``n_inputs`` input slots, the
    output structure, and the guards a replay checks first (modules' attributes and modes)."""

    def __init__(self) -> None:
        self.steps: list[tuple] = []
        self.n_slots = 0
        self.n_inputs = 0
        self.outputs: Any = None
        self.modules: list[tuple[Any, bool, dict, list[tuple]]] = []  # (module, training, vars, [(name, snapshot)])
        self.leaves: list[tuple[Tensor, tuple, np.dtype, bool]] = []  # (leaf, shape, dtype, requires_grad)
        self.guarded = True  # whether `stale` has anything to check (set when the trace is finished)

    def stale(self) -> str | None:
        """Why the plan no longer describes the function (a module's attribute replaced or changed, a
        mode, or a leaf's shape, dtype or requires_grad changed), or None."""
        for module, training, attrs, items in self.modules:
            if module.training is not training:
                return f"{type(module).__name__} switched to {'training' if module.training else 'eval'} mode"
            for name, snap in items:
                if not _unchanged(attrs.get(name, _MISSING), snap):
                    return f"{type(module).__name__}.{name} was replaced or changed"
        for t, shape, dtype, rg in self.leaves:
            d = t.data
            if d.shape != shape or d.dtype != dtype or t._rg is not rg:
                return f"a tensor it reads (shape {shape}, dtype {dtype}) changed its shape, dtype or requires_grad"
        return None


def _spec_of(value: Any, tracer: Tracer) -> tuple[int, Any]:
    """(SLOT, k) for a traced Tensor or the array of one, (LEAF, t) for another Tensor, else (CONST, value)."""
    if isinstance(value, Tensor):
        k = tracer.slot_of(value)
        return (SLOT, k) if k is not None else (LEAF, tracer.leaf(tracer.followed(value)))
    if isinstance(value, np.ndarray):
        k = tracer.data_slot.get(id(value))
        if k is not None:
            return SLOT, k
    return CONST, value


def _option_specs(options: dict, tracer: Tracer) -> tuple[dict, list]:
    """(constant options, [(name, specs or spec, is_tuple)]) for the options that hold traced arrays."""
    dynamic = []
    for name, v in options.items():
        if isinstance(v, np.ndarray):
            spec = _spec_of(v, tracer)
            if spec[0] == SLOT:
                dynamic.append((name, spec, False))
        elif isinstance(v, tuple) and any(isinstance(e, np.ndarray) and id(e) in tracer.data_slot for e in v):
            dynamic.append((name, [_spec_of(e, tracer) for e in v], True))
    if not dynamic:
        return options, dynamic
    const = {k: v for k, v in options.items() if k not in {d[0] for d in dynamic}}
    return const, dynamic


_MISSING = object()


class Tracer:
    """Records the eager run of a function into a `Plan` (installed as ``_MODE.trace``); `finish`
    gives the traced tensors their class back."""

    def __init__(self, inputs: list[Tensor]) -> None:
        self.plan = Plan()
        self.slot: dict[int, int] = {}  # id(Tensor) -> slot
        self.data_slot: dict[int, int] = {}  # id(its array) -> slot
        self.alive: list[Any] = []  # keeps the ids above valid while tracing
        self._leaves: dict[int, Tensor] = {}
        self._watched: list[Tensor] = []
        self._followed: dict[int, Tensor] = {}  # id(t.detach()) -> t, for tensors from outside
        self._created: set[int] = set()  # ids of the Tensors made while tracing (kept alive in self.alive)
        self._modules: dict[int, Any] = {}
        for t in inputs:
            self._new_slot(t)
        self.plan.n_inputs = len(inputs)

    def _new_slot(self, t: Tensor) -> int:
        k = self.plan.n_slots
        self.plan.n_slots += 1
        self.alias(t, k)
        return k

    def alias(self, t: Tensor, k: int) -> None:
        """Make ``t`` (a new slot, or a Tensor around slot k's array, as ``detach()`` makes) traced."""
        self.slot[id(t)] = k
        self.data_slot[id(t.data)] = k
        self.alive += (t, t.data)
        _mark(t)

    def watch(self, leaves: list[Tensor]) -> None:
        """Treat ``leaves`` (those an earlier trace read) as read from the start: touching their ``.data`` or
        ``.grad`` in user code raises even before an op uses them."""
        for t in leaves:
            _mark(t)
            self._watched.append(t)

    def follow(self, t: Tensor, source: Tensor) -> None:
        """``t`` (made by ``source.detach()``) reads ``source``: a replay reads ``source``'s array then."""
        self._followed[id(t)] = source
        self.alive.append(t)
        _mark(t)

    def finish(self) -> None:
        """Give every traced tensor its class back (the trace is over)."""
        self.plan.guarded = bool(self.plan.modules or self.plan.leaves)
        for t in (*self.alive, *self._leaves.values(), *self._watched):
            if isinstance(t, Tensor):
                _unmark(t)

    def traced_value(self, value: Any) -> bool:
        """Whether ``value`` is a traced Tensor, a traced array, or a view of one."""
        if isinstance(value, Tensor):  # an input or op output, or a parameter (its values change between calls)
            return self.slot_of(value) is not None or value._rg or id(value) in self._leaves
        while isinstance(value, np.ndarray):
            if id(value) in self.data_slot:
                return True
            value = value.base
        return False

    def slot_of(self, t: Tensor) -> int | None:
        """The slot of an input or op output, or of a Tensor around the same array (``detach()``), else None."""
        k = self.slot.get(id(t))
        return self.data_slot.get(id(t.data)) if k is None else k

    def created(self, t: Tensor) -> None:
        """``t`` was made while tracing (by the function or the library, not by an op)."""
        self._created.add(id(t))
        self.alive.append(t)

    def constant(self, t: Tensor) -> bool:
        """Whether reading ``t``'s values in Python is safe: it was made while tracing from constants, not
        from a traced value, and it is no parameter (anything from outside may change between calls)."""
        return id(t) in self._created and id(t) not in self._followed and not self.traced_value(t)

    def followed(self, t: Tensor) -> Tensor:
        """The tensor ``t`` reads (``t`` itself unless it was made by detaching one from outside)."""
        return self._followed.get(id(t), t)

    def traced(self, t: Tensor) -> bool:
        """Whether ``t`` is an input or an op's output in this trace (its values vary between calls)."""
        return self.slot_of(t) is not None

    def leaf(self, t: Tensor) -> Tensor:
        """A tensor from outside the trace, read by reference at each replay (guarded: shape, dtype)."""
        if id(t) not in self._leaves:
            if t._op is not None and t._ctx is not None:
                raise TraceError(f"the compiled function uses a tensor (shape {t.shape}) that an op outside it "
                                 f"computed with a graph ('{t._op.name}'); compute it inside, or pass it detached")
            self._leaves[id(t)] = t
            self.plan.leaves.append((t, t.data.shape, t.data.dtype, t._rg))
            _mark(t)  # user code touching its .data or .grad now raises
        return t

    def module(self, module: Any) -> None:
        """A module called while tracing: a replay checks that it and every module below it are in the
        same mode and hold the same parameters, buffers and submodules (the same objects, also inside
        lists and dicts) and the same plain settings (numbers, strings: ``Dropout.p``, ``eps``)."""
        for m in module.modules():
            if id(m) in self._modules:
                continue
            self._modules[id(m)] = m
            attrs = vars(m)
            items = [(k, _snapshot(v)) for k, v in attrs.items() if k != "training"]
            self.plan.modules.append((m, m.training, attrs, items))

    # ---------------------------------------------------------------- engine hooks
    def op(self, record: OpRecord, args: tuple, options: dict, out: Tensor, arrays: list) -> None:
        """An op ran: remember how to find its arguments again (constants as the op saw them, ``arrays``)
        and give its output a slot."""
        specs = [_spec_of(a, self) for a in args]
        specs = [(CONST, v) if s[0] == CONST and not isinstance(s[1], np.ndarray) else s for s, v in zip(specs, arrays)]
        const, dynamic = _option_specs(options, self)
        constants = [v for kind, v in specs if kind == CONST] + [
            e for v in const.values() for e in (v if isinstance(v, tuple) else (v,))]
        for value in constants:
            if isinstance(value, np.ndarray) and self.traced_value(value):
                raise TraceError(f"op '{record.name}' got an array that is a view of a value of the compiled "
                                 f"function, made in Python: a replay would reuse the traced one; use tensor "
                                 f"operations (reshape, indexing) instead")
        keep_vjps = out._ctx is not None
        k = self._new_slot(out)
        self.plan.steps.append((OP, record, specs, const, dynamic, k, keep_vjps, _DATA.__get__(out).shape))

    def backward(self, root: Tensor, grad: Any, retain_graph: bool) -> None:
        """``root.backward(grad)`` is about to run: record the order in which the sweep will call the VJPs."""
        k = self.slot_of(root)
        if k is None:
            raise TraceError(f"backward() on a tensor (shape {root.shape}) that the compiled function did not compute")
        if grad is not None:
            raise TraceError("backward() with a cotangent inside a compiled function: reduce to a scalar loss and call "
                             "backward()")
        if root._ctx is None:
            raise TraceError(f"backward() on an input of the compiled function (shape {root.shape}): nothing to replay")
        counts = _count_consumers([root])
        ready, order, leaf_keys = [root], [], {}
        while ready:  # the eager sweep's order (autograd._sweep): a stack, parents when their consumers are done
            node = ready.pop()
            if node._hooks:
                raise TraceError(f"a hook on a tensor made by '{node._op.name}' inside a compiled function; hooks are "
                                 f"not replayed: remove it, or call the function without compile")
            nk = self.slot.get(id(node))
            if nk is None or nk < self.plan.n_inputs:
                raise TraceError(f"backward() reaches a tensor made by '{node._op.name}' outside the compiled "
                                 f"function (shape {node.shape}); compute it inside, or pass it detached "
                                 f"(x.detach())")
            entries = []
            for parent, _, index in node._ctx:
                if parent._ctx is None:  # a leaf: its gradient goes to its .grad
                    if parent._hooks:
                        raise TraceError(f"a hook on a leaf tensor (shape {parent.shape}) used in a compiled "
                                         f"function; hooks are not replayed")
                    key: Any = self.slot.get(id(parent))
                    key = ("input", key) if key is not None else self.leaf(parent)
                    leaf_keys[id(parent)] = key
                else:
                    key = self.slot.get(id(parent))
                    if key is None:
                        raise TraceError(f"backward() reaches a tensor made by '{parent._op.name}' outside the "
                                         f"compiled function (shape {parent.shape}); compute it inside, or detach it")
                entries.append((key, index, parent.data.shape, parent.data.dtype))
            order.append((nk, node._op, entries))
            for parent, _, _ in node._ctx:
                if parent._ctx is not None:
                    counts[parent] -= 1
                    if not counts[parent]:
                        ready.append(parent)
        self.plan.steps.append((BACKWARD, k, root.data.shape, root.data.dtype, order, retain_graph))

    def call(self, fn: Any, args: tuple, kwargs: dict) -> Any:
        """A `mode.replayed` call: record it, then run it (its own work is not traced)."""
        for a in (*args, *kwargs.values()):
            if isinstance(a, Tensor) and self.traced(a):
                raise TraceError(f"{fn.__qualname__}() got a tensor computed inside the compiled function (shape "
                                 f"{a.shape}); a replay would pass it the traced value again")
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)  # a replay needs them again
        kwargs = {k: list(v) if isinstance(v, Iterator) else v for k, v in kwargs.items()}
        _MODE.trace = None
        try:
            result = fn(*args, **kwargs)
        finally:
            _MODE.trace = self
        if result is None:
            self.plan.steps.append((CALL, fn, args, kwargs, None))
            return None
        if not isinstance(result, (np.ndarray, np.generic, bool, int, float)):
            raise TraceError(f"{fn.__qualname__}() returned a {type(result).__name__} inside a compiled function, "
                             f"which a replay could not give back; call it outside the function")
        # A value (clip_grad_norm_'s total norm) comes back as a traced tensor: a replay computes it again, and
        # reading it in Python (float(norm), if norm < c) raises like any traced value.
        t = _wrap(np.asarray(result))
        self.plan.steps.append((CALL, fn, args, kwargs, self._new_slot(t)))
        return t

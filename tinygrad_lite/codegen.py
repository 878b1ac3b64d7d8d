"""A recorded plan as one generated Python function: the replay of `tinygrad_lite.compile`.

`generate(plan)` writes the plan out as straight-line code — one line per op call, the
backward's VJP calls unrolled with their gradient accumulation, the replayed method calls —
and compiles it once. Each value is a local variable (``s3``: slot 3's array, ``v3``: its
VJPs, ``G0_3``: its gradient in backward 0), released after its last use as the eager sweep
releases them, so a replay does what the eager step does, in the same order, minus the
interpretation: no Tensor, graph, dict of pending gradients or dispatch per step.

The per-gradient checks are those of ``autograd._sweep`` (a VJP's non-array result, a
broadcast shape summed back, a dtype cast, whether the array may be added into in place).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd import _GRAD_LOCK, _as_gradient, _unbroadcast
from .graph import _call, _promote
from .mode import TraceError
from .trace import _MISSING, _PLAIN, BACKWARD, CALL, LEAF, OP, SLOT, Plan, _unchanged

__all__ = ["generate", "generate_guard"]

_F64 = np.dtype(np.float64)


def _norm(vjps: Any, n: int) -> tuple:
    """An op's VJPs as a tuple of n (a single function, or None for none)."""
    if callable(vjps):
        return (vjps,)
    return (None,) * n if vjps is None else tuple(vjps)


def _checked_out(out: Any, name: str, traced: tuple) -> np.ndarray:
    """An op's output as an array of the shape it had when traced (else TraceError: a value-dependent shape)."""
    out = np.asarray(out)
    if out.shape != traced:
        raise TraceError(f"op '{name}' gave an output of shape {out.shape} in this replay but {traced} when it was "
                         f"traced: its shape depends on the values (a boolean mask, nonzero), which a replay cannot "
                         f"follow; run this function without tinygrad_lite.compile")
    return out


def _checked_grad(pg: Any, g: Any, shape: tuple, dtype: np.dtype, name: str, index: int, fresh: bool) -> tuple:
    """A VJP's result as autograd's sweep takes it: (gradient of the argument's shape and dtype, whether
    the sweep owns it and may add into it)."""
    if type(pg) is not np.ndarray:
        pg, owned = _as_gradient(pg, name, index), False
    else:
        owned = fresh and pg is not g and pg.base is None
    if pg.shape != shape:
        pg, owned = _unbroadcast(pg, shape, name, index), True
    if pg.dtype != dtype:
        pg, owned = pg.astype(dtype), True
    return pg, owned


def _redo(fn: Callable, name: str, args: list, options: dict, out: Any, vjps: Any) -> tuple:
    """As ``graph.defop``: a float64 result from float32 and 0-d or integer operands is computed again
    with those operands cast (PyTorch's promotion)."""
    promoted = _promote(args)
    return (out, vjps) if promoted is args else _call(fn, name, promoted, options)


class _Writer:
    """Lines of the generated function and the constants its names refer to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {"ndarray": np.ndarray, "asarray": np.asarray, "array": np.array,
                                   "empty": np.empty, "F64": _F64, "norm": _norm, "redo": _redo,
                                   "LOCK": _GRAD_LOCK,
                                   "checked_out": _checked_out, "checked_grad": _checked_grad}
        self._ids: dict[int, str] = {}

    def emit(self, line: str, indent: int = 1) -> None:
        self.lines.append("    " * indent + line)

    def const(self, value: Any, prefix: str = "C") -> str:
        """A name in the generated code's namespace for ``value`` (one per object)."""
        name = self._ids.get(id(value))
        if name is None:
            name = self._ids[id(value)] = f"{prefix}{len(self._ids)}"
            self.ns[name] = value
        return name


def _expr(spec: tuple, w: _Writer) -> str:
    kind, value = spec
    if kind == SLOT:
        return f"s{value}"
    return f"{w.const(value, 'L')}.data" if kind == LEAF else w.const(value)


def _last_uses(plan: Plan, keep: set[int]) -> dict[int, int]:
    """{step index: slots whose last forward use is that step} (slots in ``keep`` are never released)."""
    last: dict[int, int] = {}
    for i, step in enumerate(plan.steps):
        if step[0] == OP:
            for kind, v in step[2]:
                if kind == SLOT:
                    last[v] = i
            for _, spec, is_tuple in step[4]:
                for kind, v in (spec if is_tuple else [spec]):
                    if kind == SLOT:
                        last[v] = i
    by_step: dict[int, list[int]] = {}
    for k, i in last.items():
        if k not in keep:
            by_step.setdefault(i, []).append(k)
    return by_step


def _op(w: _Writer, i: int, step: tuple, release: list[int]) -> None:
    _, record, specs, options, dynamic, k, keep_vjps, shape = step
    fn, name = w.const(record.fn, "f"), repr(record.name)
    args = [_expr(s, w) for s in specs]
    keywords = []
    for key, spec, is_tuple in dynamic:
        value = f"({', '.join(_expr(s, w) for s in spec)},)" if is_tuple else _expr(spec, w)
        keywords.append(f"{key}={value}")
    if options:
        keywords.append(f"**{w.const(options, 'o')}")
    vjps = f"v{k}" if keep_vjps else "_"
    w.emit(f"s{k}, {vjps} = {fn}({', '.join(args + keywords)})")
    w.emit(f"if type(s{k}) is not ndarray or s{k}.shape != {shape!r}: s{k} = checked_out(s{k}, {name}, {shape!r})")
    if len(args) > 1:
        full = f"dict({w.const(options, 'o')}, {', '.join(k_ for k_ in keywords if not k_.startswith('**'))})" \
            if dynamic else w.const(options, "o")
        w.emit(f"if s{k}.dtype is F64: s{k}, {vjps} = redo({fn}, {name}, [{', '.join(args)}], {full}, s{k}, {vjps})")
    if keep_vjps:
        n = len(args)
        if n == 1:  # one argument: a VJP is usually returned alone
            w.emit(f"if type(v{k}) is not tuple: v{k} = (v{k},) if callable(v{k}) else norm(v{k}, 1)")
        else:
            w.emit(f"if type(v{k}) is not tuple or len(v{k}) != {n}: v{k} = norm(v{k}, {n})")
    for r in release:
        w.emit(f"s{r} = None")


def _backward(w: _Writer, b: int, step: tuple, n_inputs: int) -> None:
    _, root, shape, dtype, order, retain = step
    names: dict[Any, str] = {}

    def tag(key: Any) -> Any:  # ints and tuples as they are, a leaf Tensor by identity (never by ==)
        return key if isinstance(key, (int, tuple)) else ("leaf", id(key))

    def var(key: Any) -> str:
        t = tag(key)
        if t not in names:
            if isinstance(key, int):
                names[t] = f"G{b}_{key}"
            elif isinstance(key, tuple):  # ("input", k): the gradient of an input Tensor
                names[t] = f"G{b}_I{key[1]}"
            else:
                names[t] = f"G{b}_{w.const(key, 'L')}"
        return names[t]

    g0 = var(root)
    w.emit(f"{g0} = empty({shape!r}, {w.const(dtype, 'D')})")
    w.emit(f"{g0}.fill(1)")
    w.emit(f"W{g0} = True")
    leaves: list[Any] = []
    for nk, record, entries in order:
        g = var(nk)
        name = repr(record.name)
        for key, index, pshape, pdtype in entries:
            d = w.const(pdtype, "D")
            w.emit(f"pg = v{nk}[{index}]({g})")  # the common case first; the rare ones as the sweep does them
            w.emit(f"if type(pg) is ndarray and pg.shape == {pshape!r} and pg.dtype is {d}: "
                   f"ow = {f'pg is not {g} and pg.base is None' if record.fresh else 'False'}")
            w.emit(f"else: pg, ow = checked_grad(pg, {g}, {pshape!r}, {d}, {name}, {index}, {record.fresh})")
            first = tag(key) not in names
            target = var(key)
            if first:
                w.emit(f"{target} = pg; W{target} = ow")
                if not isinstance(key, int):
                    leaves.append(key)
            else:
                w.emit(f"if W{target}: {target} += pg")
                w.emit(f"else: {target} = asarray({target} + pg); W{target} = True")
        w.emit(f"{g} = pg = None" + ("" if retain else f"; v{nk} = None"))  # released as the sweep releases them
    if leaves:
        w.emit("with LOCK:")
        for key in leaves:
            target = var(key)
            leaf = f"values[{key[1]}]" if isinstance(key, tuple) else w.const(key, "L")
            w.emit(f"if {leaf}.grad is None: {leaf}.grad = {target} if W{target} else array({target})", 2)
            w.emit(f"else: {leaf}.grad += {target}", 2)
            w.emit(f"{target} = None", 2)


def generate(plan: Plan, out_slots: list[int], label: str) -> Callable[[list, list], tuple]:
    """The plan as a function ``replay(arrays, values) -> (arrays of out_slots)``: ``arrays`` the inputs'
    arrays, ``values`` the Tensors (or arrays) they came from (an input Tensor's ``.grad`` is written)."""
    w = _Writer()
    w.emit("def replay(arrays, values):", 0)
    if plan.n_inputs:
        w.emit(f"{', '.join(f's{k}' for k in range(plan.n_inputs))}, = arrays")
    release = _last_uses(plan, set(out_slots))
    n_backward = 0
    for i, step in enumerate(plan.steps):
        if step[0] == OP:
            _op(w, i, step, release.get(i, []))
        elif step[0] == BACKWARD:
            _backward(w, n_backward, step, plan.n_inputs)
            n_backward += 1
        else:
            assert step[0] == CALL
            fn, args, kwargs = w.const(step[1], "c"), w.const(step[2], "a"), w.const(step[3], "k")
            k = step[4]  # the slot of its value, or None
            w.emit(f"{fn}(*{args}, **{kwargs})" if k is None else f"s{k} = asarray({fn}(*{args}, **{kwargs}))")
    w.emit(f"return ({''.join(f's{k}, ' for k in out_slots)})")
    source = "\n".join(w.lines) + "\n"
    exec(compile(source, f"<tinygrad_lite.compile replay of {label}>", "exec"), w.ns)  # noqa: S102
    replay = w.ns["replay"]
    replay.source = source  # type: ignore[attr-defined]
    return replay


def generate_guard(plan: Plan) -> Callable[[], str | None] | None:
    """``Plan.stale`` as generated straight-line code (a replay calls it first), or None when there is
    nothing to check; it returns None, or a short reason to trace again."""
    if not plan.guarded:
        return None
    w = _Writer()
    w.ns.update(MISSING=_MISSING, unchanged=_unchanged)
    w.emit("def stale():", 0)
    for module, training, attrs, items in plan.modules:
        m, a, label = w.const(module, "m"), w.const(attrs, "a"), type(module).__name__
        w.emit(f"if {m}.training is not {training}: return {label + ' switched mode'!r}")
        for name, snap in items:
            why = repr(f"{label}.{name} changed")
            now = f"{a}.get({name!r}, MISSING)"
            if isinstance(snap, _PLAIN):
                w.emit(f"x = {now}")
                w.emit(f"if type(x) is not {w.const(type(snap), 'T')} or x != {w.const(snap, 'v')}: return {why}")
            elif type(snap) is list and not any(isinstance(e, (_PLAIN, list, tuple, dict)) for e in snap):
                w.emit(f"x = {now}")  # a list of layers, say: its length and each element, the same objects
                checks = " and ".join([f"type(x) is list and len(x) == {len(snap)}"]
                                      + [f"x[{i}] is {w.const(e, 'v')}" for i, e in enumerate(snap)])
                w.emit(f"if not ({checks}): return {why}")
            elif isinstance(snap, (dict, list, tuple)):
                w.emit(f"if not unchanged({now}, {w.const(snap, 'v')}): return {why}")
            else:
                w.emit(f"if {now} is not {w.const(snap, 'v')}: return {why}")
    for t, shape, dtype, rg in plan.leaves:
        leaf, d = w.const(t, "L"), w.const(dtype, "D")
        w.emit(f"x = {leaf}.data")
        w.emit(f"if x.shape != {shape!r} or x.dtype is not {d} and x.dtype != {d} or {leaf}._rg is not {rg}: "
               f"return 'a tensor it reads changed'")
    w.emit("return None")
    exec(compile("\n".join(w.lines) + "\n", "<tinygrad_lite.compile guard>", "exec"), w.ns)  # noqa: S102
    return w.ns["stale"]

"""The backward pass, and `grad` for gradients that can be differentiated again.

One sweep (Kahn's algorithm, no recursion): count each node's consumers, then hand every
node's cotangent to its VJPs once all its consumers have passed theirs on. All bookkeeping
of a sweep lives in that call (dicts keyed by node), so sweeps in several threads, or one
started from inside a VJP or a hook, never see each other's state. A gradient array is
added into in place only when the sweep owns it (it made it, or the op declared its VJPs'
results fresh); leaf ``.grad`` is written under one lock, once the sweep has succeeded.

With ``create_graph=True`` cotangents are Tensors and each node's op is re-run on Tensors
(see `graph.defop`), so the gradient is itself a recorded graph.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from .graph import _operand, _promote, defop
from .mode import _LAST_STAMP, _MODE, TraceError, enable_grad
from .tensor import GraphFreedError, Tensor, _wrap

__all__ = ["grad", "backward", "to_dot"]

Array = np.ndarray
_FREED = object()  # a node's ``_ctx`` after backward released it
_GRAD_LOCK = threading.Lock()  # leaf gradients are accumulated atomically


def _count_consumers(roots: Sequence[Tensor]) -> dict[Tensor, int]:
    """{node: recorded edges leading out of it} for every node behind ``roots`` (Tensors hash
    by identity); raises GraphFreedError, before anything is computed, on a released graph."""
    counts = dict.fromkeys(roots, 0)
    stack = list(counts)
    while stack:
        node = stack.pop()
        ctx = node._ctx
        if ctx is _FREED:
            raise GraphFreedError(
                f"backward through the graph a second time: the saved arrays of '{node._op.name}' (shape "
                f"{node.shape}) were released by an earlier backward(); pass retain_graph=True to the first one"
            )
        if ctx:
            for parent, _, _ in ctx:
                c = counts.get(parent)
                if c is None:
                    counts[parent] = 1
                    stack.append(parent)
                else:
                    counts[parent] = c + 1
    return counts


def _topological(roots: Sequence[Tensor], counts: dict[Tensor, int]) -> list[Tensor]:
    """Every node behind ``roots``, each before the nodes it was computed from."""
    left = dict(counts)
    ready = [r for r in dict.fromkeys(roots) if not left[r]]
    order = []
    while ready:
        node = ready.pop()
        order.append(node)
        for parent, _, _ in node._ctx or ():
            left[parent] -= 1
            if not left[parent]:
                ready.append(parent)
    return order


def _check_versions(node: Tensor) -> None:
    """PyTorch's rule: nothing the op used, nor its output, has changed in place since it ran."""
    clock = node._clock
    for t in (*node._args, node):
        if isinstance(t, Tensor):
            vb = t._vbase
            if (t._stamp if vb is None else vb._stamp) > clock:
                raise _modified(node, t)


def _modified(node: Tensor, t: Tensor) -> RuntimeError:
    which = "its output" if t is node else f"its argument of shape {t.shape}, dtype {t.dtype},"
    return RuntimeError(
        f"one of the tensors needed to differentiate op '{node._op.name}' was modified by an in-place operation: "
        f"{which} changed after the op used it (it is now at version {t.version}). Run backward before changing "
        f"it (e.g. optimizer.step() after loss.backward()), or change a copy instead"
    )


def _unbroadcast(g: Array, shape: tuple[int, ...], opname: str, index: int) -> Array:
    """Sum a gradient of a broadcast shape back to ``shape`` (the one place broadcasting is undone)."""
    lead = g.ndim - len(shape)
    if lead == 1 and g.shape[1:] == shape:  # the common case: a bias broadcast over rows
        return np.add.reduce(g, axis=0)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, g.shape[lead:])):
        raise ValueError(
            f"the VJP of op '{opname}' returned a gradient of shape {g.shape} for its argument {index}, which has "
            f"shape {shape} (a gradient must have the argument's shape or one broadcasting could give it)"
        )
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def _as_gradient(value: Any, opname: str, index: int) -> Array:
    """A VJP's non-ndarray result as an array: scalars and array-likes, never sequences of gradients."""
    if isinstance(value, (tuple, list)) or value is None:
        raise TypeError(
            f"the VJP of op '{opname}' returned a {type(value).__name__} for its argument {index}; a VJP "
            f"returns one array, the gradient for that argument"
        )
    if isinstance(value, Tensor):
        raise TypeError(f"the VJP of op '{opname}' returned a Tensor for its argument {index} in a first-order "
                        f"backward; a VJP computes on the arrays it is given")
    return np.asarray(value)


def _tensor_vjps(node: Tensor, g: Tensor, wanted: dict | None, pending: dict) -> None:
    """Higher order: re-run the node's op on Tensors so its VJPs record a graph, and add their
    results (Tensors) into ``pending``."""
    from . import ops  # the ops module imports this one through tensor

    record = node._op
    args = [a if isinstance(a, Tensor) and a._rg else (a.data if isinstance(a, Tensor) else _operand(a))
            for a in node._args]
    if len(args) > 1:
        args = _promote(args)
    previous = _MODE.rerun
    _MODE.rerun = record.name
    try:
        with enable_grad():
            out, vjps = record.fn(*args, **node._opts)
            if callable(vjps) or vjps is None:
                vjps = (vjps,) * len(args) if vjps is None else (vjps,)
            _check_pure(record.name, out, node.data)
            results = []
            for parent, _, index in node._ctx:
                if wanted is None or parent in wanted:
                    results.append((parent, index, vjps[index](g)))
    except (TypeError, RuntimeError, ValueError) as exc:  # first order only: exact values, an error if differentiated
        message = (
            f"cannot differentiate op '{record.name}' twice: running its definition on Tensors failed ({exc}). "
            f"An op is differentiable to any order when its forward and VJPs use NumPy calls that Tensors "
            f"support (tinygrad_lite.numpy_api.SUPPORTED) or tinygrad_lite ops; see the README"
        )
        _MODE.rerun = previous
        results = _first_order_results(node, g, wanted, type(exc), message)
    finally:
        _MODE.rerun = previous
    with enable_grad():
        for parent, index, pg in results:
            if not isinstance(pg, Tensor):
                pg = _wrap(_as_gradient(pg, record.name, index))
            if pg.shape != parent.shape:
                pg = _unbroadcast_tensor(pg, parent.shape, record.name, index)
            if pg.dtype != parent.dtype:
                pg = ops.astype(pg, dtype=parent.dtype)
            previous_g = pending.get(parent)
            pending[parent] = [pg if previous_g is None else ops.add(previous_g[0], pg), True]


@defop(name="first_order_only")
def _first_order_gradient(*deps, value=None, error=TypeError, message=""):
    """A gradient computed on arrays by an op that is not twice differentiable: its value, and a
    VJP that raises ``error(message)`` if anything differentiates through it."""
    def refuse(g):
        raise error(message)

    return value, (refuse,) * len(deps)


def _first_order_results(node: Tensor, g: Tensor, wanted: dict | None, error: type, message: str) -> list:
    """The node's gradients by the VJPs its forward made (on arrays; nothing is re-run, so an
    impure op keeps the values it drew), each a Tensor that depends on ``g`` and the node's
    inputs but refuses to be differentiated."""
    deps = [g] + [a for a in node._args if isinstance(a, Tensor) and a._rg]
    results = []
    for parent, vjp, index in node._ctx:
        if wanted is None or parent in wanted:
            value = np.asarray(vjp(g.data))
            pg = _first_order_gradient(*deps, value=value, error=error, message=message)
            results.append((parent, index, pg))
    return results


def _check_pure(name: str, out: Any, saved: Array) -> None:
    """The re-run must reproduce the forward value, or its VJPs describe another function."""
    value = np.asarray(out.data if isinstance(out, Tensor) else out)
    if value.shape == saved.shape and (np.array_equal(value, saved, equal_nan=True) or (
            saved.dtype.kind == "f" and np.allclose(value, saved, rtol=8 * np.finfo(saved.dtype).eps, atol=0,
                                                     equal_nan=True))):
        return
    raise RuntimeError(
        f"op '{name}' gave a different output when re-run for a higher-order gradient: its definition is not a "
        f"pure function of its arguments (random draws or other state); pass such values in as arguments"
    )


def _unbroadcast_tensor(g: Tensor, shape: tuple[int, ...], opname: str, index: int) -> Tensor:
    from . import ops

    lead = g.ndim - len(shape)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, g.shape[lead:])):
        _unbroadcast(g.data, shape, opname, index)  # raises the same error as first order
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return ops.reshape(ops.sum_(g, axis=axes, keepdims=True), shape=shape)


def _sweep(roots: list[Tensor], seeds: list[Any], *, retain_graph: bool, create_graph: bool,
           inputs: list[Tensor] | None = None) -> dict[Tensor, tuple]:
    """Propagate ``seeds`` (arrays made for this sweep, or Tensors) from ``roots``; returns
    {leaf: (gradient, owned)}, or with ``inputs`` {input: (gradient, owned)}: then only the
    nodes that lead to an input are visited."""
    counts = _count_consumers(roots)
    wanted = targets = None
    if inputs is not None:
        targets = dict.fromkeys(inputs, True)
        wanted = {}
        for node in reversed(_topological(roots, counts)):
            if node in targets or any(p in wanted for p, _, _ in node._ctx or ()):
                wanted[node] = True
    pending: dict[Tensor, list] = {}
    for root, seed in zip(roots, seeds):
        entry = pending.get(root)
        if entry is None:
            pending[root] = [seed, not create_graph]
        else:
            entry[0] = entry[0] + seed
    ready = [r for r in pending if r._ctx is not None and not counts[r]]
    results: dict[Tensor, tuple] = {}
    while ready:  # ops only: a leaf just collects its gradient in ``pending`` until the end
        node = ready.pop()
        entry = pending.pop(node, None)
        if entry is None:
            continue  # no gradient reached it (outside the inputs' graph)
        if node._hooks:
            entry = _run_hooks(node, entry, create_graph)
        ctx = node._ctx
        if ctx is _FREED:  # a backward nested in this one (in a VJP or a hook) released it
            raise GraphFreedError(
                f"backward through the graph a second time: a backward run inside this one released the saved "
                f"arrays of '{node._op.name}' (shape {node.shape}); pass retain_graph=True to the inner backward()"
            )
        if targets is not None and node in targets:
            results[node] = (entry[0], entry[1])
        if wanted is not None and not any(p in wanted for p, _, _ in ctx):
            continue
        if node._clock < _LAST_STAMP[0]:  # something changed in place since the op ran: was it ours?
            _check_versions(node)
        if create_graph:
            _tensor_vjps(node, entry[0], wanted, pending)
        else:  # first order, inlined: the hot loop of training
            g = entry[0]
            record = node._op
            for parent, vjp, index in ctx:
                if wanted is not None and parent not in wanted:
                    continue
                pg = vjp(g)
                pdata = parent.data
                if type(pg) is not np.ndarray:
                    pg = _as_gradient(pg, record.name, index)
                    owned = False
                else:  # ours to add into only if the op promised fresh arrays, and not g or a view
                    owned = record.fresh and pg is not g and pg.base is None
                if pg.shape != pdata.shape:
                    pg = _unbroadcast(pg, pdata.shape, record.name, index)
                    owned = True
                if pg.dtype is not pdata.dtype and pg.dtype != pdata.dtype:
                    pg = pg.astype(pdata.dtype)
                    owned = True
                previous = pending.get(parent)
                if previous is None:
                    pending[parent] = [pg, owned]
                elif previous[1]:
                    previous[0] += pg
                else:
                    previous[0] = np.asarray(previous[0] + pg)
                    previous[1] = True
        if not retain_graph:  # release the saved arrays as soon as they are used
            node._ctx = _FREED
            node._args = node._opts = None
        for parent, _, _ in ctx:
            if parent._ctx is not None:
                left = counts[parent] - 1
                counts[parent] = left
                if not left:
                    ready.append(parent)
    for leaf, entry in pending.items():  # every gradient has arrived: the leaves' are complete
        if leaf._ctx is None and (targets is None or leaf in targets):
            if leaf._hooks:
                entry = _run_hooks(leaf, entry, create_graph)
            results[leaf] = (entry[0], entry[1])
    return results


def _run_hooks(node: Tensor, entry: list, create_graph: bool) -> list:
    for hook in list(node._hooks):
        replaced = hook(entry[0])
        if replaced is not None:
            if not create_graph:
                replaced = np.asarray(replaced.data if isinstance(replaced, Tensor) else replaced)
            if replaced.shape != node.shape:
                raise ValueError(f"a hook returned a gradient of shape {replaced.shape} for a tensor of shape "
                                 f"{node.shape}")
            entry = [replaced, False]
    return [entry[0], False]  # a hook may keep the array it was shown: never add into it afterwards


def _seed(t: Tensor, grad: Any, create_graph: bool, where: str) -> Any:
    """The cotangent of output ``t``: ones for a one-element output, else ``grad`` checked."""
    if grad is None:
        if t.data.size != 1:
            raise RuntimeError(
                f"{where}: a gradient can be implied only for a one-element output; this one has shape {t.shape}: "
                f"pass its cotangent (grad / grad_outputs) of that shape, or reduce first (e.g. .sum())"
            )
        g = np.empty(t.shape, t.dtype)
        g.fill(1)
        return _wrap(g) if create_graph else g
    if isinstance(grad, Tensor):
        g = grad if create_graph else grad.data
    else:
        g = np.asarray(grad)
    if g.shape != t.shape:
        raise ValueError(f"{where}: the cotangent has shape {tuple(g.shape)} but the output has shape {t.shape}")
    if g.dtype != t.dtype:
        g = g.astype(t.dtype) if not isinstance(g, Tensor) else g.astype(t.dtype)
    elif not create_graph:
        g = np.array(g)  # the user's array is never added into or stored as a .grad
    elif not isinstance(g, Tensor):
        g = _wrap(np.array(g))
    return g


def backward(t: Tensor, grad: Any = None, *, retain_graph: bool = False) -> None:
    """``t.backward(grad)``: add ∂t/∂leaf · grad into every leaf's ``.grad``."""
    if not t._rg:
        raise RuntimeError(
            "backward() on a tensor that does not require grad: no input of the computation had "
            "requires_grad=True (or it ran under no_grad())"
        )
    if _MODE.trace is not None:
        _MODE.trace.backward(t, grad, retain_graph)
    seed = _seed(t, grad, False, "backward()")
    leaves = _sweep([t], [seed], retain_graph=retain_graph, create_graph=False)
    with _GRAD_LOCK:
        for leaf, (g, owned) in leaves.items():
            if leaf.grad is None:
                leaf.grad = g if owned else np.array(g)
            else:
                leaf.grad += g


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, *, create_graph: bool = False, retain_graph: bool | None = None,
         allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs`` (PyTorch's ``torch.autograd.grad``).

    Returns one Tensor per input: Σ_k grad_outputs[k]ᵀ · ∂outputs[k]/∂input. Leaves' ``.grad``
    are not touched. With ``create_graph=True`` the results are recorded and can be
    differentiated again, to any order. ``retain_graph`` defaults to ``create_graph``. An
    input the outputs do not depend on raises, unless ``allow_unused=True`` (then None).
    """
    if _MODE.trace is not None:
        raise TraceError("tinygrad_lite.grad inside a compiled function is not replayed; use loss.backward() there, "
                         "or call grad outside compile")
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        gos = [grad_outputs] * len(outs) if grad_outputs is None else [grad_outputs]
    else:
        gos = list(grad_outputs)
    if len(gos) != len(outs):
        raise ValueError(f"grad: {len(gos)} grad_outputs for {len(outs)} outputs")
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"grad: output {i} is a {type(o).__name__}, not a Tensor")
        if not o._rg:
            raise RuntimeError(f"grad: output {i} (shape {o.shape}) does not require grad and has no graph")
    for i, x in enumerate(ins):
        if not isinstance(x, Tensor):
            raise TypeError(f"grad: input {i} is a {type(x).__name__}, not a Tensor")
        if not x._rg:
            raise RuntimeError(f"grad: input {i} (shape {x.shape}) does not require grad")
    retain = create_graph if retain_graph is None else retain_graph
    seeds = [_seed(o, g, create_graph, f"grad (output {i})") for i, (o, g) in enumerate(zip(outs, gos))]
    found = _sweep(outs, seeds, retain_graph=retain, create_graph=create_graph, inputs=ins)
    result: list[Tensor | None] = []
    for i, x in enumerate(ins):
        entry = found.get(x)
        if entry is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {x.shape}) was not used to compute the outputs; pass "
                    f"allow_unused=True to get None for it"
                )
            result.append(None)
        elif create_graph:
            result.append(entry[0])
        else:
            result.append(_wrap(entry[0] if entry[1] else np.array(entry[0])))
    return tuple(result)


def to_dot(root: Tensor) -> str:
    """Graphviz DOT text of the graph recorded behind ``root`` (ops and shapes)."""
    try:
        counts = _count_consumers([root])
    except GraphFreedError:
        raise GraphFreedError(
            f"to_dot(): the graph behind this tensor (shape {root.shape}) was freed by backward(); call to_dot() "
            f"before backward(), or pass retain_graph=True to backward() to keep the graph"
        ) from None
    order = _topological([root], counts)
    lines = ["digraph tinygrad_lite {", "  rankdir=BT;", '  node [fontname="Helvetica"];']
    names = {n: f"n{i}" for i, n in enumerate(order)}
    for node in order:
        shape = "x".join(map(str, node.shape)) or "scalar"
        if node._ctx is None:
            label, style = f"leaf\\n{shape} {node.dtype}", "shape=box, style=filled, fillcolor=lightblue"
        else:
            label, style = f"{node._op.name}\\n{shape}", "shape=ellipse"
        lines.append(f'  {names[node]} [label="{label}", {style}];')
        for parent, _, index in node._ctx or ():
            lines.append(f'  {names[parent]} -> {names[node]} [label="{index}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"

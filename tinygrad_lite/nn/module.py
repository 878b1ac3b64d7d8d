"""The module base: ``Module`` finds parameters, buffers and submodules by attribute; ``Parameter`` makes one.

A ``Module`` finds its parameters and submodules by attribute, including inside lists,
tuples and dicts, and names them by their dotted path (``layers.0.weight``). Buffers
(arrays that are state but not trained, such as BatchNorm's running statistics) are
registered explicitly with ``register_buffer``. ``state_dict()`` / ``load_state_dict()``
save and restore every parameter (frozen ones too) and every buffer by those names.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Any, NamedTuple

import numpy as np

from ..mode import TraceError, is_tracing, module_called, replayed
from ..tensor import Tensor, no_grad
from .utils import key_problems

__all__ = ["Module", "Parameter"]

Array = np.ndarray


class Parameter(Tensor):
    """A leaf Tensor that a Module collects as a parameter (``requires_grad=True`` unless frozen).

    A Parameter stays a parameter when frozen (``p.requires_grad = False``): the optimizers do
    not see it (``Module.parameters()`` lists the trainable ones), checkpoints keep it.
    """

    __slots__ = ()

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)


class _Buffer(NamedTuple):
    """A registered buffer as the walk reports it: its owner and attribute name."""

    module: Module
    name: str


class Module:
    """Base class: ``__call__`` runs ``forward``; parameters and submodules are found by attribute.

    Attributes whose names start with ``_`` are private and not searched. Parameters are
    Tensors that require grad and ``Parameter`` objects (trainable or frozen); Modules are
    submodules; lists, tuples and dicts of them are searched too (``self.layers = [Linear(...),
    ...]`` gives ``layers.0.weight``, ...). Buffers are arrays registered with
    ``register_buffer(name, array)``, read and set as attributes. (A plain Tensor is a parameter
    only while it requires grad: make parameters that may be frozen with ``Parameter``.)
    """

    training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module_called(self)
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- buffers
    def register_buffer(self, name: str, array: Any, persistent: bool = True) -> None:
        """Make ``self.<name>`` a buffer: state that is saved in ``state_dict()`` (when ``persistent``)
        but not trained. ``array`` is a NumPy array (kept as is, updated in place by the layer) or None."""
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"{type(self).__name__}.register_buffer: invalid buffer name {name!r}")
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(f"{type(self).__name__}.register_buffer: '{name}' must be a NumPy array or None, "
                            f"got {type(array).__name__}")
        if "_buffer_names" not in vars(self):
            self._buffer_names: dict[str, bool] = {}
        self._buffer_names[name] = bool(persistent)
        setattr(self, name, array)

    # ---------------------------------------------------------------- traversal
    def _children(self) -> Iterator[tuple[str, Any]]:
        """(name, value) pairs to search: public attributes in the order they were set."""
        for name, value in vars(self).items():
            if not name.startswith("_"):
                yield name, value

    def _buffer_items(self) -> Iterator[tuple[str, _Buffer]]:
        for name in vars(self).get("_buffer_names", ()):
            yield name, _Buffer(self, name)

    def _walk(self) -> Iterator[tuple[str, Any]]:
        """Every parameter, submodule and buffer below this module, depth first in attribute order (a
        module's buffers after its attributes), as (dotted name, object).

        Iterative (a stack of iterators, no recursion); an object reached twice is reported once.
        """
        seen = {id(self)}
        stack: list[tuple[str, Iterator[tuple[str, Any]]]] = [
            ("", chain(list(self._children()), self._buffer_items()))]
        while stack:
            prefix, items = stack[-1]
            item = next(items, None)
            if item is None:
                stack.pop()
                continue
            key, value = item
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, Tensor):
                if (value._rg or isinstance(value, Parameter)) and id(value) not in seen:
                    seen.add(id(value))
                    yield name, value
            elif isinstance(value, Module):
                if id(value) not in seen:
                    seen.add(id(value))
                    yield name, value
                    stack.append((name, chain(list(value._children()), value._buffer_items())))
            elif isinstance(value, _Buffer):
                if value.name in vars(value.module):  # the attribute may have been deleted since
                    yield name, value
            elif isinstance(value, (list, tuple)):
                stack.append((name, iter([(str(i), v) for i, v in enumerate(value)])))
            elif isinstance(value, dict):
                stack.append((name, iter([(str(k), v) for k, v in value.items()])))

    def named_parameters(self, include_frozen: bool = False) -> list[tuple[str, Tensor]]:
        """[(dotted name, parameter)] in a stable order (attribute order, depth first): the trainable
        ones (what an optimizer takes), and with ``include_frozen`` the frozen ones too."""
        return [(n, v) for n, v in self._walk() if isinstance(v, Tensor) and (include_frozen or v._rg)]

    def parameters(self, include_frozen: bool = False) -> list[Tensor]:
        """The parameters in the order of ``named_parameters`` (trainable ones unless ``include_frozen``)."""
        return [v for _, v in self.named_parameters(include_frozen)]

    def named_buffers(self, persistent_only: bool = False) -> list[tuple[str, Array]]:
        """[(dotted name, buffer array)] of every registered buffer that is not None."""
        out = []
        for n, v in self._walk():
            if isinstance(v, _Buffer):
                array = getattr(v.module, v.name)
                if array is not None and (v.module._buffer_names[v.name] or not persistent_only):
                    out.append((n, array))
        return out

    def buffers(self) -> list[Array]:
        """The buffer arrays, in the order of ``named_buffers``."""
        return [v for _, v in self.named_buffers()]

    def named_modules(self) -> list[tuple[str, Module]]:
        """[(dotted name, module)]: this module (named ``""``) and every submodule below it."""
        return [("", self)] + [(n, v) for n, v in self._walk() if isinstance(v, Module)]

    def modules(self) -> list[Module]:
        """This module and every submodule below it."""
        return [m for _, m in self.named_modules()]

    # ------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch statistics in BatchNorm) on this module and all
        submodules; returns self."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (dropout off, BatchNorm uses its running statistics); returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter below this module; returns self."""
        for p in self.parameters(include_frozen=True):
            p.requires_grad = requires_grad
        return self

    @replayed
    def zero_grad(self) -> None:
        """Reset every parameter's gradient to None."""
        for p in self.parameters(include_frozen=True):
            p.grad = None

    # -------------------------------------------------------------- state dict
    def _state_items(self) -> list[tuple[str, Any]]:
        """(name, parameter or _Buffer) of everything ``state_dict`` holds, in its order."""
        out = []
        for n, v in self._walk():
            if isinstance(v, Tensor):
                out.append((n, v))
            elif isinstance(v, _Buffer) and v.module._buffer_names[v.name] and getattr(v.module, v.name) is not None:
                out.append((n, v))
        return out

    def state_dict(self) -> dict[str, Array]:
        """{dotted name: copy of the array} of every parameter (trainable or frozen) and every
        persistent buffer, module by module (not inside a function being compiled: the copies would be frozen)."""
        if is_tracing():
            raise TraceError(f"{type(self).__name__}.state_dict() inside a compiled function: its copies would be the "
                             f"traced values at every replay; call it outside the function")
        return {n: (v.data if isinstance(v, Tensor) else getattr(v.module, v.name)).copy()
                for n, v in self._state_items()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays into the parameters and buffers (in place, so optimizers keep their references).

        Every entry is checked first (missing and unexpected keys when ``strict``, shapes and
        dtypes always); on any problem a ValueError lists them all and nothing is changed.
        """
        items = dict(self._state_items())
        problems = key_problems(items, state) if strict else []
        arrays = {}
        for name, v in items.items():
            if name not in state:
                continue
            ref = v.data if isinstance(v, Tensor) else getattr(v.module, v.name)
            value = state[name]
            arr = value.data if isinstance(value, Tensor) else np.asarray(value)
            if arr.shape != ref.shape:
                problems.append(f"'{name}' has shape {arr.shape}, expected {ref.shape}")
            elif arr.dtype != ref.dtype:
                problems.append(f"'{name}' has dtype {arr.dtype}, expected {ref.dtype}")
            else:
                arrays[name] = arr
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        with no_grad():
            for name, arr in arrays.items():
                v = items[name]
                if isinstance(v, Tensor):
                    v.copy_(arr)
                    continue
                buf = getattr(v.module, v.name)
                if buf.flags.writeable:
                    np.copyto(buf, arr)
                else:
                    setattr(v.module, v.name, arr.copy())

    def __repr__(self) -> str:
        subs, shown = [], []
        for n, m in self._walk():
            if isinstance(m, Module) and not any(n.startswith(f"{s}.") for s in shown):
                shown.append(n)
                subs.append(f"  ({n}): " + repr(m).replace("\n", "\n  "))
        return f"{type(self).__name__}(" + ("\n" + "\n".join(subs) + "\n" if subs else "") + ")"

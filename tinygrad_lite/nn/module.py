"""The module base: ``Module`` finds parameters and submodules by attribute; ``Parameter`` makes one.

A ``Module`` finds its parameters (Tensors that require grad) and submodules by attribute,
including inside lists, tuples and dicts, and names them by their dotted path
(``layers.0.weight``); ``state_dict()`` / ``load_state_dict()`` save and restore them by
those names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..tensor import Tensor, no_grad
from .utils import key_problems

__all__ = ["Module", "Parameter"]

Array = np.ndarray


def Parameter(data: Any, dtype: Any = None) -> Tensor:
    """A leaf Tensor that requires grad (what a Module collects as a parameter)."""
    return Tensor(data, requires_grad=True, dtype=dtype)


class Module:
    """Base class: ``__call__`` runs ``forward``; parameters and submodules are found by attribute.

    Attributes whose names start with ``_`` are private and not searched. Tensors that
    require grad are parameters; Modules are submodules; lists, tuples and dicts of them are
    searched too (``self.layers = [Linear(...), ...]`` gives ``layers.0.weight``, ...).
    """

    training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- traversal
    def _children(self) -> Iterator[tuple[str, Any]]:
        """(name, value) pairs to search: public attributes in the order they were set."""
        for name, value in vars(self).items():
            if not name.startswith("_"):
                yield name, value

    def _walk(self) -> Iterator[tuple[str, Any]]:
        """Every parameter and submodule below this module, depth first in attribute order, as (dotted name, object).

        Iterative (a stack of iterators, no recursion); an object reached twice is reported once.
        """
        seen = {id(self)}
        stack: list[tuple[str, Iterator[tuple[str, Any]]]] = [("", iter(list(self._children())))]
        while stack:
            prefix, items = stack[-1]
            item = next(items, None)
            if item is None:
                stack.pop()
                continue
            key, value = item
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, Tensor):
                if value.requires_grad and id(value) not in seen:
                    seen.add(id(value))
                    yield name, value
            elif isinstance(value, Module):
                if id(value) not in seen:
                    seen.add(id(value))
                    yield name, value
                    stack.append((name, iter(list(value._children()))))
            elif isinstance(value, (list, tuple)):
                stack.append((name, iter([(str(i), v) for i, v in enumerate(value)])))
            elif isinstance(value, dict):
                stack.append((name, iter([(str(k), v) for k, v in value.items()])))

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        """[(dotted name, parameter)] in a stable order (attribute order, depth first)."""
        return [(n, v) for n, v in self._walk() if isinstance(v, Tensor)]

    def parameters(self) -> list[Tensor]:
        """The parameters (Tensors that require grad), in the order of ``named_parameters``."""
        return [v for _, v in self.named_parameters()]

    def modules(self) -> list[Module]:
        """This module and every submodule below it."""
        return [self] + [v for _, v in self._walk() if isinstance(v, Module)]

    # ------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active) on this module and all submodules; returns self."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (dropout off); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to None."""
        for p in self.parameters():
            p.grad = None

    # -------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Array]:
        """{dotted name: copy of the parameter's array}."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays into the parameters (in place, so optimizers keep their references).

        Every entry is checked first (missing and unexpected keys when ``strict``, shapes and
        dtypes always); on any problem a ValueError lists them all and nothing is changed.
        """
        params = dict(self.named_parameters())
        problems = key_problems(params, state) if strict else []
        arrays = {}
        for name, p in params.items():
            if name not in state:
                continue
            value = state[name]
            arr = value.data if isinstance(value, Tensor) else np.asarray(value)
            if arr.shape != p.shape:
                problems.append(f"'{name}' has shape {arr.shape}, expected {p.shape}")
            elif arr.dtype != p.dtype:
                problems.append(f"'{name}' has dtype {arr.dtype}, expected {p.dtype}")
            else:
                arrays[name] = arr
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        with no_grad():
            for name, arr in arrays.items():
                params[name].copy_(arr)

    def __repr__(self) -> str:
        subs, shown = [], []
        for n, m in self._walk():
            if isinstance(m, Module) and not any(n.startswith(f"{s}.") for s in shown):
                shown.append(n)
                subs.append(f"  ({n}): " + repr(m).replace("\n", "\n  "))
        return f"{type(self).__name__}(" + ("\n" + "\n".join(subs) + "\n" if subs else "") + ")"

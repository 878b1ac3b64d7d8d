"""The optimizer base: parameter groups, the checked in-place step, and flat array state dicts.

Notation: p a parameter, g its gradient (plus ``weight_decay · p`` when weight decay is on),
t the number of updates this parameter has had, η the learning rate ``lr``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..inplace import bump_versions
from ..mode import replayed
from ..nn.utils import key_problems
from ..tensor import Tensor

__all__ = ["Optimizer", "ParamsT", "check_number"]

Array = np.ndarray
#: Tensors, (name, Tensor) pairs such as ``model.named_parameters()``, or parameter groups:
#: dicts ``{"params": [...], "lr": ..., "weight_decay": ...}`` (missing keys take the defaults).
ParamsT = Iterable[Tensor] | Iterable[tuple[str, Tensor]] | Iterable[dict[str, Any]]
GROUP_KEYS = ("params", "lr", "weight_decay")


def check_number(value: Any, name: str, where: str, low: float = 0.0, high: float | None = None,
                 high_open: bool = False) -> float:
    """``value`` as a float, or a ValueError naming it when it is NaN, ±Inf or outside [low, high] / [low, high)."""
    try:
        if isinstance(value, (str, bytes)):  # float("0.1") would parse it
            raise TypeError
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < low or (high is not None and (v >= high if high_open else v > high)):
        bracket = ")" if high_open else "]"
        interval = f"in [{low}, {high}{bracket}" if high is not None else f"a finite number >= {low}"
        raise ValueError(f"{where}: {name} must be {interval}, got {value!r}")
    return v


class Optimizer:
    """Base class: parameter groups, each with its ``lr`` and ``weight_decay``, and one state array
    per buffer and parameter.

    ``params`` may be Tensors, (name, Tensor) pairs such as ``model.named_parameters()`` (names
    are used in error messages), or a list of group dicts ``{"params": ..., "lr": ...,
    "weight_decay": ...}`` whose missing keys take the constructor's values. ``param_groups``
    holds the groups (``param_groups[i]["lr"]`` may be changed between steps, as schedulers
    do); ``opt.lr`` reads the learning rate the groups share and sets every group's.
    Subclasses list their per-parameter buffers in ``_buffers`` and implement
    ``_update(i, p, g, lr, weight_decay)``.
    """

    _buffers: tuple[str, ...] = ()

    def __init__(self, params: ParamsT, lr: float, weight_decay: float = 0.0) -> None:
        where = type(self).__name__
        specs = list(params)
        if not specs:
            raise ValueError(f"{where}: got an empty parameter list")
        is_group = [isinstance(s, dict) for s in specs]
        if any(is_group) and not all(is_group):
            raise ValueError(f"{where}: give either parameters or parameter groups (dicts), not a mix")
        if not is_group[0]:
            specs = [{"params": specs}]
        one = len(specs) == 1
        names: list[str] = []
        tensors: list[Tensor] = []
        self._group_of: list[int] = []  # group index of each parameter
        self.param_groups: list[dict[str, Any]] = []
        for k, spec in enumerate(specs):
            unknown = [key for key in spec if key not in GROUP_KEYS]
            if unknown or "params" not in spec:
                problem = f"unknown keys {unknown}" if unknown else "no 'params'"
                raise ValueError(f"{where}: parameter group {k} has {problem}; valid keys: {', '.join(GROUP_KEYS)}")
            items = [spec["params"]] if isinstance(spec["params"], Tensor) else list(spec["params"])
            if not items:
                raise ValueError(f"{where}: parameter group {k} is empty")
            group = {
                "params": [],
                "lr": check_number(spec.get("lr", lr), self._key(k, "lr", one), where),
                "weight_decay": check_number(spec.get("weight_decay", weight_decay),
                                             self._key(k, "weight_decay", one), where),
            }
            for item in items:
                i = len(tensors)
                name, p = item if isinstance(item, tuple) else (f"parameter {i}", item)
                if not isinstance(p, Tensor):
                    raise ValueError(f"{where}: {name} is a {type(p).__name__}, not a Tensor")
                if not p.requires_grad:
                    raise ValueError(f"{where}: {name} (shape {p.shape}) does not require grad")
                if not p.is_leaf:
                    raise ValueError(f"{where}: {name} (shape {p.shape}) is not a leaf tensor (made by '{p.op}')")
                if any(p is q for q in tensors):
                    raise ValueError(f"{where}: {name} appears twice in the parameter list")
                names.append(name)
                tensors.append(p)
                group["params"].append(p)
                self._group_of.append(k)
            self.param_groups.append(group)
        self.names: list[str] = names
        self.params: list[Tensor] = tensors
        self._t = [0] * len(tensors)  # updates applied to each parameter
        self.state: dict[str, list[Array]] = {b: [np.zeros_like(p.data) for p in tensors] for b in self._buffers}
        self._work = [np.empty_like(p.data) for p in tensors]  # per-step temporaries, reused
        self._views: list[tuple[Any, Any]] = [(None, None)] * len(tensors)  # (p.data, its writable view)
        self._decayed: list[Array | None] = [None] * len(tensors)  # g + weight_decay · p, made when first needed

    @staticmethod
    def _key(k: int, key: str, one: bool) -> str:
        """How errors name group k's hyperparameter: ``lr`` with one group, ``param_groups[k]['lr']`` otherwise."""
        return key if one else f"param_groups[{k}][{key!r}]"

    # --------------------------------------------------- group-wide settings
    def _shared(self, key: str) -> Any:
        values = [g[key] for g in self.param_groups]
        if any(v != values[0] for v in values[1:]):
            raise ValueError(f"{type(self).__name__}: the {len(values)} parameter groups have different {key} "
                             f"values {values}; use param_groups[i][{key!r}]")
        return values[0]

    @property
    def lr(self) -> float:
        """The learning rate of every group (an error if the groups differ); setting it sets every group's."""
        return self._shared("lr")

    @lr.setter
    def lr(self, value: float) -> None:
        for g in self.param_groups:
            g["lr"] = value

    @property
    def weight_decay(self) -> float:
        """The L2 weight decay of every group (an error if the groups differ); setting it sets every group's."""
        return self._shared("weight_decay")

    @weight_decay.setter
    def weight_decay(self, value: float) -> None:
        for g in self.param_groups:
            g["weight_decay"] = value

    def _hyperparameters(self) -> list[tuple[float, float]]:
        """(lr, weight_decay) of each group, checked (a value set to NaN or < 0 since is named)."""
        groups = self.param_groups
        out = []
        for k, g in enumerate(groups):
            lr, wd = g["lr"], g["weight_decay"]
            if not (isinstance(lr, (int, float)) and 0 <= lr < math.inf):  # NaN fails both comparisons
                g["lr"] = lr = check_number(lr, self._key(k, "lr", len(groups) == 1), type(self).__name__)
            if not (isinstance(wd, (int, float)) and 0 <= wd < math.inf):
                g["weight_decay"] = wd = check_number(wd, self._key(k, "weight_decay", len(groups) == 1),
                                                      type(self).__name__)
            out.append((lr, wd))
        return out

    # ------------------------------------------------------------------ step
    @replayed
    def zero_grad(self) -> None:
        """Set every parameter's gradient to None."""
        for p in self.params:
            p.grad = None

    @replayed
    def step(self) -> None:
        """Apply one update to every parameter that has a gradient (the others are skipped).

        Every gradient and hyperparameter is checked before any parameter changes."""
        hyper = self._hyperparameters()
        updates = []
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            data = p.data
            if g.shape != data.shape:
                raise ValueError(f"{type(self).__name__}: {self.names[i]} has shape {p.shape} but its grad {g.shape}")
            if g.dtype is not data.dtype and g.dtype != data.dtype:
                raise TypeError(
                    f"{type(self).__name__}: {self.names[i]} has dtype {data.dtype} but its grad has dtype {g.dtype}; "
                    f"a gradient must have its parameter's dtype (cast it, or keep the model in one dtype)"
                )
            seen, view = self._views[i]
            updates.append((i, view if seen is data else self._writable(i, data), g))
        steps = self._t
        for i, _, _ in updates:
            steps[i] += 1
        try:
            self._apply(updates, hyper)
        finally:  # an in-place update like any other: the parameters' versions move on
            bump_versions([self.params[i] for i, _, _ in updates])

    def _writable(self, i: int, data: Array) -> Array:
        """A writable view of parameter i's (read-only) array, made once per array and kept."""
        view = data.view()
        try:
            view.setflags(write=True)  # allowed when the memory's owner is writable
        except ValueError:
            raise ValueError(f"{type(self).__name__}: {self.names[i]} views read-only memory and cannot be "
                             f"updated in place; give the parameter its own copy (Tensor(array))") from None
        self._views[i] = (data, view)
        return view

    def _apply(self, updates: list[tuple[int, Array, Array]], hyper: list[tuple[float, float]]) -> None:
        group_of = self._group_of
        for i, p, g in updates:
            lr, wd = hyper[group_of[i]]
            self._update(i, p, g, lr, wd)

    @property
    def steps(self) -> Array:
        """How many updates each parameter has had (t in the formulas)."""
        return np.array(self._t, dtype=np.int64)

    def _update(self, i: int, p: Array, g: Array, lr: float, weight_decay: float) -> None:
        raise NotImplementedError

    def _grad(self, i: int, p: Array, g: Array, weight_decay: float) -> Array:
        """g + weight_decay · p (in a buffer of its own; g itself is never modified)."""
        if not weight_decay:
            return g
        s = self._decayed[i]
        if s is None:
            s = self._decayed[i] = np.empty_like(p)
        np.multiply(p, weight_decay, out=s)
        s += g
        return s

    # -------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Array]:
        """Flat {key: array}: ``lr`` (a scalar, or one per group when there are several),
        ``step`` (updates per parameter) and ``<buffer>.<i>`` (e.g. ``m.0``).

        Only arrays, so it can be saved with ``np.savez`` and loaded with ``allow_pickle=False``.
        """
        lrs = [g["lr"] for g in self.param_groups]
        d: dict[str, Array] = {"lr": np.asarray(lrs if len(lrs) > 1 else lrs[0], dtype=np.float64),
                               "step": self.steps}
        for b, arrays in self.state.items():
            for i, a in enumerate(arrays):
                d[f"{b}.{i}"] = a.copy()
        return d

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore learning rates, step counts and buffers; everything is validated before anything changes."""
        where = f"{type(self).__name__}.load_state_dict"
        own = self.state_dict()
        problems = key_problems(own, state)
        new = {}
        for k, ref in own.items():
            if k not in state:
                continue
            arr = np.asarray(state[k])
            if arr.shape != ref.shape:
                problems.append(f"'{k}' has shape {arr.shape}, expected {ref.shape}")
            elif k == "step" and (arr.dtype.kind not in "iu" or (arr < 0).any()):
                problems.append(f"'step' must hold non-negative integers, got {arr}")
            elif arr.dtype.kind not in "fiu":
                problems.append(f"'{k}' has dtype {arr.dtype}, expected {ref.dtype}")
            elif k != "step" and not np.isfinite(arr).all():
                problems.append(f"'{k}' holds non-finite values")
            else:
                new[k] = arr
        lrs: list[float] = []
        if not problems:
            one = len(self.param_groups) == 1
            for k, value in enumerate(new["lr"].reshape(-1)):
                try:
                    lrs.append(check_number(value, self._key(k, "lr", one), where))
                except ValueError as exc:
                    problems.append(str(exc).split(": ", 1)[1])
        if problems:
            raise ValueError(f"{where}: " + "; ".join(problems))
        for g, lr in zip(self.param_groups, lrs):
            g["lr"] = lr
        self._t = [int(t) for t in new["step"]]
        for b, arrays in self.state.items():
            for i, a in enumerate(arrays):
                np.copyto(a, new[f"{b}.{i}"], casting="unsafe")

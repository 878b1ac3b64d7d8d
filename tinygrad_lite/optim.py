"""Optimizers that update parameter arrays in place (NumPy ``out=`` ops, no graph).

Notation: p a parameter, g its gradient (plus ``weight_decay · p`` when weight decay is on),
t the number of updates this parameter has had, η the learning rate ``lr``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .nn import _key_problems
from .tensor import Tensor, bump_versions

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop"]

Array = np.ndarray


def _check_number(value: Any, name: str, where: str, low: float = 0.0, high: float | None = None,
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
    """Base class: holds ``params`` (a list of Tensors), ``lr`` and one state array per buffer and parameter.

    ``params`` may be Tensors or (name, Tensor) pairs such as ``model.named_parameters()``;
    names are used in error messages. Subclasses list their per-parameter buffers in
    ``_buffers`` and implement ``_update(i, p, g)``.
    """

    _buffers: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Tensor] | Iterable[tuple[str, Tensor]], lr: float) -> None:
        where = type(self).__name__
        items = list(params)
        if not items:
            raise ValueError(f"{where}: got an empty parameter list")
        names, tensors = [], []
        for i, item in enumerate(items):
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
        self.names: list[str] = names
        self.params: list[Tensor] = tensors
        self.lr = _check_number(lr, "lr", where)
        self._t = [0] * len(tensors)  # updates applied to each parameter
        self.state: dict[str, list[Array]] = {b: [np.zeros_like(p.data) for p in tensors] for b in self._buffers}
        self._work = [np.empty_like(p.data) for p in tensors]  # per-step temporaries, reused
        self._views: list[tuple[Any, Any]] = [(None, None)] * len(tensors)  # (p.data, its writable view)
        self._decayed = [np.empty_like(p.data) for p in tensors] if getattr(self, "weight_decay", 0.0) else []

    def zero_grad(self) -> None:
        """Set every parameter's gradient to None."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient (the others are skipped).

        Every gradient is checked before any parameter changes."""
        lr = self.lr
        if not (isinstance(lr, (int, float)) and 0 <= lr < math.inf):  # NaN fails both comparisons
            self.lr = _check_number(lr, "lr", type(self).__name__)
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
            self._apply(updates)
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

    def _apply(self, updates: list[tuple[int, Array, Array]]) -> None:
        for i, p, g in updates:
            self._update(i, p, g)

    @property
    def steps(self) -> Array:
        """How many updates each parameter has had (t in the formulas)."""
        return np.array(self._t, dtype=np.int64)

    def _update(self, i: int, p: Array, g: Array) -> None:
        raise NotImplementedError

    def _grad(self, i: int, p: Array, g: Array) -> Array:
        """g + weight_decay · p (in a buffer of its own; g itself is never modified)."""
        wd = self.weight_decay  # type: ignore[attr-defined]
        if not wd:
            return g
        s = self._decayed[i]
        np.multiply(p, wd, out=s)
        s += g
        return s

    # -------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Array]:
        """Flat {key: array}: ``lr``, ``step`` (updates per parameter) and ``<buffer>.<i>`` (e.g. ``m.0``).

        Only arrays, so it can be saved with ``np.savez`` and loaded with ``allow_pickle=False``.
        """
        d: dict[str, Array] = {"lr": np.asarray(self.lr, dtype=np.float64), "step": self.steps}
        for b, arrays in self.state.items():
            for i, a in enumerate(arrays):
                d[f"{b}.{i}"] = a.copy()
        return d

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``lr``, step counts and buffers; everything is validated before anything changes."""
        where = f"{type(self).__name__}.load_state_dict"
        own = self.state_dict()
        problems = _key_problems(own, state)
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
        if not problems:
            try:
                _check_number(new["lr"], "lr", where)
            except ValueError as exc:
                problems.append(str(exc).split(": ", 1)[1])
        if problems:
            raise ValueError(f"{where}: " + "; ".join(problems))
        self.lr = float(new["lr"])
        self._t = [int(t) for t in new["step"]]
        for b, arrays in self.state.items():
            for i, a in enumerate(arrays):
                np.copyto(a, new[f"{b}.{i}"], casting="unsafe")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum μ, Nesterov momentum and L2 weight decay.

    Plain: p ← p − η g.  Momentum: b ← μ b + g, then p ← p − η b (Nesterov: p ← p − η (g + μ b)).
    """


    def __init__(self, params: Iterable[Tensor] | Iterable[tuple[str, Tensor]], lr: float,
                 momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0) -> None:
        self.momentum = _check_number(momentum, "momentum", "SGD")
        self.weight_decay = _check_number(weight_decay, "weight_decay", "SGD")
        if nesterov and self.momentum == 0.0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self.nesterov = bool(nesterov)
        self._buffers = ("momentum_buffer",) if self.momentum else ()
        super().__init__(params, lr)

    def _apply(self, updates: list[tuple[int, Array, Array]]) -> None:
        if self.momentum or self.weight_decay:
            return super()._apply(updates)
        lr, work = self.lr, self._work
        for i, p, g in updates:  # plain SGD: p −= η g, in one loop (the hot case)
            u = work[i]
            np.multiply(g, lr, out=u)
            p -= u

    def _update(self, i: int, p: Array, g: Array) -> None:
        u = self._work[i]
        g = self._grad(i, p, g)
        if self.momentum:
            b = self.state["momentum_buffer"][i]
            b *= self.momentum
            b += g
            if self.nesterov:  # u = g + μ b
                np.multiply(b, self.momentum, out=u)
                u += g
                u *= self.lr
            else:
                np.multiply(b, self.lr, out=u)
        else:
            np.multiply(g, self.lr, out=u)
        p -= u


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba):

    m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g²;  m̂ = m / (1 − β₁ᵗ);  v̂ = v / (1 − β₂ᵗ);
    p ← p − η m̂ / (√v̂ + ε).  Weight decay adds ``weight_decay · p`` to g (L2, as in PyTorch's Adam).
    """

    _buffers = ("m", "v")

    def __init__(self, params: Iterable[Tensor] | Iterable[tuple[str, Tensor]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        if len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (β1, β2), got {betas!r}")
        self.beta1 = _check_number(betas[0], "betas[0]", "Adam", 0.0, 1.0, high_open=True)
        self.beta2 = _check_number(betas[1], "betas[1]", "Adam", 0.0, 1.0, high_open=True)
        self.eps = _check_number(eps, "eps", "Adam")
        self.weight_decay = _check_number(weight_decay, "weight_decay", "Adam")
        super().__init__(params, lr)

    @property
    def betas(self) -> tuple[float, float]:
        return (self.beta1, self.beta2)

    def _update(self, i: int, p: Array, g: Array) -> None:
        g = self._grad(i, p, g)
        m, v, s = self.state["m"][i], self.state["v"][i], self._work[i]
        t = self._t[i]
        m *= self.beta1
        np.multiply(g, 1.0 - self.beta1, out=s)
        m += s
        v *= self.beta2
        np.multiply(g, g, out=s)
        s *= 1.0 - self.beta2
        v += s
        # p ← p − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
        np.sqrt(v, out=s)
        s *= 1.0 / math.sqrt(1.0 - self.beta2**t)
        s += self.eps
        np.divide(m, s, out=s)
        s *= self.lr / (1.0 - self.beta1**t)
        p -= s


class RMSprop(Optimizer):
    """RMSprop: s ← α s + (1 − α) g²;  p ← p − η g / (√s + ε)  (α the decay of the squared-gradient average)."""

    _buffers = ("square_avg",)

    def __init__(self, params: Iterable[Tensor] | Iterable[tuple[str, Tensor]], lr: float = 1e-2,
                 alpha: float = 0.9, eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.alpha = _check_number(alpha, "alpha", "RMSprop", 0.0, 1.0, high_open=True)
        self.eps = _check_number(eps, "eps", "RMSprop")
        self.weight_decay = _check_number(weight_decay, "weight_decay", "RMSprop")
        super().__init__(params, lr)

    def _update(self, i: int, p: Array, g: Array) -> None:
        g = self._grad(i, p, g)
        sq, s = self.state["square_avg"][i], self._work[i]
        sq *= self.alpha
        np.multiply(g, g, out=s)
        s *= 1.0 - self.alpha
        sq += s
        np.sqrt(sq, out=s)
        s += self.eps
        np.divide(g, s, out=s)
        s *= self.lr
        p -= s

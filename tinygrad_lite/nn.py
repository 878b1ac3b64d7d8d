"""Layers, modules and losses built on the autograd engine (PyTorch-style names).

A ``Module`` finds its parameters (Tensors that require grad) and submodules by attribute,
including inside lists, tuples and dicts, and names them by their dotted path
(``layers.0.weight``). ``Linear`` computes ``y = x @ W + b`` with ``W`` of shape
(in_features, out_features): rows are samples, as in the reference systems.

``cross_entropy`` is ``log_softmax`` followed by ``nll_loss``; its gradient with respect to
the logits is exactly ``(softmax − Y) / m`` for the mean reduction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import ops
from .graph import defop
from .ops import index_add
from .tensor import Tensor, no_grad

__all__ = [
    "Module",
    "Linear",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "Dropout",
    "Sequential",
    "Parameter",
    "INITS",
    "init_weight",
    "cross_entropy",
    "nll_loss",
]

Array = np.ndarray


def Parameter(data: Any, dtype: Any = None) -> Tensor:
    """A leaf Tensor that requires grad (what a Module collects as a parameter)."""
    return Tensor(data, requires_grad=True, dtype=dtype)


def _key_problems(expected: Any, given: Any) -> list[str]:
    """["missing keys [...]", "unexpected keys [...]"] for a state dict against the keys it should have."""
    missing = [k for k in expected if k not in given]
    extra = [k for k in given if k not in expected]
    return ([f"missing keys {missing}"] if missing else []) + ([f"unexpected keys {extra}"] if extra else [])


# ------------------------------------------------------------------ modules
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
        problems = _key_problems(params, state) if strict else []
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


# ----------------------------------------------------------- initialisation
def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _xavier_uniform(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    a = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-a, a, size=(n_in, n_out))


def _uniform_fan_in(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    a = 1.0 / np.sqrt(n_in)
    return rng.uniform(-a, a, size=(n_in, n_out))


def _he_normal(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))


def _normal(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    return rng.normal(0.0, std, size=(n_in, n_out))


def _scaled_normal(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    return rng.standard_normal(size=(n_in, n_out)) / np.sqrt(n_in)


def _small_random(n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    return rng.uniform(-0.5, 0.5, size=(n_in, n_out))


INITS: dict[str, Callable[..., Array]] = {
    "xavier_uniform": _xavier_uniform,  # U(−√(6/(in+out)), √(6/(in+out)))
    "uniform_fan_in": _uniform_fan_in,  # U(−1/√in, 1/√in)          (reference B)
    "he_normal": _he_normal,  # N(0, 2/in)
    "kaiming_normal": _he_normal,  # same as he_normal
    "normal": _normal,  # N(0, std²), std = 0.01 by default   (reference D)
    "scaled_normal": _scaled_normal,  # N(0, 1)/√in                  (reference E)
    "small_random": _small_random,  # U(−0.5, 0.5)                  (references A, C)
}


def init_weight(
    init: str, n_in: int, n_out: int, rng: np.random.Generator | int | None = None,
    std: float = 0.01, dtype: Any = np.float32,
) -> Array:
    """A (n_in, n_out) weight array drawn by the named initialisation (see ``INITS``)."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid names: {', '.join(INITS)}")
    return INITS[init](n_in, n_out, _rng(rng), std).astype(dtype)


# ------------------------------------------------------------------- layers
class Linear(Module):
    """y = x @ W + b, with W of shape (in_features, out_features) and b of shape (out_features,)."""

    def __init__(
        self, in_features: int, out_features: int, init: str = "xavier_uniform", bias: bool = True,
        *, std: float = 0.01, rng: np.random.Generator | int | None = None, dtype: Any = np.float32,
    ) -> None:
        if init not in INITS:
            raise ValueError(f"Linear: unknown init {init!r}; valid names: {', '.join(INITS)}")
        if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
                   for n in (in_features, out_features)):
            raise ValueError(f"Linear: sizes must be positive integers, got {in_features!r}→{out_features!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(init_weight(init, in_features, out_features, rng, std, dtype))
        self.bias = Parameter(np.zeros(out_features, dtype=dtype)) if bias else None

    def forward(self, x: Tensor | Array) -> Tensor:
        if not isinstance(x, (Tensor, np.ndarray)):
            x = np.asarray(x, dtype=self.weight.dtype)
        width = x.shape[-1] if x.ndim else None
        if width != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}→{self.out_features}): input has {width} features "
                f"(shape {tuple(x.shape)}), expected {self.in_features}"
            )
        dtype = self.weight.data.dtype
        if x.dtype is not dtype and x.dtype != dtype:
            raise TypeError(
                f"Linear({self.in_features}→{self.out_features}): input has dtype {x.dtype} but the parameters "
                f"have dtype {self.weight.dtype}; convert the input (x.astype(np.{self.weight.dtype})) or build "
                f"the model with dtype=np.{x.dtype}"
            )
        if self.bias is None:
            return ops.matmul(x, self.weight)
        return ops.linear(x, self.weight, self.bias)  # one fused op: x @ W + b

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, bias={self.bias is not None})"


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class Tanh(Module):
    """tanh x."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class Sigmoid(Module):
    """σ(x) = 1 / (1 + e⁻ˣ)."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


@defop(fresh_grads=True)
def dropout(x, *, keep=None):
    """x ⊙ keep, keep = mask / (1 − p) (inverted dropout);  ∂x = g ⊙ keep."""
    return x * keep, lambda g: g * keep


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale the rest by 1/(1 − p).

    Identity in eval mode, so the expected activation is the same in both modes.
    """

    def __init__(self, p: float = 0.5, seed: np.random.Generator | int | None = None) -> None:
        if isinstance(p, (str, bytes)) or not 0.0 <= p <= 1.0 or p != p:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self._rng = _rng(seed)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        dtype = data.dtype if data.dtype.kind == "f" else np.float32
        if self.p == 1.0:
            keep = np.zeros(data.shape, dtype=dtype)
        else:
            keep = (self._rng.random(data.shape, dtype=np.float32) >= self.p).astype(dtype)
            keep *= 1.0 / (1.0 - self.p)
        return dropout(x, keep=keep)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


class Sequential(Module):
    """Modules applied in order; parameters are named by position (``0.weight``, ``2.bias``, ...)."""

    def __init__(self, *modules: Module) -> None:
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {i} is a {type(m).__name__}, not a Module")
        self._layers = list(modules)

    def _children(self) -> Iterator[tuple[str, Any]]:
        yield from ((str(i), m) for i, m in enumerate(self._layers))

    def __getitem__(self, i: int) -> Module:
        return self._layers[i]

    def __len__(self) -> int:
        return len(self._layers)

    def forward(self, x: Any) -> Any:
        for m in self._layers:
            x = m(x)
        return x


# ------------------------------------------------------------------- losses
_REDUCTIONS = ("mean", "sum", "none")


@defop(name="nll", fresh_grads=True)
def _nll_indices(logp, *, rows=None, labels=None, reduction="mean"):
    """L = −Σᵢ logp[i, yᵢ] (/m for the mean);  ∂logp = −g (/m) at [i, yᵢ], 0 elsewhere."""
    m = logp.shape[0]
    picked = logp[rows, labels]

    def vjp(g):
        share = -g / m if reduction == "mean" else -g
        if reduction != "none":
            share = np.broadcast_to(share, (m,))
        if isinstance(share, Tensor):
            return index_add(share, index=(rows, labels), shape=logp.shape)
        grad = np.zeros_like(logp)
        grad[rows, labels] = share
        return grad

    if reduction == "none":
        return -picked, vjp
    total = -picked.sum()
    return (total / m if reduction == "mean" else total), vjp


@defop(name="nll", fresh_grads=True)
def _nll_probs(logp, *, probs=None, reduction="mean"):
    """L = −Σᵢⱼ Yᵢⱼ logpᵢⱼ (/m for the mean);  ∂logp = −g ⊙ Y (/m)."""
    m = logp.shape[0]
    if reduction == "none":
        return -(probs * logp).sum(axis=1), lambda g: -g[:, None] * probs
    total = -(probs * logp).sum()
    if reduction == "mean":
        return total / m, lambda g: probs * (-g / m)
    return total, lambda g: probs * -g


def _check_target(target: Any, m: int, c: int, dtype: np.dtype, where: str) -> tuple[str, Array]:
    """Validate the labels; returns ("indices", y) or ("probs", Y as ``dtype``)."""
    y = target.data if isinstance(target, Tensor) else np.asarray(target)
    kind = y.dtype.kind
    if kind in "iu" and y.shape == (m,):  # the common case, with one reduction: class indices
        unsigned = y if kind == "u" else y.view(f"u{y.itemsize}")  # negative labels become huge
        if m == 0 or unsigned.max() < c:
            return "indices", y
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind not in "iuf":
        raise ValueError(f"{where}: labels must be integers or float rows, got dtype {y.dtype}")
    if y.shape[:1] != (m,):
        raise ValueError(
            f"{where}: batch mismatch: predictions have {m} rows (shape {(m, c)}), labels have shape {y.shape}"
        )
    if y.dtype.kind == "f" and np.isnan(y).any():
        rows = np.flatnonzero(np.isnan(y).reshape(m, -1).any(axis=1))
        raise ValueError(f"{where}: labels contain NaN (rows {rows[:10].tolist()})")
    if y.ndim == 1:
        if y.dtype.kind == "f":
            hint = " (integer-valued: pass them as an integer array, e.g. y.astype(np.int64))" if np.all(
                y == np.round(y)) else ""
            raise ValueError(
                f"{where}: got float labels of shape {y.shape}{hint}; class indices must be integers, "
                f"and one-hot/probability targets must have shape {(m, c)}"
            )
        bad = (y < 0) | (y >= c)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{where}: label {int(y[i])} at row {i} is outside [0, {c}) "
                f"({int(bad.sum())} labels out of range; labels range {int(y.min())}..{int(y.max())})"
            )
        return "indices", y
    if y.ndim == 2 and y.shape[1] == c:
        if (y < 0).any():
            raise ValueError(f"{where}: one-hot/probability targets have negative entries (min {y.min()})")
        sums = y.sum(axis=1, dtype=np.float64)
        tol = 1e-3 if np.dtype(dtype).itemsize <= 4 or y.dtype.itemsize <= 4 else 1e-6
        bad = np.abs(sums - 1.0) > tol
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{where}: target row {i} sums to {sums[i]:.6g}, not 1 ({int(bad.sum())} such rows); one-hot or "
                f"probability rows must sum to 1 (for class indices pass an integer array of shape ({m},))"
            )
        return "probs", y.astype(dtype, copy=False)
    raise ValueError(
        f"{where}: labels have shape {y.shape}; expected class indices of shape ({m},) or one-hot/probability "
        f"rows of shape {(m, c)}"
    )


def _check_reduction(reduction: str, where: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{where}: unknown reduction {reduction!r}; valid: {', '.join(_REDUCTIONS)}")


def nll_loss(log_probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: −(1/m) Σᵢ log pᵢ[yᵢ] for class indices, −(1/m) Σᵢⱼ Yᵢⱼ log pᵢⱼ for rows.

    ``log_probs`` has shape (m, C); ``target`` is class indices (m,) or one-hot/probability
    rows (m, C). ``reduction``: "mean" (default), "sum" or "none" (one loss per row).
    """
    _check_reduction(reduction, "nll_loss")
    shape = tuple(log_probs.shape)
    if len(shape) != 2:
        raise ValueError(f"nll_loss: predictions must have shape (m, classes), got {shape}")
    dtype = log_probs.dtype
    kind, y = _check_target(target, shape[0], shape[1], dtype, "nll_loss")
    if kind == "indices":
        return _nll_indices(log_probs, rows=np.arange(shape[0]), labels=y, reduction=reduction)
    return _nll_probs(log_probs, probs=y, reduction=reduction)


@defop(name="cross_entropy", fresh_grads=True)
def _softmax_cross_entropy(z, *, target=None, reduction="mean"):
    """L = −Σᵢ Σⱼ Yᵢⱼ log softmax(zᵢ)ⱼ (/m for the mean), log-softmax shifted by the row max;
    ∂z = g ⊙ (softmax(z) − Y) (/m) — the hand-derived dZ_L = (A_L − Y)/m, in one node.

    ``target`` is class indices (m,) or probability rows (m, C), already validated."""
    m = z.shape[0]
    shifted = z - np.maximum.reduce(z, axis=1, keepdims=True)
    e = np.exp(shifted)
    total = np.add.reduce(e, axis=1, keepdims=True)
    logp = shifted - np.log(total)
    indices = target.ndim == 1
    rows = np.arange(m) if indices else None
    losses = -logp[rows, target] if indices else -np.add.reduce(target * logp, axis=1)

    def vjp(g):
        A = e / total  # softmax, made only when a gradient is wanted
        scale = g[:, None] if reduction == "none" else (g / m if reduction == "mean" else g)
        if isinstance(A, Tensor) or isinstance(g, Tensor):  # higher order: no in-place updates
            Y = target
            if indices:
                Y = np.zeros(A.shape, dtype=A.dtype)
                Y[rows, target] = 1
            return (A - Y) * scale
        if indices:
            A[rows, target] -= 1
        else:
            A -= target
        A *= scale
        return A

    if reduction == "none":
        return losses, vjp
    loss = np.add.reduce(losses)
    return (loss / m if reduction == "mean" else loss), vjp


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy: ``nll_loss(log_softmax(logits), target)`` fused into one op.

    ``target`` is class indices (an integer array or Tensor of shape (m,)) or one-hot/probability
    rows (m, C). For the mean reduction the gradient with respect to the logits is exactly
    (softmax(logits) − Y)/m, Y the one-hot (or probability) rows of ``target``.
    """
    if reduction not in _REDUCTIONS:
        _check_reduction(reduction, "cross_entropy")
    shape = logits.shape
    if len(shape) != 2:
        raise ValueError(f"cross_entropy: logits must have shape (m, classes), got {shape}")
    dtype = logits.dtype if logits.dtype.kind == "f" else np.dtype(np.float32)
    _, y = _check_target(target, shape[0], shape[1], dtype, "cross_entropy")
    return _softmax_cross_entropy(logits, target=y, reduction=reduction)

"""The frameworks we compare, one adapter each; every section takes its contenders from here.

A training step is: forward, mean softmax cross-entropy, backward, plain SGD update with the
same learning rate. Every trainer starts from the same weights (a ``ManualMLP`` draw, named
``layers.<l>.weight`` (in, out) / ``layers.<l>.bias``, in the dtype the weights have), takes
NumPy batches (float images, int64 labels) and can report its parameters as NumPy arrays, so
a sanity check can compare them after a step.

- ``manual``: ``models.manual.ManualMLP`` forward/loss/backward + ``ManualSGD`` (the readable reference)
- ``numpy-opt``: ``benchmarks.fast_numpy.FastMLP``, the same step as fast as we can write it in NumPy
- ``tinygrad_lite``: ``models.mlp.MLP`` + ``nn.cross_entropy`` + ``optim.SGD`` (zero_grad each step)
- ``torch``: ``nn.Linear`` + ``F.cross_entropy`` + ``torch.optim.SGD`` (CPU eager, threads = BLAS threads)
- ``autograd`` (HIPS): ``value_and_grad`` of a NumPy-style loss, in-place SGD on the arrays
- ``mygrad``: MyGrad tensors, ``softmax_crossentropy``, in-place SGD on ``.data``
- ``tg-compiled`` and ``jax-jit``: the compiled steps (``benchmarks/jit.py``)

The autograd frameworks also give the two graphs of the per-op overhead section:
``tiny(a, b)`` is forward + backward of ``(a + b).sum()``, ``dense(x, W, b)`` of
``relu(x @ W + b).sum()`` (x needs no gradient), each a zero-argument callable.
Nothing here tunes the process (threads, allocator): the command line does that for all alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import env

Array = np.ndarray
Weights = dict[str, Array]
Case = Callable[[], object]

#: every framework in table order
ORDER = ("manual", "numpy-opt", "tinygrad_lite", "tg-compiled", "jax-jit", "torch", "autograd", "mygrad")
#: the hand-written NumPy baselines: they always run, and every ratio is taken to each of them
BASELINES = ("manual", "numpy-opt")
REFERENCE = "manual"
#: the frameworks that differentiate a graph (the per-op overhead section times these)
AUTOGRAD = ("tinygrad_lite", "tg-compiled", "jax-jit", "torch", "autograd", "mygrad")


def make_weights(sizes: Sequence[int], seed: int = 0, dtype: Any = np.float32) -> Weights:
    """Weights of the MLP ``sizes`` (ReLU hidden layers), drawn as ``ManualMLP`` and ``MLP`` draw them."""
    from models.manual import ManualMLP

    return ManualMLP(sizes, "relu", seed=seed, dtype=dtype).state_dict()


def _pairs(weights: Weights) -> list[tuple[Array, Array]]:
    n = len(weights) // 2
    return [(weights[f"layers.{l}.weight"], weights[f"layers.{l}.bias"]) for l in range(n)]


def _sizes(weights: Weights) -> list[int]:
    pairs = _pairs(weights)
    return [pairs[0][0].shape[0]] + [W.shape[1] for W, _ in pairs]


def _dtype(weights: Weights) -> np.dtype:
    return next(iter(weights.values())).dtype


def _named(arrays: Sequence[Array]) -> Weights:
    return {f"layers.{i // 2}.{'weight' if i % 2 == 0 else 'bias'}": np.array(a) for i, a in enumerate(arrays)}


class Trainer:
    """Interface: ``step(x, y)`` trains on one batch; ``loss(x, y)`` is a step that returns its loss."""

    name = ""

    def step(self, x: Array, y: Array) -> Any:
        raise NotImplementedError

    def loss(self, x: Array, y: Array) -> float:
        """One training step, returning its (pre-update) loss as a float."""
        return float(self.step(x, y))

    def predict(self, x: Array) -> Array:
        raise NotImplementedError

    def params(self) -> Weights:
        raise NotImplementedError

    @staticmethod
    def tiny(a: Array, b: Array) -> Case:
        """Forward + backward of ``(a + b).sum()`` (autograd frameworks only)."""
        raise NotImplementedError

    @staticmethod
    def dense(x: Array, W: Array, b: Array) -> Case:
        """Forward + backward of ``relu(x @ W + b).sum()`` wrt W and b (autograd frameworks only)."""
        raise NotImplementedError


class Manual(Trainer):
    name = "manual"

    def __init__(self, weights: Weights, lr: float) -> None:
        from models.manual import ManualMLP, ManualSGD

        self.model = ManualMLP(_sizes(weights), "relu", dtype=_dtype(weights))
        self.model.load_state_dict(weights)
        self.opt = ManualSGD(self.model.params, lr=lr)

    def step(self, x: Array, y: Array) -> Any:
        loss, grads = self.model.loss_and_grads(x, y)
        self.opt.step(grads)
        return loss

    def predict(self, x: Array) -> Array:
        return self.model.forward(x).argmax(axis=1)

    def params(self) -> Weights:
        return self.model.state_dict()


class NumpyOpt(Trainer):
    name = "numpy-opt"

    def __init__(self, weights: Weights, lr: float) -> None:
        from .fast_numpy import FastMLP

        self.model = FastMLP(weights, lr)
        self.step = self.model.step  # type: ignore[method-assign]

    def predict(self, x: Array) -> Array:
        return self.model.forward(x).argmax(axis=1)

    def params(self) -> Weights:
        return self.model.state_dict()


class TinygradLite(Trainer):
    name = "tinygrad_lite"

    def __init__(self, weights: Weights, lr: float) -> None:
        import tinygrad_lite.nn as nn
        import tinygrad_lite.optim as optim
        from models.mlp import MLP
        from tinygrad_lite import no_grad

        self.model = MLP(_sizes(weights), "relu", dtype=_dtype(weights))
        self.model.load_state_dict(weights)
        self.opt = optim.SGD(self.model.parameters(), lr=lr)
        self.cross_entropy = nn.cross_entropy
        self.no_grad = no_grad

    def step(self, x: Array, y: Array) -> Any:
        self.opt.zero_grad()
        loss = self.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss.data

    def predict(self, x: Array) -> Array:
        with self.no_grad():
            return self.model(x).data.argmax(axis=1)

    def params(self) -> Weights:
        return self.model.state_dict()

    @staticmethod
    def tiny(a: Array, b: Array) -> Case:
        import tinygrad_lite as tg

        ta, tb = tg.Tensor(a.copy(), requires_grad=True), tg.Tensor(b.copy(), requires_grad=True)
        return lambda: (ta + tb).sum().backward()

    @staticmethod
    def dense(x: Array, W: Array, b: Array) -> Case:
        import tinygrad_lite as tg

        tx = tg.Tensor(x)
        tW, tb = tg.Tensor(W.copy(), requires_grad=True), tg.Tensor(b.copy(), requires_grad=True)
        return lambda: (tx @ tW + tb).relu().sum().backward()


def import_torch() -> Any:
    """torch, set to use as many intra-op threads as NumPy's BLAS has right now (same resources for both)."""
    import torch

    threads = env.blas_threads()
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch


class Torch(Trainer):
    name = "torch"

    def __init__(self, weights: Weights, lr: float) -> None:
        torch = import_torch()
        self.torch = torch
        self.F = torch.nn.functional
        layers: list[Any] = []
        pairs = _pairs(weights)
        for l, (W, b) in enumerate(pairs):
            lin = torch.nn.Linear(*W.shape, dtype=torch.from_numpy(W).dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if l < len(pairs) - 1:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)

    def step(self, x: Array, y: Array) -> Any:
        self.opt.zero_grad(set_to_none=True)
        loss = self.F.cross_entropy(self.model(self.torch.from_numpy(x)), self.torch.from_numpy(y))
        loss.backward()
        self.opt.step()
        return loss

    def loss(self, x: Array, y: Array) -> float:
        return float(self.step(x, y).item())

    def predict(self, x: Array) -> Array:
        with self.torch.no_grad():
            return self.model(self.torch.from_numpy(x)).argmax(dim=1).numpy()

    def params(self) -> Weights:
        linears = [m for m in self.model if isinstance(m, self.torch.nn.Linear)]
        return _named([a for lin in linears for a in (lin.weight.detach().numpy().T, lin.bias.detach().numpy())])

    @staticmethod
    def tiny(a: Array, b: Array) -> Case:
        torch = import_torch()
        ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        return lambda: (ta + tb).sum().backward()

    @staticmethod
    def dense(x: Array, W: Array, b: Array) -> Case:
        torch = import_torch()
        tx = torch.from_numpy(x)
        tW, tb = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
        return lambda: torch.relu(tx @ tW + tb).sum().backward()


def _one_hot(y: Array, n: int, dtype: Any) -> Array:
    Y = np.zeros((y.shape[0], n), dtype=dtype)
    Y[np.arange(y.shape[0]), y] = 1
    return Y


class HipsAutograd(Trainer):
    name = "autograd"

    def __init__(self, weights: Weights, lr: float) -> None:
        import autograd.numpy as anp
        from autograd import value_and_grad

        self.lr = _dtype(weights).type(lr)
        self.arrays = [a.copy() for pair in _pairs(weights) for a in pair]
        self.n_out = self.arrays[-1].shape[0]

        def forward(arrays: list[Any], x: Any) -> Any:
            a = x
            last = len(arrays) // 2 - 1
            for l in range(last + 1):
                z = anp.dot(a, arrays[2 * l]) + arrays[2 * l + 1]
                a = anp.maximum(z, 0.0) if l < last else z
            return a

        def loss(arrays: list[Any], x: Any, Y: Any) -> Any:
            z = forward(arrays, x)
            shifted = z - anp.max(z, axis=1, keepdims=True)
            logp = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
            return -anp.sum(Y * logp) / z.shape[0]

        self.forward = forward
        self.value_and_grad = value_and_grad(loss)

    def step(self, x: Array, y: Array) -> Any:
        value, grads = self.value_and_grad(self.arrays, x, _one_hot(y, self.n_out, x.dtype))
        for p, g in zip(self.arrays, grads):
            p -= self.lr * g
        return value

    def predict(self, x: Array) -> Array:
        return np.asarray(self.forward(self.arrays, x)).argmax(axis=1)

    def params(self) -> Weights:
        return _named(self.arrays)

    @staticmethod
    def tiny(a: Array, b: Array) -> Case:
        import autograd.numpy as anp
        from autograd import grad

        g = grad(lambda ab: anp.sum(ab[0] + ab[1]))
        pair = (a.copy(), b.copy())
        return lambda: g(pair)

    @staticmethod
    def dense(x: Array, W: Array, b: Array) -> Case:
        import autograd.numpy as anp
        from autograd import grad

        g = grad(lambda Wb: anp.sum(anp.maximum(anp.dot(x, Wb[0]) + Wb[1], 0.0)))
        pair = (W.copy(), b.copy())
        return lambda: g(pair)


class MyGrad(Trainer):
    name = "mygrad"

    def __init__(self, weights: Weights, lr: float) -> None:
        import mygrad as mg
        from mygrad.nnet.activations import relu
        from mygrad.nnet.losses import softmax_crossentropy

        self.mg, self.relu, self.softmax_crossentropy = mg, relu, softmax_crossentropy
        self.lr = _dtype(weights).type(lr)
        self.tensors = [mg.tensor(a.copy()) for pair in _pairs(weights) for a in pair]

    def _forward(self, x: Any) -> Any:
        t, a = self.tensors, x
        last = len(t) // 2 - 1
        for l in range(last + 1):
            z = self.mg.matmul(a, t[2 * l]) + t[2 * l + 1]
            a = self.relu(z) if l < last else z
        return a

    def step(self, x: Array, y: Array) -> Any:
        loss = self.softmax_crossentropy(self._forward(x), y)
        loss.backward()
        for p in self.tensors:
            p.data -= self.lr * p.grad
        return loss

    def loss(self, x: Array, y: Array) -> float:
        return float(self.step(x, y).item())

    def predict(self, x: Array) -> Array:
        with self.mg.no_autodiff:
            return np.asarray(self._forward(x).data).argmax(axis=1)

    def params(self) -> Weights:
        return _named([t.data for t in self.tensors])

    @staticmethod
    def tiny(a: Array, b: Array) -> Case:
        import mygrad as mg

        ta, tb = mg.tensor(a.copy()), mg.tensor(b.copy())
        return lambda: (ta + tb).sum().backward()

    @staticmethod
    def dense(x: Array, W: Array, b: Array) -> Case:
        import mygrad as mg
        from mygrad.nnet.activations import relu

        tW, tb = mg.tensor(W.copy()), mg.tensor(b.copy())
        return lambda: relu(mg.matmul(x, tW) + tb).sum().backward()


from .jit import JaxJit, TinygradCompiled  # noqa: E402 (they build on the adapters above)

TRAINERS: dict[str, type[Trainer]] = {
    "manual": Manual, "numpy-opt": NumpyOpt, "tinygrad_lite": TinygradLite, "tg-compiled": TinygradCompiled,
    "jax-jit": JaxJit, "torch": Torch, "autograd": HipsAutograd, "mygrad": MyGrad,
}


def installed(name: str) -> bool:
    """Whether a framework can run here (the baselines and tinygrad_lite, eager or compiled, always can)."""
    return name in BASELINES or name in ("tinygrad_lite", "tg-compiled") or env.available(name)


def make(name: str, weights: Weights, lr: float) -> Trainer:
    """A fresh trainer of framework ``name`` starting from ``weights``."""
    return TRAINERS[name](weights, lr)

"""One training step of the same ReLU MLP in every framework we compare, from the same weights.

A training step is: forward, mean softmax cross-entropy, backward, plain SGD update with the
same learning rate. Every trainer starts from the same float32 weights (a ``ManualMLP``
draw, named ``layers.<l>.weight`` (in, out) / ``layers.<l>.bias``), takes NumPy batches
(float32 images, int64 labels) and can report its parameters as NumPy arrays, so a sanity
check can compare them after a step.

- ``tinygrad_lite``: ``models.mlp.MLP`` + ``nn.cross_entropy`` + ``optim.SGD`` (zero_grad each step)
- ``manual``: ``models.manual.ManualMLP`` forward/loss/backward + ``ManualSGD`` (the reference)
- ``torch``: ``nn.Linear`` + ``F.cross_entropy`` + ``torch.optim.SGD`` (CPU eager, threads = BLAS threads)
- ``autograd`` (HIPS): ``value_and_grad`` of a NumPy-style loss, in-place SGD on the arrays
- ``mygrad``: MyGrad tensors, ``softmax_crossentropy``, in-place SGD on ``.data``
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import env

Array = np.ndarray
Weights = dict[str, Array]

#: every framework in table order; ``manual`` is the reference the ratios are taken to
ORDER = ("manual", "tinygrad_lite", "torch", "autograd", "mygrad")
REFERENCE = "manual"


def make_weights(sizes: Sequence[int], seed: int = 0) -> Weights:
    """float32 weights of the MLP ``sizes`` (ReLU hidden layers), drawn as ``ManualMLP`` and ``MLP`` draw them."""
    from models.manual import ManualMLP

    return ManualMLP(sizes, "relu", seed=seed, dtype=np.float32).state_dict()


def _pairs(weights: Weights) -> list[tuple[Array, Array]]:
    n = len(weights) // 2
    return [(weights[f"layers.{l}.weight"], weights[f"layers.{l}.bias"]) for l in range(n)]


def _sizes(weights: Weights) -> list[int]:
    pairs = _pairs(weights)
    return [pairs[0][0].shape[0]] + [W.shape[1] for W, _ in pairs]


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


class TinygradLite(Trainer):
    name = "tinygrad_lite"

    def __init__(self, weights: Weights, lr: float) -> None:
        import tinygrad_lite.nn as nn
        import tinygrad_lite.optim as optim
        from models.mlp import MLP
        from tinygrad_lite import no_grad

        self.model = MLP(_sizes(weights), "relu", dtype=np.float32)
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


class Manual(Trainer):
    name = "manual"

    def __init__(self, weights: Weights, lr: float) -> None:
        from models.manual import ManualMLP, ManualSGD

        self.model = ManualMLP(_sizes(weights), "relu", dtype=np.float32)
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


def import_torch() -> Any:
    """torch, set to use as many intra-op threads as NumPy's BLAS has (same resources for both)."""
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
            lin = torch.nn.Linear(*W.shape)
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
        out = {}
        linears = [m for m in self.model if isinstance(m, self.torch.nn.Linear)]
        for l, lin in enumerate(linears):
            out[f"layers.{l}.weight"] = lin.weight.detach().numpy().T.copy()
            out[f"layers.{l}.bias"] = lin.bias.detach().numpy().copy()
        return out


def _one_hot(y: Array, n: int, dtype: Any) -> Array:
    Y = np.zeros((y.shape[0], n), dtype=dtype)
    Y[np.arange(y.shape[0]), y] = 1
    return Y


class HipsAutograd(Trainer):
    name = "autograd"

    def __init__(self, weights: Weights, lr: float) -> None:
        import autograd.numpy as anp
        from autograd import value_and_grad

        self.lr = np.float32(lr)
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
        return {f"layers.{i // 2}.{'weight' if i % 2 == 0 else 'bias'}": a.copy() for i, a in enumerate(self.arrays)}


class MyGrad(Trainer):
    name = "mygrad"

    def __init__(self, weights: Weights, lr: float) -> None:
        import mygrad as mg
        from mygrad.nnet.activations import relu
        from mygrad.nnet.losses import softmax_crossentropy

        self.mg, self.relu, self.softmax_crossentropy = mg, relu, softmax_crossentropy
        self.lr = np.float32(lr)
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
        return {f"layers.{i // 2}.{'weight' if i % 2 == 0 else 'bias'}": np.array(t.data)
                for i, t in enumerate(self.tensors)}


TRAINERS: dict[str, type[Trainer]] = {
    "manual": Manual, "tinygrad_lite": TinygradLite, "torch": Torch, "autograd": HipsAutograd, "mygrad": MyGrad,
}


def installed(name: str) -> bool:
    """Whether a framework can run here (tinygrad_lite and manual always can)."""
    return name in ("manual", "tinygrad_lite") or env.available(name)


def make(name: str, weights: Weights, lr: float) -> Trainer:
    """A fresh trainer of framework ``name`` starting from ``weights``."""
    return TRAINERS[name](weights, lr)

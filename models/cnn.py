"""A small convolutional network for MNIST-style images built from ``tinygrad_lite.nn`` layers.

Conv block l computes A_l = maxpool(ReLU(BN(W_l ⋆ A_{l−1}))) (A_0 = X, images (m, C, H, W));
the head flattens A_L and applies Linear-ReLU(-Dropout) layers, then a last Linear that gives the
logits (use ``nn.cross_entropy`` on them). The architecture is a ``CNNSpec`` (see
``models.manual_cnn``, whose ``ManualCNN`` is this network's hand-derived twin); the default is

    conv(1→32,3×3,pad 1)-BN-ReLU-maxpool2 → conv(32→64,3×3,pad 1)-BN-ReLU-maxpool2
    → linear(3136→128)-ReLU → linear(128→10).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tinygrad_lite.nn as nn
from models.manual_cnn import CNNSpec, make_spec
from tinygrad_lite.tensor import Tensor

__all__ = ["CNN", "CNNSpec", "torch_modules", "to_torch"]


class CNN(nn.Module):
    """Conv blocks then fully connected layers, from a ``CNNSpec`` (keyword fields override it:
    ``CNN(channels=(8, 16), hidden=(32,), batchnorm=False)``).

    Conv weights and biases have PyTorch's default init (U(−1/√fan_in, 1/√fan_in)); linear weights
    are drawn by ``init`` (a ``nn.INITS`` name), linear biases are 0; all from one generator seeded
    with ``seed``, layer by layer, and the dropout masks after them. Parameters: ``conv.<l>.weight``
    (O, C, k, k) (and ``conv.<l>.bias`` without BatchNorm), ``bn.<l>.weight``/``bias`` with the
    buffers ``bn.<l>.running_mean``/``running_var``/``num_batches_tracked``, ``fc.<k>.weight``
    (in, out) and ``fc.<k>.bias``.
    """

    def __init__(self, spec: CNNSpec | None = None, *, init: str = "uniform_fan_in",
                 seed: int | np.random.Generator | None = 0, dtype: Any = np.float32, std: float = 0.01,
                 **overrides: Any) -> None:
        self.spec = s = make_spec(spec, overrides, "CNN")
        if init not in nn.INITS:
            raise ValueError(f"CNN: unknown init {init!r}; valid names: {', '.join(nn.INITS)}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        chans = (s.in_shape[0], *s.channels)
        self.conv = [nn.Conv2d(c_in, c_out, s.kernel_size, padding=s.padding, bias=not s.batchnorm, rng=rng,
                               dtype=dtype) for c_in, c_out in zip(chans[:-1], chans[1:])]
        self.bn = [nn.BatchNorm2d(c, eps=s.bn_eps, momentum=s.bn_momentum, dtype=dtype)
                   for c in s.channels] if s.batchnorm else []
        self.fc = [nn.Linear(n_in, n_out, init=init, std=std, rng=rng, dtype=dtype)
                   for n_in, n_out in zip(s.widths[:-1], s.widths[1:])]
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(s.pool) if s.pool > 1 else nn.Identity()
        self.flatten = nn.Flatten()
        self.dropout = [nn.Dropout(s.dropout, seed=rng) for _ in s.hidden] if s.dropout else []

    def forward(self, x: Tensor | np.ndarray, intermediates: dict[str, Tensor] | None = None) -> Tensor:
        """Logits (m, n_classes) for images x of shape (m, *in_shape). When ``intermediates`` is a dict it
        receives every layer's output under ``ManualCNN.cache``'s names (``conv.<l>``, ``bn.<l>``,
        ``relu.<l>``, ``pool.<l>``, ``flatten``, ``fc.<k>``, ``hidden.<k>``)."""
        s = self.spec
        if not isinstance(x, (Tensor, np.ndarray)):
            x = np.asarray(x, dtype=self.conv[0].weight.dtype)
        if x.ndim != 4 or tuple(x.shape[1:]) != s.in_shape:
            raise ValueError(f"CNN: expected input of shape (m, {', '.join(map(str, s.in_shape))}), "
                             f"got {tuple(x.shape)}")
        out = {} if intermediates is None else intermediates
        for l, conv in enumerate(self.conv):
            x = out[f"conv.{l}"] = conv(x)
            if self.bn:
                x = out[f"bn.{l}"] = self.bn[l](x)
            x = out[f"relu.{l}"] = self.relu(x)
            x = out[f"pool.{l}"] = self.pool(x)
        x = out["flatten"] = self.flatten(x)
        last = len(self.fc) - 1
        for j, fc in enumerate(self.fc):
            x = out[f"fc.{j}"] = fc(x)
            if j < last:
                x = self.relu(x)
                if self.dropout:
                    x = self.dropout[j](x)
                out[f"hidden.{j}"] = x
        return x

    def __repr__(self) -> str:
        return f"CNN({self.spec.describe()})"


# ------------------------------------------------------------------------------------ PyTorch
def torch_modules(spec: CNNSpec) -> list[str]:
    """The same network as ``torch.nn.Sequential`` modules (as source text, e.g. ``"Conv2d(1, 32, 3, ...)"``)."""
    chans, mods = (spec.in_shape[0], *spec.channels), []
    for c_in, c_out in zip(chans[:-1], chans[1:]):
        mods.append(f"Conv2d({c_in}, {c_out}, {spec.kernel_size}, padding={spec.padding}, "
                    f"bias={not spec.batchnorm})")
        if spec.batchnorm:
            mods.append(f"BatchNorm2d({c_out}, eps={spec.bn_eps!r}, momentum={spec.bn_momentum!r})")
        mods.append("ReLU()")
        if spec.pool > 1:
            mods.append(f"MaxPool2d({spec.pool})")
    mods.append("Flatten()")
    widths = spec.widths
    for j, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        mods.append(f"Linear({n_in}, {n_out})")
        if j < len(widths) - 2:
            mods.append("ReLU()")
            if spec.dropout:
                mods.append(f"Dropout({spec.dropout!r})")
    return mods


def to_torch(spec: CNNSpec, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A ``CNN`` state dict mapped onto the state dict of ``torch_modules(spec)``'s Sequential
    (linear weights transposed to PyTorch's (out, in); buffers included when present)."""
    mods = torch_modules(spec)
    convs = [i for i, m in enumerate(mods) if m.startswith("Conv2d(")]
    norms = [i for i, m in enumerate(mods) if m.startswith("BatchNorm2d(")]
    linears = [i for i, m in enumerate(mods) if m.startswith("Linear(")]
    out = {}
    for name, value in state.items():
        kind, l, field = name.split(".", 2)
        i = {"conv": convs, "bn": norms, "fc": linears}[kind][int(l)]
        value = np.asarray(value)  # np.array, not ascontiguousarray: a 0-d counter stays 0-d
        out[f"{i}.{field}"] = np.array(value.T if kind == "fc" and field == "weight" else value, order="C")
    return out

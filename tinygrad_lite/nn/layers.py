"""Layers: ``Linear``, ``Dropout``, ``Sequential``, ``Flatten``, ``Identity``, ``Embedding`` (PyTorch-style names).

``Linear`` computes ``y = x @ W + b`` with ``W`` of shape (in_features, out_features): rows
are samples, as in the reference systems.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import ops
from ..graph import defop
from ..tensor import Tensor, no_grad
from .activation import ReLU, Sigmoid, Tanh
from .checks import positive_int
from .functional import dropout, dropout_mask
from .init import INITS, init_weight
from .module import Module, Parameter

__all__ = ["Linear", "ReLU", "Tanh", "Sigmoid", "Dropout", "Sequential", "Flatten", "Identity", "Embedding",
           "embedding"]

Array = np.ndarray


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


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale the rest by 1/(1 − p).

    Identity in eval mode, so the expected activation is the same in both modes.
    """

    def __init__(self, p: float = 0.5, seed: np.random.Generator | int | None = None) -> None:
        if isinstance(p, (str, bytes)) or not 0.0 <= p <= 1.0 or p != p:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self._rng = np.random.default_rng(seed)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape, dtype = (x.shape, x.dtype) if isinstance(x, Tensor) else (np.shape(x), np.asarray(x).dtype)
        keep = dropout_mask(shape=shape, p=self.p, rng=self._rng, dtype=dtype if dtype.kind == "f" else np.float32)
        return dropout(x, keep)

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


class Identity(Module):
    """x, unchanged (a placeholder; any constructor arguments are ignored, as PyTorch's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def forward(self, x: Any) -> Any:
        return x

    def __repr__(self) -> str:
        return "Identity()"


class Flatten(Module):
    """Dimensions ``start_dim`` … ``end_dim`` merged into one: (N, C, H, W) → (N, C·H·W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Tensor | Array) -> Tensor:
        shape = tuple(x.shape)
        n = max(len(shape), 1)
        start, end = self.start_dim, self.end_dim
        if not (-n <= start < n and -n <= end < n) or start % n > end % n:
            raise ValueError(f"{self!r}: start_dim {start} and end_dim {end} do not name an increasing range of "
                             f"dimensions of the input of shape {shape}")
        if not shape:
            return ops.reshape(x, shape=(1,))
        start, end = start % n, end % n
        return ops.reshape(x, shape=shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:])

    def __repr__(self) -> str:
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"


@defop(name="embedding", fresh_grads=True)
def _embedding(weight, *, indices=None, padding_idx=None):
    """out = W[indices] (rows of the table);  ∂W = g scattered back to those rows (repeats add up),
    except that the row ``padding_idx`` gets no gradient. Indices are checked here too (a compiled
    step's new indices: a negative one would wrap around)."""
    n = weight.shape[0]
    if indices.size and indices.view(f"u{indices.itemsize}").max() >= n:
        i = tuple(int(v) for v in np.argwhere((indices < 0) | (indices >= n))[0])
        raise ValueError(f"embedding: index {int(indices[i])} at position {i} of the indices (shape {indices.shape}) "
                         f"is outside [0, {n}) for a table of shape {weight.shape}")

    def vjp(g):
        if padding_idx is not None:
            g = np.where((indices == padding_idx)[..., None], 0, g)
        return ops.call_op(ops.index_add, g, index=(indices,), shape=weight.shape)

    return weight[indices], vjp


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:  # noqa: A002 (PyTorch's name)
    """The rows ``weight[input]`` for integer indices ``input`` of any shape: output shape input.shape + (D,);
    the row ``padding_idx`` gets no gradient."""
    idx = input.data if isinstance(input, Tensor) else np.asarray(input)
    n = weight.shape[0]
    if idx.dtype.kind not in "iu":
        raise ValueError(f"embedding: indices must be integers, got dtype {idx.dtype} (shape {idx.shape})")
    bad = (idx < 0) | (idx >= n)
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"embedding: index {int(idx[i])} at position {i} of the indices (shape {idx.shape}) is "
                         f"outside [0, {n}) for a table of shape {tuple(weight.shape)}")
    return _embedding(weight, indices=idx, padding_idx=padding_idx)


class Embedding(Module):
    """A lookup table: integer indices of any shape → rows of ``weight`` (num_embeddings, embedding_dim),
    drawn from N(0, 1) as PyTorch's; the row ``padding_idx`` starts at 0 and gets no gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *,
                 rng: np.random.Generator | int | None = None, dtype: Any = np.float32) -> None:
        self.num_embeddings = positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) or not (
                    -num_embeddings <= padding_idx < num_embeddings):
                raise ValueError(f"Embedding: padding_idx must be an int in [{-num_embeddings}, {num_embeddings}), "
                                 f"got {padding_idx!r}")
            padding_idx = int(padding_idx) % num_embeddings
        self.padding_idx = padding_idx
        self.weight = Parameter(self._table(rng, dtype))

    def _table(self, rng: Any, dtype: Any) -> Array:
        table = np.random.default_rng(rng).standard_normal((self.num_embeddings, self.embedding_dim)).astype(dtype)
        if self.padding_idx is not None:
            table[self.padding_idx] = 0
        return table

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw the table again from N(0, 1) (the padding row 0)."""
        with no_grad():
            self.weight.copy_(self._table(rng, self.weight.dtype))

    def forward(self, indices: Any) -> Tensor:
        try:
            return embedding(indices, self.weight, self.padding_idx)
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None

    def __repr__(self) -> str:
        extra = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}{extra})"

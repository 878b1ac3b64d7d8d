"""The fastest hand-written NumPy training step we know for a ReLU MLP, mean softmax cross-entropy and SGD.

It is the baseline the benchmarks call ``numpy-opt``: the same step as ``models.manual`` (the
readable reference), written for speed instead. Layers l = 1..L, rows are samples, m the batch:

    forward    Z_l = A_{l−1} W_l      matmul into a preallocated Z_l
               Z_l += b_l             bias added in place into the product
               A_l = max(Z_l, 0)      in place (A_l overwrites Z_l), M_l = [A_l > 0] into a bool buffer
    loss       S = Z_L − max_row Z_L  in place;  loss = (Σ log Σ_row e^S − Σ S[i, y_i]) / m
    backward   dZ_L = (e^S / Σ_row e^S − Y) · η/m     in place over Z_L: softmax, the one-hot
                                                      subtraction and the scale fused; η, the
                                                      learning rate, is folded in here, so every
                                                      dW_l, db_l below is already the SGD update
               dW_l = A_{l−1}ᵀ dZ_l,  db_l = 1ᵀ dZ_l   matmul / gemv into preallocated buffers
               dZ_{l−1} = (dZ_l W_lᵀ) ⊙ M_{l−1}        matmul into a buffer, the forward's mask reused
               W_l −= dW_l,  b_l −= db_l               in place, once dZ_{l−1} no longer needs W_l

Buffers are allocated once per batch size (an epoch's smaller last batch gets its own set), so
a step allocates nothing but a few scalars. Parameters are ``layers.<l>.weight`` (in, out) and
``layers.<l>.bias``, as ``models.manual.ManualMLP`` and ``models.mlp.MLP`` name them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray

__all__ = ["FastMLP"]


class _Buffers:
    """Everything one step at batch size m writes: Z_l (= A_l), masks, dZ_l, dW_l, db_l and the softmax scratch."""

    def __init__(self, m: int, sizes: list[int], dtype: np.dtype) -> None:
        L = len(sizes) - 1
        self.Z = [np.empty((m, n), dtype) for n in sizes[1:]]
        self.M = [np.empty((m, n), np.bool_) for n in sizes[1:L]]
        self.dA = [np.empty((m, n), dtype) for n in sizes[1:L]]
        self.dW = [np.empty((a, b), dtype) for a, b in zip(sizes[:-1], sizes[1:])]
        self.db = [np.empty(n, dtype) for n in sizes[1:]]
        self.ones = np.ones(m, dtype)
        self.row_max = np.empty((m, 1), dtype)
        self.row_sum = np.empty((m, 1), dtype)
        self.log_sum = np.empty((m, 1), dtype)
        self.picked = np.empty(m, dtype)
        self.flat = np.empty(m, np.intp)
        self.row_start = np.arange(m, dtype=np.intp) * sizes[-1]


class FastMLP:
    """A ReLU MLP trained by hand-optimised SGD steps (see the module docstring for the formulas)."""

    def __init__(self, weights: dict[str, Array], lr: float) -> None:
        n = len(weights) // 2
        self.W = [np.array(weights[f"layers.{l}.weight"]) for l in range(n)]
        self.b = [np.array(weights[f"layers.{l}.bias"]) for l in range(n)]
        self.dtype = self.W[0].dtype
        self.sizes = [self.W[0].shape[0]] + [W.shape[1] for W in self.W]
        self.lr = float(lr)
        self._buffers: dict[int, _Buffers] = {}

    @property
    def batch_sizes(self) -> list[int]:
        """The batch sizes this model holds buffers for."""
        return sorted(self._buffers)

    def _get(self, m: int) -> _Buffers:
        buf = self._buffers.get(m)
        if buf is None:
            buf = self._buffers[m] = _Buffers(m, self.sizes, self.dtype)
        return buf

    def step(self, x: Array, y: Array) -> float:
        """One SGD step on the batch (x, y); returns the loss before the update."""
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        m = x.shape[0]
        buf = self._get(m)
        W, b, Z, M = self.W, self.b, buf.Z, buf.M
        L = len(W)
        A = x
        for l in range(L - 1):
            Zl = Z[l]
            np.matmul(A, W[l], out=Zl)
            np.add(Zl, b[l], out=Zl)
            np.maximum(Zl, 0, out=Zl)
            np.greater(Zl, 0, out=M[l])
            A = Zl
        S = Z[L - 1]
        np.matmul(A, W[L - 1], out=S)
        np.add(S, b[L - 1], out=S)

        np.maximum.reduce(S, axis=1, keepdims=True, out=buf.row_max)
        np.subtract(S, buf.row_max, out=S)
        flat = np.add(buf.row_start, y, out=buf.flat)
        S_flat = S.reshape(-1)
        S_flat.take(flat, out=buf.picked)
        np.exp(S, out=S)
        np.add.reduce(S, axis=1, keepdims=True, out=buf.row_sum)
        np.log(buf.row_sum, out=buf.log_sum)
        loss = (float(buf.log_sum.sum()) - float(buf.picked.sum())) / m
        scale = self.dtype.type(self.lr / m)
        np.divide(scale, buf.row_sum, out=buf.row_sum)
        np.multiply(S, buf.row_sum, out=S)
        S_flat[flat] -= scale

        dZ = S
        for l in range(L - 1, -1, -1):
            A_prev = x if l == 0 else Z[l - 1]
            dW, db = buf.dW[l], buf.db[l]
            np.matmul(A_prev.T, dZ, out=dW)
            np.matmul(buf.ones, dZ, out=db)
            if l:
                dA = buf.dA[l - 1]
                np.matmul(dZ, W[l].T, out=dA)
                np.multiply(dA, M[l - 1], out=dA)
                dZ = dA
            np.subtract(W[l], dW, out=W[l])
            np.subtract(b[l], db, out=b[l])
        return loss

    def forward(self, x: Array) -> Array:
        """Logits of x (allocates; for evaluation, not the training step)."""
        A = np.asarray(x, self.dtype)
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            A = A @ W + b
            if l < len(self.W) - 1:
                np.maximum(A, 0, out=A)
        return A

    def state_dict(self) -> dict[str, Array]:
        """{name: copy of the parameter}, named as ``ManualMLP`` names them."""
        out: dict[str, Any] = {}
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            out[f"layers.{l}.weight"], out[f"layers.{l}.bias"] = W.copy(), b.copy()
        return out

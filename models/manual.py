"""The MLP of ``models.mlp`` with backprop derived by hand, in plain NumPy.

It imports nothing from tinygrad_lite: it is the independent reference our autograd is
checked against. Layers are numbered l = 1..L as in the formulas; layer l's parameters are
named ``layers.<l−1>.weight`` / ``layers.<l−1>.bias`` like ``MLP.named_parameters()``.

Forward (rows are samples):   Z_l = A_{l−1} W_l + b_l,  A_l = g_l(Z_l),  A_0 = X,
                              A_L = softmax(Z_L),  loss = −(1/m) Σ Y ⊙ log A_L.
Backward:                     dZ_L = (A_L − Y)/m,
                              dW_l = A_{l−1}ᵀ dZ_l,  db_l = Σ_rows dZ_l,
                              dZ_{l−1} = (dZ_l W_lᵀ) ⊙ g′_{l−1}(Z_{l−1}).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.spec import check_sizes, parse_activations

__all__ = ["ManualMLP", "ManualSGD", "ManualAdam", "ManualRMSprop", "one_hot"]

Array = np.ndarray


# ------------------------------------------------------- activations g, g′
def _sigmoid(Z: Array) -> Array:
    return 0.5 * (1 + np.tanh(0.5 * Z))


G = {"relu": lambda Z: np.maximum(Z, 0), "tanh": np.tanh, "sigmoid": _sigmoid}
# g′ from Z and A = g(Z)
G_PRIME = {
    "relu": lambda Z, A: Z > 0,
    "tanh": lambda Z, A: 1 - A * A,
    "sigmoid": lambda Z, A: A * (1 - A),
}


# ---------------------------------------------------- initialisation draws
def _init(init: str, n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Array:
    """The same draws, in the same order, as ``tinygrad_lite.nn.init_weight``."""
    size = (n_in, n_out)
    if init == "xavier_uniform":
        a = np.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-a, a, size=size)
    if init == "uniform_fan_in":
        a = 1.0 / np.sqrt(n_in)
        return rng.uniform(-a, a, size=size)
    if init in ("he_normal", "kaiming_normal"):
        return rng.normal(0.0, np.sqrt(2.0 / n_in), size=size)
    if init == "normal":
        return rng.normal(0.0, std, size=size)
    if init == "scaled_normal":
        return rng.standard_normal(size=size) / np.sqrt(n_in)
    if init == "small_random":
        return rng.uniform(-0.5, 0.5, size=size)
    raise ValueError(
        f"ManualMLP: unknown init {init!r}; valid names: xavier_uniform, uniform_fan_in, he_normal, "
        f"kaiming_normal, normal, scaled_normal, small_random"
    )


def one_hot(y: Array, n_classes: int, dtype: Any = np.float32) -> Array:
    """Y with Y[i, y_i] = 1 (y of shape (m,) → (m, C)); float (m, C) rows are returned as they are."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.astype(dtype, copy=False)
    if y.dtype.kind not in "iu" or y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"one_hot: labels must be integers in [0, {n_classes}), got {y.dtype} {y[:10]}")
    Y = np.zeros((y.shape[0], n_classes), dtype=dtype)
    Y[np.arange(y.shape[0]), y] = 1
    return Y


class ManualMLP:
    """Hand-derived twin of ``models.mlp.MLP`` (same sizes, activations, init draws and parameter names);
    ``bias_init``: zeros, or ``uniform`` = U(−0.5, 0.5) drawn right after each layer's weights."""

    def __init__(
        self, sizes: Sequence[int], activations: str | Sequence[str] = "relu", init: str = "xavier_uniform",
        seed: int | np.random.Generator | None = 0, dtype: Any = np.float32, *, std: float = 0.01,
        bias_init: str = "zeros",
    ) -> None:
        sizes = check_sizes(sizes, "ManualMLP")
        names = parse_activations(activations, len(sizes) - 2, "ManualMLP")
        for name in names:
            if name not in G_PRIME:
                raise ValueError(f"ManualMLP: activation {name!r} has no hand-derived backprop here; add g and g′ "
                                 f"to models.manual.G and G_PRIME")
        if bias_init not in ("zeros", "uniform"):
            raise ValueError(f"ManualMLP: unknown bias_init {bias_init!r}; valid names: zeros, uniform")
        self.sizes, self.activations, self.dtype = sizes, names, np.dtype(dtype)
        self.L = len(sizes) - 1
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.params: dict[str, Array] = {}
        for l in range(1, self.L + 1):
            self.params[f"layers.{l - 1}.weight"] = _init(init, sizes[l - 1], sizes[l], rng, std).astype(dtype)
            b = rng.uniform(-0.5, 0.5, size=sizes[l]) if bias_init == "uniform" else np.zeros(sizes[l])
            self.params[f"layers.{l - 1}.bias"] = b.astype(dtype)  # b_l = 0, or rand − 0.5 after W_l
        self.Z: list[Array | None] = []
        self.A: list[Array] = []

    def W(self, l: int) -> Array:
        """Weight of layer l (1-based), shape (sizes[l−1], sizes[l])."""
        return self.params[f"layers.{l - 1}.weight"]

    def b(self, l: int) -> Array:
        """Bias of layer l (1-based), shape (sizes[l],)."""
        return self.params[f"layers.{l - 1}.bias"]

    # ------------------------------------------------------------- forward
    def forward(self, X: Array) -> Array:
        """Logits Z_L; caches Z_l and A_l (A_0 = X) for ``backward``."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"ManualMLP: expected input of shape (m, {self.sizes[0]}), got {X.shape}")
        self.Z, self.A = [None], [X]
        for l in range(1, self.L + 1):
            Z = self.A[l - 1] @ self.W(l) + self.b(l)
            self.Z.append(Z)
            self.A.append(G[self.activations[l - 1]](Z) if l < self.L else Z)
        return self.Z[self.L]

    def loss(self, Y: Array) -> float:
        """Mean cross-entropy −(1/m) Σ Y ⊙ log softmax(Z_L) of the last forward (Y indices or rows)."""
        Z = self.Z[self.L]
        Y = one_hot(Y, self.sizes[-1], Z.dtype)
        shifted = Z - Z.max(axis=1, keepdims=True)
        log_A = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-(Y * log_A).sum() / Z.shape[0])

    # ------------------------------------------------------------ backward
    def backward(self, Y: Array) -> dict[str, Array]:
        """Gradients of the mean cross-entropy, keyed like ``params``, from the cached Z and A."""
        Z_L = self.Z[self.L]
        m = Z_L.shape[0]
        Y = one_hot(Y, self.sizes[-1], Z_L.dtype)
        e = np.exp(Z_L - Z_L.max(axis=1, keepdims=True))
        A_L = e / e.sum(axis=1, keepdims=True)  # softmax
        dZ = (A_L - Y) / m
        grads: dict[str, Array] = {}
        for l in range(self.L, 0, -1):
            grads[f"layers.{l - 1}.weight"] = self.A[l - 1].T @ dZ  # dW_l = A_{l−1}ᵀ dZ_l
            grads[f"layers.{l - 1}.bias"] = dZ.sum(axis=0)  # db_l = Σ dZ_l
            if l > 1:
                g_prime = G_PRIME[self.activations[l - 2]](self.Z[l - 1], self.A[l - 1])
                dZ = (dZ @ self.W(l).T) * g_prime  # dZ_{l−1} = dZ_l W_lᵀ ⊙ g′(Z_{l−1})
        return {k: grads[k] for k in self.params}

    def loss_and_grads(self, X: Array, Y: Array) -> tuple[float, dict[str, Array]]:
        """Forward, loss and backward for one batch."""
        self.forward(X)
        return self.loss(Y), self.backward(Y)

    # ---------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Array]:
        """{name: copy of the parameter}."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy arrays in (cast to this model's dtype) after checking keys and shapes."""
        missing = [k for k in self.params if k not in state]
        extra = [k for k in state if k not in self.params]
        shapes = [f"'{k}' has shape {np.shape(state[k])}, expected {v.shape}"
                  for k, v in self.params.items() if k in state and np.shape(state[k]) != v.shape]
        if missing or extra or shapes:
            raise ValueError(f"ManualMLP.load_state_dict: missing {missing}, unexpected {extra}; " + "; ".join(shapes))
        for k, v in self.params.items():
            np.copyto(v, np.asarray(state[k]), casting="unsafe")


# ------------------------------------------------------------- optimizers
class ManualSGD:
    """p ← p − η g, or with momentum μ: v ← μ v + g, p ← p − η v (Nesterov: p ← p − η (g + μ v));
    L2 weight decay λ first adds λ p to g."""

    def __init__(self, params: dict[str, Array], lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        self.params, self.lr, self.momentum = params, lr, momentum
        self.nesterov, self.weight_decay = nesterov, weight_decay
        self.v = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self, grads: dict[str, Array]) -> None:
        for k, p in self.params.items():
            g = grads[k]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                self.v[k] = self.momentum * self.v[k] + g
                g = g + self.momentum * self.v[k] if self.nesterov else self.v[k]
            p -= self.lr * g


class ManualAdam:
    """m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − η m̂/(√v̂ + ε), m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)."""

    def __init__(self, params: dict[str, Array], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, (self.beta1, self.beta2), self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t = 0

    def step(self, grads: dict[str, Array]) -> None:
        self.t += 1
        for k, p in self.params.items():
            g = grads[k]
            self.m[k] = self.beta1 * self.m[k] + (1 - self.beta1) * g
            self.v[k] = self.beta2 * self.v[k] + (1 - self.beta2) * g * g
            m_hat = self.m[k] / (1 - self.beta1**self.t)
            v_hat = self.v[k] / (1 - self.beta2**self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class ManualRMSprop:
    """s ← α s + (1 − α) g², p ← p − η g/(√s + ε)."""

    def __init__(self, params: dict[str, Array], lr: float = 1e-2, alpha: float = 0.9, eps: float = 1e-8) -> None:
        self.params, self.lr, self.alpha, self.eps = params, lr, alpha, eps
        self.s = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self, grads: dict[str, Array]) -> None:
        for k, p in self.params.items():
            g = grads[k]
            self.s[k] = self.alpha * self.s[k] + (1 - self.alpha) * g * g
            p -= self.lr * g / (np.sqrt(self.s[k]) + self.eps)

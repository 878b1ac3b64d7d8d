"""The CNN of ``models.cnn`` with backprop derived by hand, in plain NumPy (im2col + matrix products).

It imports nothing from tinygrad_lite: it is the independent reference the autograd CNN is
checked against. It also holds ``CNNSpec``, the architecture both models are built from (plain
Python, so this module stays free of the engine). Parameters and buffers have the names and
layouts of ``CNN.state_dict()``: ``conv.<l>.weight`` (O, C, k, k) [``conv.<l>.bias`` without
BatchNorm], ``bn.<l>.weight|bias|running_mean|running_var|num_batches_tracked``,
``fc.<k>.weight`` (in, out), ``fc.<k>.bias``.

Conv block l = 1..L (rows of a matrix are samples; ⋆ is cross-correlation over padded A_{l−1}):
    Z_l = W_l ⋆ A_{l−1} (+ b_l)                     as one product per sample: Z = W_mat · cols(A_{l−1})
    X̂_l = (Z_l − μ_l) / √(σ²_l + ε),  Y_l = γ_l X̂_l + β_l   (BatchNorm; μ, σ² per channel over N, H, W)
    R_l = max(Y_l, 0),  A_l = maxpool_p(R_l)
Head k = 1..K on F = flatten(A_L) = H_0:
    Z_k = H_{k−1} V_k + c_k,  H_k = max(Z_k, 0) ⊙ keep_k (inverted dropout),  logits Z_K,
    loss = −(1/m) Σ Y ⊙ log softmax(Z_K).
Backward:
    dZ_K = (softmax(Z_K) − Y)/m;  dV_k = H_{k−1}ᵀ dZ_k,  dc_k = Σ_rows dZ_k,  dH_{k−1} = dZ_k V_kᵀ,
    dZ_{k−1} = dH_{k−1} ⊙ keep_{k−1} ⊙ [Z_{k−1} > 0];  dA_L = dF reshaped;
    dR_l = dA_l routed to each window's first maximum;  dY_l = dR_l ⊙ [Y_l > 0];
    dγ_l = Σ dY_l ⊙ X̂_l,  dβ_l = Σ dY_l,  dX̂ = γ dY,
    dZ_l = (dX̂ − mean(dX̂) − X̂ ⊙ mean(dX̂ ⊙ X̂)) / √(σ²_l + ε)   (training; eval: dZ_l = γ dY_l / √(σ²_run + ε)),
    dW_l = Σ_n dZ_l[n] · cols(A_{l−1})[n]ᵀ,  db_l = Σ_{n,i,j} dZ_l,  dA_{l−1} = col2im(W_matᵀ · dZ_l).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from models.manual import ManualAdam, ManualSGD, _init, one_hot

__all__ = ["CNNSpec", "ManualCNN", "ManualSGD", "ManualAdam", "make_spec", "im2col", "col2im", "maxpool",
           "maxpool_backward"]

Array = np.ndarray


# ------------------------------------------------------------------------------ the architecture
def _positive_ints(name: str, value: Any, min_len: int) -> tuple[int, ...]:
    items = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if len(items) < min_len or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                                       for v in items):
        raise ValueError(f"CNNSpec: {name} must be {'at least ' + str(min_len) if min_len else 'any number of'} "
                         f"positive ints, got {value!r}")
    return tuple(int(v) for v in items)


@dataclass(frozen=True)
class CNNSpec:
    """A small CNN: one block per entry of ``channels``, then fully connected layers.

    Block l: conv(k×k, stride 1, padding k//2, C_{l−1} → channels[l]) [-BatchNorm] -ReLU -maxpool(pool)
    (pool 1: no pooling). Head: flatten → Linear → ReLU [-Dropout] for each width in ``hidden`` →
    Linear(→ n_classes). The default is conv(1→32)-BN-ReLU-pool2 → conv(32→64)-BN-ReLU-pool2 →
    3136 → 128 → 10. Convolutions have a bias only without BatchNorm (β plays its part).
    """

    in_shape: tuple[int, int, int] = (1, 28, 28)
    channels: tuple[int, ...] = (32, 64)
    hidden: tuple[int, ...] = (128,)
    n_classes: int = 10
    kernel_size: int = 3
    pool: int = 2
    batchnorm: bool = True
    dropout: float = 0.0
    bn_momentum: float | None = 0.1
    bn_eps: float = 1e-5

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        shape = _positive_ints("in_shape", self.in_shape, 3)
        if len(shape) != 3:
            raise ValueError(f"CNNSpec: in_shape must be (C, H, W), got {self.in_shape!r}")
        set_("in_shape", shape)
        set_("channels", _positive_ints("channels", self.channels, 1))
        set_("hidden", _positive_ints("hidden", self.hidden, 0))
        set_("n_classes", _positive_ints("n_classes", self.n_classes, 1)[0])
        set_("kernel_size", _positive_ints("kernel_size", self.kernel_size, 1)[0])
        set_("pool", _positive_ints("pool", self.pool, 1)[0])
        set_("batchnorm", bool(self.batchnorm))
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CNNSpec: dropout must be in [0, 1), got {self.dropout!r}")
        if self.bn_momentum is not None and not 0.0 <= self.bn_momentum <= 1.0:
            raise ValueError(f"CNNSpec: bn_momentum must be in [0, 1] or None, got {self.bn_momentum!r}")
        if not self.bn_eps > 0:
            raise ValueError(f"CNNSpec: bn_eps must be > 0, got {self.bn_eps!r}")
        sizes = self.feature_sizes()
        if min(min(hw) for hw in sizes) < 1:
            raise ValueError(f"CNNSpec: input {self.in_shape} shrinks to nothing; spatial sizes by block: {sizes}")

    @property
    def padding(self) -> int:
        """Zero padding of each convolution: k // 2 (the size is kept for odd k)."""
        return self.kernel_size // 2

    def feature_sizes(self) -> list[tuple[int, int]]:
        """(H, W) of the input and after each block: conv H + 2·(k//2) − k + 1, then ⌊H / pool⌋."""
        h, w = self.in_shape[1:]
        out = [(h, w)]
        for _ in self.channels:
            h, w = h + 2 * self.padding - self.kernel_size + 1, w + 2 * self.padding - self.kernel_size + 1
            h, w = h // self.pool, w // self.pool
            out.append((h, w))
        return out

    @property
    def flat_features(self) -> int:
        """Width of the flattened output of the last block, C_L · H_L · W_L."""
        h, w = self.feature_sizes()[-1]
        return self.channels[-1] * h * w

    @property
    def widths(self) -> list[int]:
        """The head's sizes, like an MLP's: [flat_features, *hidden, n_classes]."""
        return [self.flat_features, *self.hidden, self.n_classes]

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Trainable parameters by name, in ``CNN.named_parameters()`` order."""
        k, chans = self.kernel_size, (self.in_shape[0], *self.channels)
        shapes: dict[str, tuple[int, ...]] = {}
        for l, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
            shapes[f"conv.{l}.weight"] = (c_out, c_in, k, k)
            if not self.batchnorm:
                shapes[f"conv.{l}.bias"] = (c_out,)
        if self.batchnorm:
            for l, c in enumerate(self.channels):
                shapes[f"bn.{l}.weight"] = shapes[f"bn.{l}.bias"] = (c,)
        widths = self.widths
        for j, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            shapes[f"fc.{j}.weight"], shapes[f"fc.{j}.bias"] = (n_in, n_out), (n_out,)
        return shapes

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every entry of ``CNN.state_dict()`` by name, in order: parameters and BatchNorm's buffers."""
        params = self.parameter_shapes()
        out: dict[str, tuple[int, ...]] = {}
        for name, shape in params.items():
            out[name] = shape
            if name.startswith("bn.") and name.endswith(".bias"):
                l = name.split(".")[1]
                out[f"bn.{l}.running_mean"] = out[f"bn.{l}.running_var"] = shape
                out[f"bn.{l}.num_batches_tracked"] = ()
        return out

    def flops(self, batch: int) -> tuple[int, int]:
        """Multiply-add FLOPs (2 per MAC) of the convolutions and linear layers for one batch:
        (forward, forward + backward), the backward skipping the input gradient of the first layer."""
        k, chans, sizes = self.kernel_size, (self.in_shape[0], *self.channels), self.feature_sizes()
        fwd = back = 0
        h, w = self.in_shape[1:]
        for l, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
            ho, wo = h + 2 * self.padding - k + 1, w + 2 * self.padding - k + 1
            f = 2 * batch * ho * wo * c_out * c_in * k * k
            fwd += f
            back += f * (1 if l == 0 else 2)
            h, w = sizes[l + 1]
        widths = self.widths
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            f = 2 * batch * n_in * n_out
            fwd += f
            back += 2 * f  # dV and dH (dF feeds the conv blocks)
        return fwd, fwd + back

    def describe(self) -> str:
        """One line, e.g. ``conv(1→32,3×3,pad 1)-BN-ReLU-maxpool2 → ... → linear(3136→128)-ReLU → linear(128→10)``."""
        k, chans = self.kernel_size, (self.in_shape[0], *self.channels)
        parts = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            s = f"conv({c_in}→{c_out},{k}×{k},pad {self.padding})" + ("-BN" if self.batchnorm else "") + "-ReLU"
            parts.append(s + (f"-maxpool{self.pool}" if self.pool > 1 else ""))
        widths = self.widths
        for j, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            last = j == len(widths) - 2
            parts.append(f"linear({n_in}→{n_out})" + ("" if last else "-ReLU")
                         + (f"-dropout({self.dropout})" if self.dropout and not last else ""))
        return " → ".join(parts)

    def replace(self, **changes: Any) -> CNNSpec:
        """A copy with some fields changed (validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(values)
        if unknown:
            raise ValueError(f"CNNSpec: unknown fields {sorted(unknown)}; valid: {', '.join(values)}")
        return CNNSpec(**{**values, **changes})


def make_spec(spec: CNNSpec | None, overrides: dict[str, Any], where: str) -> CNNSpec:
    """``spec`` (default ``CNNSpec()``) with keyword ``overrides``; ValueError naming ``where`` otherwise."""
    try:
        return (spec or CNNSpec()).replace(**overrides) if overrides else (spec or CNNSpec())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


# ---------------------------------------------------------------------------- im2col / col2im
def im2col(X: Array, k: int, pad: int) -> Array:
    """cols (N, C·k·k, Ho·Wo) with cols[n, (c, a, b), (i, j)] = X̃[n, c, i + a, j + b], X̃ = X zero-padded
    by ``pad`` (stride 1): a strided view of X̃, copied once by the reshape."""
    n, c, h, w = X.shape
    Xp = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else X
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    s_n, s_c, s_h, s_w = Xp.strides
    view = as_strided(Xp, (n, c, k, k, ho, wo), (s_n, s_c, s_h, s_w, s_h, s_w), writeable=False)
    return view.reshape(n, c * k * k, ho * wo)


def col2im(cols: Array, shape: tuple[int, int, int, int], k: int, pad: int) -> Array:
    """The adjoint of ``im2col``: dX (N, C, H, W) with dX̃[n, c, i + a, j + b] += cols[n, (c, a, b), (i, j)],
    then the padding cropped (k·k strided adds of whole arrays)."""
    n, c, h, w = shape
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    cols = cols.reshape(n, c, k, k, ho, wo)
    dXp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for a in range(k):
        for b in range(k):
            dXp[:, :, a:a + ho, b:b + wo] += cols[:, :, a, b]
    return dXp[:, :, pad:pad + h, pad:pad + w]


def _windows(R: Array, p: int) -> list[Array]:
    """The p·p strided views R[:, :, p·i + a, p·j + b] (a, b < p, i < ⌊H/p⌋, j < ⌊W/p⌋), (a, b) row-major."""
    ho, wo = R.shape[2] // p, R.shape[3] // p
    return [R[:, :, a:a + p * ho:p, b:b + p * wo:p] for a in range(p) for b in range(p)]


def maxpool(R: Array, p: int) -> tuple[Array, list[Array]]:
    """A[n, c, i, j] = max_{a,b<p} R[n, c, p·i + a, p·j + b] and, per window position (a, b), the mask of
    the windows whose first maximum (in row-major (a, b) order) is there."""
    views = _windows(R, p)
    A = views[0].copy()
    for V in views[1:]:
        np.maximum(A, V, out=A)
    free = np.ones(A.shape, dtype=bool)
    masks = []
    for V in views:
        M = (V == A) & free
        free &= ~M
        masks.append(M)
    return A, masks


def maxpool_backward(dA: Array, masks: list[Array], shape: tuple[int, ...], p: int) -> Array:
    """dR: dA placed at each window's first maximum, zero elsewhere (rows/columns past the last window too)."""
    dR = np.zeros(shape, dtype=dA.dtype)
    views = _windows(dR, p)
    for V, M in zip(views, masks):
        np.multiply(dA, M, out=V)
    return dR


def _softmax(Z: Array) -> Array:
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------- the model
class ManualCNN:
    """Hand-derived twin of ``models.cnn.CNN``: same spec, init draws, dropout masks and state-dict names.

    ``params`` holds the trainable arrays (what ``ManualSGD`` / ``ManualAdam`` update), ``buffers``
    BatchNorm's running statistics; ``train()`` / ``eval()`` switch BatchNorm between batch and
    running statistics and dropout on and off. Conv weights and biases are drawn from
    U(−1/√fan_in, 1/√fan_in) (PyTorch's default, fan_in = C·k·k), linear weights by ``init``
    (``models.manual``'s draws), linear biases 0; then the dropout masks from the same generator.
    """

    def __init__(self, spec: CNNSpec | None = None, *, init: str = "uniform_fan_in",
                 seed: int | np.random.Generator | None = 0, dtype: Any = np.float32, std: float = 0.01,
                 **overrides: Any) -> None:
        self.spec = s = make_spec(spec, overrides, "ManualCNN")
        self.dtype = np.dtype(dtype)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        k, chans = s.kernel_size, (s.in_shape[0], *s.channels)
        self.params: dict[str, Array] = {}
        for l, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
            bound = 1.0 / np.sqrt(c_in * k * k)
            self.params[f"conv.{l}.weight"] = rng.uniform(-bound, bound, size=(c_out, c_in, k, k)).astype(dtype)
            if not s.batchnorm:
                self.params[f"conv.{l}.bias"] = rng.uniform(-bound, bound, size=(c_out,)).astype(dtype)
        self.buffers: dict[str, Array] = {}
        if s.batchnorm:
            for l, c in enumerate(s.channels):
                self.params[f"bn.{l}.weight"] = np.ones(c, dtype=dtype)
                self.params[f"bn.{l}.bias"] = np.zeros(c, dtype=dtype)
                self.buffers[f"bn.{l}.running_mean"] = np.zeros(c, dtype=dtype)
                self.buffers[f"bn.{l}.running_var"] = np.ones(c, dtype=dtype)
                self.buffers[f"bn.{l}.num_batches_tracked"] = np.zeros((), dtype=np.int64)
        for j, (n_in, n_out) in enumerate(zip(s.widths[:-1], s.widths[1:])):
            try:
                self.params[f"fc.{j}.weight"] = _init(init, n_in, n_out, rng, std).astype(dtype)
            except ValueError as exc:
                raise ValueError(str(exc).replace("ManualMLP", "ManualCNN")) from None
            self.params[f"fc.{j}.bias"] = np.zeros(n_out, dtype=dtype)
        self._rng = rng
        self.training = True
        self.cache: dict[str, Any] = {}

    # ----------------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> ManualCNN:
        self.training = bool(mode)
        return self

    def eval(self) -> ManualCNN:
        return self.train(False)

    # ---------------------------------------------------------------------------- forward
    def forward(self, X: Array) -> Array:
        """Logits Z_K (m, n_classes); caches what ``backward`` needs in ``self.cache`` (keys ``conv.<l>``
        Z, ``bn.<l>`` Y, ``relu.<l>`` R, ``pool.<l>`` A, ``fc.<k>`` Z, ``hidden.<k>`` H, ...)."""
        s = self.spec
        X = np.asarray(X)
        if X.ndim != 4 or X.shape[1:] != s.in_shape:
            raise ValueError(f"ManualCNN: expected input of shape (m, {', '.join(map(str, s.in_shape))}), "
                             f"got {X.shape}")
        P, k, pad = self.params, s.kernel_size, s.padding
        c: dict[str, Any] = {"training": self.training, "X": X}
        A = X
        for l in range(len(s.channels)):
            W = P[f"conv.{l}.weight"]
            cols = im2col(A, k, pad)
            Z = np.matmul(W.reshape(W.shape[0], -1), cols)  # Z_l = W_mat · cols, (m, O, Ho·Wo)
            Z = Z.reshape(A.shape[0], W.shape[0], A.shape[2] + 2 * pad - k + 1, A.shape[3] + 2 * pad - k + 1)
            if not s.batchnorm:
                Z += P[f"conv.{l}.bias"][:, None, None]
                Y = Z
            else:
                Y = self._batchnorm(l, Z, c)
            R = np.maximum(Y, 0)
            if s.pool > 1:
                A, c[f"masks.{l}"] = maxpool(R, s.pool)
            else:
                A = R
            c[f"cols.{l}"], c[f"conv.{l}"], c[f"relu.{l}"], c[f"pool.{l}"] = cols, Z, R, A
            if s.batchnorm:
                c[f"bn.{l}"] = Y
        H = A.reshape(A.shape[0], -1)  # F = flatten(A_L)
        c["flatten"] = H
        n_fc = len(s.widths) - 1
        for j in range(n_fc):
            Z = H @ P[f"fc.{j}.weight"] + P[f"fc.{j}.bias"]
            c[f"fc.{j}"] = Z
            if j < n_fc - 1:
                H = np.maximum(Z, 0)
                if self.training and s.dropout:
                    keep = (self._rng.random(H.shape, dtype=np.float32) >= s.dropout).astype(H.dtype)
                    keep *= 1.0 / (1.0 - s.dropout)
                    H = H * keep
                    c[f"keep.{j}"] = keep
                c[f"hidden.{j}"] = H
        self.cache = c
        return Z

    def _batchnorm(self, l: int, Z: Array, c: dict[str, Any]) -> Array:
        """Y = γ X̂ + β, X̂ = (Z − μ)/√(σ² + ε): batch μ, σ² (and the running-stat update) in training,
        the running ones in eval."""
        s, P, B = self.spec, self.params, self.buffers
        gamma, beta = P[f"bn.{l}.weight"][:, None, None], P[f"bn.{l}.bias"][:, None, None]
        if self.training:
            n = Z.size // Z.shape[1]
            if n <= 1:
                raise ValueError(f"ManualCNN: BatchNorm {l} in training mode needs more than one value per channel, "
                                 f"got conv output of shape {Z.shape}")
            mu = Z.mean(axis=(0, 2, 3))
            D = Z - mu[:, None, None]
            var = (D * D).mean(axis=(0, 2, 3))  # biased σ²
            rstd = 1 / np.sqrt(var + s.bn_eps)
            Xhat = D * rstd[:, None, None]
            B[f"bn.{l}.num_batches_tracked"] += 1
            f = 1.0 / float(B[f"bn.{l}.num_batches_tracked"]) if s.bn_momentum is None else s.bn_momentum
            # running stats: r ← (1 − f) r + f μ,  v ← (1 − f) v + f σ² n/(n − 1) (unbiased)
            B[f"bn.{l}.running_mean"][...] = (1 - f) * B[f"bn.{l}.running_mean"] + f * mu
            B[f"bn.{l}.running_var"][...] = (1 - f) * B[f"bn.{l}.running_var"] + f * var * (n / (n - 1))
        else:
            if int(B[f"bn.{l}.num_batches_tracked"]) == 0:
                raise ValueError("ManualCNN: eval() mode before any running statistics (num_batches_tracked is 0)")
            rstd = 1 / np.sqrt(B[f"bn.{l}.running_var"] + s.bn_eps)
            Xhat = (Z - B[f"bn.{l}.running_mean"][:, None, None]) * rstd[:, None, None]
        c[f"xhat.{l}"], c[f"rstd.{l}"] = Xhat, rstd
        return gamma * Xhat + beta

    def loss(self, Y: Array) -> float:
        """Mean cross-entropy −(1/m) Σ Y ⊙ log softmax(Z_K) of the last forward (Y indices or rows)."""
        Z = self.cache[f"fc.{len(self.spec.widths) - 2}"]
        Y = one_hot(Y, self.spec.n_classes, Z.dtype)
        shifted = Z - Z.max(axis=1, keepdims=True)
        log_A = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-(Y * log_A).sum() / Z.shape[0])

    # --------------------------------------------------------------------------- backward
    def backward(self, Y: Array) -> dict[str, Array]:
        """Gradients of the mean cross-entropy, keyed like ``params``, from the cache of the last forward."""
        s, P, c = self.spec, self.params, self.cache
        n_fc = len(s.widths) - 1
        Z = c[f"fc.{n_fc - 1}"]
        m = Z.shape[0]
        dZ = (_softmax(Z) - one_hot(Y, s.n_classes, Z.dtype)) / m  # dZ_K = (A_K − Y)/m
        grads: dict[str, Array] = {}
        for j in range(n_fc - 1, -1, -1):
            H_prev = c[f"hidden.{j - 1}"] if j else c["flatten"]
            V = P[f"fc.{j}.weight"]
            grads[f"fc.{j}.weight"] = H_prev.T @ dZ  # dV_k = H_{k−1}ᵀ dZ_k
            grads[f"fc.{j}.bias"] = dZ.sum(axis=0)  # dc_k = Σ dZ_k
            dH = dZ @ V.T  # dH_{k−1} = dZ_k V_kᵀ
            if j:
                if f"keep.{j - 1}" in c:
                    dH = dH * c[f"keep.{j - 1}"]
                dZ = dH * (c[f"fc.{j - 1}"] > 0)  # dZ_{k−1} = dH ⊙ keep ⊙ [Z_{k−1} > 0]
        dA = dH.reshape(c[f"pool.{len(s.channels) - 1}"].shape)
        k, pad = s.kernel_size, s.padding
        for l in range(len(s.channels) - 1, -1, -1):
            R = c[f"relu.{l}"]
            dR = maxpool_backward(dA, c[f"masks.{l}"], R.shape, s.pool) if s.pool > 1 else dA
            dY = dR * (R > 0)  # dY_l = dR_l ⊙ [Y_l > 0]  ([R > 0] = [Y > 0])
            if s.batchnorm:
                dZ = self._batchnorm_backward(l, dY, grads)
            else:
                dZ = dY
                grads[f"conv.{l}.bias"] = dZ.sum(axis=(0, 2, 3))  # db_l = Σ dZ_l
            W = P[f"conv.{l}.weight"]
            dZ3 = dZ.reshape(dZ.shape[0], dZ.shape[1], -1)
            cols = c[f"cols.{l}"]
            # dW_l = Σ_n dZ_l[n] · cols[n]ᵀ
            grads[f"conv.{l}.weight"] = np.matmul(dZ3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(W.shape)
            if l:  # dA_{l−1} = col2im(W_matᵀ · dZ_l)
                A_prev = c[f"pool.{l - 1}"]
                dA = col2im(np.matmul(W.reshape(W.shape[0], -1).T, dZ3), A_prev.shape, k, pad)
        return {name: grads[name] for name in P}

    def _batchnorm_backward(self, l: int, dY: Array, grads: dict[str, Array]) -> Array:
        """dγ = Σ dY ⊙ X̂, dβ = Σ dY;  dZ = (dX̂ − mean(dX̂) − X̂ mean(dX̂ ⊙ X̂)) / √(σ² + ε), dX̂ = γ dY
        (eval mode: dZ = dX̂ / √(σ²_run + ε))."""
        c = self.cache
        Xhat, rstd = c[f"xhat.{l}"], c[f"rstd.{l}"][:, None, None]
        grads[f"bn.{l}.weight"] = (dY * Xhat).sum(axis=(0, 2, 3))
        grads[f"bn.{l}.bias"] = dY.sum(axis=(0, 2, 3))
        dXhat = dY * self.params[f"bn.{l}.weight"][:, None, None]
        if not c["training"]:
            return dXhat * rstd
        mean_dXhat = dXhat.mean(axis=(0, 2, 3), keepdims=True)
        mean_dXhat_Xhat = (dXhat * Xhat).mean(axis=(0, 2, 3), keepdims=True)
        return (dXhat - mean_dXhat - Xhat * mean_dXhat_Xhat) * rstd

    def loss_and_grads(self, X: Array, Y: Array) -> tuple[float, dict[str, Array]]:
        """Forward, loss and backward for one batch."""
        self.forward(X)
        return self.loss(Y), self.backward(Y)

    # --------------------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Array]:
        """{name: copy} of every parameter and buffer, in ``CNN.state_dict()``'s order."""
        out = {}
        for name in self.spec.shapes():
            out[name] = (self.params[name] if name in self.params else self.buffers[name]).copy()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy arrays in (cast to this model's dtypes) after checking keys and shapes; nothing changes on error."""
        own = {**self.params, **self.buffers}
        missing = [k for k in own if k not in state]
        extra = [k for k in state if k not in own]
        shapes = [f"'{k}' has shape {np.shape(state[k])}, expected {v.shape}"
                  for k, v in own.items() if k in state and np.shape(state[k]) != v.shape]
        if missing or extra or shapes:
            raise ValueError(f"ManualCNN.load_state_dict: missing {missing}, unexpected {extra}; " + "; ".join(shapes))
        for k, v in own.items():
            np.copyto(v, np.asarray(state[k]), casting="unsafe")


"""Activation functions, with PyTorch's names, defaults and subgradients.

Notation as in `basic`: ``g`` is the cotangent of the output; each VJP returns
``gᵀ·∂out/∂x``. Every body uses NumPy calls that Tensors speak, so each op is
differentiable to any order. All are stable for large |x| (no overflow, no NaN): the
exponentials only ever see non-positive arguments (celu: for α > 0). At the kinks the gradient is PyTorch's:
leaky_relu, elu, celu and selu take their x ≤ 0 branch at 0; hardtanh and hardsigmoid pass
the gradient only strictly inside their linear range; hardswish'(x) = x/3 + ½ on [−3, 3].
"""

from __future__ import annotations

import math

import numpy as np

from ..graph import defop
from .basic import call_op
from .elementwise import erfc

__all__ = ["celu", "elu", "gelu", "hardsigmoid", "hardswish", "hardtanh", "leaky_relu", "logsigmoid", "mish",
           "relu6", "selu", "silu", "softplus", "softsign"]

_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x):
    """σ(x) = 1 / (1 + e⁻ˣ) from z = e^(−|x|) (never overflows, exact in both tails); on Tensors
    its graph has the right derivative everywhere (at 0 too: the x ≥ 0 branch is taken)."""
    pos = x >= 0
    z = np.exp(np.where(pos, -x, x))
    return np.where(pos, 1 / (1 + z), z / (1 + z))


def _softplus(x):
    """log(1 + eˣ) = max(x, 0) + log(1 + e^(−|x|)) (no overflow)."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _nonpositive(x):
    """min(x, 0), whose derivative at 0 is 1 (the x ≤ 0 branch, as PyTorch's ELU family)."""
    return np.where(x > 0, 0, x)


# --------------------------------------------------------------- smooth ones
@defop(fresh_grads=True)
def gelu(x, *, approximate="none"):
    """x Φ(x), Φ the standard normal CDF (= ½ erfc(−x/√2));  ∂x = g ⊙ (Φ(x) + x φ(x)), φ(x) = e^(−x²/2)/√(2π).

    ``approximate="tanh"``: ½ x (1 + tanh u), u = √(2/π)(x + 0.044715 x³);
    ∂x = g ⊙ (½ (1 + tanh u) + ½ x (1 − tanh² u) √(2/π)(1 + 3·0.044715 x²))."""
    if approximate == "none":
        cdf = 0.5 * call_op(erfc, -x * _SQRT1_2)
        return x * cdf, lambda g: g * (cdf + x * (_INV_SQRT_2PI * np.exp(-0.5 * x * x)))
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x * x * x))

        def vjp(g):
            du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)

        return 0.5 * x * (1 + t), vjp
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


@defop(fresh_grads=True)
def silu(x):
    """x σ(x) (swish);  ∂x = g ⊙ σ(x) (1 + x (1 − σ(x)))."""
    s = _sigmoid(x)
    return x * s, lambda g: g * (s * (1 + x * (1 - s)))


@defop(fresh_grads=True)
def softplus(x, *, beta=1.0, threshold=20.0):
    """log(1 + e^(βx)) / β, and x where βx > threshold (PyTorch);  ∂x = g ⊙ σ(βx), g where βx > threshold."""
    beta, threshold = float(beta), float(threshold)
    if beta == 0:
        raise ValueError("beta must not be 0")
    bx = beta * x
    linear = bx > threshold
    return np.where(linear, x, _softplus(bx) / beta), lambda g: g * np.where(linear, 1, _sigmoid(bx))


@defop(fresh_grads=True)
def mish(x):
    """x tanh(softplus(x));  ∂x = g ⊙ (t + x σ(x)(1 − t²)), t = tanh(softplus(x))."""
    t = np.tanh(_softplus(x))
    return x * t, lambda g: g * (t + x * _sigmoid(x) * (1 - t * t))


@defop(fresh_grads=True)
def logsigmoid(x):
    """log σ(x) = min(x, 0) − log(1 + e^(−|x|)) (stable);  ∂x = g ⊙ σ(−x)."""
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))), lambda g: g * _sigmoid(-x)


@defop(fresh_grads=True)
def softsign(x):
    """x / (1 + |x|);  ∂x = g / (1 + |x|)²."""
    d = 1 + np.abs(x)
    return x / d, lambda g: g / (d * d)


# ----------------------------------------------------------- exponential-linear
@defop(fresh_grads=True)
def elu(x, *, alpha=1.0):
    """x for x > 0, α(eˣ − 1) for x ≤ 0;  ∂x = g for x > 0, g ⊙ α eˣ for x ≤ 0 (α at 0, as PyTorch)."""
    alpha = float(alpha)
    neg = _nonpositive(x)
    return np.where(x > 0, x, alpha * np.expm1(neg)), lambda g: g * np.where(x > 0, 1, alpha * np.exp(neg))


@defop(fresh_grads=True)
def celu(x, *, alpha=1.0):
    """x for x > 0, α(e^(x/α) − 1) for x ≤ 0;  ∂x = g for x > 0, g ⊙ e^(x/α) for x ≤ 0 (1 at 0)."""
    alpha = float(alpha)
    if alpha == 0:
        raise ValueError("alpha must not be 0 (celu divides by it)")
    neg = _nonpositive(x) / alpha
    return np.where(x > 0, x, alpha * np.expm1(neg)), lambda g: g * np.where(x > 0, 1, np.exp(neg))


@defop(fresh_grads=True)
def selu(x):
    """λ x for x > 0, λ α (eˣ − 1) for x ≤ 0 (α ≈ 1.6733, λ ≈ 1.0507, PyTorch's);  ∂x = g λ, or g λ α eˣ for x ≤ 0."""
    neg = _nonpositive(x)
    out = _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(neg))
    return out, lambda g: g * (_SELU_SCALE * np.where(x > 0, 1, _SELU_ALPHA * np.exp(neg)))


# ------------------------------------------------------------ piecewise linear
@defop(fresh_grads=True)
def leaky_relu(x, *, negative_slope=0.01):
    """x for x > 0, slope·x for x ≤ 0;  ∂x = g for x > 0, slope·g for x ≤ 0 (slope at 0, as PyTorch)."""
    slope = float(negative_slope)
    positive = x > 0
    return np.where(positive, x, x * slope), lambda g: np.where(positive, g, g * slope)


@defop(fresh_grads=True)
def hardtanh(x, *, min_val=-1.0, max_val=1.0):
    """x clipped to [min_val, max_val];  ∂x = g strictly inside (min_val < x < max_val), else 0 (as PyTorch)."""
    lo, hi = float(min_val), float(max_val)
    if lo > hi:
        raise ValueError(f"min_val must not exceed max_val, got min_val={min_val}, max_val={max_val}")
    return np.clip(x, lo, hi), lambda g: g * np.logical_and(x > lo, x < hi)


def relu6(x):
    """min(max(x, 0), 6) (PyTorch's hardtanh(x, 0, 6): gradient 0 at 0 and 6)."""
    return hardtanh(x, min_val=0.0, max_val=6.0)


@defop(fresh_grads=True)
def hardsigmoid(x):
    """min(max(x + 3, 0), 6) / 6;  ∂x = g/6 for −3 < x < 3, else 0 (as PyTorch)."""
    return np.clip(x + 3, 0, 6) / 6, lambda g: g * np.logical_and(x > -3, x < 3) / 6


@defop(fresh_grads=True)
def hardswish(x):
    """x · min(max(x + 3, 0), 6) / 6;  ∂x = 0 for x < −3, g (x/3 + ½) for −3 ≤ x ≤ 3, g for x > 3 (PyTorch)."""
    def vjp(g):
        return g * np.where(x < -3, 0, np.where(x <= 3, x / 3 + 0.5, 1))

    return x * np.clip(x + 3, 0, 6) / 6, vjp

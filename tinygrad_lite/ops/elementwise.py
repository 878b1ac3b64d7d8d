"""Elementwise ops beyond the core set: trigonometry, rounding, division modes, erf, tests.

Notation as in `basic`: ``g`` is the cotangent of the output, each VJP returns
``gᵀ·∂out/∂input``, and the engine sums broadcast gradients back. Bodies use NumPy calls
that Tensors speak (this module registers the ufuncs it implements: ``np.sin(t)`` is `sin`),
so every op is differentiable to any order. Float32 stays float32: constants are Python
floats (NumPy's weak scalars), never float64 arrays or NumPy float64 scalars.

Gradients follow PyTorch: rounding (floor, ceil, round, trunc, div with a rounding mode)
has gradient 0; remainder and fmod pass ``g`` to the dividend; copysign passes ``g`` times
the sign agreement to its magnitude (0 where it is 0) and nothing to the sign.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..graph import defop
from ..mode import refuse_traced
from ..numpy_api import register_function, register_ufunc
from ..tensor import Tensor
from .basic import astype

__all__ = [
    "acos", "allclose", "asin", "atan", "atan2", "ceil", "copysign", "cos", "cosh", "div", "equal", "erf", "erfc",
    "floor", "floor_divide", "fmod", "isclose", "isfinite", "isinf", "isnan", "log2", "remainder", "round_",
    "rsqrt", "sin", "sinh", "square", "tan", "to", "trunc",
]

_LN2 = math.log(2.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _zero(g):
    return g * 0


def _identity(g):
    return g


# ------------------------------------------------------------- trigonometry
@defop(fresh_grads=True)
def sin(x):
    """sin x;  ∂x = g ⊙ cos x."""
    return np.sin(x), lambda g: g * np.cos(x)


@defop(fresh_grads=True)
def cos(x):
    """cos x;  ∂x = −g ⊙ sin x."""
    return np.cos(x), lambda g: -g * np.sin(x)


@defop(fresh_grads=True)
def tan(x):
    """tan x;  ∂x = g ⊙ (1 + tan² x)."""
    out = np.tan(x)
    return out, lambda g: g * (1 + out * out)


@defop(fresh_grads=True)
def asin(x):
    """arcsin x on [−1, 1];  ∂x = g / √(1 − x²)."""
    return np.arcsin(x), lambda g: g / np.sqrt(1 - x * x)


@defop(fresh_grads=True)
def acos(x):
    """arccos x on [−1, 1];  ∂x = −g / √(1 − x²)."""
    return np.arccos(x), lambda g: -g / np.sqrt(1 - x * x)


@defop(fresh_grads=True)
def atan(x):
    """arctan x;  ∂x = g / (1 + x²)."""
    return np.arctan(x), lambda g: g / (1 + x * x)


@defop(fresh_grads=True)
def atan2(y, x):
    """The angle of the point (x, y), in (−π, π];  ∂y = g ⊙ x / (x² + y²), ∂x = −g ⊙ y / (x² + y²)
    (NaN at the origin, as PyTorch)."""
    def grad_y(g):
        return g * x / (x * x + y * y)

    def grad_x(g):
        return -g * y / (x * x + y * y)

    return np.arctan2(y, x), (grad_y, grad_x)


@defop(fresh_grads=True)
def sinh(x):
    """sinh x;  ∂x = g ⊙ cosh x."""
    return np.sinh(x), lambda g: g * np.cosh(x)


@defop(fresh_grads=True)
def cosh(x):
    """cosh x;  ∂x = g ⊙ sinh x."""
    return np.cosh(x), lambda g: g * np.sinh(x)


# ----------------------------------------------------------------- powers, logs
@defop(fresh_grads=True)
def square(x):
    """x²;  ∂x = 2 g ⊙ x."""
    return x * x, lambda g: g * (2 * x)


@defop(fresh_grads=True)
def rsqrt(x):
    """1 / √x;  ∂x = −½ g ⊙ x^(−3/2) = −½ g ⊙ out³."""
    out = 1 / np.sqrt(x)
    return out, lambda g: g * (-0.5 * out * out * out)


@defop(fresh_grads=True)
def log2(x):
    """log₂ x;  ∂x = g / (x ln 2)."""
    return np.log2(x), lambda g: g / (x * _LN2)


# ------------------------------------------------------------------- erf, erfc
# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23
# (1969): erf on |x| ≤ 0.46875, erfc·e^(x²) on (0.46875, 4] and on (4, ∞).
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
      1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
      8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
      2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
      3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
      6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
      2.33520497626869185e-3)
_SQRPI = 5.6418958354775628695e-1  # 1/√π
_ERFC_ZERO = 27.0  # erfc(x) < the smallest float64 beyond this


def _rational(z, num_coeffs, den_coeffs, n):
    """Cody's nested evaluation: (((c[n]·z + c₀)·z + c₁)·z … + c[n−1]) / ((z + d₀)·z … + d[n−1])."""
    num, den = num_coeffs[n + 1] * z, z
    for i in range(n):
        num, den = (num + num_coeffs[i]) * z, (den + den_coeffs[i]) * z
    return (num + num_coeffs[n]) / (den + den_coeffs[n])


def _erf_erfc(x):
    """(erf x, erfc x) on an array, each accurate to a few ulps (three rational approximations,
    evaluated on clipped copies of |x| so no lane overflows, then selected)."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    y = np.abs(x)
    t = np.clip(x, -0.5, 0.5)
    small = t * _rational(t * t, _A, _B, 3)  # erf x for |x| ≤ 0.46875
    w = np.clip(y, 0.46875, 4.0)
    v = np.clip(y, 4.0, _ERFC_ZERO)
    s = 1 / (v * v)
    far = (_SQRPI - s * _rational(s, _P, _Q, 4)) / v
    mid = y <= 4.0
    u = np.where(mid, w, v)
    r = np.where(mid, _rational(w, _C, _D, 7), far)
    u16 = np.trunc(u * 16) / 16  # e^(−u²) split in two factors, as Cody does, for accuracy
    tail = np.exp(-u16 * u16) * np.exp(-(u - u16) * (u + u16)) * r  # erfc |x| for |x| > 0.46875
    tail = np.where(y >= _ERFC_ZERO, 0, tail)
    near = y <= 0.46875
    erf_ = np.where(near, small, np.copysign(1 - tail, x))
    erfc_ = np.where(near, 1 - small, np.where(x < 0, 2 - tail, tail))
    return erf_, erfc_


@defop(fresh_grads=True)
def erf(x):
    """erf x = 2/√π ∫₀ˣ e^(−t²) dt (Cody's rational approximations: float64-accurate);  ∂x = g ⊙ 2/√π e^(−x²)."""
    out = erf(x) if isinstance(x, Tensor) else _erf_erfc(x)[0]  # re-run on Tensors: the op itself
    return out, lambda g: g * (_TWO_OVER_SQRT_PI * np.exp(-x * x))


@defop(fresh_grads=True)
def erfc(x):
    """erfc x = 1 − erf x (accurate in the tail, where 1 − erf x cancels);  ∂x = −g ⊙ 2/√π e^(−x²)."""
    out = erfc(x) if isinstance(x, Tensor) else _erf_erfc(x)[1]
    return out, lambda g: g * (-_TWO_OVER_SQRT_PI * np.exp(-x * x))


# ------------------------------------------------------------------- rounding
@defop(fresh_grads=True)
def floor(x):
    """⌊x⌋;  ∂x = 0."""
    return np.floor(x), _zero


@defop(fresh_grads=True)
def ceil(x):
    """⌈x⌉;  ∂x = 0."""
    return np.ceil(x), _zero


@defop(fresh_grads=True)
def trunc(x):
    """x rounded towards 0;  ∂x = 0."""
    return np.trunc(x), _zero


@defop(name="round", fresh_grads=True)
def round_(x, *, decimals=0):
    """x rounded to ``decimals`` decimal places, halves to even (torch.round: rint(x·10ᵈ)/10ᵈ);  ∂x = 0."""
    decimals = int(decimals)
    if decimals == 0:
        out = np.rint(x)
    elif decimals > 0:
        scale = 10**decimals
        out = np.rint(x * scale) / scale
    else:
        scale = 10**-decimals
        out = np.rint(x / scale) * scale
    return out, _zero


# ------------------------------------------------------------------- division
_ROUNDING_MODES = (None, "trunc", "floor")


def _is_integer(a, b) -> bool:
    return np.result_type(a, b).kind in "iub"


@defop(fresh_grads=True)
def div(a, b, *, rounding_mode=None):
    """a / b, then rounded by ``rounding_mode``: None (true division), "trunc" (towards 0) or
    "floor" (towards −∞, Python's //; integers stay integers).

    None: ∂a = g / b, ∂b = −g ⊙ (a / b) / b. "trunc" and "floor": ∂a = ∂b = 0 (as PyTorch)."""
    if rounding_mode not in _ROUNDING_MODES:
        raise ValueError(f"rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    if rounding_mode is None:
        out = a / b
        return out, (lambda g: g / b, lambda g: -g * out / b)
    if rounding_mode == "floor":
        return np.floor_divide(a, b), (_zero, _zero)
    if _is_integer(a, b):  # integer division rounded towards 0: floor, plus 1 where it rounded down
        q = np.floor_divide(a, b)
        return q + np.logical_and(q * b != a, np.not_equal(a < 0, b < 0)), (_zero, _zero)
    return np.trunc(a / b), (_zero, _zero)


def floor_divide(a: Any, b: Any) -> Tensor:
    """a // b, rounded towards −∞ (``div(a, b, rounding_mode="floor")``: gradient 0)."""
    return div(a, b, rounding_mode="floor")


@defop(fresh_grads=True)
def remainder(a, b):
    """a − b ⌊a / b⌋: the sign of b (Python's %, np.mod);  ∂a = g, ∂b = −g ⊙ ⌊a / b⌋."""
    return np.remainder(a, b), (_identity, lambda g: -g * np.floor_divide(a, b))


@defop(fresh_grads=True)
def fmod(a, b):
    """a − b trunc(a / b): the sign of a (C's fmod);  ∂a = g, ∂b = −g ⊙ trunc(a / b)."""
    return np.fmod(a, b), (_identity, lambda g: -g * np.trunc(a / b))


@defop(fresh_grads=True)
def copysign(a, b):
    """|a| with the sign of b;  ∂a = g ⊙ sign(a)·sign(out) (±1, 0 where a = 0), ∂b = 0 (as PyTorch)."""
    out = np.copysign(a, b)
    return out, (lambda g: g * (np.sign(a) * np.sign(out)), _zero)


# -------------------------------------------------------- tests (no gradient)
@defop
def isclose(a, b, *, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|a − b| ≤ atol + rtol·|b|, elementwise (a bool tensor; not differentiable)."""
    return np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan), (None, None)


@defop
def isfinite(x):
    """Neither NaN nor ±inf, elementwise (a bool tensor; not differentiable)."""
    return np.isfinite(x), None


@defop
def isnan(x):
    """NaN, elementwise (a bool tensor; not differentiable)."""
    return np.isnan(x), None


@defop
def isinf(x):
    """±inf, elementwise (a bool tensor; not differentiable)."""
    return np.isinf(x), None


@defop
def apply_ufunc(*xs, ufunc=None):
    """``ufunc(*xs)`` for a ufunc without a gradient (``np.isfinite``, ``np.logical_and``, ...): a bool tensor."""
    return ufunc(*xs), None


def _values(x: Any) -> Any:
    """The values of x for a Python-level answer (``allclose``, ``equal``): refused for a traced tensor."""
    refuse_traced(x, "a comparison of a tensor's values")
    return x.data if isinstance(x, Tensor) else x


def allclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """Whether every element of a and b is close (`isclose`), as a Python bool."""
    return bool(np.allclose(_values(a), _values(b), rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(a: Any, b: Any) -> bool:
    """Whether a and b have the same shape and the same elements (torch.equal), as a Python bool."""
    a, b = np.asarray(_values(a)), np.asarray(_values(b))
    return a.shape == b.shape and bool(np.array_equal(a, b))


# ---------------------------------------------------------------------- casts
def to(x: Any, dtype: Any = None) -> Tensor:
    """x cast to ``dtype`` (`astype`: ∂x = g cast back to x's dtype); ``"cpu"`` or None leave it as it is."""
    if dtype is None or (isinstance(dtype, str) and dtype == "cpu"):
        return x if isinstance(x, Tensor) else Tensor(x)
    return astype(x, dtype=np.dtype(dtype))


# ------------------------------------------------ NumPy calls on Tensors
for _ufunc, _op in ((np.sin, sin), (np.cos, cos), (np.tan, tan), (np.arcsin, asin), (np.arccos, acos),
                    (np.arctan, atan), (np.arctan2, atan2), (np.sinh, sinh), (np.cosh, cosh),
                    (np.log2, log2), (np.floor, floor), (np.ceil, ceil), (np.trunc, trunc), (np.rint, round_),
                    (np.floor_divide, floor_divide), (np.remainder, remainder), (np.fmod, fmod),
                    (np.copysign, copysign)):
    register_ufunc(_ufunc, _op)


def _np_round(a, decimals=0, out=None):
    if out is not None:
        raise TypeError("numpy.round with out= is not differentiable here: use tinygrad_lite.round")
    return round_(a, decimals=decimals)


register_function(np.round, _np_round)
register_function(np.around, _np_round)

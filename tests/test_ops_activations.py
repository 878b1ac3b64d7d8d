"""ops.activations: values against closed forms evaluated with `math`, first and second
derivatives against finite differences away from the kinks (float64, drawn shapes and
options), PyTorch's gradients at the kinks, accuracy in the tails, ±1e4 without NaN, Inf or
warnings, float32 kept, and bad options."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_lite import Tensor
from tinygrad_lite.autograd import grad
from tinygrad_lite.ops import activations as act
from tinygrad_lite.testing import assert_grads_match, assert_second_grads_match
from tinygrad_lite.testing.strategies import away_from_kinks, shapes

SHAPES = shapes(max_dims=2, max_side=3)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def by_element(f):
    """The reference: a scalar ``math`` function applied to each element (float64)."""
    return lambda x: np.vectorize(lambda v: float(f(v)), otypes=[np.float64])(x)


def first_grad(op, x, **options):
    t = Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    return grad(op(t, **options).sum(), [t])[0].data


def second_grad(op, x, **options):
    t = Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    (d1,) = grad(op(t, **options).sum(), [t], create_graph=True)
    return grad(d1.sum(), [t])[0].data


def clamp(v, lo, hi):
    return min(max(v, lo), hi)


# Each case draws its options and gives (options, math reference, kinks).
def _gelu(draw):
    if draw(st.booleans()):
        return {}, lambda v: v * 0.5 * math.erfc(-v / math.sqrt(2)), ()
    c = math.sqrt(2 / math.pi)
    return {"approximate": "tanh"}, lambda v: 0.5 * v * (1 + math.tanh(c * (v + 0.044715 * v**3))), ()


def _softplus(draw):
    beta, threshold = draw(st.floats(0.5, 2.0)), draw(st.floats(1.0, 20.0))
    ref = lambda v: v if beta * v > threshold else math.log1p(math.exp(beta * v)) / beta
    return {"beta": beta, "threshold": threshold}, ref, (threshold / beta,)


def _elu(draw):
    alpha = draw(st.floats(0.5, 2.0))
    return {"alpha": alpha}, lambda v: v if v > 0 else alpha * math.expm1(v), (0.0,)


def _celu(draw):
    alpha = draw(st.floats(0.5, 2.0))
    return {"alpha": alpha}, lambda v: v if v > 0 else alpha * math.expm1(v / alpha), (0.0,)


def _leaky_relu(draw):
    slope = draw(st.floats(0.01, 0.5))
    return {"negative_slope": slope}, lambda v: v if v > 0 else slope * v, (0.0,)


def _hardtanh(draw):
    lo, hi = draw(st.floats(-2.0, -0.5)), draw(st.floats(0.5, 2.0))
    return {"min_val": lo, "max_val": hi}, lambda v: clamp(v, lo, hi), (lo, hi)


CASES = {
    "gelu": _gelu,
    "silu": lambda draw: ({}, lambda v: v / (1 + math.exp(-v)), ()),
    "softplus": _softplus,
    "mish": lambda draw: ({}, lambda v: v * math.tanh(math.log1p(math.exp(v))), ()),
    "logsigmoid": lambda draw: ({}, lambda v: -math.log1p(math.exp(-v)), ()),
    "softsign": lambda draw: ({}, lambda v: v / (1 + abs(v)), (0.0,)),  # its second derivative jumps at 0
    "elu": _elu,
    "celu": _celu,
    "selu": lambda draw: ({}, lambda v: SELU_SCALE * (v if v > 0 else SELU_ALPHA * math.expm1(v)), (0.0,)),
    "leaky_relu": _leaky_relu,
    "hardtanh": _hardtanh,
    "relu6": lambda draw: ({}, lambda v: clamp(v, 0.0, 6.0), (0.0, 6.0)),
    "hardsigmoid": lambda draw: ({}, lambda v: clamp(v + 3, 0.0, 6.0) / 6, (-3.0, 3.0)),
    "hardswish": lambda draw: ({}, lambda v: v * clamp(v + 3, 0.0, 6.0) / 6, (-3.0, 3.0)),
}


@st.composite
def case(draw, name, low=-4.0, high=7.0):
    """(op with the drawn options, reference, x away from the op's kinks)."""
    options, ref, kinks = CASES[name](draw)
    x = draw(away_from_kinks(shape=SHAPES, kinks=kinks, margin=0.01, low=low, high=high))
    op = getattr(act, name)
    return (lambda t: op(t, **options)), ref, x


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_values_and_gradients(name, data):
    op, ref, x = data.draw(case(name))
    np.testing.assert_allclose(op(x).data, by_element(ref)(x), rtol=1e-13, atol=1e-15)
    assert_grads_match(op, x)


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_second_derivatives(name, data):
    op, _, x = data.draw(case(name))
    assert_second_grads_match(op, x)


# --------------------------------------------------- PyTorch's values at kinks
def test_subgradients_at_kinks_as_pytorch():
    zero = np.array([0.0])
    np.testing.assert_array_equal(first_grad(act.leaky_relu, zero), [0.01])  # x ≤ 0 branch: the slope
    np.testing.assert_array_equal(first_grad(act.leaky_relu, zero, negative_slope=0.2), [0.2])
    np.testing.assert_array_equal(first_grad(act.elu, zero, alpha=0.7), [0.7])  # α e⁰
    np.testing.assert_array_equal(first_grad(act.celu, zero, alpha=0.7), [1.0])  # e^(0/α)
    np.testing.assert_allclose(first_grad(act.selu, zero), [SELU_SCALE * SELU_ALPHA], rtol=1e-15)
    # hardtanh, relu6, hardsigmoid: gradient only strictly inside
    np.testing.assert_array_equal(first_grad(act.hardtanh, [-1.0, -0.5, 1.0, 1.5]), [0, 1, 0, 0])
    np.testing.assert_array_equal(first_grad(act.hardtanh, [-2.0, 0.0, 3.0], min_val=-2.0, max_val=3.0),
                                  [0, 1, 0])
    np.testing.assert_array_equal(first_grad(act.relu6, [0.0, 3.0, 6.0]), [0, 1, 0])
    np.testing.assert_allclose(first_grad(act.hardsigmoid, [-3.0, 0.0, 3.0]), [0, 1 / 6, 0])
    # hardswish: x/3 + ½ on the closed interval [−3, 3]
    np.testing.assert_allclose(first_grad(act.hardswish, [-3.5, -3.0, 0.0, 3.0, 3.5]), [0, -0.5, 0.5, 1.5, 1])
    # softplus: linear only strictly above the threshold
    np.testing.assert_allclose(first_grad(act.softplus, [20.0, 20.5]), [1 / (1 + math.exp(-20.0)), 1.0], rtol=1e-15)
    np.testing.assert_allclose(first_grad(act.softplus, [5.0, 5.5], beta=2.0, threshold=10.0),
                               [1 / (1 + math.exp(-10.0)), 1.0], rtol=1e-15)
    # smooth ones at 0, first and second derivatives (the re-run graphs are right at 0 too)
    np.testing.assert_allclose(first_grad(act.gelu, zero), [0.5])
    np.testing.assert_allclose(first_grad(act.gelu, zero, approximate="tanh"), [0.5])
    np.testing.assert_allclose(first_grad(act.silu, zero), [0.5])
    np.testing.assert_allclose(first_grad(act.mish, zero), [0.6])
    np.testing.assert_allclose(first_grad(act.logsigmoid, zero), [0.5])
    np.testing.assert_allclose(first_grad(act.softsign, zero), [1.0])
    np.testing.assert_allclose(second_grad(act.gelu, zero), [math.sqrt(2 / math.pi)], rtol=1e-15)
    np.testing.assert_allclose(second_grad(act.silu, zero), [0.5], rtol=1e-15)
    np.testing.assert_allclose(second_grad(act.softplus, zero), [0.25], rtol=1e-15)
    np.testing.assert_allclose(second_grad(act.logsigmoid, zero), [-0.25], rtol=1e-15)
    np.testing.assert_allclose(second_grad(act.elu, zero, alpha=0.7), [0.7], rtol=1e-15)


# ------------------------------------------------------------------ tails
def test_tails_are_accurate():
    x = np.array([-40.0, -15.0, 15.0, 40.0])
    exact = {
        "silu": lambda v: v / (1 + math.exp(-v)),
        "logsigmoid": lambda v: -math.log1p(math.exp(-v)),
        "softplus": lambda v: v + math.log1p(math.exp(-v)) if v > 20 else math.log1p(math.exp(v)),
        "mish": lambda v: v * math.tanh(math.log1p(math.exp(v))),
        "gelu": lambda v: v * 0.5 * math.erfc(-v / math.sqrt(2)),
    }
    for name, ref in exact.items():
        out = getattr(act, name)(x).data
        expected = by_element(ref)(x)
        if name == "softplus":
            expected[x > 20] = x[x > 20]  # PyTorch's linear region
        # rtol: erfc's condition number 2x² at x = 15/√2 turns the argument's last bit into ~2e-14
        np.testing.assert_allclose(out, expected, rtol=1e-13, atol=0, err_msg=name)
    np.testing.assert_allclose(first_grad(act.logsigmoid, x), by_element(lambda v: 1 / (1 + math.exp(v)))(x),
                               rtol=1e-14)
    np.testing.assert_allclose(first_grad(act.softplus, x[:3]), by_element(lambda v: 1 / (1 + math.exp(-v)))(x[:3]),
                               rtol=1e-14)


ALL = [(name, {}) for name in CASES] + [("gelu", {"approximate": "tanh"})]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_large_inputs_without_nan_inf_or_warnings(dtype):
    t = Tensor(np.array([-1e4, -50.0, 50.0, 1e4], dtype=dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, options in ALL:
            y = getattr(act, name)(t, **options)
            (d1,) = grad(y.sum(), [t], create_graph=True)
            d2 = grad(d1.sum(), [t])[0] if d1.requires_grad else d1 * 0  # piecewise linear: d1 is constant
            for a in (y.data, d1.data, d2.data):
                assert np.isfinite(a).all(), (name, options, a)
    expected_ends = {"gelu": (0, 1e4), "silu": (0, 1e4), "softplus": (0, 1e4), "mish": (0, 1e4),
                     "logsigmoid": (-1e4, 0), "elu": (-1, 1e4), "relu6": (0, 6), "hardswish": (0, 1e4)}
    for name, (lo, hi) in expected_ends.items():
        y = getattr(act, name)(t).data
        np.testing.assert_allclose([y[0], y[-1]], [lo, hi], atol=1e-30, err_msg=name)


# ----------------------------------------------------------- float32 kept
@pytest.mark.parametrize("name, options", ALL, ids=[n + ("-tanh" if o else "") for n, o in ALL])
def test_float32_kept(name, options):
    x = np.array([-3.5, -1.2, -0.3, 0.4, 2.2, 4.1])
    op = getattr(act, name)
    t = Tensor(x.astype(np.float32), requires_grad=True)
    y = op(t, **options)
    (dx,) = grad(y.sum(), [t])
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(y.data, op(x.astype(np.float32).astype(np.float64), **options).data,
                               rtol=1e-5, atol=1e-6)


def test_numpy_float64_options_do_not_upcast_float32():
    t = Tensor(np.array([-1.5, 0.5, 2.0], dtype=np.float32), requires_grad=True)
    f64 = np.float64
    for y in (act.elu(t, alpha=f64(0.5)), act.celu(t, alpha=f64(0.5)), act.leaky_relu(t, negative_slope=f64(0.1)),
              act.softplus(t, beta=f64(2.0), threshold=f64(1.0)), act.hardtanh(t, min_val=f64(-1), max_val=f64(1))):
        assert y.dtype == np.float32
        assert grad(y.sum(), [t])[0].dtype == np.float32


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, message", [
    (lambda x: act.gelu(x, approximate="exact"), r"gelu: approximate must be 'none' or 'tanh', got 'exact'"),
    (lambda x: act.celu(x, alpha=0.0), r"celu: alpha must not be 0"),
    (lambda x: act.hardtanh(x, min_val=1.0, max_val=-1.0), r"hardtanh: min_val must not exceed max_val"),
    (lambda x: act.softplus(x, beta=0), r"softplus: beta must not be 0"),
])
def test_bad_options_raise_value_error_naming_the_op(call, message):
    with pytest.raises(ValueError, match=message):
        call(Tensor(np.ones(3), requires_grad=True))

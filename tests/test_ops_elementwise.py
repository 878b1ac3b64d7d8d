"""ops.elementwise: values against the `math` module element by element, first and second
derivatives against finite differences (float64, drawn shapes, broadcasting for binary ops),
PyTorch's gradients at the jumps and kinks, float32 kept, large inputs, bad options, and
NumPy calls on Tensors dispatching to these ops."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_lite import Tensor
from tinygrad_lite.autograd import grad
from tinygrad_lite.ops import elementwise as ew
from tinygrad_lite.testing import assert_grads_match, assert_second_grads_match
from tinygrad_lite.testing.strategies import arrays, away_from_kinks, broadcastable_shapes, shapes

SHAPES = shapes(max_dims=2, max_side=3)


def by_element(f):
    """The reference: a scalar ``math`` function applied to each element (float64)."""
    return lambda *arrays: np.vectorize(lambda *v: float(f(*v)), otypes=[np.float64])(*arrays)


def first_grad(op, *arrays, **options):
    """∂ sum(op(arrays)) / ∂ each array (a first-order backward)."""
    ts = [Tensor(a, requires_grad=True) for a in arrays]
    return [g.data for g in grad(op(*ts, **options).sum(), ts)]


# name: (op, math reference, low, high)
SMOOTH = {
    "sin": (ew.sin, math.sin, -3, 3),
    "cos": (ew.cos, math.cos, -3, 3),
    "tan": (ew.tan, math.tan, -1.3, 1.3),
    "asin": (ew.asin, math.asin, -0.9, 0.9),
    "acos": (ew.acos, math.acos, -0.9, 0.9),
    "atan": (ew.atan, math.atan, -3, 3),
    "sinh": (ew.sinh, math.sinh, -3, 3),
    "cosh": (ew.cosh, math.cosh, -3, 3),
    "square": (ew.square, lambda v: v * v, -3, 3),
    "rsqrt": (ew.rsqrt, lambda v: 1 / math.sqrt(v), 0.2, 3),
    "log2": (ew.log2, math.log2, 0.2, 3),
    "erf": (ew.erf, math.erf, -3, 3),
    "erfc": (ew.erfc, math.erfc, -3, 3),
}
ROUNDING = {
    "floor": (ew.floor, math.floor),
    "ceil": (ew.ceil, math.ceil),
    "trunc": (ew.trunc, math.trunc),
    "round": (ew.round_, round),  # Python's round: halves to even, as torch.round
}
STEPS = tuple(k / 2 for k in range(-8, 9))  # integers and halves in [−4, 4]: where rounding jumps


# ------------------------------------------------------------ unary, smooth
@pytest.mark.parametrize("name", SMOOTH)
@given(data=st.data())
def test_smooth_values_and_gradients(name, data):
    op, ref, low, high = SMOOTH[name]
    x = data.draw(arrays(shape=SHAPES, low=low, high=high))
    np.testing.assert_allclose(op(x).data, by_element(ref)(x), rtol=1e-13, atol=1e-15)
    assert_grads_match(op, x)


@pytest.mark.parametrize("name", SMOOTH)
@given(data=st.data())
def test_smooth_second_derivatives(name, data):
    op, _, low, high = SMOOTH[name]
    assert_second_grads_match(op, data.draw(arrays(shape=SHAPES, low=low, high=high)))


def test_closed_form_derivatives():
    x = np.array([-0.7, 0.1, 0.45])
    expected = {
        "sin": np.cos(x), "cos": -np.sin(x), "tan": 1 / np.cos(x) ** 2, "asin": 1 / np.sqrt(1 - x * x),
        "acos": -1 / np.sqrt(1 - x * x), "atan": 1 / (1 + x * x), "sinh": np.cosh(x), "cosh": np.sinh(x),
        "square": 2 * x, "erf": 2 / np.sqrt(np.pi) * np.exp(-x * x), "erfc": -2 / np.sqrt(np.pi) * np.exp(-x * x),
    }
    for name, d in expected.items():
        np.testing.assert_allclose(first_grad(SMOOTH[name][0], x)[0], d, rtol=1e-14, err_msg=name)
    p = np.array([0.3, 1.0, 2.5])
    np.testing.assert_allclose(first_grad(ew.rsqrt, p)[0], -0.5 * p**-1.5, rtol=1e-14)
    np.testing.assert_allclose(first_grad(ew.log2, p)[0], 1 / (p * np.log(2)), rtol=1e-14)


# -------------------------------------------------------------------- erf
def test_erf_matches_math_to_float64_precision():
    x = np.concatenate([np.linspace(-7, 7, 2801), np.geomspace(1e-300, 30, 600), -np.geomspace(1e-12, 30, 100),
                        [0.0, -0.0, 0.46875, -0.46875, 4.0, -4.0, 26.5, 27.0, 40.0]])
    e, c = ew.erf(x).data, ew.erfc(x).data
    ref_e, ref_c = by_element(math.erf)(x), by_element(math.erfc)(x)
    np.testing.assert_allclose(e, ref_e, rtol=1e-15, atol=0)
    np.testing.assert_allclose(c, ref_c, rtol=2e-15, atol=1e-300)  # the tail too, down to ~1e-300


def test_erf_special_values_without_warnings():
    x = np.array([np.inf, -np.inf, np.nan, 1e308, -1e308, 5e-324])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e, c = ew.erf(x).data, ew.erfc(x).data
    np.testing.assert_array_equal(e, [1, -1, np.nan, 1, -1, math.erf(5e-324)])
    np.testing.assert_array_equal(c, [0, 2, np.nan, 0, 2, 1])


# ------------------------------------------------------ rounding (gradient 0)
@pytest.mark.parametrize("name", ROUNDING)
@given(data=st.data())
def test_rounding_values_and_zero_gradients(name, data):
    op, ref = ROUNDING[name]
    x = data.draw(away_from_kinks(shape=SHAPES, kinks=STEPS, margin=0.05))
    np.testing.assert_array_equal(op(x).data, by_element(ref)(x))
    np.testing.assert_array_equal(first_grad(op, x)[0], np.zeros_like(x))
    assert_grads_match(op, x)
    assert_second_grads_match(op, x)


def test_rounding_at_the_steps():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -1.0, 0.0, 3.0])
    np.testing.assert_array_equal(ew.round_(x).data, [-2, -2, -0, 0, 2, 2, -1, 0, 3])  # halves to even
    for name, (op, ref) in ROUNDING.items():
        np.testing.assert_array_equal(op(x).data, by_element(ref)(x), err_msg=name)
        np.testing.assert_array_equal(first_grad(op, x)[0], np.zeros_like(x), err_msg=name)  # 0 at the jumps too


def test_round_decimals():
    x = np.array([1.2345, -1.2355, 1234.5, 0.125, 2675.0])
    np.testing.assert_allclose(ew.round_(x, decimals=2).data, [1.23, -1.24, 1234.5, 0.12, 2675.0])
    np.testing.assert_array_equal(ew.round_(x, decimals=-2).data, [0, -0, 1200, 0, 2700])
    np.testing.assert_array_equal(first_grad(ew.round_, x, decimals=1)[0], np.zeros_like(x))


# ------------------------------------------------------------------ binary
@st.composite
def pair(draw, low=-3.0, high=3.0):
    sa, sb = draw(broadcastable_shapes(2, max_dims=2, max_side=3))
    return draw(arrays(shape=sa, low=low, high=high)), draw(arrays(shape=sb, low=low, high=high))


def away_from_zero(x, margin=0.3):
    return np.where(np.abs(x) < margin, np.copysign(margin, x) + x, x)


@st.composite
def dividend_divisor(draw):
    """(a, b) with b away from 0 and a / b at least 0.05 from an integer (so floor and trunc of
    a / b do not jump within a finite-difference step); b broadcasts against a."""
    sa, sb = draw(broadcastable_shapes(2, max_dims=2, max_side=3))
    b = away_from_zero(draw(arrays(shape=sb, low=-2, high=2)), 0.5)
    n = draw(arrays(shape=sa, dtype=np.int64, low=-3, high=3))
    f = draw(arrays(shape=sa, low=0.05, high=0.95))
    return b * (n + f), b


@given(ab=pair())
def test_atan2(ab):
    y, x = away_from_zero(ab[0]), ab[1]  # y ≠ 0: away from the cut along the negative x axis
    np.testing.assert_allclose(ew.atan2(y, x).data, by_element(math.atan2)(y, x), rtol=1e-14, atol=1e-15)
    assert_grads_match(ew.atan2, y, x)
    assert_second_grads_match(ew.atan2, y, x)


@given(ab=pair())
def test_copysign(ab):
    a, b = away_from_zero(ab[0]), away_from_zero(ab[1])
    np.testing.assert_array_equal(ew.copysign(a, b).data, by_element(math.copysign)(a, b))
    assert_grads_match(ew.copysign, a, b)
    assert_second_grads_match(ew.copysign, a, b)


@given(ab=pair())
def test_true_division(ab):
    a, b = ab[0], away_from_zero(ab[1])
    np.testing.assert_allclose(ew.div(a, b).data, a / b, rtol=1e-15)
    assert_grads_match(ew.div, a, b)
    assert_second_grads_match(ew.div, a, b)


@pytest.mark.parametrize("name, ref", [("remainder", lambda a, b: a % b), ("fmod", math.fmod)])
@given(ab=dividend_divisor())
def test_remainder_fmod(name, ref, ab):
    op = getattr(ew, name)
    a, b = ab
    np.testing.assert_allclose(op(a, b).data, by_element(ref)(a, b), rtol=1e-12, atol=1e-12)
    assert_grads_match(op, a, b)
    assert_second_grads_match(op, a, b)


@pytest.mark.parametrize("mode, ref", [("trunc", lambda a, b: math.trunc(a / b)),
                                       ("floor", lambda a, b: a // b)])
@given(ab=dividend_divisor())
def test_rounding_division(mode, ref, ab):
    a, b = ab
    np.testing.assert_array_equal(ew.div(a, b, rounding_mode=mode).data, by_element(ref)(a, b))
    for g in first_grad(ew.div, a, b, rounding_mode=mode):
        assert not g.any()
    assert_grads_match(lambda a, b: ew.div(a, b, rounding_mode=mode), a, b)


def test_integer_division_stays_integer():
    a, b = np.array([7, -7, 7, -7, 6, -6]), np.array([2, 2, -2, -2, 3, 3])
    np.testing.assert_array_equal(ew.div(a, b, rounding_mode="trunc").data, [3, -3, -3, 3, 2, -2])
    np.testing.assert_array_equal(ew.div(a, b, rounding_mode="floor").data, [3, -4, -4, 3, 2, -2])
    np.testing.assert_array_equal(ew.floor_divide(a, b).data, a // b)
    assert ew.div(a, b, rounding_mode="trunc").dtype.kind == "i"
    np.testing.assert_array_equal(ew.remainder(a, b).data, a % b)
    np.testing.assert_array_equal(ew.fmod(a, b).data, np.fmod(a, b))


# ---------------------------------------------------- PyTorch's values at kinks
def test_subgradients_as_pytorch():
    # copysign: ∂a = g·sign agreement, 0 where a = 0; ∂b = 0 (also where b = ±0)
    a, b = np.array([0.0, -0.0, 2.0, -2.0, 3.0]), np.array([-1.0, 1.0, -0.0, 0.0, 1.0])
    da, db = first_grad(ew.copysign, a, b)
    np.testing.assert_array_equal(da, [0, 0, -1, -1, 1])
    np.testing.assert_array_equal(db, np.zeros(5))
    # remainder / fmod at exact multiples: ∂b = −floor(a / b), −trunc(a / b)
    a, b = np.array([4.0, -4.0, -3.0]), np.array([2.0, 3.0, 2.0])
    np.testing.assert_array_equal(first_grad(ew.remainder, a, b), [np.ones(3), [-2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(first_grad(ew.fmod, a, b), [np.ones(3), [-2.0, 1.0, 1.0]])
    # atan2 at the origin: NaN, as PyTorch (0/0)
    with np.errstate(invalid="ignore"):
        dy, dx = first_grad(ew.atan2, np.array([0.0]), np.array([0.0]))
    assert np.isnan(dy).all() and np.isnan(dx).all()


# ------------------------------------------------------- tests and casts
def test_isclose_isfinite_isnan_isinf():
    a = Tensor(np.array([1.0, np.nan, np.inf, -np.inf, 1e-9]), requires_grad=True)
    b = np.array([1.0 + 1e-7, np.nan, np.inf, 0.0, 0.0])
    for op, expected in ((ew.isfinite, np.isfinite(a.data)), (ew.isnan, np.isnan(a.data)),
                         (ew.isinf, np.isinf(a.data))):
        out = op(a)
        assert out.dtype == np.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.data, expected)
    np.testing.assert_array_equal(ew.isclose(a, b).data, [True, False, True, False, True])
    np.testing.assert_array_equal(ew.isclose(a, b, equal_nan=True).data, [True, True, True, False, True])
    np.testing.assert_array_equal(ew.isclose(a, b, rtol=0, atol=0).data, [False, False, True, False, False])
    assert not ew.isclose(a, b).requires_grad
    assert ew.allclose(a.detach(), a.detach(), equal_nan=True) and not ew.allclose(a.detach(), b)
    assert ew.equal(Tensor([1.0, 2.0]), np.array([1.0, 2.0])) and not ew.equal(np.ones(2), np.ones(3))


def test_to_casts_with_the_gradient_cast_back():
    x = Tensor(np.array([1.5, -2.0], dtype=np.float32), requires_grad=True)
    y = ew.to(x, np.float64)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [3.0, -4.0])
    assert ew.to(x, "float16").dtype == np.float16
    assert ew.to(x, "cpu") is x and ew.to(x) is x


# ------------------------------------------------------------ float32 kept
FLOAT32_CASES = [(f"{name}", op, (low + high) / 2 + np.linspace(-0.4, 0.4, 5) * (high - low) / 2)
                 for name, (op, _, low, high) in SMOOTH.items()]
FLOAT32_CASES += [(name, op, np.array([-1.3, -0.2, 0.4, 2.7])) for name, (op, _) in ROUNDING.items()]


@pytest.mark.parametrize("name, op, x", FLOAT32_CASES, ids=[c[0] for c in FLOAT32_CASES])
def test_float32_kept(name, op, x):
    t = Tensor(x.astype(np.float32), requires_grad=True)
    y = op(t)
    assert y.dtype == np.float32
    (dx,) = grad(y.sum(), [t])
    assert dx.dtype == np.float32
    np.testing.assert_allclose(y.data, op(x.astype(np.float32).astype(np.float64)).data, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("op", [ew.atan2, ew.copysign, ew.remainder, ew.fmod, ew.div,
                                lambda a, b: ew.div(a, b, rounding_mode="trunc"),
                                lambda a, b: ew.div(a, b, rounding_mode="floor")])
def test_float32_kept_binary(op):
    a = Tensor(np.array([1.3, -2.6, 0.7], dtype=np.float32), requires_grad=True)
    b = Tensor(np.array([0.9], dtype=np.float32), requires_grad=True)
    for y in (op(a, b), op(a, 2.5), op(1.5, a)):
        assert y.dtype == np.float32
    da, db = grad(op(a, b).sum(), [a, b])
    assert da.dtype == db.dtype == np.float32


# ------------------------------------------------------------- large inputs
def test_large_inputs_stay_finite_without_warnings():
    x = np.array([-1e4, 1e4])
    ops = [ew.sin, ew.cos, ew.atan, ew.erf, ew.erfc, ew.square, ew.floor, ew.ceil, ew.trunc, ew.round_]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float64, np.float32):
            t = Tensor(x.astype(dtype), requires_grad=True)
            for op in ops:
                y = op(t)
                (dx,) = grad(y.sum(), [t])
                assert np.isfinite(y.data).all() and np.isfinite(dx.data).all(), op
            p = Tensor(np.abs(x).astype(dtype), requires_grad=True)
            for op in (ew.rsqrt, ew.log2):
                (dx,) = grad(op(p).sum(), [p])
                assert np.isfinite(op(p).data).all() and np.isfinite(dx.data).all()
            for op in (ew.atan2, ew.copysign, ew.remainder, ew.fmod, ew.div):
                (da,) = grad(op(t, t[::-1] * 0.3).sum(), [t])
                assert np.isfinite(da.data).all()
    np.testing.assert_array_equal(ew.erf(x).data, [-1, 1])
    np.testing.assert_array_equal(ew.erfc(x).data, [2, 0])


# --------------------------------------------------------------- bad input
def test_unknown_rounding_mode_names_op_and_option():
    with pytest.raises(ValueError, match=r"div: rounding_mode must be None, 'trunc' or 'floor', got 'round'"):
        ew.div(np.ones(2), np.ones(2), rounding_mode="round")


# ------------------------------------------------------ NumPy calls dispatch
UFUNCS = [(np.sin, "sin"), (np.cos, "cos"), (np.tan, "tan"), (np.arcsin, "asin"), (np.arccos, "acos"),
          (np.arctan, "atan"), (np.sinh, "sinh"), (np.cosh, "cosh"), (np.log2, "log2"), (np.floor, "floor"),
          (np.ceil, "ceil"), (np.trunc, "trunc"), (np.rint, "round")]
BINARY_UFUNCS = [(np.arctan2, "atan2"), (np.copysign, "copysign"), (np.remainder, "remainder"),
                 (np.mod, "remainder"), (np.fmod, "fmod"), (np.floor_divide, "div")]


def test_numpy_calls_on_tensors_dispatch_to_the_ops():
    x = np.array([0.3, 0.55, 0.8])
    t = Tensor(x, requires_grad=True)
    for f, name in UFUNCS:
        y = f(t)
        assert isinstance(y, Tensor) and y.op == name, f
        np.testing.assert_array_equal(y.data, f(x))
    for f, name in BINARY_UFUNCS:
        y = f(t, 0.25)
        assert isinstance(y, Tensor) and y.op == name, f
        np.testing.assert_allclose(y.data, f(x, 0.25), rtol=1e-15)
    for y in (np.round(t, 1), np.around(t, 1), np.round(t)):
        assert y.op == "round"
    np.testing.assert_allclose(np.round(t, 1).data, np.round(x, 1))
    (dx,) = grad(np.sin(t).sum(), [t])
    np.testing.assert_allclose(dx.data, np.cos(x))


def test_third_derivative_of_sin_through_numpy():
    x = Tensor(np.array([0.2, -1.1]), requires_grad=True)
    (d1,) = grad(np.sin(x).sum(), [x], create_graph=True)
    (d2,) = grad(d1.sum(), [x], create_graph=True)
    (d3,) = grad(d2.sum(), [x])
    np.testing.assert_allclose(d3.data, -np.cos(x.data), rtol=1e-15)

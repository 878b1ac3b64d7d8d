"""Edge values follow PyTorch, and the calling conventions of ops (defop options, NumPy protocols).

PyTorch is not installed here: each expectation cites the PyTorch rule it pins (its
derivatives.yaml / FunctionsManual.cpp formulas, or its documented behaviour).
"""

import numpy as np
import pytest

from tinygrad_lite import GraphFreedError, Tensor, defop, enable_grad, is_grad_enabled, no_grad, ops
from tinygrad_lite.testing import assert_grads_match

RTOL = 1e-12


def _grads(fn, *values, cotangent=None):
    """(output values, gradient of each input) for float64 inputs; cotangent defaults to ones."""
    ts = [Tensor(np.array(v, dtype=np.float64), requires_grad=True) for v in values]
    out = fn(*ts)
    out.backward(np.ones(out.shape) if cotangent is None else cotangent)
    return out.data, [t.grad for t in ts]


# ------------------------------------------------------------------- power
def test_derivative_of_x_to_the_zero_is_zero_everywhere():
    # PyTorch pow_backward: exponent == 0 -> zeros, so d/dx x**0 = 0 even at x = 0 (not 0 * 0**-1 = nan).
    out, (gx,) = _grads(lambda x: x**0, [0.0, 2.0, -1.5])
    np.testing.assert_array_equal(out, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(gx, [0.0, 0.0, 0.0])
    out, (gx, gy) = _grads(lambda x, y: x**y, [0.0, 3.0], [0.0, 0.0])  # a Tensor exponent too
    np.testing.assert_array_equal(gx, [0.0, 0.0])
    assert np.all(np.isfinite(gy))


def test_derivative_of_x_squared_at_zero_is_zero():
    # PyTorch: 2 * 0**1 = 0.
    _, (gx,) = _grads(lambda x: x**2, [0.0, -3.0])
    np.testing.assert_array_equal(gx, [0.0, -6.0])


def test_zero_to_the_zero_is_one():
    # PyTorch (and C's pow): pow(0, 0) = 1.
    out, _ = _grads(lambda x, y: x**y, [0.0], [0.0])
    np.testing.assert_array_equal(out, [1.0])


def test_derivative_with_respect_to_the_exponent_at_a_zero_base_is_zero():
    # PyTorch pow_backward_exponent: where(base == 0 and exponent >= 0, 0, grad * result * log(base)).
    _, (gx, gy) = _grads(lambda x, y: x**y, [0.0, 0.0, 0.0, 2.0], [0.0, 1.0, 2.5, 3.0])
    np.testing.assert_array_equal(gy[:3], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(gy[3], 8.0 * np.log(2.0), rtol=RTOL)
    np.testing.assert_array_equal(gx[:3], [0.0, 1.0, 0.0])  # y·x^(y−1): 0**0 * 1 = 1 for y = 1
    _, (gy,) = _grads(lambda y: 0.0**y, [0.0, 2.0])  # a constant base, through __rpow__
    np.testing.assert_array_equal(gy, [0.0, 0.0])


def test_power_gradients_away_from_the_edges():
    rng = np.random.default_rng(0)
    assert_grads_match(lambda x, y: x**y, rng.uniform(0.5, 2.0, (2, 3)), rng.uniform(-2.0, 2.0, (2, 3)))


# ---------------------------------------------------------- ties and kinks
def test_maximum_and_minimum_split_ties_evenly():
    # PyTorch max/min (binary) backward: grad / 2 to each side where self == other.
    a, b = [1.0, 2.0, 3.0], [1.0, 1.0, 4.0]
    _, (ga, gb) = _grads(ops.maximum, a, b)
    np.testing.assert_array_equal(ga, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(gb, [0.5, 0.0, 1.0])
    _, (ga, gb) = _grads(ops.minimum, a, b)
    np.testing.assert_array_equal(ga, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(gb, [0.5, 1.0, 0.0])


@pytest.mark.parametrize(("reduce", "sign"), [(ops.max_, 1.0), (ops.min_, -1.0)], ids=["max", "min"])
def test_max_and_min_reductions_split_ties_evenly(reduce, sign):
    # PyTorch amax/amin (and max()/min() without dim) backward: grad / (number of elements equal to the result).
    x = sign * np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    _, (g,) = _grads(lambda t: reduce(t), x)
    np.testing.assert_allclose(g, [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]], rtol=RTOL)
    _, (g,) = _grads(lambda t: reduce(t, axis=1), x, cotangent=np.array([2.0, 3.0]))
    np.testing.assert_allclose(g, [[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]], rtol=RTOL)
    _, (g,) = _grads(lambda t: reduce(t, axis=0, keepdims=True), x, cotangent=np.array([[6.0, 6.0, 6.0]]))
    np.testing.assert_allclose(g, [[0.0, 6.0, 6.0], [6.0, 0.0, 0.0]], rtol=RTOL)


def test_clip_passes_the_gradient_at_its_bounds():
    # PyTorch clamp_backward: grad * ((self >= min) & (self <= max)): 1 at the bounds themselves.
    _, (g,) = _grads(lambda t: t.clip(0.0, 1.0), [-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0])
    _, (g,) = _grads(lambda t: ops.clip(t, low=0.0), [-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0])


def test_relu_has_derivative_zero_at_zero_unlike_maximum_with_zero():
    # PyTorch threshold_backward: grad where x > 0, so relu'(0) = 0; torch.maximum(x, 0) splits the tie: 0.5.
    _, (g,) = _grads(lambda t: t.relu(), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])
    _, (g,) = _grads(lambda t: ops.maximum(t, 0.0), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(g, [0.0, 0.5, 1.0])


def test_abs_has_derivative_zero_at_zero():
    # PyTorch abs backward: grad * sgn(x), sgn(0) = 0.
    _, (g,) = _grads(lambda t: t.abs(), [-2.0, 0.0, 2.0])
    np.testing.assert_array_equal(g, [-1.0, 0.0, 1.0])


# ------------------------------------------------- empty axes and infinities
def test_logsumexp_over_an_empty_axis_is_minus_infinity():
    # PyTorch: logsumexp over an empty dimension is log(0) = -inf.
    x = Tensor(np.zeros((2, 0)), requires_grad=True)
    y = ops.logsumexp(x, axis=-1)
    np.testing.assert_array_equal(y.data, [-np.inf, -np.inf])
    y.backward(np.ones(2))
    assert x.grad.shape == (2, 0)
    assert ops.logsumexp(Tensor(np.zeros(0)), axis=0).item() == -np.inf


@pytest.mark.parametrize("op", [ops.softmax, ops.log_softmax], ids=["softmax", "log_softmax"])
def test_softmax_over_an_empty_axis_is_empty(op):
    # PyTorch: softmax/log_softmax of a (2, 0) tensor along dim -1 is an empty (2, 0) tensor.
    x = Tensor(np.zeros((2, 0)), requires_grad=True)
    y = op(x, axis=-1)
    assert y.shape == (2, 0)
    y.backward(np.zeros((2, 0)))
    assert x.grad.shape == (2, 0)


def test_logsumexp_of_a_row_of_minus_infinity_is_minus_infinity_with_zero_gradient():
    # PyTorch's forward zeroes an infinite max before shifting, so the value is -inf, not NaN. Its
    # backward grad * exp(x - out) would give exp(-inf + inf) = NaN there; the promise here is 0.
    x = Tensor(np.array([[-np.inf, -np.inf], [0.0, 1.0]]), requires_grad=True)
    with np.errstate(all="raise"):  # no NaN made, no warning silenced by accident
        y = ops.logsumexp(x, axis=-1)
        y.backward(np.array([1.0, 2.0]))
    assert y.data[0] == -np.inf
    np.testing.assert_allclose(y.data[1], np.log(1.0 + np.e), rtol=RTOL)
    assert not np.isnan(x.grad).any()
    np.testing.assert_array_equal(x.grad[0], [0.0, 0.0])
    np.testing.assert_allclose(x.grad[1], 2.0 * np.exp([0.0, 1.0]) / (1.0 + np.e), rtol=RTOL)


def test_logsumexp_with_plus_infinity_is_plus_infinity():
    # PyTorch: logsumexp([inf, 0]) = inf (the infinite max is not subtracted from itself).
    y = ops.logsumexp(Tensor(np.array([[np.inf, 0.0], [np.inf, -np.inf], [1.0, 2.0]])), axis=-1)
    assert y.data[0] == np.inf and y.data[1] == np.inf and np.isfinite(y.data[2])


# ------------------------------------------------------------ linear, transpose
@pytest.mark.parametrize("bias_shape", [(2,), (1, 2), (4, 2), ()], ids=["(out,)", "(1,out)", "(m,out)", "scalar"])
def test_linear_gradients_for_every_bias_shape(bias_shape):
    # PyTorch's addmm/linear broadcasts the bias; its gradient is the cotangent summed back to the bias's shape.
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(bias_shape)
    weights = rng.standard_normal((4, 2))
    assert_grads_match(lambda x, w, b: (ops.linear(x, w, b) * weights).sum(), x, w, b)
    np.testing.assert_allclose(ops.linear(x, w, b).data, x @ w + b, rtol=RTOL)


def test_linear_with_a_python_scalar_bias():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    assert_grads_match(lambda x, w: (ops.linear(x, w, 0.5) ** 2).sum(), x, w)


@pytest.mark.parametrize("axes", [(-1, 0, -2), (2, -3, 1), (-3, -1, -2)])
def test_transpose_with_negative_axes(axes):
    # PyTorch permute accepts negative dims, counted from the end.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4))
    out = ops.transpose(Tensor(x), axes=axes)
    np.testing.assert_array_equal(out.data, np.transpose(x, [a % 3 for a in axes]))
    assert Tensor(x).transpose(*axes).shape == out.shape
    weights = rng.standard_normal(out.shape)
    assert_grads_match(lambda t: (ops.transpose(t, axes=axes) * weights).sum(), x)


# --------------------------------------------------------------- odds and ends
def test_iterating_a_zero_dimensional_tensor_is_a_type_error():
    # PyTorch: TypeError "iteration over a 0-d tensor".
    with pytest.raises(TypeError, match="0-d"):
        iter(Tensor(np.array(1.0)))
    assert [t.item() for t in Tensor(np.array([1.0, 2.0]))] == [1.0, 2.0]


def _mode_generator(decorator, x):
    @decorator
    def gen():
        for _ in range(3):
            yield x * 2.0, is_grad_enabled()

    return gen()


@pytest.mark.parametrize(("decorator", "inside", "outside"), [(no_grad(), False, True), (enable_grad(), True, False)],
                         ids=["no_grad", "enable_grad"])
def test_grad_mode_decorators_on_a_generator_apply_while_it_runs(decorator, inside, outside):
    # PyTorch's no_grad/enable_grad wrap generator functions: the mode holds inside every resumption,
    # and the caller's mode is restored between yields.
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with enable_grad() if outside else no_grad():
        gen = _mode_generator(decorator, x)
        for _ in range(3):
            value, mode = next(gen)
            assert mode is inside and value.requires_grad is inside
            assert is_grad_enabled() is outside
            assert (x * 1.0).requires_grad is outside
        gen.close()
        assert is_grad_enabled() is outside


def test_grad_mode_decorator_on_a_generator_passes_sent_values_and_thrown_exceptions():
    @no_grad()
    def echo():
        received = yield "ready"
        while True:
            try:
                received = yield (received, is_grad_enabled())
            except KeyError:
                received = "caught"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send(5) == (5, False)
    assert gen.throw(KeyError("k")) == ("caught", False)
    assert is_grad_enabled()
    gen.close()


@pytest.mark.parametrize("decorator", [no_grad(), enable_grad()], ids=["no_grad", "enable_grad"])
def test_a_grad_mode_decorated_generator_can_be_exhausted(decorator):
    # PyTorch: `for v in decorated_gen(): ...` ends normally and `return value` reaches StopIteration.value.
    x = Tensor(np.array([1.0]), requires_grad=True)
    assert len(list(_mode_generator(decorator, x))) == 3

    @decorator
    def returns():
        yield 1
        return "done"

    gen = returns()
    next(gen)
    with pytest.raises(StopIteration) as info:
        next(gen)
    assert info.value.value == "done"


def test_to_dot_draws_before_backward_and_refuses_after_it_freed_the_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (x.exp() * 2.0).sum()
    dot = loss.to_dot()
    assert dot.startswith("digraph") and "exp" in dot and "mul" in dot and "sum" in dot
    loss.backward()
    with pytest.raises(GraphFreedError, match="retain_graph=True") as info:
        loss.to_dot()
    assert "freed" in str(info.value)


def test_to_dot_after_backward_with_retain_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (x.exp() * 2.0).sum()
    before = loss.to_dot()
    loss.backward(retain_graph=True)
    assert loss.to_dot() == before


def test_float32_with_float64_follows_numpy_promotion():
    # NumPy and PyTorch both promote float32 op float64 to float64; each leaf's grad keeps its own dtype.
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    for out in (a * b, a + b, b - a, a / b, ops.maximum(a, b)):
        assert out.dtype == np.float64
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])


# ------------------------------------------------------------------ defop
@defop
def _scale_shift(x, *, factor=2.0, shift=0.0):
    """x · factor + shift;  ∂x = g · factor."""
    return x * factor + shift, lambda g: g * factor


def test_defop_options_are_keyword_only_and_extra_positionals_fill_them_in_order():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    np.testing.assert_array_equal(_scale_shift(x, 3.0, 1.0).data, [4.0, 7.0])
    np.testing.assert_array_equal(_scale_shift(x, 3.0, shift=1.0).data, [4.0, 7.0])
    np.testing.assert_array_equal(_scale_shift(x, factor=3.0).data, [3.0, 6.0])
    np.testing.assert_array_equal(ops.clip(x, 1.5, 1.8).data, [1.5, 1.8])
    with pytest.raises(TypeError, match="positional"):
        _scale_shift(x, 3.0, 1.0, 5.0)
    with pytest.raises(TypeError, match="multiple values"):
        _scale_shift(x, 3.0, factor=1.0)


def test_defop_array_arguments_can_be_passed_by_keyword():
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)
    grads = []
    for call in (lambda: ops.linear(x, w, b), lambda: ops.linear(x=x, w=w, b=b), lambda: ops.linear(x, b=b, w=w)):
        x.grad = w.grad = b.grad = None
        out = call()
        (out * out).sum().backward()
        grads.append((out.data, x.grad, w.grad, b.grad))
    for other in grads[1:]:
        for got, want in zip(other, grads[0]):
            np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="'b'"):
        ops.linear(x, w)


def test_a_tensor_passed_as_an_option_is_refused_naming_it():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    for call in (lambda: ops.clip(x, low=Tensor(np.array(0.0))), lambda: ops.clip(x, Tensor(np.array(0.0))),
                 lambda: _scale_shift(x, 2.0, shift=Tensor(np.array(1.0)))):
        with pytest.raises(TypeError, match="option '(low|shift)'"):
            call()


def test_unknown_options_are_refused_listing_the_valid_ones():
    x = Tensor(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="lo") as info:
        ops.clip(x, lo=0.0)
    assert "low, high" in str(info.value)
    with pytest.raises(TypeError, match="factor, shift"):
        _scale_shift(x, scale=2.0)


def test_defop_refuses_var_keyword_options():
    with pytest.raises(TypeError, match="keyword-only"):

        @defop
        def bad(x, **options):
            return x, lambda g: g


# ----------------------------------------------------------- NumPy protocols
def test_numpy_ufuncs_and_functions_on_tensors_are_recorded_ops():
    rng = np.random.default_rng(5)
    x0, a = rng.standard_normal((2, 3)), rng.standard_normal((4, 2))
    v = rng.standard_normal((4, 3))
    x = Tensor(x0, requires_grad=True)
    cases = [
        (lambda t: np.exp(t), lambda g: g * np.exp(x0), (2, 3)),
        (lambda t: np.sum(t, axis=0, keepdims=True), lambda g: np.broadcast_to(g, (2, 3)), (1, 3)),
        (lambda t: a @ t, lambda g: a.T @ g, (4, 3)),
        (lambda t: a[:, :1] + t[:1], lambda g: g.sum(axis=0, keepdims=True) * [[1.0], [0.0]], (4, 3)),
    ]
    for fn, vjp, shape in cases:
        x.grad = None
        out = fn(x)
        assert isinstance(out, Tensor) and out.requires_grad and out.shape == shape
        g = v[: shape[0], : shape[1]]
        out.backward(g)
        np.testing.assert_allclose(x.grad, vjp(g), rtol=RTOL)


def test_np_clip_with_tensor_bounds_that_require_grad_is_differentiated_or_refused():
    # PyTorch: torch.clamp(x, min=lo, max=hi) with Tensor bounds is differentiable in lo and hi
    # (grad flows to lo where x < lo, to hi where x > hi). Refusing with a TypeError would also be honest.
    x = Tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
    lo = Tensor(np.array(0.0), requires_grad=True)
    hi = Tensor(np.array(1.0), requires_grad=True)
    try:
        y = np.clip(x, lo, hi)
    except TypeError as exc:
        assert "min" in str(exc) or "low" in str(exc) or "bound" in str(exc)
        return
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0])
    assert lo.grad is not None and hi.grad is not None
    np.testing.assert_array_equal([lo.grad, hi.grad], [1.0, 1.0])


def test_numpy_asarray_of_a_tensor_that_requires_grad_is_refused():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(x)
    np.testing.assert_array_equal(np.asarray(x.detach()), [1.0, 2.0])


@pytest.mark.parametrize(("call", "name"), [
    (lambda t: np.add.at(t, [0], 1.0), "numpy.add.at"),
    (lambda t: np.median(t), "numpy.median"),
    (lambda t: np.exp(t, out=np.empty(2)), "numpy.exp"),
], ids=["add.at", "sort", "exp out="])
def test_unsupported_numpy_calls_raise_type_error_naming_the_function(call, name):
    x = Tensor(np.array([2.0, 1.0]), requires_grad=True)
    with pytest.raises(TypeError, match=name.replace(".", r"\.")):
        call(x)
    np.testing.assert_array_equal(x.data, [2.0, 1.0])

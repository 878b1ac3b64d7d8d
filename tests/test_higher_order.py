"""Second and third derivatives: gradgradcheck of every built-in op (Hypothesis, float64, random
non-uniform cotangents), random op chains, third-order spot checks against closed forms,
planted second-order bugs that gradcheck misses but gradgradcheck reports, the engine's
errors for ops that cannot be differentiated twice, bad input, and float32 kept at any order."""

import importlib
import re
import warnings

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import tinygrad_lite as tg
from tinygrad_lite import GradcheckError, GradcheckWarning, Tensor, defop, gradcheck, nn, ops
from tinygrad_lite.autograd import grad
from tinygrad_lite.gradgradcheck import gradgradcheck
from tinygrad_lite.testing.second_order import assert_second_grads_match, second_order_test
from tinygrad_lite.testing.strategies import arrays, away_from_kinks, broadcastable_shapes

ggc_module = importlib.import_module("tinygrad_lite.gradgradcheck")  # the module (tg.gradgradcheck is the function)

MODES = [pytest.param({}, id="full"), pytest.param({"fast": True, "seed": 0}, id="fast")]
seeds = st.integers(0, 2**32 - 1)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@st.composite
def small_shapes(draw, min_dims=0, max_dims=2, max_size=8):
    """Shapes of at most ``max_size`` elements (full second-derivative checks are quadratic in it)."""
    ndim = draw(st.integers(min_dims, max_dims))
    shape = []
    for _ in range(ndim):
        room = max_size // max(1, int(np.prod(shape)))
        shape.append(draw(st.integers(1, max(1, min(3, room)))))
    return tuple(shape)


def small(low=-2.0, high=2.0, shape=None):
    return arrays(shape=small_shapes() if shape is None else shape, low=low, high=high)


def call(op, *args, **options):
    """``op`` inside a VJP: a Tensor when given Tensors (higher order), else its array (first order)."""
    if any(isinstance(a, Tensor) for a in args):
        return op(*args, **options)
    return op.__wrapped_op__(*args, **options)[0]


# ------------------------------------------------------------------- elementwise ops
UNARY = {  # name: (fn, strategy of its input)
    "neg": (tg.neg, small()),
    "exp": (tg.exp, small()),
    "expm1": (tg.expm1, small()),
    "log": (tg.log, small(0.2, 3.0)),
    "log1p": (tg.log1p, small(-0.8, 3.0)),
    "sqrt": (tg.sqrt, small(0.2, 3.0)),
    "tanh": (tg.tanh, small()),
    "sigmoid": (tg.sigmoid, small(-4.0, 4.0)),
    "sign": (tg.sign, away_from_kinks(shape=small_shapes())),
    "absolute": (tg.absolute, away_from_kinks(shape=small_shapes())),
    "relu": (tg.relu, away_from_kinks(shape=small_shapes())),
    "clip": (lambda x: tg.clip(x, low=-1.0, high=1.0), away_from_kinks(shape=small_shapes(), kinks=(-1.0, 1.0))),
    "clip_low": (lambda x: tg.clip(x, low=0.5), away_from_kinks(shape=small_shapes(), kinks=(0.5,))),
    "square_pow": (lambda x: x**2, small()),  # the exponent-2 fast path
    "cube_pow": (lambda x: tg.power(x, 3), small()),
    "fractional_pow": (lambda x: x**1.5, small(0.2, 3.0)),
    "rpow": (lambda x: 2.0**x, small()),
    "copy": (lambda x: x.copy(), small()),
    "astype": (lambda x: tg.astype(x, dtype=np.float64), small()),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary_ops(name):
    fn, strategy = UNARY[name]

    @given(strategy, seeds)
    def check(x, seed):
        assert_second_grads_match(lambda t: fn(t) * 1.5, x, seed=seed)  # * 1.5: the check's output is an op's

    check()


def separated(a, b):
    """a and b moved into alternate unit cells (a in [2k+.1, 2k+.9], b in [2k+1.1, 2k+1.9]): every pair
    of broadcast elements differs by ≥ 0.2, in either order, so max/min have no ties."""
    cell = lambda v, odd: 2 * np.floor(v) + odd + 0.1 + 0.8 * (v - np.floor(v))
    return cell(a, 0), cell(b, 1)


@st.composite
def broadcast_pair(draw, low=-2.0, high=2.0):
    sa, sb = draw(broadcastable_shapes(n=2, max_dims=2, max_side=3))
    return draw(arrays(shape=sa, low=low, high=high)), draw(arrays(shape=sb, low=low, high=high))


BINARY = {  # name: (fn, how to place the drawn pair in its domain)
    "add": (tg.add, lambda a, b: (a, b)),
    "sub": (tg.sub, lambda a, b: (a, b)),
    "mul": (tg.mul, lambda a, b: (a, b)),
    "div": (tg.div, lambda a, b: (a, np.where(b < 0, b - 0.5, b + 0.5))),
    "pow": (tg.power, lambda a, b: (np.abs(a) + 0.3, np.where(np.abs(b) < 0.1, np.abs(b) + 0.1, b))),  # y ≠ 0: below
    "maximum": (tg.maximum, separated),
    "minimum": (tg.minimum, separated),
}


@pytest.mark.parametrize("name", BINARY)
def test_binary_ops_with_broadcasting(name):
    fn, place = BINARY[name]

    @given(broadcast_pair(), seeds)
    def check(pair, seed):
        a, b = place(*pair)
        assert_second_grads_match(lambda x, y: fn(x, y) * fn(x, y), a, b, seed=seed)  # squared: all terms

    check()


@given(broadcastable_shapes(n=3, max_dims=2, max_side=3), st.data())
def test_where_with_broadcasting(shapes, data):
    condition = data.draw(arrays(shape=shapes[0], dtype=np.bool_, elements=st.booleans()))
    a, b = data.draw(arrays(shape=shapes[1])), data.draw(arrays(shape=shapes[2]))
    assert_second_grads_match(lambda c, x, y: tg.where(c, x * x, y * x.sum()), condition, a, b)


# ------------------------------------------------------------------------ matmul, linear
@st.composite
def matmul_pair(draw):
    kind = draw(st.sampled_from(["2d", "batched", "vector-left", "vector-right", "vectors"]))
    n, k, m, batch = (draw(st.integers(1, 3)) for _ in range(4))
    shapes = {"2d": ((n, k), (k, m)), "batched": ((batch, n, k), (k, m)) if batch % 2 else ((n, k), (2, k, m)),
              "vector-left": ((k,), (k, m)), "vector-right": ((n, k), (k,)), "vectors": ((k,), (k,))}[kind]
    return tuple(draw(arrays(shape=s)) for s in shapes)


@given(matmul_pair())
def test_matmul(pair):
    assert_second_grads_match(lambda a, b: tg.matmul(a, b).tanh(), *pair)


@given(st.sampled_from([(3,), (2, 3), (2, 2, 3)]), st.sampled_from([(2,), (), (1, 2)]), st.data())
def test_linear(x_shape, b_shape, data):
    x, w, b = (data.draw(arrays(shape=s)) for s in (x_shape, (3, 2), b_shape))
    assert_second_grads_match(lambda x, w, b: ops.linear(x, w, b) ** 2, x, w, b)


# ---------------------------------------------------------------------------- reductions
@st.composite
def with_axis(draw, elements=None, tuples=True):
    """(array, axis) with axis None, an int (maybe negative) or a tuple of axes."""
    shape = draw(small_shapes(min_dims=1, max_dims=3))
    x = draw(elements(shape) if elements else arrays(shape=shape))
    choices = [st.none(), st.integers(-x.ndim, x.ndim - 1)]
    if tuples:
        choices.append(st.lists(st.integers(0, x.ndim - 1), min_size=1, unique=True).map(tuple))
    return x, draw(st.one_of(*choices))


REDUCTIONS = {
    "sum": (tg.sum, None),
    "mean": (tg.mean, None),
    "max": (tg.max, lambda shape: away_from_kinks(shape=shape, distinct=True, margin=0.05)),
    "min": (tg.min, lambda shape: away_from_kinks(shape=shape, distinct=True, margin=0.05)),
    "logsumexp": (tg.logsumexp, None),
}


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_over_axes(name):
    fn, elements = REDUCTIONS[name]

    @given(with_axis(elements), st.booleans())
    def check(x_axis, keepdims):
        x, axis = x_axis
        assert_second_grads_match(lambda t: fn(t * t, axis=axis, keepdims=keepdims) * 1.5, x)

    check()


@pytest.mark.parametrize("fn", [tg.softmax, tg.log_softmax], ids=["softmax", "log_softmax"])
def test_softmax_over_an_axis(fn):
    @given(with_axis(tuples=False))
    def check(x_axis):
        x, axis = x_axis
        assert_second_grads_match(lambda t: fn(t, axis=-1 if axis is None else axis), x)

    check()


# -------------------------------------------------------------------------------- shape ops
@given(small_shapes(min_dims=1, max_dims=3), st.data())
def test_reshape_and_transpose(shape, data):
    x = data.draw(arrays(shape=shape))
    axes = data.draw(st.permutations(range(x.ndim)).map(tuple) | st.none())
    assert_second_grads_match(lambda t: tg.transpose(tg.reshape(t * t, shape=(-1,)).reshape(shape), axes=axes), x)


@given(broadcastable_shapes(n=2, max_dims=3, max_side=2), st.data())
def test_broadcast_to(shapes, data):
    x = data.draw(arrays(shape=shapes[0]))
    target = np.broadcast_shapes(*shapes)
    assert_second_grads_match(lambda t: tg.broadcast_to(t, shape=target) * tg.broadcast_to(t, shape=target), x)


INDICES = [1, -1, (slice(None), 0), (slice(0, 2), None, Ellipsis), (Ellipsis, slice(None, None, -1)),
           np.array([0, 2, 0]), (np.array([1, 1, 2]), np.array([0, 1, 0])), (slice(None), np.array([1, 1])),
           np.array([True, False, True])]


@given(arrays(shape=(3, 2)), st.sampled_from(INDICES))
def test_getitem_basic_and_integer_array_indices(x, index):
    assert_second_grads_match(lambda t: (t * t)[index], x)


@given(st.integers(1, 3), st.sampled_from([0, 1, -1]), st.booleans(), st.data())
def test_concatenate_and_stack(n, axis, as_list, data):
    xs = [data.draw(arrays(shape=(2, 2))) for _ in range(n)]
    join = lambda f, ts: f(list(ts), axis=axis) if as_list else f(*ts, axis=axis)
    assert_second_grads_match(lambda *ts: join(tg.concatenate, [t * t for t in ts]), *xs)
    assert_second_grads_match(lambda *ts: join(tg.stack, [t * ts[0] for t in ts]), *xs)


# ------------------------------------------------------------------------------------ nn
@st.composite
def logits_and_targets(draw):
    m, c = draw(st.integers(1, 3)), draw(st.integers(2, 3))
    z = draw(arrays(shape=(m, c)))
    if draw(st.booleans()):
        return z, np.array(draw(st.lists(st.integers(0, c - 1), min_size=m, max_size=m)))
    scores = draw(arrays(shape=(m, c)))
    return z, np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)  # probability rows


@given(logits_and_targets(), st.sampled_from(["mean", "sum", "none"]))
def test_cross_entropy_with_indices_and_probability_rows(z_target, reduction):
    z, target = z_target
    assert_second_grads_match(lambda t: nn.cross_entropy(t, target, reduction=reduction), z)


@given(logits_and_targets(), st.sampled_from(["mean", "sum", "none"]))
def test_nll_loss_of_log_softmax(z_target, reduction):
    z, target = z_target
    assert_second_grads_match(lambda t: nn.nll_loss(tg.log_softmax(t * t, axis=1), target, reduction=reduction), z)


@given(arrays(shape=(2, 3)), arrays(shape=(2, 3), dtype=np.bool_, elements=st.booleans()))
def test_dropout_with_a_fixed_mask(x, mask):
    keep = mask / 0.75
    assert_second_grads_match(lambda t: nn.dropout(t, keep=keep), x)
    assert_second_grads_match(lambda t: nn.dropout(t.tanh(), keep=keep) * t, x)


# -------------------------------------------------------------------- random compositions
CHAIN_UNARY = {
    "tanh": tg.tanh,
    "sigmoid": tg.sigmoid,
    "half_square": lambda t: 0.5 * t * t,
    "exp_tanh": lambda t: tg.exp(tg.tanh(t)),
    "log1p_square": lambda t: tg.log1p(t * t),
    "sqrt_square_plus_1": lambda t: tg.sqrt(t * t + 1),
    "softmax": lambda t: tg.softmax(t, axis=-1),
    "log_softmax": lambda t: tg.log_softmax(t, axis=-1),
    "minus_row_logsumexp": lambda t: t - tg.logsumexp(t, axis=0, keepdims=True),
    "flip_columns": lambda t: t[:, ::-1],
}
CHAIN_BINARY = {
    "add": lambda t, y: t + y,
    "mul": lambda t, y: t * y,
    "sub_column_mean": lambda t, y: t - tg.mean(y, axis=1, keepdims=True),
    "div_positive": lambda t, y: t / (1 + y * y),
    "matmul_gram": lambda t, y: (t @ y.T) @ y * 0.3,
}


@given(st.lists(st.sampled_from([*CHAIN_UNARY, *CHAIN_BINARY]), min_size=1, max_size=4),
       arrays(shape=(2, 3)), arrays(shape=(2, 3)), seeds)
def test_random_chains_of_ops(names, x, y, seed):
    def chain(t, u):
        for name in names:
            t = CHAIN_UNARY[name](t) if name in CHAIN_UNARY else CHAIN_BINARY[name](t, u)
        return t

    assert_second_grads_match(chain, x, y, seed=seed)


# --------------------------------------------------------------------------- third order
def derivatives(fn, x, order):
    """[f(x), f'(x), f''(x), ...] of an elementwise ``fn``, each by grad of the previous one's sum."""
    t = Tensor(x, requires_grad=True)
    values = [fn(t)]
    for _ in range(order):
        values.append(grad(values[-1].sum(), t, create_graph=True)[0])
    return [v.data for v in values]


@given(arrays(shape=(4,)))
def test_third_derivative_of_tanh_has_its_closed_form(x):
    _, d1, d2, d3 = derivatives(tg.tanh, x, 3)
    t = np.tanh(x)
    np.testing.assert_allclose(d1, 1 - t**2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d2, -2 * t * (1 - t**2), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d3, (1 - t**2) * (6 * t**2 - 2), rtol=1e-11, atol=1e-14)


@given(arrays(shape=(4,)))
def test_third_derivative_of_exp_times_tanh_follows_leibniz(x):
    *_, d3 = derivatives(lambda u: tg.exp(u) * tg.tanh(u), x, 3)
    t = np.tanh(x)
    t1, t2, t3 = 1 - t**2, -2 * t * (1 - t**2), (1 - t**2) * (6 * t**2 - 2)
    np.testing.assert_allclose(d3, np.exp(x) * (t + 3 * t1 + 3 * t2 + t3), rtol=1e-11, atol=1e-13)


def test_fourth_derivative_of_a_quartic():
    x = rand(5)
    *_, d3, d4 = derivatives(lambda u: u**4, x, 4)
    np.testing.assert_allclose(d3, 24 * x, rtol=1e-13)
    np.testing.assert_allclose(d4, np.full(5, 24.0))


@pytest.mark.parametrize("fn", [tg.tanh, lambda u: tg.exp(u) * tg.sigmoid(u) / (1 + u * u)], ids=["tanh", "mixed"])
def test_third_derivatives_pass_gradgradcheck_of_the_gradient(fn):
    w = rand(2, 3, seed=1)

    def gradient(t):  # its gradgradcheck checks third derivatives
        with tg.enable_grad():  # gradcheck's finite differences run fn under no_grad
            return grad((fn(t) * w).sum(), t, create_graph=True)[0]

    assert gradgradcheck(gradient, [rand(2, 3)], seed=0)
    assert gradgradcheck(gradient, [rand(2, 3)], fast=True, seed=1)


# ------------------------------------- engine bugs these checks found (fixed; kept as regressions)
def test_pow_mixed_second_derivative_at_a_zero_exponent():
    assert gradgradcheck(tg.power, [np.array([0.5, 2.0]), np.zeros(2)])


def test_third_derivative_through_integer_array_indexing():
    x = rand(3)
    _, d1, d2, d3 = derivatives(lambda u: u[np.array([0, 0, 2])] ** 3, x, 3)  # 2x₀³ + x₂³
    np.testing.assert_allclose(d2, [12 * x[0], 0, 6 * x[2]])
    np.testing.assert_allclose(d3, [12.0, 0, 6.0])


def test_second_derivative_with_create_graph_through_a_scalar_index():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    g1 = grad((x[0] * x).sum(), x, create_graph=True)[0]  # [x₀ + Σx, x₀]
    g2 = grad((g1 * g1).sum(), x, create_graph=True)[0]
    np.testing.assert_allclose(g2.data, [18.0, 8.0])


# -------------------------------------------------------------- planted second-order bugs
@defop
def cube(x):
    """The README's twice-differentiable user op: x³;  ∂x = g ⊙ 3x²."""
    return x**3, lambda g: g * 3 * x**2


test_cube_second_derivatives = second_order_test(cube, arrays(shape=small_shapes()))


@pytest.mark.parametrize("mode", MODES)
def test_a_twice_differentiable_user_op_passes(mode):
    assert gradgradcheck(cube, [rand(3, 2)], **mode)
    assert gradgradcheck(lambda x, y: cube(x) * cube(y), [rand(3, 2), rand(2, seed=1)], **mode)


@defop
def wrong_double(x):
    """2x, with a wrong VJP (3g instead of 2g): its values are right, its derivative is not."""
    return 2 * x, lambda g: 3 * g


@defop
def x_plus_y_squared(x, y):
    """x + y²;  ∂x = g, ∂y = g ⊙ 2y, with 2y made by ``wrong_double``: right to first order only."""
    return x + y * y, (lambda g: g, lambda g: g * call(wrong_double, y))


@defop
def wrong_scale(g, x):
    """g ⊙ 2x, with a wrong VJP for g (3x instead of 2x)."""
    return g * 2 * x, (lambda gg: gg * 3 * x, lambda gg: gg * 2 * g)


@defop
def square_via_wrong_scale(x):
    """x²;  ∂x = g ⊙ 2x made by ``wrong_scale``: its Jacobian in the cotangent is wrong when recorded."""
    return x * x, lambda g: call(wrong_scale, g, x)


@pytest.mark.parametrize("mode", MODES)
def test_right_first_order_but_wrong_second_order_is_reported_for_the_input(mode):
    x, y = rand(2, 3), rand(3, seed=1)
    assert gradcheck(x_plus_y_squared, [x, y], **mode)  # first order: right
    with pytest.raises(GradcheckError) as info:
        gradgradcheck(x_plus_y_squared, [x, y], **mode)
    message = str(info.value)
    assert message.startswith("gradgradcheck failed for input 1: the derivative of input 1's gradient")
    assert f"gradcheck ({'fast' if mode else 'full'}) failed for input 1" in message
    if not mode:
        analytic, numeric = map(float, re.search(r"analytic (\S+) vs numeric (\S+) ", message).groups())
        assert analytic / numeric == pytest.approx(1.5, rel=1e-6)  # 3g for 2g


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_jacobian_in_the_cotangent_is_reported(mode):
    x = rand(2, 2)
    assert gradcheck(square_via_wrong_scale, [x], **mode)
    with pytest.raises(GradcheckError, match=r"failed for the cotangent v \(input 1 below\).*input 0's gradient"):
        gradgradcheck(square_via_wrong_scale, [x], **mode)


def test_the_correct_twins_pass():
    right_double = defop(lambda x: (2 * x, lambda g: 2 * g), name="right_double")
    op = defop(lambda x, y: (x + y * y, (lambda g: g, lambda g: g * call(right_double, y))), name="right_op")
    assert gradgradcheck(op, [rand(2, 3), rand(3, seed=1)])


def test_a_vjp_that_differs_on_tensors_is_reported():
    @defop
    def branchy(x):
        """x², whose VJP adds 0.5 when it runs on Tensors: backward and create_graph disagree."""
        return x * x, lambda g: g * 2 * x + (0.5 if isinstance(g, Tensor) else 0.0)

    assert gradcheck(branchy, [rand(3)])
    with pytest.raises(GradcheckError, match=r"input 0: its gradient recorded with create_graph=True is .* but "
                                             r"backward\(\) gives"):
        gradgradcheck(branchy, [rand(3)])


def test_a_failure_no_single_block_reproduces_is_still_reported(monkeypatch):
    bug = {"on": True}
    flaky = defop(lambda x: (x * x, lambda g: call(wrong_double, x) * g if bug["on"] else 2 * x * g), name="flaky")
    real_locate = ggc_module._locate

    def locate_after_fix(*args):
        bug["on"] = False
        return real_locate(*args)

    monkeypatch.setattr(ggc_module, "_locate", locate_after_fix)
    with pytest.raises(GradcheckError, match=r"all second derivatives checked together.*gradcheck \(full\) failed"):
        gradgradcheck(flaky, [rand(3)])


def test_second_order_test_factory_reports_a_planted_bug():
    test = second_order_test(x_plus_y_squared, arrays(shape=(2,)), arrays(shape=(2,)))
    quick = settings(max_examples=3, phases=[Phase.generate], database=None)(test)
    with pytest.raises(GradcheckError, match="failed for input 1"):
        quick()


# ----------------------------------------------------------- ops that cannot go twice
@defop
def scatter_sum(x):
    """out[j] = Σ_{i: index[i] = j} x[i] with np.add.at (no Tensor version);  ∂x = g[index]."""
    index = np.array([0, 0, 2])
    out = np.zeros(3)
    np.add.at(out, index, x)
    return out, lambda g: g[index]


def test_an_op_using_add_at_passes_gradcheck_but_not_twice():
    x = rand(3)
    assert gradcheck(lambda t: scatter_sum(t) ** 2, [x])
    with pytest.raises(TypeError, match=r"cannot differentiate op 'scatter_sum' twice.*numpy\.add\.at"):
        gradgradcheck(lambda t: scatter_sum(t) ** 2, [x])


def test_an_impure_op_is_refused():
    rng = np.random.default_rng(0)

    @defop
    def jittery(x):
        """x² plus noise far below the finite-difference step: first order passes."""
        return x * x + 1e-12 * rng.random(), lambda g: g * 2 * x

    assert gradcheck(jittery, [rand(3)])
    with pytest.raises(RuntimeError, match="'jittery' gave a different output when re-run"):
        gradgradcheck(jittery, [rand(3)])


def test_an_impure_op_keeps_its_own_draws_in_a_create_graph_gradient():
    rng = np.random.default_rng(0)

    @defop
    def noisy(x):
        """A random mask drawn inside: re-running it would draw another."""
        keep = (rng.random(x.shape) > 0.5).astype(x.dtype)
        return x * keep, lambda g: g * keep

    x = Tensor(np.ones(64), requires_grad=True)
    y = noisy(x)
    (g,) = grad(y.sum(), x, create_graph=True)  # exact: the mask the forward used
    np.testing.assert_array_equal(g.data, (y.data != 0).astype(float))
    with pytest.raises(RuntimeError, match="'noisy' gave a different output when re-run"):
        grad((g * x).sum(), x)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_bad_input_is_refused_before_any_comparison():
    x = rand(3)
    with pytest.raises(TypeError, match="gradgradcheck: fn must be callable"):
        gradgradcheck("tanh", [x])
    with pytest.raises(ValueError, match="gradgradcheck: need eps > 0"):
        gradgradcheck(tg.tanh, [x], eps=0.0)
    with pytest.raises(ValueError, match="gradgradcheck: need eps > 0"):
        gradgradcheck(tg.tanh, [x], atol=float("nan"))
    with pytest.raises(TypeError, match=r"gradgradcheck: inputs must be a list or tuple.*pass \[x\]"):
        gradgradcheck(tg.tanh, {"x": x})
    with pytest.raises(ValueError, match="gradgradcheck: no input needs a gradient"):
        gradgradcheck(tg.tanh, [np.arange(3)])
    with pytest.raises(TypeError, match="gradgradcheck: fn must return a Tensor"):
        gradgradcheck(lambda t: t.data, [x])
    with pytest.raises(ValueError, match=r"gradgradcheck: fn's output is nan"):
        gradgradcheck(tg.log, [-np.ones(2)])
    with pytest.raises(ValueError, match=r"gradgradcheck: the gradient of input 0 is inf at element \(1,\)"):
        gradgradcheck(tg.sqrt, [np.array([1.0, 0.0])], np.ones(2))


def test_bad_grad_outputs_are_refused():
    x = rand(2, 3)
    with pytest.raises(ValueError, match=r"grad_outputs has shape \(3,\) but fn's output has shape \(2, 3\)"):
        gradgradcheck(tg.tanh, [x], rand(3))
    with pytest.raises(ValueError, match=r"grad_outputs has a non-finite value nan at element \(0, 1\)"):
        gradgradcheck(tg.tanh, [x], np.where(np.eye(2, 3, 1) > 0, np.nan, 1.0))
    with pytest.raises(TypeError, match="grad_outputs has dtype <U1"):
        gradgradcheck(tg.tanh, [x], np.full((2, 3), "a"))
    with pytest.warns(GradcheckWarning, match="gradgradcheck: grad_outputs has dtype float32"):
        assert gradgradcheck(tg.tanh, [x], rand(2, 3).astype(np.float32))


def test_given_grad_outputs_are_used_and_nothing_is_mutated():
    x, labels, v = rand(2, 3), np.array([0, 2]), rand(2, 3, seed=1)
    saved = x.copy(), labels.copy(), v.copy()
    seen = []
    gradgradcheck(lambda t, c: t.tanh() * c.sum(), [x, labels], Tensor(v))

    def fn(t, c):
        seen.append(c.dtype)
        return t.tanh() * c.sum()

    assert gradgradcheck(fn, [x, labels], v, fast=True, seed=3)
    assert set(seen) == {labels.dtype}  # integer inputs stay constants
    for before, after in zip(saved, (x, labels, v)):
        np.testing.assert_array_equal(before, after)


def test_float32_input_is_checked_in_float64_with_a_warning_at_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert gradgradcheck(tg.tanh, [rand(3).astype(np.float32)])
    assert [str(w.message)[:41] for w in caught] == ["gradgradcheck: input 0 has dtype float32;"]
    assert caught[0].filename == __file__


def test_empty_output_and_an_unused_input_pass():
    assert gradgradcheck(lambda t: t[:0], [rand(3)])
    assert gradgradcheck(lambda a, b: a * a, [rand(3), rand(2)])
    assert gradgradcheck(lambda a: Tensor(np.ones(2)), [rand(3)])  # constant output: every derivative is 0


# ------------------------------------------------------------------- float32 at any order
FLOAT32_OPS = {
    "tanh": tg.tanh,
    "exp": tg.exp,
    "sigmoid": tg.sigmoid,
    "mul_broadcast": lambda t: t * tg.mean(t, axis=0),
    "matmul": lambda t: t @ t.T,
    "log_softmax": lambda t: tg.log_softmax(t, axis=1),
    "cross_entropy": lambda t: nn.cross_entropy(t * t, np.array([0, 2]), reduction="none"),
    "sum_keepdims": lambda t: tg.sum(t * t, axis=1, keepdims=True),
}


@pytest.mark.parametrize("name", FLOAT32_OPS)
def test_second_and_third_derivatives_keep_float32(name):
    fn, x, w = FLOAT32_OPS[name], rand(2, 3), rand(2, 3, seed=1)
    results = {}
    for dtype in (np.float32, np.float64):
        t = Tensor(x.astype(dtype), requires_grad=True)
        out = fn(t)
        g1 = grad(out, t, np.ones(out.shape, dtype), create_graph=True)[0]
        g2 = grad((g1 * w.astype(dtype)).sum(), t, create_graph=True)[0]
        g3 = grad((g2 * g1).sum(), t)[0]
        assert (g1.dtype, g2.dtype, g3.dtype) == (np.dtype(dtype),) * 3
        results[dtype] = g2.data, g3.data
    for low, high in zip(results[np.float32], results[np.float64]):
        np.testing.assert_allclose(low, high, rtol=2e-4, atol=2e-4)

"""gradcheck and tinygrad_lite.testing: passes on correct gradients, reports planted bugs
(full and fast mode), refuses bad input with a clear error, and scales to a 109k-parameter MLP."""

import re
import warnings

import numpy as np
import pytest
from hypothesis import given

import tinygrad_lite as tg
from tinygrad_lite import GradcheckError, GradcheckWarning, Tensor, defop, gradcheck
from tinygrad_lite.gradcheck import numeric_jacobian
from tinygrad_lite.testing import assert_grads_match
from tinygrad_lite.testing.strategies import arrays, away_from_kinks

MODES = [pytest.param({}, id="full"), pytest.param({"fast": True, "seed": 0}, id="fast")]


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ------------------------------------------------------------- correct gradients pass
@pytest.mark.parametrize("mode", MODES)
def test_scalar_and_non_scalar_outputs_pass(mode):
    a, b = rand(3, 4), rand(4, 2, seed=1)
    assert gradcheck(lambda a, b: ((a @ b).tanh() * 3).sum(), [a, b], **mode) is True
    assert gradcheck(lambda a, b: (a @ b).tanh(), [a, b], **mode) is True  # the whole Jacobian / vᵀJu
    assert gradcheck(lambda a: a.sum(axis=0) * a[0], [a], **mode) is True


def test_constants_are_not_checked_and_inputs_are_left_alone():
    x, labels = rand(4, 3), np.array([0, 2, 1, 1])
    w = Tensor(rand(3, seed=1), requires_grad=False)  # a float constant
    p = Tensor(rand(3, seed=2), requires_grad=True)
    saved = x.copy(), w.data.copy(), p.data.copy()

    def fn(x, labels, w, p):
        assert x.dtype == np.float64 and labels.dtype.kind == "i" and not w.requires_grad
        return (x * w + p)[np.arange(4), labels.data]

    assert gradcheck(fn, [x, labels, w, p])
    assert gradcheck(fn, (x, labels, w, p), fast=True, seed=1)
    for before, after in zip(saved, (x, w.data, p.data)):
        np.testing.assert_array_equal(before, after)
    assert p.grad is None and w.grad is None  # gradcheck works on its own float64 copies


def test_a_single_array_or_tensor_is_one_input():
    assert gradcheck(lambda t: t.exp(), rand(3))
    assert gradcheck(lambda t: t.exp(), Tensor(rand(3), requires_grad=True), fast=True, seed=0)


def test_empty_output_and_empty_input():
    assert gradcheck(lambda t: t[:0], [rand(3)])
    assert gradcheck(lambda a, b: a.sum() + b.sum(), [np.zeros((0, 2)), rand(2)])
    assert gradcheck(lambda a, b: a.sum() + b.sum(), [np.zeros((0, 2)), rand(2)], fast=True, seed=0)


def test_low_precision_inputs_are_checked_in_float64_with_a_warning():
    x = rand(3, 2).astype(np.float32)
    seen = []
    with pytest.warns(GradcheckWarning, match="input 0 has dtype float32.*float64"):
        assert gradcheck(lambda t: seen.append(t.dtype) or (t * t).sum(), [x])
    assert set(seen) == {np.dtype(np.float64)}


def test_low_precision_output_warns():
    @defop
    def to_float32(x):
        return x.astype(np.float32), lambda g: g

    with pytest.warns(GradcheckWarning, match="returned dtype float32"):
        gradcheck(lambda t: to_float32(t * 1000.0), [rand(3)], atol=100.0, rtol=1.0)


def test_fast_mode_is_reproducible_with_a_seed():
    @defop
    def off(x):
        return x * 2, lambda g: g * 2.5

    messages = set()
    for _ in range(2):
        with pytest.raises(GradcheckError) as info:
            gradcheck(off, [rand(5, 4)], fast=True, seed=7)
        messages.add(str(info.value))
    assert len(messages) == 1


def test_numeric_jacobian_of_a_product():
    x, y = rand(3), rand(3, seed=1)
    tensors = [Tensor(x), Tensor(y)]
    np.testing.assert_allclose(numeric_jacobian(lambda a, b: a * b, tensors, 0), np.diag(y), atol=1e-9)
    np.testing.assert_allclose(numeric_jacobian(lambda a, b: (a * b).sum(), tensors, 1), x[None], atol=1e-9)


# ------------------------------------------------------------------ the failure report
@defop
def double_but_one(x):
    """2x, with a VJP that is wrong (5 instead of 2) at element (1, 2) only."""
    scale = np.full(x.shape, 2.0)
    scale[1, 2] = 5.0
    return 2 * x, lambda g: g * scale


def test_full_report_names_input_element_values_and_errors():
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda c, x: double_but_one(x) + c, [np.arange(3), rand(2, 3)])
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert "(full)" in message and "input 1 at element (1, 2)" in message
    assert "output element (1, 2)" in message
    found = re.search(r"analytic (\S+) vs numeric (\S+) \(absolute error (\S+), relative error (\S+)\)", message)
    analytic, numeric, abs_err, rel_err = map(float, found.groups())
    assert analytic == 5.0 and numeric == pytest.approx(2.0, rel=1e-8)
    assert abs_err == pytest.approx(3.0, rel=1e-2) and rel_err == pytest.approx(1.5, rel=1e-2)


def test_fast_report_bisects_to_the_wrong_element():
    x = rand(6, 5)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda c, x: double_but_one(x).sum() * c, [np.float64(1.0), x], fast=True, seed=3)
    message = str(info.value)
    assert "(fast) failed for input 1" in message and "absolute error" in message and "relative error" in message
    assert "points at element (1, 2), which fails" in message


@pytest.mark.parametrize("mode", MODES)
def test_nan_gradients_fail(mode):
    @defop
    def nan_grad(x):
        return 2 * x, lambda g: g * np.nan

    with pytest.raises(GradcheckError, match="analytic nan"):
        gradcheck(nan_grad, [rand(3)], **mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_cut_graph_is_reported_with_a_hint(mode):
    with pytest.raises(GradcheckError, match="does not require grad.*graph cut"):
        gradcheck(lambda t: Tensor(np.sin(t.data)), [rand(3)], **mode)


# ------------------------------------------------------- planted bugs are caught
# Each op is correct except for one VJP. The correct twin passes, so the failure is the bug's.
def make_bias_add(reduce_b):
    @defop
    def bias_add(x, b):
        """x + b for x (m, n), b (n,);  ∂b = Σ_rows g (the engine would sum a (m, n) gradient itself)."""
        return x + b, (lambda g: g, reduce_b)

    return bias_add


def make_matmul(grad_a, grad_b):
    @defop
    def mm(a, b):
        return a @ b, (lambda g: grad_a(g, a, b), lambda g: grad_b(g, a, b))

    return mm


def make_sub(sign_b):
    @defop
    def minus(a, b):
        return a - b, (lambda g: g, lambda g: sign_b * g)

    return minus


right_a, right_b = (lambda g, a, b: g @ b.T), (lambda g, a, b: a.T @ g)
PLANTED = {  # name: (correct op, buggy op, inputs, input the report must name)
    "bias grad is the mean over rows": (
        make_bias_add(lambda g: g.sum(axis=0)), make_bias_add(lambda g: g.mean(axis=0)),
        lambda: [rand(5, 3), rand(3, seed=1)], 1),
    "bias grad is the first row": (
        make_bias_add(lambda g: g.sum(axis=0)), make_bias_add(lambda g: g[0]),
        lambda: [rand(5, 3), rand(3, seed=1)], 1),
    "matmul grad of a is g @ b": (
        make_matmul(right_a, right_b), make_matmul(lambda g, a, b: g @ b, right_b),
        lambda: [rand(4, 4), rand(4, 4, seed=1)], 0),
    "matmul grad of b is a @ g": (
        make_matmul(right_a, right_b), make_matmul(right_a, lambda g, a, b: a @ g),
        lambda: [rand(4, 4), rand(4, 4, seed=1)], 1),
    "sub grad of b has the wrong sign": (
        make_sub(-1.0), make_sub(+1.0), lambda: [rand(3, 2), rand(3, 2, seed=1)], 1),
}


@pytest.mark.parametrize("name", PLANTED)
@pytest.mark.parametrize("mode", [*MODES, pytest.param({"fast": True, "seed": 123}, id="fast-seed123")])
def test_planted_wrong_vjp_is_reported(name, mode):
    correct, buggy, inputs, wrong_input = PLANTED[name]
    for fn in (lambda *t: correct(*t), lambda *t: (correct(*t) * t[0]).tanh().sum()):  # raw and composed
        assert gradcheck(fn, inputs(), **mode)
    for fn in (lambda *t: buggy(*t), lambda *t: (buggy(*t) * t[0]).tanh().sum()):
        with pytest.raises(GradcheckError, match=f"failed for input {wrong_input}"):
            gradcheck(fn, inputs(), **mode)


@pytest.mark.parametrize("mode", MODES)
def test_engine_refuses_a_vjp_of_a_non_broadcastable_shape(mode):
    bad = make_bias_add(lambda g: g.sum(axis=1))  # (m,) for a bias of shape (n,)
    with pytest.raises(ValueError, match=r"op 'bias_add'.*shape \(5,\) for its argument 1.*shape \(3,\)"):
        gradcheck(bad, [rand(5, 3), rand(3, seed=1)], **mode)


def test_the_whole_mlp_fast_check_catches_a_sign_error_in_one_bias():
    @defop
    def bias_add_wrong_sign(x, b):
        return x + b, (lambda g: g, lambda g: -g.sum(axis=0))

    params, loss = mlp_784(bias_add=bias_add_wrong_sign)
    with pytest.raises(GradcheckError, match="input 3"):  # b2, the only bias added with the wrong op
        gradcheck(loss, params, fast=True, seed=0)


# --------------------------------------------------------------------- bad input
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda t: t.data.sum(), "must return a Tensor, got float64"),
        (lambda t: t.data, "must return a Tensor, got ndarray"),
        (lambda t: (t.sum(), t), "got tuple.*one output at a time"),
        (lambda t: t.argmax(), "float Tensor, got dtype int64"),
    ],
)
def test_fn_must_return_a_float_tensor(mode, fn, match):
    with pytest.raises(TypeError, match=match):
        gradcheck(fn, [rand(3)], **mode)


@pytest.mark.parametrize(
    "inputs",
    [[np.arange(3)], [Tensor(rand(3))], [np.array([True, False])], [], (np.arange(2), Tensor(rand(2)))],
)
def test_nothing_to_check_is_an_error(inputs):
    with pytest.raises(ValueError, match="no input needs a gradient"):
        gradcheck(lambda *t: t[0] * 1.0 if t else Tensor(1.0), inputs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "fn, shapes",
    [(tg.add, [(3,), (4,)]), (lambda a, b: a @ b, [(2, 3), (2, 3)]), (lambda a, b: a * b, [(2, 3), (3, 2)])],
)
def test_mismatched_shapes_name_the_input_shapes(mode, fn, shapes):
    inputs = [rand(*s) for s in shapes]
    pattern = re.escape(f"fn failed on inputs of shapes {shapes[0]}, {shapes[1]}")
    with pytest.raises(ValueError, match=pattern):
        gradcheck(fn, inputs, **mode)


@pytest.mark.parametrize(
    "inputs, error, match",
    [
        (3.0, TypeError, "inputs must be a list or tuple.*got float.*\\[x\\]"),
        (None, TypeError, "got NoneType"),
        ("abc", TypeError, "got str"),
        ({"x": np.ones(2)}, TypeError, "got dict"),
        ([[[1.0, 2.0], [3.0]]], TypeError, "input 0 is not an array"),
        ([np.ones(2, dtype=complex)], TypeError, "input 0 has dtype complex128"),
        ([np.array(["a"])], TypeError, "input 0 has dtype <U1"),
        ([np.ones(2), np.array([1.0, np.nan])], ValueError, r"input 1 has a non-finite value nan at element \(1,\)"),
    ],
)
def test_unusable_inputs(inputs, error, match):
    with pytest.raises(error, match=match):
        gradcheck(lambda *t: t[0].sum(), inputs)


def test_fn_taking_the_wrong_number_of_inputs():
    with pytest.raises(TypeError, match="cannot take the 1 inputs.*'b'"):
        gradcheck(lambda a, b: a + b, [rand(2)])
    with pytest.raises(TypeError, match="cannot take the 2 inputs"):
        gradcheck(lambda a: a, [rand(2), rand(2)])
    with pytest.raises(TypeError, match="fn must be callable"):
        gradcheck(np.ones(2), [rand(2)])


def test_output_outside_the_domain_is_an_error_not_a_pass():
    with np.errstate(invalid="ignore"), pytest.raises(ValueError, match=r"output is nan at element \(0,\).*domain"):
        gradcheck(lambda t: t.log(), [np.array([-1.0, 2.0])])


@pytest.mark.parametrize("bad", [{"eps": 0.0}, {"eps": float("nan")}, {"atol": -1.0}, {"rtol": -1e-3}])
def test_bad_tolerances(bad):
    with pytest.raises(ValueError, match="need eps > 0"):
        gradcheck(lambda t: t * 2, [rand(2)], **bad)


# ---------------------------------------------------------- assert_grads_match
def test_assert_grads_match_passes_tolerances_on():
    @defop
    def slightly_off(x):
        return 2 * x, lambda g: g * 2.001

    x = rand(3)
    with pytest.raises(AssertionError, match="relative error 0.0005"):
        assert_grads_match(slightly_off, x, rtol=1e-4)
    assert assert_grads_match(slightly_off, x) is None  # within the default rtol 1e-3
    assert_grads_match(slightly_off, x, fast=True, seed=0)
    with pytest.raises(TypeError):
        assert_grads_match(slightly_off, x, tolerance=1.0)


# ------------------------------------------------------------- the README example
# The same lines as the README's "Property-test your op" example.
@defop
def softplus(x):  # log(1 + eˣ);  ∂x = g ⊙ σ(x)
    return np.logaddexp(0, x), lambda g: g / (1 + np.exp(-x))


@given(arrays())
def test_softplus(x):
    assert_grads_match(softplus, x)


@given(away_from_kinks(shape=(3, 4), distinct=True))
def test_readme_strategies_also_guard_kinked_ops(x):
    assert_grads_match(lambda t: (t.relu() * t.max(axis=1, keepdims=True)).sum(axis=0), x)


# ------------------------------------------------- fast mode at MNIST scale
def mlp_784(bias_add=None, seed=0):
    """A 784-128-64-10 ReLU MLP with mean softmax cross-entropy over a batch of 32, in
    float64, built from engine ops; returns its 6 parameter arrays (~109k numbers) and the loss."""
    rng = np.random.default_rng(seed)
    sizes, m = [784, 128, 64, 10], 32
    X, y = rng.random((m, 784)), rng.integers(0, 10, m)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params += [rng.standard_normal((n_in, n_out)) * np.sqrt(2 / n_in), rng.standard_normal(n_out) * 0.1]

    def loss(W1, b1, W2, b2, W3, b3):
        A1 = (Tensor(X) @ W1 + b1).relu()
        Z2 = A1 @ W2
        A2 = (bias_add(Z2, b2) if bias_add else Z2 + b2).relu()
        Z3 = A2 @ W3 + b3
        return -Z3.log_softmax(axis=1)[np.arange(m), y].mean()

    return params, loss


def test_fast_mode_checks_a_784_128_64_10_mlp():
    params, loss = mlp_784()
    assert sum(p.size for p in params) == 109_386
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float64 throughout: no GradcheckWarning
        assert gradcheck(loss, params, fast=True, seed=0)

"""The Tensor and the backward pass: dtypes, graph recording, accumulation, freeing, errors."""

import operator

import numpy as np
import pytest
from hypothesis import given

import tinygrad_lite as tg
from tinygrad_lite import Tensor, defop, no_grad
from tinygrad_lite.testing import GradcheckError, assert_grads_match
from tinygrad_lite.testing.strategies import arrays, away_from_kinks


# ---------------------------------------------------------------- construction
def test_python_floats_default_to_float32_and_numpy_keeps_its_dtype():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(3.0).dtype == np.float32
    assert Tensor(np.zeros(3)).dtype == np.float64
    assert Tensor([1, 2]).dtype.kind == "i"
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64


def test_python_scalars_keep_float32_through_ops():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (2 * x + 1.5) ** 2 / 3 - x.exp()
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.shape == (2,)


def test_attributes_and_repr():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert (x.shape, x.ndim, x.size, x.dtype) == ((2, 3), 2, 6, np.float64)
    assert x.is_leaf and x.grad is None and x.requires_grad
    assert "requires_grad=True" in repr(x) and "float64" in repr(x)
    y = x * 2
    assert "grad_fn=<mul>" in repr(y) and not y.is_leaf and y.op == "mul"
    assert Tensor([[7.0]]).item() == 7.0
    assert x.numpy() is x.data
    d = x.detach()
    assert d.data is x.data and not d.requires_grad and d.is_leaf


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="int64"):
        Tensor(np.array([1, 2]), requires_grad=True)
    t = Tensor(np.array([1, 2]))
    with pytest.raises(TypeError, match="floating-point"):
        t.requires_grad = True
    assert not t.requires_grad


def test_unsupported_data_is_refused():
    with pytest.raises(TypeError, match="dtype"):
        Tensor(np.array(["a", "b"]))
    with pytest.raises(TypeError):
        Tensor(np.array([object()]))


def test_item_needs_one_element():
    with pytest.raises(ValueError, match=r"\(2,\)"):
        Tensor([1.0, 2.0]).item()


def test_numpy_arrays_on_the_left_defer_to_the_tensor():
    x = Tensor(np.ones(3), requires_grad=True)
    y = np.arange(3.0) * x + np.ones(3)
    assert isinstance(y, Tensor) and y.requires_grad
    (np.ones((2, 3)) @ x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


# ------------------------------------------------------------------ recording
def test_no_graph_without_an_input_that_requires_grad():
    y = Tensor([1.0]) * 2
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_context_and_decorator():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2
        with tg.enable_grad():
            z = x * 2
    assert tg.is_grad_enabled()
    assert not y.requires_grad and z.requires_grad

    @no_grad()
    def infer(t):
        return t * 3

    assert not infer(x).requires_grad and tg.is_grad_enabled()


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError), no_grad():
        raise ZeroDivisionError
    assert tg.is_grad_enabled()


# ----------------------------------------------------------------- backward
def test_reused_node_accumulates():
    x = Tensor(np.array([3.0]), requires_grad=True)
    (x * x).backward()
    np.testing.assert_allclose(x.grad, [6.0])


def test_diamond_accumulates():
    x = Tensor(np.array(2.0), requires_grad=True)
    a, b = x * 3, x.exp()
    (a * b + a).backward()  # d/dx (3x·eˣ + 3x) = 3eˣ + 3x·eˣ + 3
    np.testing.assert_allclose(x.grad, 3 * np.exp(2) + 6 * np.exp(2) + 3)


def test_leaf_gradients_accumulate_across_backward_calls_until_reset():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [5.0, 5.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_gradients_do_not_share_memory_and_inputs_are_not_mutated():
    a = Tensor(np.ones((2, 2)), requires_grad=True)
    b = Tensor(np.ones((2, 2)), requires_grad=True)
    upstream = np.arange(4.0).reshape(2, 2)
    before = (a.data.copy(), b.data.copy(), upstream.copy())
    (a + b).backward(upstream)
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, upstream)
    a.grad += 1  # mutating one gradient leaves the other alone
    np.testing.assert_array_equal(b.grad, upstream)
    for original, now in zip(before, (a.data, b.data, upstream)):
        np.testing.assert_array_equal(original, now)


def test_graph_is_released_after_backward():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(tg.GraphFreedError, match="retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])  # the failed call changed nothing


def test_retain_graph_allows_a_second_backward():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0, 4.0])


def test_released_graph_drops_saved_arrays():
    import gc
    import weakref

    x = Tensor(np.ones(3), requires_grad=True)
    hidden = x.exp()
    ref = weakref.ref(hidden)
    y = (hidden * 2).sum()
    del hidden
    gc.collect()
    assert ref() is not None  # kept alive by y's graph
    y.backward()
    gc.collect()
    assert ref() is None


def test_backward_of_a_non_scalar_needs_a_grad_of_its_shape():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))
    assert x.grad is None
    y.backward(np.full((2, 3), 0.5))
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))


def test_a_chain_of_100000_ops_needs_no_recursion():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad == 1.0


def test_only_needed_gradients_are_computed():
    calls = []

    @defop
    def scaled(x, w):
        return x * w, (lambda g: calls.append("x") or g * w, lambda g: calls.append("w") or g * x)

    data, weight = Tensor(np.ones(3)), Tensor(np.full(3, 2.0), requires_grad=True)
    scaled(data, weight).sum().backward()
    assert calls == ["w"]


def test_log_of_a_negative_base_is_not_evaluated_when_the_exponent_needs_no_grad():
    x = Tensor(np.array([-2.0, 3.0]), requires_grad=True)
    with np.errstate(invalid="raise"):
        (x**3).sum().backward()
    np.testing.assert_allclose(x.grad, [12.0, 27.0])


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv, tg.maximum])
def test_broadcast_mismatch_names_the_op_and_both_shapes(op):
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4,)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        op(a, b)


def test_matmul_mismatch_names_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\), \(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))


def test_reshape_to_an_impossible_size():
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\)"):
        Tensor(np.ones((2, 3))).reshape(4)


# ---------------------------------------------------------------------- defop
@defop
def leaky_relu(x, *, slope=0.01):
    """The README's example op."""
    return np.where(x > 0, x, slope * x), lambda g: np.where(x > 0, g, slope * g)


@given(x=away_from_kinks())
def test_user_defined_op(x):
    assert_grads_match(lambda t: leaky_relu(t, slope=0.2), x)
    assert_grads_match(lambda t: leaky_relu(t, 0.2), x)  # options may be positional too


def test_defop_may_return_a_broadcast_shaped_gradient():
    @defop
    def shift(x, b):
        return x + b, (lambda g: g, lambda g: g)  # the engine sums g back to b's shape

    b = Tensor(np.zeros(3), requires_grad=True)
    shift(np.ones((4, 3)), b).sum().backward()
    np.testing.assert_array_equal(b.grad, [4.0, 4.0, 4.0])


def test_defop_with_the_wrong_number_of_vjps_names_the_op():
    @defop
    def two_args(a, b):
        return a + b, (lambda g: g,)

    with pytest.raises(ValueError, match="'two_args' returned 1 VJP.*2 array"):
        two_args(Tensor([1.0], requires_grad=True), 2.0)


def test_defop_vjp_of_the_wrong_shape_names_the_op_and_changes_nothing():
    @defop
    def broken(x):
        return x.sum(), lambda g: np.ones(x.size + 1) * g

    x = Tensor(np.ones(3), requires_grad=True)
    x.grad = np.zeros(3)
    y = broken(x) + (x * 2).sum()
    with pytest.raises(ValueError, match=r"op 'broken'.*\(4,\).*\(3,\)"):
        y.backward()
    np.testing.assert_array_equal(x.grad, np.zeros(3))


def test_defop_must_return_a_pair():
    @defop
    def no_vjp(x):
        return x * 2

    with pytest.raises(TypeError, match="no_vjp.*pair"):
        no_vjp(Tensor([1.0]))


def test_non_differentiable_argument_refuses_a_grad_input():
    with pytest.raises(TypeError, match="not differentiable with respect to argument 0"):
        tg.where(Tensor([1.0], requires_grad=True), 1.0, 2.0)


def test_a_planted_wrong_vjp_is_caught_by_finite_differences():
    @defop
    def wrong_tanh(x):
        out = np.tanh(x)
        return out, lambda g: g * (1 + out * out)  # sign error in the derivative

    rng = np.random.default_rng(0)
    with pytest.raises(GradcheckError, match="input 0"):
        assert_grads_match(wrong_tanh, rng.standard_normal((3, 2)))
    with pytest.raises(GradcheckError, match="input 0"):
        assert_grads_match(wrong_tanh, rng.standard_normal((3, 2)), fast=True, seed=0)


@given(x=arrays(shape=(2, 3)))
def test_to_dot_lists_ops_and_edges(x):
    w = Tensor(np.ones((3, 4)), requires_grad=True)
    y = (Tensor(x) @ w).relu().sum()
    dot = y.to_dot()
    assert dot.startswith("digraph") and dot.count("->") == 3
    for name in ("matmul", "relu", "sum", "3x4"):
        assert name in dot


def test_an_array_a_vjp_closed_over_is_never_accumulated_into():
    saved = np.ones(3)

    @defop
    def constant_grad(x):
        return x * 1.0, lambda g: saved  # (a buggy VJP that ignores g, returning its own array)

    x = Tensor(np.ones(3), requires_grad=True)
    for y in (x * 2 + constant_grad(x), constant_grad(x) + x * 2):  # either arrival order
        x.grad = None
        y.backward(np.ones(3))
        np.testing.assert_array_equal(x.grad, [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(saved, [1.0, 1.0, 1.0])


def test_grad_mode_is_per_thread():
    import threading

    seen = {}
    inside, release = threading.Event(), threading.Event()

    def worker():
        with no_grad():
            inside.set()
            release.wait(5)
            seen["worker"] = tg.is_grad_enabled()

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(5)
    seen["main"] = tg.is_grad_enabled() and (Tensor([1.0], requires_grad=True) * 2).requires_grad
    release.set()
    thread.join(5)
    assert seen == {"worker": False, "main": True}

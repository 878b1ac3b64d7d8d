"""tinygrad_lite.func: every transform against central differences (also on a small MLP with
cross-entropy), nesting to third order, argnums, dtypes, NumPy results, untouched inputs, and
clear errors. The finite-difference helper is shown to catch a wrong value."""

import numpy as np
import pytest
from hypothesis import given

import tinygrad_lite as tg
from models.mlp import MLP
from tinygrad_lite import Tensor, func, nn, no_grad
from tinygrad_lite.testing.strategies import arrays


# ---------------------------------------------------------------- helpers
def numeric_jacobian(fn, x, eps=1e-6):
    """Central differences: J[i…, j…] ≈ (fn(x + eps·e_j) − fn(x − eps·e_j))[i…] / 2eps, float64."""
    x = np.array(x, dtype=np.float64)
    out = np.asarray(fn(x), dtype=np.float64)
    jac = np.zeros(out.shape + x.shape)
    for j in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[j] += eps
        xm[j] -= eps
        jac[(Ellipsis,) + j] = (np.asarray(fn(xp)) - np.asarray(fn(xm))) / (2 * eps)
    return jac


def assert_close(analytic, numeric, rtol=1e-5, atol=1e-6, what="derivative"):
    analytic, numeric = np.asarray(analytic), np.asarray(numeric)
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} vs numeric {numeric.shape}"
    if not np.allclose(analytic, numeric, rtol=rtol, atol=atol):
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(analytic - numeric)), analytic.shape))
        raise AssertionError(f"{what}: analytic {analytic[worst]} vs numeric {numeric[worst]} at {worst}")


def value(f):
    """f evaluated on plain arrays (no graph), as an array: the reference for central differences."""
    def run(*xs):
        with no_grad():
            return f(*(Tensor(x) for x in xs)).numpy()
    return run


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def f_smooth(x):
    return (np.tanh(x) ** 3).sum() + (x * x.sum()).sum() * 0.5


def f_vec(x):
    return np.tanh(x) * x.sum() + np.exp(x[..., :1] * 0.5)


# ---------------------------------------------------------------- the check itself
def test_the_numeric_check_detects_a_wrong_derivative():
    x = rand(4)
    good = func.grad(f_smooth)(x)
    numeric = numeric_jacobian(value(f_smooth), x)
    assert_close(good, numeric)
    wrong = good.copy()
    wrong[2] += 1e-3  # a small planted error
    with pytest.raises(AssertionError, match=r"at \(2,\)"):
        assert_close(wrong, numeric)
    with pytest.raises(AssertionError):  # the gradient of the wrong function (tanh² instead of tanh³)
        assert_close(func.grad(lambda x: (np.tanh(x) ** 2).sum())(x), numeric_jacobian(value(
            lambda x: (np.tanh(x) ** 3).sum()), x))


# ---------------------------------------------------------------- each transform vs numbers
@given(arrays(shape=(2, 3), low=-2, high=2))
def test_grad_and_jacobian_match_central_differences(x):
    assert_close(func.grad(f_smooth)(x), numeric_jacobian(value(f_smooth), x), what="grad")
    assert_close(func.jacobian(f_vec)(x), numeric_jacobian(value(f_vec), x), what="jacobian")


@given(arrays(shape=(3,), low=-2, high=2), arrays(shape=(3,), low=-1, high=1))
def test_vjp_jvp_hvp_hessian_match_central_differences(x, v):
    J = numeric_jacobian(value(f_vec), x)  # (3, 3)
    out, vjp_fn = func.vjp(f_vec, x)
    np.testing.assert_allclose(out, value(f_vec)(x))
    (vj,) = vjp_fn(v)
    assert_close(vj, v @ J, what="vjp")
    out, jv = func.jvp(f_vec, (x,), (v,))
    assert_close(jv, J @ v, what="jvp")
    H = numeric_jacobian(lambda y: numeric_jacobian(value(f_smooth), y, eps=1e-4), x, eps=1e-4)
    assert_close(func.hessian(f_smooth)(x), H, rtol=1e-4, atol=1e-5, what="hessian")
    out, (hv,) = func.hvp(f_smooth, (x,), (v,))
    assert_close(hv, H @ v, rtol=1e-4, atol=1e-5, what="hvp")
    np.testing.assert_allclose(out, value(f_smooth)(x))


# ---------------------------------------------------------------- a small MLP with cross-entropy
SIZES, M = (4, 5, 3), 6
N_PARAMS = 4 * 5 + 5 + 5 * 3 + 3


def mlp_loss(theta, X, y):
    """Cross-entropy of a 4-5-3 tanh MLP whose weights and biases are the flat vector theta."""
    W1, b1 = theta[:20].reshape(4, 5), theta[20:25]
    W2, b2 = theta[25:40].reshape(5, 3), theta[40:]
    return nn.cross_entropy(np.tanh(X @ W1 + b1) @ W2 + b2, y)


@pytest.fixture(scope="module")
def mlp_data():
    X, theta = rand(M, 4, seed=1), rand(N_PARAMS, seed=2) * 0.7
    y = np.array([0, 2, 1, 1, 0, 2])
    return theta, X, y


def engine_grad(theta, X, y):
    """The first-order gradient by the engine's own backward (independent of func)."""
    t = Tensor(theta, requires_grad=True)
    mlp_loss(t, X, y).backward()
    return t.grad


def test_mlp_hessian_hvp_and_grad_match_numbers(mlp_data):
    theta, X, y = mlp_data
    H_num = numeric_jacobian(lambda th: engine_grad(th, X, y), theta)
    H = func.hessian(mlp_loss)(theta, X, y)
    assert H.shape == (N_PARAMS, N_PARAMS) and H.dtype == np.float64
    assert_close(H, H_num, rtol=1e-4, atol=1e-6, what="MLP hessian")
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    v = rand(N_PARAMS, seed=3)
    loss, (hv,) = func.hvp(lambda th: mlp_loss(th, X, y), (theta,), (v,))
    np.testing.assert_allclose(hv, H @ v, rtol=1e-10, atol=1e-12)
    value_, g = func.value_and_grad(mlp_loss)(theta, X, y)
    np.testing.assert_allclose(value_, loss)
    assert_close(g, numeric_jacobian(lambda th: value(lambda t: mlp_loss(t, X, y))(th), theta), what="MLP grad")


def test_mlp_jacobian_and_jvp_of_the_logits(mlp_data):
    theta, X, y = mlp_data
    model = MLP(list(SIZES), activations="tanh", seed=0, dtype=np.float64)

    def logits(x):
        return model(x)

    J = func.jacobian(logits)(X)
    assert J.shape == (M, 3, M, 4)
    assert_close(J, numeric_jacobian(value(logits), X), what="MLP jacobian")
    t = rand(M, 4, seed=4)
    out, jt = func.jvp(logits, (X,), (t,))
    np.testing.assert_allclose(jt, np.tensordot(J, t, axes=2), rtol=1e-10, atol=1e-12)
    H = func.hessian(lambda x: nn.cross_entropy(model(x), y))(X)
    assert H.shape == (M, 4, M, 4)
    H_num = numeric_jacobian(func.grad(lambda x: nn.cross_entropy(model(x), y)), X)
    assert_close(H, H_num, rtol=1e-4, atol=1e-6, what="MLP input hessian")
    assert all(p.grad is None for p in model.parameters())  # func never writes .grad


# ---------------------------------------------------------------- nesting
def test_grad_of_grad_and_third_derivative():
    def f(x):
        return (np.tanh(x) ** 3).sum()

    for x0 in (-1.3, 0.2, 0.9):
        t = np.tanh(x0)
        d1 = 3 * t**2 * (1 - t**2)
        d2 = (6 * t - 12 * t**3) * (1 - t**2)
        d3 = (6 - 36 * t**2) * (1 - t**2) ** 2 - (6 * t - 12 * t**3) * 2 * t * (1 - t**2)
        np.testing.assert_allclose(func.grad(f)(x0), d1, rtol=1e-12)
        np.testing.assert_allclose(func.grad(func.grad(f))(x0), d2, rtol=1e-12)
        np.testing.assert_allclose(func.grad(func.grad(func.grad(f)))(x0), d3, rtol=1e-12)
    np.testing.assert_allclose(func.grad(func.grad(func.grad(lambda x: x**4)))(2.0), 48.0)


def test_jacobian_of_grad_is_the_hessian():
    x = rand(2, 3)
    H = func.hessian(f_smooth)(x)
    assert H.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(func.jacobian(func.grad(f_smooth))(x), H, rtol=1e-12)
    np.testing.assert_allclose(func.jacobian(func.jacobian(f_smooth))(x), H, rtol=1e-12)
    v = rand(2, 3, seed=1)
    _, (hv,) = func.hvp(f_smooth, (x,), (v,))
    np.testing.assert_allclose(hv, np.tensordot(H, v, axes=2), rtol=1e-10)
    _, jv = func.jvp(func.grad(f_smooth), (x,), (v,))  # forward-over-reverse: also H·v
    np.testing.assert_allclose(jv, hv, rtol=1e-10)


def test_inner_transforms_differentiate_only_their_own_argument():
    # d/dx [x · d/dy (x·y)] = d/dx x² = 2x (perturbation confusion would give 3x² or similar)
    assert func.grad(lambda x: x * func.grad(lambda y: x * y)(x))(3.0) == 6.0
    # an inner transform on a plain array still sees the outer variable it closes over
    w = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(
        func.grad(lambda w: func.grad(lambda x: (w * x * x).sum())(np.ones(3)).sum())(w), [2.0, 2.0, 2.0])


def test_hessian_with_tuple_argnums_gives_the_blocks():
    def f(a, b):
        return (a * a * b).sum() + (np.tanh(a) * b[::-1]).sum()

    a, b = rand(3), rand(3, seed=1)
    blocks = func.hessian(f, argnums=(0, 1))(a, b)
    full = func.hessian(lambda ab: f(ab[:3], ab[3:]))(np.concatenate([a, b]))
    np.testing.assert_allclose(np.block([[blocks[0][0], blocks[0][1]], [blocks[1][0], blocks[1][1]]]), full,
                               rtol=1e-12)


def test_a_tensor_that_requires_grad_gets_a_tensor_in_its_graph():
    x = Tensor(rand(3), requires_grad=True)
    g = func.grad(lambda x: (x**3).sum())(x)
    assert isinstance(g, Tensor) and g.requires_grad
    g.sum().backward()
    np.testing.assert_allclose(x.grad, 6 * x.data)


# ---------------------------------------------------------------- argnums, values, dtypes, results
def test_argnums_tuple_and_non_differentiated_arguments():
    def f(a, labels, b):
        return nn.cross_entropy(a @ b, labels)

    a, b, labels = rand(4, 3), rand(3, 2, seed=1), np.array([0, 1, 1, 0])
    ga, gb = func.grad(f, argnums=(0, 2))(a, labels, b)
    assert_close(ga, numeric_jacobian(lambda a: value(lambda a: f(a, labels, Tensor(b)))(a), a))
    assert_close(gb, numeric_jacobian(lambda b: value(lambda b: f(Tensor(a), labels, b))(b), b))
    np.testing.assert_array_equal(func.grad(f, argnums=-1)(a, labels, b), gb)
    (ga2,) = func.grad(f, argnums=(0,))(a, labels, b)
    np.testing.assert_array_equal(ga2, ga)
    value_, (ga3, gb3) = func.value_and_grad(f, argnums=(0, 2))(a, labels, b)
    np.testing.assert_allclose(value_, value(lambda a, b: f(a, labels, b))(a, b))
    np.testing.assert_array_equal(ga3, ga)


def test_unused_inputs_get_zero_gradients():
    a, b = rand(2), rand(3)
    ga, gb = func.grad(lambda a, b: (a * 2).sum(), argnums=(0, 1))(a, b)
    np.testing.assert_array_equal(gb, np.zeros(3))
    np.testing.assert_array_equal(func.grad(lambda a: Tensor(1.0))(a), np.zeros(2))
    np.testing.assert_array_equal(func.jacobian(lambda a, b: Tensor(a) * 2, argnums=1)(a, b), np.zeros((2, 3)))
    assert func.hessian(lambda a: a.sum())(a).shape == (2, 2) and not func.hessian(lambda a: a.sum())(a).any()
    _, (hb,) = func.hvp(lambda b: (b * 3).sum(), (b,), (b,))
    np.testing.assert_array_equal(hb, np.zeros(3))
    _, jv = func.jvp(lambda a, b: a * 1.0, (a, b), (np.zeros(2), b))
    np.testing.assert_array_equal(jv, np.zeros(2))
    _, vjp_fn = func.vjp(lambda a, b: a + 1.0, a, b)
    np.testing.assert_array_equal(vjp_fn(np.ones(2))[1], np.zeros(3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dtype_is_kept_and_results_are_numpy_arrays(dtype):
    x, v = rand(3).astype(dtype), rand(3, seed=1).astype(dtype)
    results = [
        func.grad(f_smooth)(x), *func.value_and_grad(f_smooth)(x), func.jacobian(f_vec)(x),
        func.hessian(f_smooth)(x), *func.jvp(f_vec, (x,), (v,)), func.hvp(f_smooth, (x,), (v,))[1][0],
        func.vjp(f_vec, x)[0], func.vjp(f_vec, x)[1](v)[0], func.grad(func.grad(lambda x: (x**3).sum()))(x[0]),
    ]
    for r in results:
        assert type(r) is np.ndarray and r.dtype == dtype


def test_python_numbers_and_lists_are_float64():
    assert func.grad(lambda x: x**3)(2.0).dtype == np.float64
    np.testing.assert_allclose(func.grad(lambda x: x**3)(2.0), 12.0)
    _, jv = func.jvp(lambda x: x * x, (np.array([1.0, 2.0]),), ([1, 1],))  # integer tangents are cast
    assert jv.dtype == np.float64 and jv.tolist() == [2.0, 4.0]
    assert func.jacobian(lambda x: x * 2)([1.0, 2.0]).dtype == np.float64


def test_inputs_are_not_mutated_and_tensors_are_left_alone():
    x, v = rand(3), rand(3, seed=1)
    t = Tensor(rand(3, seed=2))
    saved = x.copy(), v.copy(), t.data.copy()
    func.grad(f_smooth)(x)
    func.hessian(f_smooth)(t)
    func.hvp(f_smooth, (x,), (v,))
    func.jvp(f_vec, (t,), (v,))
    func.vjp(f_vec, x)[1](v)
    for before, after in zip(saved, (x, v, t.data)):
        np.testing.assert_array_equal(before, after)
    assert not t.requires_grad and t.grad is None
    out, vjp_fn = func.vjp(f_vec, x)
    np.testing.assert_array_equal(vjp_fn(v)[0], vjp_fn(v)[0])  # vjp_fn can be called again


def test_transforms_work_under_no_grad_and_with_keyword_arguments():
    with no_grad():
        np.testing.assert_allclose(func.grad(lambda x, *, k: (k * x**2).sum())(np.ones(2), k=3.0), [6.0, 6.0])
    assert tg.is_grad_enabled()


def test_jacobian_of_a_tuple_output():
    x = rand(2)
    j1, j2 = func.jacobian(lambda x: (x * 2, x.sum()))(x)
    np.testing.assert_array_equal(j1, 2 * np.eye(2))
    np.testing.assert_array_equal(j2, np.ones(2))


# ---------------------------------------------------------------- errors
def test_bad_input_is_refused_clearly():
    x = rand(3)
    with pytest.raises(TypeError, match="callable"):
        func.grad(3)
    with pytest.raises(TypeError, match="argnums"):
        func.grad(f_smooth, argnums=1.0)
    with pytest.raises(TypeError, match="argnums"):
        func.jacobian(f_smooth, argnums=())
    with pytest.raises(TypeError, match=r"argnums=\(1,\).*1 positional"):
        func.grad(f_smooth, argnums=1)(x)
    with pytest.raises(TypeError, match="int64.*floating-point"):
        func.grad(lambda x: (x * 1.0).sum())(np.arange(3))
    with pytest.raises(TypeError, match=r"one-element.*shape \(3,\)"):
        func.grad(lambda x: x * 2)(x)
    with pytest.raises(TypeError, match=r"one-element"):
        func.hvp(lambda x: x * 2, (x,), (x,))
    with pytest.raises(TypeError, match="must return a Tensor.*got ndarray"):
        func.grad(lambda x: np.ones(()))(x)
    with pytest.raises(TypeError, match="must return a Tensor.*got float"):
        func.jacobian(lambda x: 1.0)(x)
    with pytest.raises(ValueError, match=r"cotangent has shape \(2,\), expected \(3,\)"):
        func.vjp(f_vec, x)[1](np.ones(2))
    with pytest.raises(ValueError, match=r"tangent 0 has shape \(2,\), expected \(3,\)"):
        func.jvp(f_vec, (x,), (np.ones(2),))
    with pytest.raises(TypeError, match="tuples"):
        func.jvp(f_vec, x, x)
    with pytest.raises(ValueError, match="one tangent per primal"):
        func.hvp(f_smooth, (x,), ())
    with pytest.raises(TypeError, match="at least one primal"):
        func.vjp(f_vec)

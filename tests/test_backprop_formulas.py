"""Autograd equals the hand-derived backprop of the reference systems (../shared/reference-systems.md).

For an MLP with hidden layers g ∈ {ReLU, tanh, sigmoid}, softmax output and mean
cross-entropy over m examples, the reference systems derive by hand (row-major: X is m×784,
W_l is in×out):

    Z_l = A_{l−1} W_l + b_l,   A_l = g(Z_l),   A_0 = X,   A_L = softmax(Z_L)
    dZ_L = (A_L − Y) / m
    dW_l = A_{l−1}ᵀ dZ_l,      db_l = Σ_rows dZ_l
    dZ_{l−1} = dZ_l W_lᵀ ⊙ g′(Z_{l−1})

and in the column-major convention (X is 784×m, W_l is out×in, b_l is out×1) the transposes:
Z_l = W_l A_{l−1} + b_l, dW_l = dZ_l A_{l−1}ᵀ, db_l = Σ_cols dZ_l, dZ_{l−1} = W_lᵀ dZ_l ⊙ g′(Z_{l−1}).

The autograd side uses engine ops only (Tensor, @, +, relu/tanh/sigmoid, log_softmax,
indexing or a one-hot product). Gradients agree to 1e-10 (float64) and 1e-4 (float32)
relative to the largest entry of the hand-derived gradient.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_lite import Tensor
from tinygrad_lite.testing.strategies import arrays, mlp_specs

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}
DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]

# g(Z) on Tensors (autograd), g(Z) on arrays and g′(Z) from Z and A = g(Z) (by hand)
ACTIVATION = {
    "relu": (Tensor.relu, lambda Z: np.maximum(Z, 0), lambda Z, A: (Z > 0).astype(Z.dtype)),
    "tanh": (Tensor.tanh, np.tanh, lambda Z, A: 1 - A * A),
    "sigmoid": (Tensor.sigmoid, lambda Z: 1 / (1 + np.exp(-Z)), lambda Z, A: A * (1 - A)),
}


def softmax(Z, axis):
    E = np.exp(Z - Z.max(axis=axis, keepdims=True))
    return E / E.sum(axis=axis, keepdims=True)


def assert_close(auto, hand, dtype, name, slack=0.0):
    """max |auto − hand| ≤ tol · max |hand| + slack, and autograd kept the dtype and shape."""
    assert auto is not None, f"{name}: no gradient"
    assert auto.dtype == hand.dtype == dtype and auto.shape == hand.shape, name
    scale = max(float(np.abs(hand).max()), np.finfo(dtype).tiny)
    error = float(np.abs(auto.astype(np.float64) - hand).max())
    assert error <= TOLERANCE[dtype] * scale + slack, (
        f"{name}: max error {error:.3g} vs max |{name}| {scale:.3g} (slack {slack:.3g})")


def problem(spec, seed, dtype, column_major):
    """Data, one-hot targets and parameters for ``spec`` (``mlp_specs()``), in one convention."""
    rng = np.random.default_rng(seed)
    sizes, m = spec["sizes"], spec["batch"]
    X = rng.random((m, sizes[0]))
    y = rng.integers(0, sizes[-1], m)
    Y = np.eye(sizes[-1])[y]
    Ws = [rng.standard_normal((n_in, n_out)) / np.sqrt(n_in) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    bs = [rng.standard_normal(n_out) * 0.5 for n_out in sizes[1:]]
    if column_major:
        X, Y, Ws, bs = X.T, Y.T, [W.T for W in Ws], [b[:, None] for b in bs]
    cast = lambda a: np.ascontiguousarray(a, dtype=dtype)
    return cast(X), y, cast(Y), [cast(W) for W in Ws], [cast(b) for b in bs]


def autograd_row_major(X, y, Ws, bs, activations):
    """Mean cross-entropy with engine ops, rows are examples; the target picked by indexing."""
    W = [Tensor(w, requires_grad=True) for w in Ws]
    b = [Tensor(v, requires_grad=True) for v in bs]
    A = Tensor(X)
    for l in range(len(W)):
        Z = A @ W[l] + b[l]
        A = ACTIVATION[activations[l]][0](Z) if l < len(activations) else Z
    m = X.shape[0]
    loss = -A.log_softmax(axis=1)[np.arange(m), y].mean()
    loss.backward()
    return loss, [w.grad for w in W], [v.grad for v in b]


def autograd_column_major(X, Y, Ws, bs, activations):
    """Mean cross-entropy with engine ops, columns are examples; the target as a one-hot product."""
    W = [Tensor(w, requires_grad=True) for w in Ws]
    b = [Tensor(v, requires_grad=True) for v in bs]
    A = Tensor(X)
    for l in range(len(W)):
        Z = W[l] @ A + b[l]
        A = ACTIVATION[activations[l]][0](Z) if l < len(activations) else Z
    m = X.shape[1]
    loss = -(Tensor(Y) * A.log_softmax(axis=0)).sum() / m
    loss.backward()
    return loss, [w.grad for w in W], [v.grad for v in b]


def by_hand_row_major(X, Y, Ws, bs, activations):
    """The reference systems' backprop, rows are examples (X is m×n₀, W_l is in×out)."""
    L, m = len(Ws), X.shape[0]
    A, Z = [X], [None]
    for l in range(1, L + 1):
        Z.append(A[l - 1] @ Ws[l - 1] + bs[l - 1])
        A.append(ACTIVATION[activations[l - 1]][1](Z[l]) if l < L else softmax(Z[l], axis=1))
    loss = -(Y * np.log(A[L])).sum() / m
    dW, db, terms = [None] * L, [None] * L, [None] * L
    dZ = (A[L] - Y) / m
    for l in range(L, 0, -1):
        dW[l - 1] = A[l - 1].T @ dZ
        db[l - 1] = dZ.sum(axis=0)
        terms[l - 1] = (m * float(np.abs(A[l - 1]).max() * np.abs(dZ).max()), m * float(np.abs(dZ).max()))
        if l > 1:
            dZ = (dZ @ Ws[l - 1].T) * ACTIVATION[activations[l - 2]][2](Z[l - 1], A[l - 1])
    return loss, dW, db, terms


def by_hand_column_major(X, Y, Ws, bs, activations):
    """The same backprop with columns as examples (X is n₀×m, W_l is out×in, b_l is out×1)."""
    L, m = len(Ws), X.shape[1]
    A, Z = [X], [None]
    for l in range(1, L + 1):
        Z.append(Ws[l - 1] @ A[l - 1] + bs[l - 1])
        A.append(ACTIVATION[activations[l - 1]][1](Z[l]) if l < L else softmax(Z[l], axis=0))
    loss = -(Y * np.log(A[L])).sum() / m
    dW, db, terms = [None] * L, [None] * L, [None] * L
    dZ = (A[L] - Y) / m
    for l in range(L, 0, -1):
        dW[l - 1] = dZ @ A[l - 1].T
        db[l - 1] = dZ.sum(axis=1, keepdims=True)
        terms[l - 1] = (m * float(np.abs(A[l - 1]).max() * np.abs(dZ).max()), m * float(np.abs(dZ).max()))
        if l > 1:
            dZ = (Ws[l - 1].T @ dZ) * ACTIVATION[activations[l - 2]][2](Z[l - 1], A[l - 1])
    return loss, dW, db, terms


def check_mlp(spec, seed, dtype, column_major):
    """Autograd vs the hand-derived formulas, both in ``dtype``.

    In float32 a badly conditioned net (a saturated tanh or sigmoid, where 1 − A² or A(1 − A)
    cancels, feeding a width-1 layer) makes the formulas themselves lose digits; there the
    comparison allows twice the hand-derived float32 result's own distance from the same
    formulas run in float64 on the same numbers.
    """
    X, y, Y, Ws, bs = problem(spec, seed, dtype, column_major)
    acts = spec["activations"]
    by_hand = by_hand_column_major if column_major else by_hand_row_major
    if column_major:
        loss, dW_auto, db_auto = autograd_column_major(X, Y, Ws, bs, acts)
    else:
        loss, dW_auto, db_auto = autograd_row_major(X, y, Ws, bs, acts)
    hand_loss, dW, db, terms = by_hand(X, Y, Ws, bs, acts)
    exact = [np.zeros(0)] * 2 * len(Ws)
    if dtype != np.float64:
        wide = lambda arrays: [a.astype(np.float64) for a in arrays]
        _, dW64, db64, _ = by_hand(X.astype(np.float64), Y.astype(np.float64), wide(Ws), wide(bs), acts)
        exact = dW64 + db64
    slack = [2 * float(np.abs(h - e).max()) if e.size else 0.0 for h, e in zip(dW + db, exact)]
    # a sum of m terms that cancel is only as exact as eps · m · max|term|, however small the sum
    rounding = [t[0] for t in terms] + [t[1] for t in terms]
    slack = [max(s, 4 * float(np.finfo(dtype).eps) * r) if dtype != np.float64 else s for s, r in zip(slack, rounding)]
    assert loss.dtype == dtype
    assert abs(loss.item() - hand_loss) <= TOLERANCE[dtype] * max(1.0, abs(hand_loss))
    L = len(Ws)
    for l in range(L):
        assert_close(dW_auto[l], dW[l], dtype, f"dW_{l + 1}", slack[l])
        assert_close(db_auto[l], db[l], dtype, f"db_{l + 1}", slack[L + l])


LAYOUTS = [pytest.param(False, id="row-major"), pytest.param(True, id="column-major")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("column_major", LAYOUTS)
@given(spec=mlp_specs(min_layers=1, max_layers=4), seed=st.integers(0, 2**32 - 1))
def test_autograd_equals_the_hand_derived_backprop(spec, seed, dtype, column_major):
    check_mlp(spec, seed, dtype, column_major)


REFERENCE_SPECS = {  # the reference systems' shapes: 784 inputs, 10 classes
    "A/C tiny": {"sizes": [784, 10, 10], "activations": ["relu"], "batch": 32},
    "B two-hidden": {"sizes": [784, 128, 64, 10], "activations": ["relu", "relu"], "batch": 50},
    "E relu+tanh": {"sizes": [784, 128, 64, 10], "activations": ["relu", "tanh"], "batch": 16},
    "E sigmoid+tanh": {"sizes": [784, 128, 64, 10], "activations": ["sigmoid", "tanh"], "batch": 16},
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("column_major", LAYOUTS)
@pytest.mark.parametrize("name", REFERENCE_SPECS)
def test_reference_system_shapes(name, column_major, dtype):
    check_mlp(REFERENCE_SPECS[name], 0, dtype, column_major)


# ------------------------------------------------------ cross-entropy at the logits
@st.composite
def logits_and_labels(draw, dtype=np.float64):
    m, c = draw(st.integers(1, 8)), draw(st.integers(2, 8))
    scale = draw(st.sampled_from([3.0, 1e3]))  # 1e3: e^Z would overflow; log_softmax must not
    Z = draw(arrays(shape=(m, c), dtype=dtype, low=-scale, high=scale))
    y = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=m, max_size=m)))
    return Z, y


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_mean_cross_entropy_gradient_at_the_logits(data, dtype):
    """d(mean CE)/dZ = (softmax(Z) − Y)/m, with the target picked by indexing or a one-hot product."""
    Z, y = data.draw(logits_and_labels(dtype))
    m, c = Z.shape
    Y = np.eye(c, dtype=dtype)[y]
    expected = (softmax(Z, axis=1) - Y) / m
    for pick in (lambda logp: logp[np.arange(m), y], lambda logp: (Tensor(Y) * logp).sum(axis=1)):
        logits = Tensor(Z, requires_grad=True)
        loss = -pick(logits.log_softmax(axis=1)).mean()
        loss.backward()
        assert np.isfinite(loss.item())
        # (softmax − Y)/m subtracts numbers of size 1/m: rounding leaves eps/m however small dZ is
        assert_close(logits.grad, expected, dtype, "dZ", slack=4 * float(np.finfo(dtype).eps) / m)


def test_cross_entropy_gradient_is_exact_on_a_small_case():
    Z = np.array([[0.0, np.log(3.0)], [1e4, -1e4]])  # softmax rows (1/4, 3/4) and (1, 0)
    logits = Tensor(Z, requires_grad=True)
    (-logits.log_softmax(axis=1)[np.arange(2), np.array([1, 1])].mean()).backward()
    np.testing.assert_allclose(logits.grad, [[0.125, -0.125], [0.5, -0.5]], rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_nn_cross_entropy_has_the_same_gradient(data, dtype):
    cross_entropy = getattr(pytest.importorskip("tinygrad_lite.nn"), "cross_entropy", None)
    if cross_entropy is None:
        pytest.skip("tinygrad_lite.nn has no cross_entropy")
    Z, y = data.draw(logits_and_labels(dtype))
    m, c = Z.shape
    Y = np.eye(c, dtype=dtype)[y]
    for target in (y, Y):  # class indices, one-hot rows
        logits = Tensor(Z, requires_grad=True)
        loss = cross_entropy(logits, target)
        loss.backward()
        assert_close(logits.grad, (softmax(Z, axis=1) - Y) / m, dtype, "dZ")
        Z64 = Z.astype(np.float64)
        logp = Z64 - Z64.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        hand = -logp[np.arange(m), y].mean()
        assert abs(loss.item() - hand) <= TOLERANCE[dtype] * max(1.0, abs(hand))

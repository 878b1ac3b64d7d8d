"""check_backprop: from-scratch NumPy code, written as tutorials write it, runs unchanged on
Tensors; correct derivations pass, planted bugs are caught with the right parameter and hint."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from tinygrad_lite.testing.backprop import BackpropMismatch, BackpropReport, check_backprop, compare_arrays
from tinygrad_lite.testing.backprop_strategies import BackpropCase, backprop_cases, labels, one_hot

M = 16  # examples in every batch below


# ------------------------------------------------ column-major: W.dot(X) + b, ReLU, softmax
def relu(Z):
    return np.maximum(Z, 0)


def softmax(Z):
    E = np.exp(Z - np.max(Z, axis=0, keepdims=True))
    return E / np.sum(E, axis=0, keepdims=True)


def one_hot_columns(y, k):
    Y = np.zeros((k, y.size))
    Y[y, np.arange(y.size)] = 1
    return Y


def forward_cols(params, X):
    Z1 = params["W1"].dot(X) + params["b1"]
    A1 = relu(Z1)
    Z2 = params["W2"].dot(A1) + params["b2"]
    A2 = softmax(Z2)
    return Z1, A1, Z2, A2


def loss_cols(params, X, y):
    m = X.shape[1]
    A2 = forward_cols(params, X)[3]
    return -np.sum(one_hot_columns(y, A2.shape[0]) * np.log(A2)) / m


def grads_cols(params, X, y, bug=""):
    m = X.shape[1]
    Z1, A1, Z2, A2 = forward_cols(params, X)
    dZ2 = A2 - one_hot_columns(y, A2.shape[0])
    if bug == "sign":
        dZ2 = one_hot_columns(y, A2.shape[0]) - A2
    dW2 = dZ2.dot(A1.T) / m
    if bug == "missing 1/m":
        dW2 = dZ2.dot(A1.T)
    if bug == "extra 1/m":
        dW2 = dZ2.dot(A1.T) / m / m
    if bug == "factor 2":
        dW2 = 2 * dZ2.dot(A1.T) / m
    db2 = np.sum(dZ2, axis=1, keepdims=True) / m
    dA1 = params["W2"].T.dot(dZ2)
    dZ1 = dA1 * (Z1 > 0)
    if bug == "mask on the wrong array":
        dZ1 = dA1 * (dA1 > 0)
    dW1 = dZ1.dot(X.T) / m
    if bug == "transposed dW":
        dW1 = X.dot(dZ1.T) / m
    db1 = np.sum(dZ1, axis=1, keepdims=True) / m
    if bug == "wrong db axis":
        db1 = np.sum(dZ1, axis=0, keepdims=True) / m
    if bug == "lost keepdims":
        db1 = np.sum(dZ1, axis=1) / m
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def cols_case(n=7, h=5, k=4, seed=0):
    rng = np.random.default_rng(seed)
    params = {"W1": rng.standard_normal((h, n)), "b1": rng.standard_normal((h, 1)),
              "W2": rng.standard_normal((k, h)), "b2": rng.standard_normal((k, 1))}
    return params, rng.standard_normal((n, M)), rng.integers(0, k, M)


# -------------------------------------------- row-major: X @ W + b, tanh, cs231n-style softmax
def loss_rows(params, X, y):
    W1, b1, W2, b2 = params
    H = np.tanh(X @ W1 + b1)
    scores = H @ W2 + b2
    scores = scores - np.max(scores, axis=1, keepdims=True)
    log_probs = scores - np.log(np.sum(np.exp(scores), axis=1, keepdims=True))
    return -np.mean(log_probs[np.arange(X.shape[0]), y])


def grads_rows(params, X, y, bug=""):
    W1, b1, W2, b2 = params
    N = X.shape[0]
    H = np.tanh(X @ W1 + b1)
    scores = H @ W2 + b2
    probs = np.exp(scores - np.max(scores, axis=1, keepdims=True))
    probs /= np.sum(probs, axis=1, keepdims=True)
    dscores = probs
    dscores[np.arange(N), y] -= 1
    dscores /= N
    dW2 = H.T @ dscores
    if bug == "transposed dW":
        dW2 = dscores.T @ H
    db2 = np.sum(dscores, axis=0)
    if bug == "wrong db axis":
        db2 = np.sum(dscores, axis=1)
    dZ1 = (dscores @ W2.T) * (1 - H**2)
    return (X.T @ dZ1, np.sum(dZ1, axis=0), dW2, db2)


def rows_case(n=6, h=5, k=3, seed=1):
    rng = np.random.default_rng(seed)
    params = (rng.standard_normal((n, h)), rng.standard_normal(h), rng.standard_normal((h, k)), rng.standard_normal(k))
    return params, rng.standard_normal((M, n)), rng.integers(0, k, M)


# ------------------------------- column-major: tanh hidden, sigmoid output, binary cross-entropy
def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def loss_binary(params, X, Y):
    m = X.shape[1]
    A1 = np.tanh(params["W1"].dot(X) + params["b1"])
    A2 = sigmoid(params["W2"].dot(A1) + params["b2"])
    return -np.sum(Y * np.log(A2) + (1 - Y) * np.log(1 - A2)) / m


def grads_binary(params, X, Y, bug=""):
    m = X.shape[1]
    A1 = np.tanh(params["W1"].dot(X) + params["b1"])
    A2 = sigmoid(params["W2"].dot(A1) + params["b2"])
    dZ2 = Y - A2 if bug == "sign" else A2 - Y
    dW2 = dZ2.dot(A1.T) / m
    db2 = np.sum(dZ2, axis=1, keepdims=True) / m
    dZ1 = params["W2"].T.dot(dZ2) * (1 - np.power(A1, 2))
    return {"W1": dZ1.dot(X.T) / m, "b1": np.sum(dZ1, axis=1, keepdims=True) / m, "W2": dW2, "b2": db2}


def binary_case(n=3, h=4, seed=2):
    rng = np.random.default_rng(seed)
    params = {"W1": rng.standard_normal((h, n)), "b1": np.zeros((h, 1)),
              "W2": rng.standard_normal((1, h)), "b2": np.zeros((1, 1))}
    return params, rng.standard_normal((n, M)), (rng.random((1, M)) > 0.5).astype(float)


# ------------------------------------ row-major: sigmoid hidden layer, one-hot Y, a list of params
def loss_sigmoid_rows(params, X, Y):
    W1, b1, W2, b2 = params
    A1 = sigmoid(np.dot(X, W1) + b1)  # not X.dot(W1): see test_ndarray_dot_method_is_explained
    Z2 = A1.dot(W2) + b2
    A2 = np.exp(Z2) / np.sum(np.exp(Z2), axis=1, keepdims=True)
    return -np.sum(Y * np.log(A2)) / X.shape[0]


def grads_sigmoid_rows(params, X, Y):
    W1, b1, W2, b2 = params
    m = X.shape[0]
    A1 = sigmoid(X.dot(W1) + b1)
    Z2 = A1.dot(W2) + b2
    A2 = np.exp(Z2) / np.sum(np.exp(Z2), axis=1, keepdims=True)
    dZ2 = (A2 - Y) / m
    dZ1 = dZ2.dot(W2.T) * A1 * (1 - A1)
    return [X.T.dot(dZ1), np.sum(dZ1, axis=0, keepdims=True), A1.T.dot(dZ2), np.sum(dZ2, axis=0, keepdims=True)]


def sigmoid_rows_case(n=5, h=4, k=3, seed=3):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((n, h)), rng.standard_normal((1, h)), rng.standard_normal((h, k)),
              rng.standard_normal((1, k))]
    return params, rng.standard_normal((M, n)), np.eye(k)[rng.integers(0, k, M)]


# ------------------------------------------------------------- the same MLP with np.einsum
def loss_einsum(params, X, Y):
    A1 = np.maximum(np.einsum("hn,nm->hm", params["W1"], X) + params["b1"], 0)
    Z2 = np.einsum("kh,hm->km", params["W2"], A1) + params["b2"]
    A2 = softmax(Z2)
    return -np.einsum("km,km->", Y, np.log(A2)) / X.shape[1]


def grads_einsum(params, X, Y):
    m = X.shape[1]
    Z1 = np.einsum("hn,nm->hm", params["W1"], X) + params["b1"]
    A1 = np.maximum(Z1, 0)
    dZ2 = (softmax(np.einsum("kh,hm->km", params["W2"], A1) + params["b2"]) - Y) / m
    dZ1 = np.einsum("kh,km->hm", params["W2"], dZ2) * (Z1 > 0)
    return {"W1": np.einsum("hm,nm->hn", dZ1, X), "b1": np.einsum("hm->h", dZ1)[:, None],
            "W2": np.einsum("km,hm->kh", dZ2, A1), "b2": np.einsum("km->k", dZ2)[:, None]}


def einsum_case():
    params, X, y = cols_case(seed=4)
    return params, X, one_hot_columns(y, 4)


STYLES = {
    "column-major relu softmax": (loss_cols, grads_cols, cols_case),
    "row-major tanh cs231n": (loss_rows, grads_rows, rows_case),
    "column-major tanh sigmoid binary": (loss_binary, grads_binary, binary_case),
    "row-major sigmoid softmax list": (loss_sigmoid_rows, grads_sigmoid_rows, sigmoid_rows_case),
    "einsum": (loss_einsum, grads_einsum, einsum_case),
}


@pytest.mark.parametrize("style", STYLES)
def test_correct_derivations_pass(style):
    loss_fn, grads_fn, case = STYLES[style]
    params, *data = case()
    report = check_backprop(loss_fn, grads_fn, params, *data)
    assert isinstance(report, BackpropReport) and report.ok
    assert all(c.max_abs < 1e-10 and c.max_rel < 1e-8 for c in report.checks)
    assert report.loss == pytest.approx(float(loss_fn(params, *data)), rel=1e-12)  # the same code on ndarrays
    assert "OK: every gradient matches" in str(report)


# (style, bug, the parameter named first, a phrase of its hint, other parameters that must be named)
BUGS = [
    ("column-major relu softmax", "missing 1/m", "W2", "a missing 1/m (m = 16, the batch size of your data)", []),
    ("column-major relu softmax", "extra 1/m", "W2", "an extra 1/m", []),
    ("column-major relu softmax", "factor 2", "W2", "yours is 2 × the correct gradient", []),
    ("column-major relu softmax", "sign", "W1", "wrong sign", ["b1", "W2", "b2"]),
    ("column-major relu softmax", "transposed dW", "W1", "transposed", []),
    ("column-major relu softmax", "wrong db axis", "b1", "summed over the wrong axis", []),
    ("column-major relu softmax", "lost keepdims", "b1", "a lost keepdims", []),
    ("column-major relu softmax", "mask on the wrong array", "W1", "", ["b1"]),
    ("row-major tanh cs231n", "transposed dW", "params[2]", "transposed", []),
    ("row-major tanh cs231n", "wrong db axis", "params[3]", "summed over the wrong axis", []),
    ("column-major tanh sigmoid binary", "sign", "W1", "wrong sign", ["b1", "W2", "b2"]),
]


@pytest.mark.parametrize("style, bug, name, hint, others", BUGS, ids=[f"{b[0]}: {b[1]}" for b in BUGS])
def test_planted_bugs_are_caught(style, bug, name, hint, others):
    loss_fn, grads_fn, case = STYLES[style]
    params, *data = case()
    with pytest.raises(BackpropMismatch) as info:
        check_backprop(loss_fn, lambda p, *d: grads_fn(p, *d, bug=bug), params, *data)
    err = info.value
    assert isinstance(err, AssertionError) and err.parameter == name
    message = str(err)
    assert message.startswith(f"check_backprop: wrong gradient for {name!r}")
    assert f"{name!r}: " in message and hint in message
    wrong = {c.name for c in err.report.checks if not c.ok}
    assert wrong == {name, *others}
    if not err.check.problem:  # a comparable shape: the worst element is named with both values
        assert f"worst element {name}[" in message and err.check.yours != err.check.correct


def test_square_transposed_gradient_is_recognised():
    params, X, y = cols_case(h=4, k=4)

    def transposed(p, X, y):
        g = grads_cols(p, X, y)
        return {**g, "W2": g["W2"].T}

    with pytest.raises(BackpropMismatch, match="transposed: yours is the transpose") as info:
        check_backprop(loss_cols, transposed, params, X, y)
    assert info.value.parameter == "W2"


def test_compare_arrays_hints():
    correct = np.arange(1.0, 7.0).reshape(2, 3)
    assert compare_arrays("w", correct * 1.0000001, correct).ok
    assert "the values are right" in compare_arrays("w", correct.T, correct).hints[0]
    assert "not summed over axis 0" in compare_arrays("b", np.stack([correct, 0 * correct]), correct).hints[0]
    assert "zero everywhere" in compare_arrays("w", 0 * correct, correct).hints[0]
    assert "wrong sign and yours is 8 × the correct" in compare_arrays("w", -8 * correct, correct, batch_sizes=[8]
                                                                       ).hints[0]
    assert compare_arrays("w", None, correct).problem.startswith("grads_fn returned no gradient")
    assert "not an array of numbers" in compare_arrays("w", {"a": 1}, correct).problem
    check = compare_arrays("w", correct + np.eye(2, 3), correct)  # wrong on the diagonal only: no pattern
    assert not check.ok and check.bad == 2 and check.hints == []


# ----------------------------------------------------------- structures and safety
def test_structures_and_tutorial_key_names():
    params, X, y = cols_case()
    g = grads_cols(params, X, y)
    report = check_backprop(loss_cols, lambda p, X, y: {f"d{k}": v for k, v in g.items()}, params, X, y)
    assert report.ok and report["W1"].shape == (5, 7) and report["b2"].max_abs < 1e-12
    listed = list(params.values())

    def as_dict(p):
        return dict(zip(params, p))

    assert check_backprop(lambda p, X, y: loss_cols(as_dict(p), X, y),
                          lambda p, X, y: list(grads_cols(as_dict(p), X, y).values()), listed, X, y).ok
    assert check_backprop(lambda p, X, y: loss_cols(as_dict(p), X, y),
                          lambda p, X, y: tuple(grads_cols(as_dict(p), X, y).values()), tuple(listed), X, y).ok


def test_missing_extra_and_misshaped_gradients_are_reported_not_raised_as_tracebacks():
    params, X, y = cols_case()

    def missing(p, X, y):
        g = grads_cols(p, X, y)
        del g["b2"]
        return {**g, "W3": np.zeros(3)}

    with pytest.raises(BackpropMismatch) as info:
        check_backprop(loss_cols, missing, params, X, y)
    message = str(info.value)
    assert "'b2': grads_fn returned no gradient for it" in message
    assert "'W3': grads_fn returned a gradient for it, but it is not a parameter" in message
    with pytest.raises(BackpropMismatch, match=r"returned shape \(3,\) for a parameter of shape \(4, 1\)"):
        check_backprop(loss_cols, lambda p, X, y: {**grads_cols(p, X, y), "b2": np.zeros(3)}, params, X, y)
    with pytest.raises(BackpropMismatch, match="'W1': grads_fn returned a list that is not an array of numbers"):
        check_backprop(loss_cols, lambda p, X, y: {**grads_cols(p, X, y), "W1": [[1.0, 2.0], [3.0]]}, params, X, y)
    with pytest.raises(BackpropMismatch, match="params\\[3\\]"):  # a list one gradient short
        check_backprop(loss_rows, lambda p, X, y: grads_rows(p, X, y)[:3], *rows_case())


def test_user_arrays_are_never_mutated_and_float32_is_checked_in_float64():
    params, X, y = cols_case()
    params = {k: v.astype(np.float32) for k, v in params.items()}
    saved = {k: v.copy() for k, v in params.items()}
    X32, y_saved = X.astype(np.float32), y.copy()

    def vandal(p, X, y):  # a backward pass that scribbles over its inputs
        g = grads_cols(p, X, y)
        for v in p.values():
            v *= 0
        X[...] = 0
        y[...] = 0
        return g

    assert check_backprop(loss_cols, vandal, params, X32, y).ok
    for k in params:
        np.testing.assert_array_equal(params[k], saved[k])
        assert params[k].dtype == np.float32
    np.testing.assert_array_equal(X32, X.astype(np.float32))
    np.testing.assert_array_equal(y, y_saved)
    assert check_backprop(loss_rows, grads_rows, *rows_case()).ok  # grads_rows writes into its own probs


# ------------------------------------------------------------------------ bad input
def _bad(loss_fn=loss_cols, grads_fn=grads_cols, params=None, exc=Exception, match=""):
    p, X, y = cols_case()
    with pytest.raises(exc, match=match):
        check_backprop(loss_fn, grads_fn, p if params is None else params, X, y)


@pytest.mark.filterwarnings("ignore:invalid value encountered in log")
@pytest.mark.parametrize("label, kwargs", [
    ("non-scalar loss", dict(loss_fn=lambda p, X, y: forward_cols(p, X)[3], exc=ValueError,
                             match=r"must return a scalar loss, got a Tensor of shape \(4, 16\)")),
    ("plain float", dict(loss_fn=lambda p, X, y: float(loss_cols(p, X, y)), exc=TypeError,
                         match="returned a plain float .*detached")),
    ("detached Tensor", dict(loss_fn=lambda p, X, y: loss_cols(p, X, y).detach(), exc=TypeError,
                             match="does not require grad .*detached")),
    ("loss and cache", dict(loss_fn=lambda p, X, y: (loss_cols(p, X, y), None), exc=TypeError,
                            match="returned a tuple; return only the scalar loss")),
    ("loss is nan", dict(loss_fn=lambda p, X, y: np.log(-np.sum(p["W1"] ** 2)), exc=ValueError,
                         match="returned nan .*a finite loss is needed")),
    ("int parameter", dict(params={"W1": np.ones((5, 7), dtype=np.int64)}, exc=TypeError,
                           match="parameter 'W1' has dtype int64; parameters must be float")),
    ("list parameter", dict(params={"W1": [[1.0, 2.0]]}, exc=TypeError, match="parameter 'W1' has type list")),
    ("not a container", dict(params=np.ones(3), exc=TypeError, match="params must be a dict, list or tuple")),
    ("unsupported numpy", dict(loss_fn=lambda p, X, y: np.sum(np.median(p["W1"])), exc=TypeError,
                               match="loss_fn failed on Tensor parameters: numpy.median is not differentiable")),
    ("mutated data", dict(loss_fn=lambda p, X, y: loss_cols(p, X.__isub__(X.mean()), y), exc=ValueError,
                          match="loss_fn changed data argument 0 in place")),
    ("nan gradient", dict(grads_fn=lambda p, X, y: {**grads_cols(p, X, y), "b1": np.full((5, 1), np.nan)},
                          exc=ValueError, match=r"returned nan in the gradient of 'b1' at element \(0, 0\)")),
    ("wrong container", dict(grads_fn=lambda p, X, y: list(grads_cols(p, X, y).values()), exc=TypeError,
                             match="must return a dict keyed like params")),
])
def test_bad_input(label, kwargs):
    _bad(**kwargs)


def test_ndarray_dot_method_is_explained():
    """ndarray.dot(Tensor) cannot be intercepted by NumPy's protocols: the error says what to write."""
    params, X, Y = sigmoid_rows_case()

    def loss(p, X, Y):
        return loss_sigmoid_rows([p[0], p[1], p[2], p[3]], X, Y) + np.sum(X.dot(p[0]))

    with pytest.raises(RuntimeError, match=r"write np\.dot\(X, W\) or X @ W"):
        check_backprop(loss, grads_sigmoid_rows, params, X, Y)


def test_bad_tolerances():
    with pytest.raises(ValueError, match="rtol >= 0"):
        check_backprop(loss_cols, grads_cols, *cols_case(), rtol=-1)


# ------------------------------------------------------------------ Hypothesis helper
COLUMN_MAJOR = backprop_cases(
    params={"W1": ("h", "n"), "b1": ("h", 1), "W2": ("k", "h"), "b2": ("k", 1)},
    data=[("n", "m"), labels("m", classes="k")],
    sizes={"k": (2, 4), "m": (2, 6)},
)


@settings(max_examples=15, deadline=None)
@given(COLUMN_MAJOR)
def test_one_given_test_checks_the_whole_derivation(case):
    assert case.check(loss_cols, grads_cols).ok
    assert case.params["W1"].shape == (case.sizes["h"], case.sizes["n"]) and case.data[0].shape[1] == case.sizes["m"]


@settings(max_examples=10, deadline=None)
@given(backprop_cases(params={"W": ("k", "n"), "b": ("k", 1)}, data=[("n", "m"), one_hot("k", "m", axis=0)],
                      sizes={"k": (2, 3)}))
def test_one_hot_labels_and_einsum(case):
    X, Y = case.data
    assert np.array_equal(Y.sum(axis=0), np.ones(X.shape[1]))

    def loss(p, X, Y):
        return -np.einsum("km,km->", Y, np.log(softmax(np.einsum("kn,nm->km", p["W"], X) + p["b"]))) / X.shape[1]

    def grads(p, X, Y):
        dZ = (softmax(p["W"].dot(X) + p["b"]) - Y) / X.shape[1]
        return {"W": dZ.dot(X.T), "b": dZ.sum(axis=1, keepdims=True)}

    case.check(loss, grads)


def test_the_helper_finds_a_planted_bug():
    @settings(max_examples=30, deadline=None, database=None)
    @given(COLUMN_MAJOR)
    def buggy(case):
        case.check(loss_cols, lambda p, X, y: grads_cols(p, X, y, bug="missing 1/m"))

    with pytest.raises(BackpropMismatch, match="'W2'"):
        buggy()
    assert repr(BackpropCase({}, (), {"m": 3}, 7)) == "BackpropCase(sizes={'m': 3}, seed=7)"  # Hypothesis prints it


# --------------------------------------------------------------- the README example
README_EXAMPLE = '''
import numpy as np
from tinygrad_lite.testing.backprop import check_backprop

rng = np.random.default_rng(0)
X = rng.random((784, 32))                    # 32 images, one per column
Y = np.eye(10)[:, rng.integers(0, 10, 32)]   # their one-hot labels, 10 x 32
params = {"W1": rng.standard_normal((10, 784)) * 0.01, "b1": np.zeros((10, 1)),
          "W2": rng.standard_normal((10, 10)) * 0.01, "b2": np.zeros((10, 1))}

def forward(params, X):
    Z1 = params["W1"].dot(X) + params["b1"]
    A1 = np.maximum(Z1, 0)                                  # ReLU
    Z2 = params["W2"].dot(A1) + params["b2"]
    E = np.exp(Z2 - np.max(Z2, axis=0, keepdims=True))
    A2 = E / np.sum(E, axis=0, keepdims=True)               # softmax over the 10 classes
    return Z1, A1, A2

def loss(params, X, Y):
    m = X.shape[1]
    A2 = forward(params, X)[2]
    return -np.sum(Y * np.log(A2)) / m                      # cross-entropy

def grads(params, X, Y):
    m = X.shape[1]
    Z1, A1, A2 = forward(params, X)
    dZ2 = A2 - Y
    dW2 = dZ2.dot(A1.T) / m
    db2 = np.sum(dZ2, axis=1, keepdims=True) / m
    dZ1 = params["W2"].T.dot(dZ2) * (Z1 > 0)
    dW1 = dZ1.dot(X.T) / m
    db1 = np.sum(dZ1, axis=1, keepdims=True) / m
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

report = check_backprop(loss, grads, params, X, Y)
print(report)
'''

README_ERROR_HEAD = """\
check_backprop: wrong gradient for 'W1' (1 of 4 parameter(s) wrong: W1; rtol 1e-05, atol 1e-08)
'W1': worst element W1[3, 43]: yours 0.11483, correct 0.00358843 (|difference| 0.111); 5488 of 7840 element(s) \
out of tolerance
  hint: yours is 32 × the correct gradient everywhere: a missing 1/m (m = 32, the batch size of your data)
"""


README_PROPERTY_TEST = '''
from hypothesis import given, settings
from tinygrad_lite.testing.backprop_strategies import backprop_cases, one_hot

@settings(max_examples=25, deadline=None)
@given(backprop_cases(
    params={"W1": ("h", "n"), "b1": ("h", 1), "W2": ("k", "h"), "b2": ("k", 1)},
    data=[("n", "m"), one_hot("k", "m", axis=0)],   # X is n x m, Y is k x m
))
def test_my_backprop(case):
    case.check(loss, grads)
'''


def test_readme_example_runs_and_its_error_is_the_one_shown(capsys):
    namespace: dict = {}
    exec(README_EXAMPLE, namespace)
    assert namespace["report"].ok
    assert "W1         10x784" in capsys.readouterr().out
    forgot_m = README_EXAMPLE.replace("dW1 = dZ1.dot(X.T) / m", "dW1 = dZ1.dot(X.T)")
    assert forgot_m != README_EXAMPLE
    with pytest.raises(BackpropMismatch) as info:
        exec(forgot_m, {})
    assert str(info.value).startswith(README_ERROR_HEAD)
    exec(README_PROPERTY_TEST, namespace)  # the README's property test, with the example's loss and grads
    namespace["test_my_backprop"]()
    with pytest.raises(BackpropMismatch, match="a missing 1/m"):
        exec(forgot_m + README_PROPERTY_TEST + "test_my_backprop()\n", {})


def test_readme_shows_this_example_once_merged():
    readme = Path(__file__).resolve().parent.parent / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    if "check_backprop(loss, grads, params, X, Y)" not in text:
        pytest.skip("the check_backprop section is not in README.md yet")
    for block in (README_EXAMPLE, README_ERROR_HEAD, README_PROPERTY_TEST):
        assert block.strip() in text

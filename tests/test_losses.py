"""tinygrad_lite.nn losses against NumPy reference formulas, for every reduction and option, with their
first and second derivatives, and bad targets refused."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite.nn as nn
from tinygrad_lite import Tensor
from tinygrad_lite.testing import assert_grads_match, assert_second_grads_match

REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def log_softmax(z, axis=1):
    s = z - z.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


# ------------------------------------------------------------------------------- regression losses
def _huber(d, delta):
    return np.where(np.abs(d) < delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))


def _smooth_l1(d, beta):
    return np.abs(d) if beta == 0 else np.where(np.abs(d) < beta, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta)


REGRESSION = [
    ("mse", lambda x, y, r: nn.mse_loss(x, y, reduction=r), lambda d: d * d),
    ("l1", lambda x, y, r: nn.l1_loss(x, y, reduction=r), np.abs),
    ("huber", lambda x, y, r: nn.huber_loss(x, y, reduction=r), lambda d: _huber(d, 1.0)),
    ("huber-0.3", lambda x, y, r: nn.huber_loss(x, y, reduction=r, delta=0.3), lambda d: _huber(d, 0.3)),
    ("smooth_l1", lambda x, y, r: nn.smooth_l1_loss(x, y, reduction=r), lambda d: _smooth_l1(d, 1.0)),
    ("smooth_l1-2", lambda x, y, r: nn.smooth_l1_loss(x, y, reduction=r, beta=2.0), lambda d: _smooth_l1(d, 2.0)),
    ("smooth_l1-0", lambda x, y, r: nn.smooth_l1_loss(x, y, reduction=r, beta=0.0), lambda d: _smooth_l1(d, 0.0)),
]


@pytest.mark.parametrize("reduction", list(REDUCE))
@pytest.mark.parametrize("name, loss, ref", REGRESSION, ids=[r[0] for r in REGRESSION])
def test_regression_losses_match_numpy_with_gradients_for_input_and_target(name, loss, ref, reduction):
    x, y = rand(3, 4, seed=1) * 2, rand(3, 4, seed=2) * 2
    np.testing.assert_allclose(loss(Tensor(x), y, reduction).data, REDUCE[reduction](ref(x - y)), rtol=1e-12)
    assert_grads_match(lambda a, b: loss(a, b, reduction), x, y)
    if name.startswith(("mse", "huber", "smooth_l1-2")):
        assert_second_grads_match(lambda a, b: loss(a, b, reduction), x, y)


# ------------------------------------------------------------------------------------ binary losses
@pytest.mark.parametrize("reduction", list(REDUCE))
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_matches_numpy_and_clamps_the_log(reduction, weighted):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0.05, 0.95, (4, 3)), rng.uniform(0, 1, (4, 3))
    w = rng.uniform(0.5, 2, (3,)) if weighted else None
    ref = -(y * np.log(x) + (1 - y) * np.log1p(-x)) * (1 if w is None else w)
    out = nn.binary_cross_entropy(Tensor(x), y, weight=w, reduction=reduction)
    np.testing.assert_allclose(out.data, REDUCE[reduction](ref), rtol=1e-12)
    assert_grads_match(lambda a, b: nn.binary_cross_entropy(a, b, weight=w, reduction=reduction), x, y)
    assert_second_grads_match(lambda a, b: nn.binary_cross_entropy(a, b, weight=w, reduction=reduction), x, y)
    edge = nn.binary_cross_entropy(Tensor(np.array([0.0, 1.0, 0.0, 1.0])), np.array([1.0, 0.0, 0.0, 1.0]),
                                   reduction="none")
    np.testing.assert_array_equal(edge.data, [100.0, 100.0, 0.0, 0.0])  # log clamped to ≥ −100, as PyTorch


@pytest.mark.parametrize("reduction", list(REDUCE))
@pytest.mark.parametrize("pos, weighted", [(False, False), (True, False), (True, True), (False, True)])
def test_binary_cross_entropy_with_logits_matches_numpy_and_is_stable(reduction, pos, weighted):
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 3, (4, 3)), rng.uniform(0, 1, (4, 3))
    p = rng.uniform(0.5, 3, 3) if pos else None
    w = rng.uniform(0.5, 2, (4, 1)) if weighted else None
    s = 1 / (1 + np.exp(-x))
    ref = -((1 if p is None else p) * y * np.log(s) + (1 - y) * np.log(1 - s)) * (1 if w is None else w)
    f = lambda a, b: nn.binary_cross_entropy_with_logits(a, b, weight=w, reduction=reduction, pos_weight=p)  # noqa: E731
    np.testing.assert_allclose(f(Tensor(x), y).data, REDUCE[reduction](ref), rtol=1e-10)
    assert_grads_match(f, x, y)
    assert_second_grads_match(f, x, y)
    big = nn.binary_cross_entropy_with_logits(Tensor(np.array([1000.0, -1000.0, 800.0])), np.array([0.0, 1.0, 1.0]),
                                              reduction="none")
    np.testing.assert_allclose(big.data, [1000.0, 1000.0, 0.0], atol=1e-300)


# --------------------------------------------------------------------------- nll and cross-entropy
def ce_ref(z, y, w, ignore_index, eps, reduction, log_probs=False):
    """PyTorch's formulation: (1 − ε)·nll + ε/C·smooth, each weighted; the mean divides by Σ w[yᵢ] kept."""
    logp = z if log_probs else log_softmax(z)
    m, c = z.shape
    w = np.ones(c) if w is None else w
    keep = y != ignore_index
    yy = np.where(keep, y, 0)
    nll = -w[yy] * logp[np.arange(m), yy] * keep
    smooth = -(logp * w).sum(axis=1) * keep
    if reduction == "none":
        return (1 - eps) * nll + eps / c * smooth
    if reduction == "sum":
        return (1 - eps) * nll.sum() + eps / c * smooth.sum()
    total = (w[yy] * keep).sum()
    return (1 - eps) * nll.sum() / total + eps / c * smooth.sum() / total


@given(m=st.integers(1, 6), c=st.integers(2, 5), seed=st.integers(0, 999), weighted=st.booleans(),
       ignore=st.sampled_from([None, -100, 1]), eps=st.sampled_from([0.0, 0.1, 0.5]),
       reduction=st.sampled_from(list(REDUCE)))
def test_cross_entropy_and_nll_with_weights_ignore_index_and_label_smoothing(m, c, seed, weighted, ignore, eps,
                                                                             reduction):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, (m, c))
    y = rng.integers(0, c, m)
    ignore_index = -100 if ignore is None else ignore
    if ignore is not None:
        y[rng.random(m) < 0.3] = ignore_index
    if reduction == "mean" and not (y != ignore_index).any():
        y[0] = 0 if ignore_index != 0 else 1  # keep one row (all ignored: NaN, tested apart)
    w = rng.uniform(0.2, 2, c) if weighted else None
    f = lambda t: nn.cross_entropy(t, y, weight=w, ignore_index=ignore_index, reduction=reduction,  # noqa: E731
                                   label_smoothing=eps)
    np.testing.assert_allclose(f(Tensor(z)).data, ce_ref(z, y, w, ignore_index, eps, reduction), rtol=1e-10,
                               atol=1e-14)
    assert_grads_match(f, z)
    assert_second_grads_match(f, z)
    logp = log_softmax(z)
    g = lambda t: nn.nll_loss(t, y, weight=w, ignore_index=ignore_index, reduction=reduction)  # noqa: E731
    np.testing.assert_allclose(g(Tensor(logp)).data, ce_ref(logp, y, w, ignore_index, 0.0, reduction, True),
                               rtol=1e-10, atol=1e-14)
    assert_grads_match(g, logp)


@pytest.mark.parametrize("reduction", list(REDUCE))
def test_cross_entropy_probability_targets_with_weights_and_smoothing(reduction):
    rng = np.random.default_rng(3)
    z, P, w = rng.normal(size=(5, 4)), rng.dirichlet(np.ones(4), size=5), rng.uniform(0.5, 2, 4)
    Q = 0.8 * P + 0.2 / 4
    per_row = -(Q * w * log_softmax(z)).sum(axis=1)
    expected = per_row.mean() if reduction == "mean" else REDUCE[reduction](per_row)  # mean: / m, as PyTorch
    f = lambda t: nn.cross_entropy(t, P, weight=w, reduction=reduction, label_smoothing=0.2)  # noqa: E731
    np.testing.assert_allclose(f(Tensor(z)).data, expected, rtol=1e-12)
    assert_grads_match(f, z)
    assert_second_grads_match(f, z)
    per_row = -(P * w * log_softmax(z)).sum(axis=1)
    np.testing.assert_allclose(nn.nll_loss(Tensor(log_softmax(z)), P, weight=w, reduction="none").data, per_row,
                               rtol=1e-12)


def test_cross_entropy_over_extra_dimensions_is_cross_entropy_of_the_flattened_rows():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(2, 3, 4, 5))  # (N, C, H, W)
    y = rng.integers(0, 3, (2, 4, 5))
    y[0, 0, :2] = -100
    rows = np.moveaxis(z, 1, -1).reshape(-1, 3)
    for reduction in REDUCE:
        out = nn.cross_entropy(Tensor(z), y, weight=np.array([1.0, 2.0, 0.5]), reduction=reduction)
        expected = ce_ref(rows, y.reshape(-1), np.array([1.0, 2.0, 0.5]), -100, 0.0, reduction)
        np.testing.assert_allclose(out.data, expected.reshape(y.shape) if reduction == "none" else expected,
                                   rtol=1e-12)
    P = np.moveaxis(rng.dirichlet(np.ones(3), size=(2, 4, 5)), -1, 1)
    np.testing.assert_allclose(nn.cross_entropy(Tensor(z), P).data,
                               -(np.moveaxis(P, 1, -1).reshape(-1, 3) * log_softmax(rows)).sum() / 40, rtol=1e-12)
    assert_grads_match(lambda t: nn.cross_entropy(t, y, label_smoothing=0.1), z, fast=True)


def test_plain_cross_entropy_keeps_the_exact_fused_gradient_and_all_ignored_is_nan():
    z = rand(4, 3)
    y = np.array([0, 2, 1, 1])
    t = Tensor(z, requires_grad=True)
    nn.cross_entropy(t, y).backward()
    A = np.exp(log_softmax(z))
    np.testing.assert_allclose(t.grad, (A - np.eye(3)[y]) / 4, rtol=0, atol=1e-16)
    assert np.isnan(nn.cross_entropy(Tensor(z), np.full(4, -100)).item())
    assert nn.cross_entropy(Tensor(z), np.full(4, -100), reduction="sum").item() == 0


# ----------------------------------------------------------------------------------------- kl_div
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_numpy(reduction, log_target):
    rng = np.random.default_rng(5)
    x = log_softmax(rng.normal(size=(3, 4)))
    q = rng.dirichlet(np.ones(4), size=3)
    if not log_target:  # 0 · log 0 = 0 (with log_target, PyTorch's e^(−inf)·(−inf − x) is NaN)
        q[0, 1] = 0
        q[0] /= q[0].sum()
    target = np.log(q) if log_target else q
    with np.errstate(divide="ignore", invalid="ignore"):
        pointwise = np.where(q > 0, q * (np.log(q) - x), 0)
    expected = pointwise.sum() / 3 if reduction == "batchmean" else REDUCE[reduction](pointwise)
    out = nn.kl_div(Tensor(x), target, reduction=reduction, log_target=log_target)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-15)
    assert_grads_match(lambda a: nn.kl_div(a, target, reduction=reduction, log_target=log_target), x)
    q2 = rng.dirichlet(np.ones(4), size=3)  # strictly positive: differentiable in the target too
    t2 = np.log(q2) if log_target else q2
    assert_grads_match(lambda a, b: nn.kl_div(a, b, reduction=reduction, log_target=log_target), x, t2)
    assert_second_grads_match(lambda a, b: nn.kl_div(a, b, reduction=reduction, log_target=log_target), x, t2)


# -------------------------------------------------------------------------------------- bad input
Z = lambda: Tensor(np.zeros((3, 4)), requires_grad=True)  # noqa: E731
P01 = lambda: Tensor(np.full((3, 4), 0.5), requires_grad=True)  # noqa: E731


@pytest.mark.parametrize("call, message", [
    (lambda: nn.cross_entropy(Z(), np.array([0, 4, 1]), ignore_index=-1), r"label 4 at row 1 is outside \[0, 4\) "
                                                                           r"and is not ignore_index=-1"),
    (lambda: nn.cross_entropy(Z(), np.array([0, -1, 1])), r"label -1 at row 1"),
    (lambda: nn.nll_loss(Z(), np.array([0, 9, 1]), weight=np.ones(4)), r"nll_loss: label 9 at row 1"),
    (lambda: nn.cross_entropy(Z(), np.array([0, 1, 2]), weight=np.ones(3)), r"weight must hold 4 finite numbers"),
    (lambda: nn.cross_entropy(Z(), np.array([0, 1, 2]), label_smoothing=1.5), r"label_smoothing must be in \[0, 1\]"),
    (lambda: nn.cross_entropy(Tensor(np.zeros((2, 3, 4))), np.zeros((2, 3), int)), r"target must have shape \(2, 4\)"),
    (lambda: nn.binary_cross_entropy(P01(), np.full((3, 4), 1.5)), r"every element of target must be in \[0, 1\]; "
                                                                   r"target\[0, 0\] = 1.5"),
    (lambda: nn.binary_cross_entropy(Tensor(np.full((3, 4), -0.1)), np.zeros((3, 4))), "element of input"),
    (lambda: nn.binary_cross_entropy_with_logits(Z(), np.full((3, 4), -1.0)), "element of target must be in"),
    (lambda: nn.binary_cross_entropy_with_logits(Z(), np.zeros((3, 4)), pos_weight=np.ones(3)),
     r"pos_weight of shape \(3,\) does not broadcast"),
    (lambda: nn.mse_loss(Z(), np.zeros((3, 1))), r"input has shape \(3, 4\) but target \(3, 1\)"),
    (lambda: nn.l1_loss(Z(), np.full((3, 4), np.nan)), "target contains NaN"),
    (lambda: nn.huber_loss(Z(), np.zeros((3, 4)), delta=0), "delta must be a positive number"),
    (lambda: nn.smooth_l1_loss(Z(), np.zeros((3, 4)), reduction="avg"), "unknown reduction 'avg'"),
    (lambda: nn.kl_div(Z(), np.full((3, 4), -0.25)), "target probabilities must be non-negative"),
    (lambda: nn.kl_div(Z(), np.zeros((3, 4)), reduction="batch"), "unknown reduction 'batch'"),
])
def test_bad_targets_and_options_raise_value_errors_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()

"""tinygrad_lite.optim: updates against closed forms, in-place updates, state dicts and bad arguments."""

import io
import math

import numpy as np
import pytest

import tinygrad_lite.nn as nn
import tinygrad_lite.optim as optim
from tinygrad_lite import Tensor

P0 = np.array([1.0, -2.0, 0.5])
G = np.array([0.3, -1.5, 2.0])


def run(make, grads, p0=P0):
    """Apply one step per gradient in ``grads`` to a fresh parameter; return (parameter, optimizer)."""
    p = Tensor(p0.copy(), requires_grad=True)
    opt = make([p])
    for g in grads:
        p.grad = np.array(g, dtype=p.dtype)
        opt.step()
    return p, opt


def test_sgd_plain_momentum_nesterov_and_weight_decay_closed_forms():
    k, lr, mu = 4, 0.1, 0.9
    p, _ = run(lambda ps: optim.SGD(ps, lr), [G] * k)
    np.testing.assert_allclose(p.data, P0 - k * lr * G, rtol=1e-14)
    # momentum: b_i = g (1 − μⁱ)/(1 − μ)
    b = [G * (1 - mu**i) / (1 - mu) for i in range(1, k + 1)]
    p, _ = run(lambda ps: optim.SGD(ps, lr, momentum=mu), [G] * k)
    np.testing.assert_allclose(p.data, P0 - lr * sum(b), rtol=1e-14)
    p, _ = run(lambda ps: optim.SGD(ps, lr, momentum=mu, nesterov=True), [G] * k)
    np.testing.assert_allclose(p.data, P0 - lr * sum(G + mu * bi for bi in b), rtol=1e-14)
    # weight decay alone (zero gradient): p_k = p_0 (1 − η λ)^k
    p, _ = run(lambda ps: optim.SGD(ps, lr, weight_decay=0.5), [np.zeros(3)] * k)
    np.testing.assert_allclose(p.data, P0 * (1 - lr * 0.5) ** k, rtol=1e-14)


def test_adam_bias_correction_makes_a_constant_gradient_move_lr_per_step():
    # m̂ = g and v̂ = g² exactly for a constant gradient, so each step moves η·g/(|g| + ε)
    lr, eps, k = 0.01, 1e-8, 5
    p, _ = run(lambda ps: optim.Adam(ps, lr, eps=eps), [G] * k)
    np.testing.assert_allclose(p.data, P0 - k * lr * G / (np.abs(G) + eps), rtol=1e-12)


def test_adam_two_steps_with_changing_gradients_follow_the_formulas():
    b1, b2, lr, eps = 0.8, 0.95, 0.05, 1e-3
    g1, g2 = G, np.array([-1.0, 0.25, 4.0])
    p, opt = run(lambda ps: optim.Adam(ps, lr, betas=(b1, b2), eps=eps), [g1, g2])
    m = (1 - b1) * (b1 * g1 + g2)
    v = (1 - b2) * (b2 * g1**2 + g2**2)
    step1 = lr * g1 / (np.abs(g1) + eps)
    step2 = lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    np.testing.assert_allclose(p.data, P0 - step1 - step2, rtol=1e-12)
    state = opt.state_dict()
    np.testing.assert_allclose(state["m.0"], m, rtol=1e-14)
    np.testing.assert_allclose(state["v.0"], v, rtol=1e-14)
    assert state["step"].tolist() == [2]


def test_adam_weight_decay_adds_l2_gradient():
    p, _ = run(lambda ps: optim.Adam(ps, 0.01, weight_decay=0.1), [G])
    g = G + 0.1 * P0
    np.testing.assert_allclose(p.data, P0 - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)


def test_rmsprop_closed_form_for_a_constant_gradient():
    lr, alpha, eps, k = 0.01, 0.9, 1e-8, 3
    p, _ = run(lambda ps: optim.RMSprop(ps, lr, alpha=alpha, eps=eps), [G] * k)
    steps = [lr * G / (np.sqrt(1 - alpha**i) * np.abs(G) + eps) for i in range(1, k + 1)]
    np.testing.assert_allclose(p.data, P0 - sum(steps), rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, 0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: optim.Adam(ps, weight_decay=0.01),
    lambda ps: optim.RMSprop(ps, weight_decay=0.01),
])
def test_step_updates_in_place_skips_missing_grads_and_leaves_grads_alone(make):
    a = Tensor(np.ones((3, 2), np.float32), requires_grad=True)
    b = Tensor(np.ones(2, np.float32), requires_grad=True)
    opt = make([a, b])
    data_a, data_b = a.data, b.data
    g = np.full((3, 2), 0.5, np.float32)
    a.grad = g.copy()
    opt.step()
    assert a.data is data_a and b.data is data_b and a.dtype == np.float32
    assert np.all(a.data < 1)
    np.testing.assert_array_equal(b.data, 1)  # no grad: skipped
    np.testing.assert_array_equal(a.grad, g)  # the gradient is not used as scratch space
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_lr_is_a_plain_attribute_schedules_can_set():
    p = Tensor(np.zeros(2), requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    opt.lr = 0.25
    p.grad = np.ones(2)
    opt.step()
    np.testing.assert_allclose(p.data, -0.25)
    opt.lr = -1.0
    with pytest.raises(ValueError, match="lr must be"):
        opt.step()
    np.testing.assert_allclose(p.data, -0.25)


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, 0.05, momentum=0.8),
    lambda ps: optim.Adam(ps, 0.01),
    lambda ps: optim.RMSprop(ps, 0.01),
])
def test_state_dict_round_trip_through_npz_continues_identically(make):
    rng = np.random.default_rng(0)
    grads = [[rng.normal(size=(4, 3)), rng.normal(size=3)] for _ in range(6)]
    start = [rng.normal(size=(4, 3)), rng.normal(size=3)]

    def fresh():
        ps = [Tensor(s.copy(), requires_grad=True) for s in start]
        return ps, make(ps)

    def steps(ps, opt, gs):
        for g in gs:
            for p, gi in zip(ps, g):
                p.grad = gi.copy()
            opt.step()

    ps, opt = fresh()
    steps(ps, opt, grads)  # reference: six steps straight
    ps2, opt2 = fresh()
    steps(ps2, opt2, grads[:3])
    buffer = io.BytesIO()
    np.savez(buffer, **opt2.state_dict())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as f:
        saved = dict(f)
    ps3 = [Tensor(p.data.copy(), requires_grad=True) for p in ps2]
    opt3 = make(ps3)
    opt3.load_state_dict(saved)
    steps(ps3, opt3, grads[3:])
    for p, q in zip(ps, ps3):
        np.testing.assert_array_equal(p.data, q.data)


def test_load_state_dict_validates_before_changing_anything():
    p = Tensor(np.zeros(3), requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.ones(3)
    opt.step()
    good = opt.state_dict()
    for edit, message in [
        (lambda s: s.pop("v.0"), r"missing keys \['v.0'\]"),
        (lambda s: s.update({"m.1": np.zeros(3)}), r"unexpected keys \['m.1'\]"),
        (lambda s: s.update({"m.0": np.zeros(4)}), r"'m.0' has shape \(4,\)"),
        (lambda s: s.update({"lr": np.array(-1.0)}), "lr must be"),
        (lambda s: s.update({"v.0": np.full(3, np.nan)}), "'v.0' holds non-finite values"),
        (lambda s: s.update({"step": np.array([1.5])}), "'step' must hold non-negative integers"),
    ]:
        state = {k: v * 2 for k, v in good.items()}
        edit(state)
        with pytest.raises(ValueError, match=message):
            opt.load_state_dict(state)
        after = opt.state_dict()
        for k in good:
            np.testing.assert_array_equal(after[k], good[k], err_msg=k)


def test_bad_arguments_are_named():
    p = Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], 0.1)
    with pytest.raises(ValueError, match="lr must be"):
        optim.SGD([p], -0.1)
    with pytest.raises(ValueError, match="lr must be"):
        optim.Adam([p], math.nan)
    with pytest.raises(ValueError, match=r"betas\[1\] must be in \[0.0, 1.0\)"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"betas\[0\] must be in"):
        optim.Adam([p], betas=(-0.1, 0.9))
    with pytest.raises(ValueError, match="alpha must be in"):
        optim.RMSprop([p], alpha=1.5)
    with pytest.raises(ValueError, match="nesterov=True needs a momentum"):
        optim.SGD([p], 0.1, nesterov=True)
    with pytest.raises(ValueError, match="appears twice"):
        optim.SGD([p, p], 0.1)
    with pytest.raises(ValueError, match=r"parameter 1 \(shape \(3,\)\) does not require grad"):
        optim.SGD([p, Tensor(np.zeros(3))], 0.1)
    lin = nn.Linear(2, 2)
    lin.bias.requires_grad = False
    lin.frozen = Tensor(np.zeros(1))
    named = [("weight", lin.weight), ("bias", lin.bias)]
    with pytest.raises(ValueError, match=r"Adam: bias \(shape \(2,\)\) does not require grad"):
        optim.Adam(named)


def test_sgd_trains_a_linear_model_on_a_separable_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = nn.Linear(2, 2, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    first = None
    for _ in range(50):
        opt.zero_grad()
        loss = nn.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.3 * first


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.Adam(ps, lr=0.1)])
def test_a_bad_gradient_anywhere_changes_no_parameter(make):
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    opt = make([a, b])
    a.grad, b.grad = np.ones(3), np.ones(5)  # the second is misshapen
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(2,\) but its grad \(5,\)"):
        opt.step()
    np.testing.assert_array_equal(a.data, np.ones(3))
    assert opt.state_dict()["step"].tolist() == [0, 0]

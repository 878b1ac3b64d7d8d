"""optim.AdamW against a hand-written NumPy AdamW, and param_groups_no_decay."""

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite.nn as nn
from tinygrad_lite import Tensor, optim


def adamw_reference(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """Decoupled weight decay, then Adam with bias correction (Loshchilov & Hutter; PyTorch's AdamW)."""
    b1, b2 = betas
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        p = p * (1 - lr * weight_decay)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def run(p, grads, **kwargs):
    t = Tensor(p.copy(), requires_grad=True)
    opt = optim.AdamW([t], **kwargs)
    for g in grads:
        t.grad = g.copy()
        opt.step()
    return t.data, opt


@given(seed=st.integers(0, 999), steps=st.integers(1, 6), lr=st.sampled_from([1e-3, 0.05, 0.3]),
       wd=st.sampled_from([0.0, 1e-2, 0.5]), betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9)]))
def test_adamw_matches_a_numpy_reference_for_several_steps(seed, steps, lr, wd, betas):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(3, 2))
    grads = [rng.normal(size=(3, 2)) for _ in range(steps)]
    got, opt = run(p, grads, lr=lr, betas=betas, weight_decay=wd)
    np.testing.assert_allclose(got, adamw_reference(p, grads, lr, betas, 1e-8, wd), rtol=1e-12, atol=1e-15)
    assert opt.steps.tolist() == [steps]


def test_adamw_defaults_are_pytorchs_and_decay_is_decoupled_from_adams_l2():
    opt = optim.AdamW([Tensor(np.zeros(2), requires_grad=True)])
    assert (opt.lr, opt.betas, opt.eps, opt.weight_decay) == (1e-3, (0.9, 0.999), 1e-8, 1e-2)
    p, grads = np.array([1.0, -2.0]), [np.array([0.1, 0.1])] * 3
    adamw, _ = run(p, grads, lr=0.1, weight_decay=0.5)
    t = Tensor(p.copy(), requires_grad=True)
    adam = optim.Adam([t], lr=0.1, weight_decay=0.5)
    for g in grads:
        t.grad = g.copy()
        adam.step()
    assert not np.allclose(adamw, t.data)  # L2 decay goes through m and v; decoupled decay does not
    zero_grad, _ = run(p, [np.zeros(2)], lr=0.1, weight_decay=0.5)
    np.testing.assert_allclose(zero_grad, p * (1 - 0.05))  # a zero gradient: only the decay moves p
    with pytest.raises(ValueError, match=r"AdamW: betas\[1\] must be in"):
        optim.AdamW([Tensor(np.zeros(2), requires_grad=True)], betas=(0.9, 1.0))


def test_adamw_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    p = rng.normal(size=4)
    grads = [rng.normal(size=4) for _ in range(5)]
    t = Tensor(p.copy(), requires_grad=True)
    opt = optim.AdamW([t], lr=0.05)
    for g in grads[:2]:
        t.grad = g.copy()
        opt.step()
    buffer = io.BytesIO()
    np.savez(buffer, **opt.state_dict())
    buffer.seek(0)
    t2 = Tensor(t.data.copy(), requires_grad=True)
    opt2 = optim.AdamW([t2], lr=0.05)
    opt2.load_state_dict(dict(np.load(buffer, allow_pickle=False)))
    for g in grads[2:]:
        t.grad, t2.grad = g.copy(), g.copy()
        opt.step()
        opt2.step()
    np.testing.assert_array_equal(t.data, t2.data)
    np.testing.assert_allclose(t.data, adamw_reference(p, grads, lr=0.05), rtol=1e-12)


class Small(nn.Module):
    def __init__(self):
        self.conv = nn.Conv2d(1, 2, 3, rng=0, dtype=np.float64)
        self.norm = nn.BatchNorm2d(2, dtype=np.float64)
        self.ln = nn.LayerNorm(2, bias=False, dtype=np.float64)
        self.head = nn.Linear(2, 3, rng=1, dtype=np.float64)

    def forward(self, x):
        return self.head(self.ln(self.norm(self.conv(x)).mean(axis=(2, 3))))


def test_param_groups_no_decay_exempts_biases_and_norm_parameters():
    model = Small()
    groups = optim.param_groups_no_decay(model, 0.3, lr=0.02)
    assert [[n for n, _ in g["params"]] for g in groups] == [
        ["conv.weight", "head.weight"], ["conv.bias", "norm.weight", "norm.bias", "ln.weight", "head.bias"]]
    assert [(g["weight_decay"], g["lr"]) for g in groups] == [(0.3, 0.02), (0.0, 0.02)]
    opt = optim.AdamW(groups)
    start = {n: p.data.copy() for n, p in model.named_parameters()}
    x = np.random.default_rng(0).normal(size=(4, 1, 5, 5))
    steps = 3
    grads = {n: [] for n in start}
    for _ in range(steps):
        opt.zero_grad()
        model(x).sum().backward()
        for n, p in model.named_parameters():
            grads[n].append(p.grad.copy())
        opt.step()
    for n, p in model.named_parameters():
        wd = 0.3 if n in ("conv.weight", "head.weight") else 0.0
        np.testing.assert_allclose(p.data, adamw_reference(start[n], grads[n], 0.02, weight_decay=wd), rtol=1e-10,
                                   err_msg=n)
    frozen = Small()
    frozen.conv.requires_grad_(False)
    names = [n for g in optim.param_groups_no_decay(frozen, 0.1) for n, _ in g["params"]]
    assert "conv.weight" not in names and "conv.bias" not in names
    only_norm = nn.Sequential(nn.BatchNorm1d(2))
    assert [g["weight_decay"] for g in optim.param_groups_no_decay(only_norm, 0.1)] == [0.0]  # no empty group


def test_adamw_follows_a_scheduler_per_group():
    model = Small()
    opt = optim.AdamW(optim.param_groups_no_decay(model, 0.1), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.05]

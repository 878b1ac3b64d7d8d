"""tinygrad_lite.optim.lr_scheduler: each scheduler against the closed form of PyTorch's documented
formula, composition, parameter groups, momentum cycling, state dicts and bad arguments."""

import json
import math
from bisect import bisect_right

import numpy as np
import pytest

import tinygrad_lite.optim as optim
from tinygrad_lite import Tensor
from tinygrad_lite.optim import lr_scheduler as L

RTOL = 1e-12


def sgd(lr=0.1, groups=None, **kw):
    """An SGD over one parameter (or over one parameter per group lr in ``groups``)."""
    if groups is None:
        return optim.SGD([Tensor(np.zeros(3), requires_grad=True)], lr, **kw)
    return optim.SGD([{"params": [Tensor(np.zeros(3), requires_grad=True)], "lr": g} for g in groups], lr, **kw)


def run(scheduler, epochs):
    """[lr of every group] for epochs 0 .. epochs−1: the lr set when built, then one step() per epoch;
    ``opt.lr`` and the optimizer's groups always agree with ``get_last_lr()``."""
    opt = scheduler.optimizer
    out = []
    for epoch in range(epochs):
        if epoch:
            scheduler.step()
        last = scheduler.get_last_lr()
        assert last == [g["lr"] for g in opt.param_groups]
        if len(last) == 1:
            assert opt.lr == last[0]
        out.append(last)
    return np.array(out)


# ---------------------------------------------------------------- closed forms of PyTorch's formulas
def step_lr(base, t, step_size, gamma):
    return base * gamma ** (t // step_size)


def multistep_lr(base, t, milestones, gamma):
    return base * gamma ** bisect_right(sorted(milestones), t)


def cosine_lr(base, t, T_max, eta_min):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2


def linear_lr(base, t, start, end, total):
    return base * (start + (end - start) * min(t, total) / total)


def one_cycle(t, total, max_lr, pct=0.3, div=25.0, final_div=1e4, strategy="cos", three_phase=False,
              momenta=(0.85, 0.95)):
    """(lr, momentum) at step t of PyTorch's OneCycleLR, written from its documentation."""
    initial = max_lr / div
    low = initial / final_div
    base_m, max_m = momenta
    if three_phase:
        phases = [(pct * total - 1, initial, max_lr, max_m, base_m),
                  (2 * pct * total - 2, max_lr, initial, base_m, max_m), (total - 1, initial, low, max_m, max_m)]
    else:
        phases = [(pct * total - 1, initial, max_lr, max_m, base_m), (total - 1, max_lr, low, base_m, max_m)]
    start = 0.0
    for i, (end, a, b, ma, mb) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            f = (t - start) / (end - start)
            if strategy == "cos":
                anneal = lambda x, y: y + (x - y) / 2 * (1 + math.cos(math.pi * f))
            else:
                anneal = lambda x, y: x + (y - x) * f
            return anneal(a, b), anneal(ma, mb)
        start = end


def test_step_lr():
    got = run(L.StepLR(sgd(0.05), step_size=3, gamma=0.5), 13)
    np.testing.assert_allclose(got[:, 0], [step_lr(0.05, t, 3, 0.5) for t in range(13)], rtol=RTOL)


def test_step_lr_documented_values():
    got = run(L.StepLR(sgd(0.05), step_size=30, gamma=0.1), 91)[:, 0]  # the docs' example
    np.testing.assert_allclose(got[[0, 29, 30, 59, 60, 89, 90]], [0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005, 5e-5],
                               rtol=1e-12)


def test_multistep_lr_with_a_repeated_milestone():
    milestones = [5, 2, 9, 5]  # unsorted; 5 twice decays twice
    got = run(L.MultiStepLR(sgd(1.0), milestones, gamma=0.1), 12)
    np.testing.assert_allclose(got[:, 0], [multistep_lr(1.0, t, milestones, 0.1) for t in range(12)], rtol=RTOL)


def test_exponential_lr():
    got = run(L.ExponentialLR(sgd(0.3), gamma=0.9), 20)
    np.testing.assert_allclose(got[:, 0], [0.3 * 0.9**t for t in range(20)], rtol=RTOL)


@pytest.mark.parametrize("T_max, eta_min", [(10, 0.0), (4, 0.01), (1, 0.05)])
def test_cosine_annealing_follows_the_closed_form_past_t_max(T_max, eta_min):
    epochs = 4 * T_max + 3  # through two minima: the recursive form has a special case leaving each
    got = run(L.CosineAnnealingLR(sgd(0.1), T_max=T_max, eta_min=eta_min), epochs)
    np.testing.assert_allclose(got[:, 0], [cosine_lr(0.1, t, T_max, eta_min) for t in range(epochs)],
                               rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("start, end, total", [(0.25, 1.0, 4), (1.0, 0.1, 6), (1 / 3, 1.0, 5)])
def test_linear_lr(start, end, total):
    got = run(L.LinearLR(sgd(0.2), start_factor=start, end_factor=end, total_iters=total), total + 4)
    np.testing.assert_allclose(got[:, 0], [linear_lr(0.2, t, start, end, total) for t in range(total + 4)],
                               rtol=RTOL)


def test_linear_lr_documented_warmup():
    got = run(L.LinearLR(sgd(0.05), start_factor=0.5, total_iters=4), 6)[:, 0]
    np.testing.assert_allclose(got, [0.025, 0.03125, 0.0375, 0.04375, 0.05, 0.05], rtol=RTOL)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("total, pct", [(20, 0.3), (7, 0.25), (100, 0.5)])
def test_one_cycle_lr_and_momentum(strategy, three_phase, total, pct):
    opt = sgd(0.1, momentum=0.9)
    s = L.OneCycleLR(opt, max_lr=0.4, total_steps=total, pct_start=pct, anneal_strategy=strategy,
                     three_phase=three_phase)
    for t in range(total):
        if t:
            s.step()
        lr, m = one_cycle(t, total, 0.4, pct, strategy=strategy, three_phase=three_phase)
        np.testing.assert_allclose([s.get_last_lr()[0], opt.momentum], [lr, m], rtol=RTOL, err_msg=f"step {t}")
    assert s.get_last_lr()[0] == pytest.approx(0.4 / 25 / 1e4)


def test_one_cycle_cycles_adams_beta1_and_stops_past_total_steps():
    opt = optim.Adam([Tensor(np.zeros(2), requires_grad=True)], lr=1e-3, betas=(0.9, 0.99))
    s = L.OneCycleLR(opt, max_lr=0.01, epochs=2, steps_per_epoch=5, base_momentum=0.8, max_momentum=0.9)
    for t in range(11):
        if t:
            s.step()
        lr, m = one_cycle(t, 10, 0.01, momenta=(0.8, 0.9))
        np.testing.assert_allclose([opt.lr, opt.beta1], [lr, m], rtol=RTOL)
        assert opt.beta2 == 0.99
    with pytest.raises(ValueError, match="stepped 11 times, but total_steps is 10"):
        s.step()


def test_one_cycle_needs_momentum_to_cycle_it():
    with pytest.raises(ValueError, match="cycle_momentum=True needs an optimizer with momentum or betas"):
        L.OneCycleLR(sgd(0.1), max_lr=1.0, total_steps=10)
    rms = optim.RMSprop([Tensor(np.zeros(2), requires_grad=True)])
    assert "initial_lr" not in rms.param_groups[0]  # refused before touching the groups
    s = L.OneCycleLR(rms, max_lr=1.0, total_steps=10, cycle_momentum=False)
    np.testing.assert_allclose(run(s, 10)[:, 0], [one_cycle(t, 10, 1.0)[0] for t in range(10)], rtol=RTOL)


# --------------------------------------------------------------------------------- composition
def test_sequential_warmup_then_cosine():
    opt = sgd(0.1)
    warm = L.LinearLR(opt, start_factor=0.1, total_iters=3)
    cos = L.CosineAnnealingLR(opt, T_max=6, eta_min=0.001)
    s = L.SequentialLR(opt, [warm, cos], milestones=[3])
    got = run(s, 12)[:, 0]
    want = [linear_lr(0.1, t, 0.1, 1.0, 3) if t < 3 else cosine_lr(0.1, t - 3, 6, 0.001) for t in range(12)]
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_sequential_three_schedulers_restart_each_at_its_epoch_zero():
    opt = sgd(1.0)
    parts = [L.ExponentialLR(opt, 0.5), L.StepLR(opt, 2, 0.1), L.LinearLR(opt, 0.5, 1.0, 2)]
    got = run(L.SequentialLR(opt, parts, milestones=[2, 6]), 10)[:, 0]
    want = [0.5**t if t < 2 else step_lr(1.0, t - 2, 2, 0.1) if t < 6 else linear_lr(1.0, t - 6, 0.5, 1.0, 2)
            for t in range(10)]
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_chained_schedulers_multiply():
    opt = sgd(0.2)
    s = L.ChainedScheduler([L.LinearLR(opt, start_factor=0.5, total_iters=4), L.ExponentialLR(opt, gamma=0.9)])
    got = run(s, 10)[:, 0]
    np.testing.assert_allclose(got, [linear_lr(0.2, t, 0.5, 1.0, 4) * 0.9**t for t in range(10)], rtol=RTOL)


def test_every_group_is_scheduled_from_its_own_initial_lr():
    opt = sgd(groups=[0.1, 0.01])
    got = run(L.StepLR(opt, step_size=2, gamma=0.5), 6)
    np.testing.assert_allclose(got, [[0.1 * 0.5 ** (t // 2), 0.01 * 0.5 ** (t // 2)] for t in range(6)], rtol=RTOL)
    with pytest.raises(ValueError, match="different lr values"):
        _ = opt.lr
    opt = sgd(groups=[0.1, 0.01], momentum=0.9)
    s = L.OneCycleLR(opt, max_lr=[1.0, 0.5], total_steps=10)
    got = run(s, 10)
    np.testing.assert_allclose(got, [[one_cycle(t, 10, 1.0)[0], one_cycle(t, 10, 0.5)[0]] for t in range(10)],
                               rtol=RTOL)


# --------------------------------------------------------------------------------- state dicts
def schedules():
    """(name, make(opt) -> scheduler, make_opt) for every scheduler, each with some steps' worth of change."""
    return [
        ("step", lambda o: L.StepLR(o, 3, 0.5), sgd),
        ("multistep", lambda o: L.MultiStepLR(o, [2, 4, 4], 0.3), sgd),
        ("exponential", lambda o: L.ExponentialLR(o, 0.8), sgd),
        ("cosine", lambda o: L.CosineAnnealingLR(o, 4, 0.01), sgd),
        ("linear", lambda o: L.LinearLR(o, 0.2, 1.0, 5), sgd),
        ("one_cycle", lambda o: L.OneCycleLR(o, 0.5, total_steps=12), lambda: sgd(0.1, momentum=0.9)),
        ("sequential", lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, 1.0, 3), L.CosineAnnealingLR(o, 5)], [3]),
         sgd),
        ("chained", lambda o: L.ChainedScheduler([L.LinearLR(o, 0.5, 1.0, 4), L.StepLR(o, 2, 0.7)]), sgd),
    ]


@pytest.mark.parametrize("name, make, make_opt", schedules(), ids=[s[0] for s in schedules()])
def test_state_dict_through_json_resumes_the_same_schedule(name, make, make_opt):
    opt = make_opt()
    ref = make(opt)
    want = [(opt.lr, getattr(opt, "momentum", None))]
    for _ in range(11):
        ref.step()
        want.append((opt.lr, opt.momentum))

    opt = make_opt()
    s = make(opt)
    got = [(opt.lr, opt.momentum)]
    for _ in range(5):
        s.step()
        got.append((opt.lr, opt.momentum))
    saved, saved_opt = json.loads(json.dumps(s.state_dict())), opt.state_dict()
    opt2 = make_opt()
    s2 = make(opt2)  # built afresh, then both states loaded
    opt2.load_state_dict(saved_opt)
    s2.load_state_dict(saved)
    assert s2.get_last_lr() == s.get_last_lr()
    assert (opt2.lr, opt2.momentum) == got[-1]  # what the next optimizer.step() uses, momentum included
    for _ in range(6):
        s2.step()
        got.append((opt2.lr, opt2.momentum))
    np.testing.assert_allclose(np.array(got, dtype=float), np.array(want, dtype=float), rtol=RTOL)


def test_load_state_dict_names_wrong_keys():
    s = L.StepLR(sgd(), 3)
    state = s.state_dict()
    del state["gamma"]
    with pytest.raises(ValueError, match=r"StepLR.load_state_dict: missing keys \['gamma'\]"):
        s.load_state_dict(state)
    seq = L.SequentialLR(o := sgd(), [L.ExponentialLR(o, 0.5), L.ExponentialLR(o, 0.9)], [2])
    state = seq.state_dict()
    state["schedulers"].pop()
    with pytest.raises(ValueError, match="1 scheduler states for 2 schedulers"):
        seq.load_state_dict(state)
    state = seq.state_dict()
    state["schedulers"][1]["surprise"] = 1
    with pytest.raises(ValueError, match=r"ExponentialLR.load_state_dict: unexpected keys \['surprise'\]"):
        seq.load_state_dict(state)


def test_resuming_by_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match=r"param_groups\[0\] has no 'initial_lr'"):
        L.ExponentialLR(sgd(), 0.9, last_epoch=4)
    opt = sgd(1.0)
    L.ExponentialLR(opt, 0.5)  # records initial_lr
    s = L.StepLR(opt, 2, 0.1, last_epoch=3)  # PyTorch semantics: one step from epoch 3 to 4 decays
    assert s.last_epoch == 4 and s.get_last_lr() == [pytest.approx(0.1)]


@pytest.mark.parametrize("make", [lambda o: L.ExponentialLR(o, 0.5, last_epoch=2),
                                  lambda o: L.LinearLR(o, 0.5, 1.0, 4, last_epoch=2),
                                  lambda o: L.CosineAnnealingLR(o, 5, last_epoch=2)])
def test_a_resumed_chainable_schedule_keeps_the_lr_it_finds(make):
    opt = sgd(1.0)
    L.ExponentialLR(opt, 0.5).step()  # initial_lr recorded, lr now 0.5
    s = make(opt)
    assert s.last_epoch == 3 and opt.lr == 0.5


# --------------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("make, message", [
    (lambda o: L.StepLR(o, 0), r"StepLR: step_size must be an integer >= 1, got 0"),
    (lambda o: L.StepLR(o, 2.5), r"step_size must be an integer"),
    (lambda o: L.StepLR(o, 2, gamma=float("nan")), r"StepLR: gamma must be"),
    (lambda o: L.MultiStepLR(o, [3, -1]), r"MultiStepLR: milestones must be an integer >= 0, got -1"),
    (lambda o: L.CosineAnnealingLR(o, 0), r"T_max must be an integer >= 1"),
    (lambda o: L.LinearLR(o, start_factor=0.0), r"start_factor must be in \(0.0, 1.0\]"),
    (lambda o: L.LinearLR(o, end_factor=1.5), r"end_factor must be in \[0.0, 1.0\]"),
    (lambda o: L.OneCycleLR(o, 0.1), r"give total_steps, or epochs and steps_per_epoch"),
    (lambda o: L.OneCycleLR(o, 0.1, total_steps=10, anneal_strategy="cosine"), r"'cos' or 'linear'"),
    (lambda o: L.OneCycleLR(o, 0.1, total_steps=10, pct_start=0.1), r"a phase of zero steps"),
    (lambda o: L.OneCycleLR(o, [0.1, 0.2], total_steps=10), r"max_lr has 2 values for 1 parameter groups"),
    (lambda o: L.SequentialLR(o, [L.StepLR(o, 2)], [3]), r"1 schedulers need 0 milestones, got 1"),
    (lambda o: L.SequentialLR(o, [L.StepLR(sgd(), 2)], []), r"schedulers\[0\] \(StepLR\) drives another optimizer"),
    (lambda o: L.ChainedScheduler([]), r"expects at least one scheduler"),
    (lambda o: L.StepLR(object(), 2), r"object is not an optimizer"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make(sgd(momentum=0.9))

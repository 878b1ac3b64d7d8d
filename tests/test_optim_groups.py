"""tinygrad_lite.optim parameter groups: per-group lr and weight decay, ``opt.lr`` across groups,
state dicts with several groups, and bad groups named."""

import numpy as np
import pytest

import tinygrad_lite.nn as nn
import tinygrad_lite.optim as optim
from tinygrad_lite import Tensor

P0, G = np.array([1.0, -2.0, 0.5]), np.array([0.3, -1.5, 2.0])


def two_groups(make, **groups):
    """Two parameters starting at P0 with gradient G, one per group; ``groups`` gives each group's extra keys."""
    a, b = Tensor(P0.copy(), requires_grad=True), Tensor(P0.copy(), requires_grad=True)
    opt = make([{"params": [a], **groups.get("first", {})}, {"params": [b], **groups.get("second", {})}])
    a.grad, b.grad = G.copy(), G.copy()
    return a, b, opt


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_groups_use_their_own_lr_and_weight_decay(momentum):
    a, b, opt = two_groups(lambda ps: optim.SGD(ps, lr=0.1, momentum=momentum, weight_decay=0.0),
                           second={"lr": 0.01, "weight_decay": 0.5})
    opt.step()
    np.testing.assert_allclose(a.data, P0 - 0.1 * G, rtol=1e-14)  # the defaults
    np.testing.assert_allclose(b.data, P0 - 0.01 * (G + 0.5 * P0), rtol=1e-14)


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=0.1), lambda ps: optim.RMSprop(ps, lr=0.1)])
def test_a_group_behaves_as_its_own_optimizer(make):
    a, b, opt = two_groups(make, second={"lr": 0.02, "weight_decay": 0.1})
    alone = Tensor(P0.copy(), requires_grad=True)
    ref = make([alone])
    ref.lr, ref.weight_decay = 0.02, 0.1
    for _ in range(3):
        alone.grad, b.grad, a.grad = G.copy(), G.copy(), G.copy()
        opt.step()
        ref.step()
    np.testing.assert_array_equal(b.data, alone.data)


def test_opt_lr_reads_the_shared_lr_and_sets_every_group():
    _, _, opt = two_groups(lambda ps: optim.SGD(ps, lr=0.1), second={"lr": 0.01})
    with pytest.raises(ValueError, match=r"SGD: the 2 parameter groups have different lr values \[0.1, 0.01\]"):
        _ = opt.lr
    opt.lr = 0.5
    assert opt.lr == 0.5 and [g["lr"] for g in opt.param_groups] == [0.5, 0.5]
    opt.param_groups[1]["lr"] = float("nan")
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['lr'\] must be"):
        opt.step()
    opt.param_groups[1]["lr"] = 0.5
    opt.weight_decay = -1.0
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['weight_decay'\] must be"):
        opt.step()


def test_named_parameters_in_groups_keep_their_names():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
    named = model.named_parameters()
    opt = optim.Adam([{"params": named[:2]}, {"params": named[2:], "lr": 1e-4}], lr=1e-3)
    assert opt.names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    model[0].bias.grad = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match=r"Adam: 0.bias has shape \(3,\) but its grad \(5,\)"):
        opt.step()


def test_state_dict_holds_one_lr_per_group_and_round_trips():
    _, _, opt = two_groups(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), second={"lr": 0.01})
    opt.step()
    state = opt.state_dict()
    np.testing.assert_array_equal(state["lr"], [0.1, 0.01])
    _, _, fresh = two_groups(lambda ps: optim.SGD(ps, lr=0.3, momentum=0.9))
    fresh.load_state_dict(state)
    assert [g["lr"] for g in fresh.param_groups] == [0.1, 0.01]
    np.testing.assert_array_equal(fresh.state["momentum_buffer"][1], opt.state["momentum_buffer"][1])
    single = optim.SGD([Tensor(P0.copy(), requires_grad=True), Tensor(P0.copy(), requires_grad=True)], 0.1,
                       momentum=0.9)
    with pytest.raises(ValueError, match=r"'lr' has shape \(2,\), expected \(\)"):
        single.load_state_dict(state)
    state["lr"] = np.array([0.1, -1.0])
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['lr'\] must be"):
        fresh.load_state_dict(state)


@pytest.mark.parametrize("groups, message", [
    ([{"params": []}], "parameter group 0 is empty"),
    ([{"params": [Tensor(np.zeros(1), requires_grad=True)], "momentum": 0.9}],
     r"parameter group 0 has unknown keys \['momentum'\]; valid keys: params, lr, weight_decay"),
    ([{"lr": 0.1}], "parameter group 0 has no 'params'"),
    ([{"params": [Tensor(np.zeros(1), requires_grad=True)]}, Tensor(np.zeros(1), requires_grad=True)],
     "not a mix"),
    ([{"params": [Tensor(np.zeros(1), requires_grad=True)]}, {"params": [Tensor(np.zeros(1))], "lr": 0.1}],
     r"parameter 1 \(shape \(1,\)\) does not require grad"),
    ([{"params": [Tensor(np.zeros(1), requires_grad=True)]}, {"params": [Tensor(np.zeros(1), requires_grad=True)],
                                                             "lr": -0.1}], r"param_groups\[1\]\['lr'\] must be"),
])
def test_bad_groups_are_named(groups, message):
    with pytest.raises(ValueError, match=message):
        optim.SGD(groups, lr=0.1)


def test_a_parameter_in_two_groups_is_refused():
    p = Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(ValueError, match="parameter 1 appears twice"):
        optim.SGD([{"params": [p]}, {"params": [p], "lr": 0.01}], lr=0.1)

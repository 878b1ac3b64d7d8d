"""models.mlp.MLP against models.manual.ManualMLP: same weights, same losses and gradients, same training."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite.nn as nn
import tinygrad_lite.optim as optim
from models.manual import ManualAdam, ManualMLP, ManualRMSprop, ManualSGD, one_hot
from models.mlp import MLP
from tinygrad_lite import Tensor


@st.composite
def mlp_specs(draw):
    """(sizes, activations, init, seed, batch): small MLPs of one to three hidden layers."""
    sizes = draw(st.lists(st.integers(1, 9), min_size=3, max_size=5))
    sizes[-1] = max(sizes[-1], 2)
    activations = draw(st.lists(st.sampled_from(["relu", "tanh", "sigmoid"]), min_size=len(sizes) - 2,
                                max_size=len(sizes) - 2))
    init = draw(st.sampled_from(sorted(nn.INITS)))
    return sizes, activations, init, draw(st.integers(0, 2**16)), draw(st.integers(1, 8))


@given(spec=mlp_specs(), one_hot_targets=st.booleans())
def test_mlp_and_manual_mlp_give_equal_losses_and_gradients(spec, one_hot_targets):
    sizes, activations, init, seed, m = spec
    model = MLP(sizes, activations, init=init, seed=seed, dtype=np.float64)
    manual = ManualMLP(sizes, activations, init=init, seed=seed, dtype=np.float64)
    for name, p in model.named_parameters():  # same init draws from the same seed
        np.testing.assert_array_equal(p.data, manual.params[name], err_msg=name)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, sizes[0]))
    y = rng.integers(0, sizes[-1], m)
    target = np.eye(sizes[-1])[y] if one_hot_targets else y
    loss = nn.cross_entropy(model(X), target)
    loss.backward()
    manual_loss, grads = manual.loss_and_grads(X, target)
    np.testing.assert_allclose(loss.item(), manual_loss, rtol=1e-12, atol=1e-14)
    assert list(grads) == [n for n, _ in model.named_parameters()]
    for name, p in model.named_parameters():
        assert grads[name].shape == p.shape
        np.testing.assert_allclose(p.grad, grads[name], rtol=1e-9, atol=1e-13, err_msg=name)


def test_parameter_names_shapes_and_weights_copy_both_ways():
    model = MLP([784, 128, 64, 10], ["relu", "tanh"], seed=1)
    assert [(n, p.shape) for n, p in model.named_parameters()] == [
        ("layers.0.weight", (784, 128)), ("layers.0.bias", (128,)), ("layers.1.weight", (128, 64)),
        ("layers.1.bias", (64,)), ("layers.2.weight", (64, 10)), ("layers.2.bias", (10,))]
    assert all(p.dtype == np.float32 for p in model.parameters())
    manual = ManualMLP([784, 128, 64, 10], ["relu", "tanh"], seed=2)
    manual.load_state_dict(model.state_dict())
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(manual.params[name], p.data)
    other = ManualMLP([784, 128, 64, 10], ["relu", "tanh"], seed=3)
    model.load_state_dict(other.state_dict())
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(other.params[name], p.data)


def test_float32_models_agree_to_rounding():
    rng = np.random.default_rng(0)
    X = rng.random((32, 50)).astype(np.float32)
    y = rng.integers(0, 10, 32)
    model = MLP([50, 20, 10], "sigmoid", init="scaled_normal", seed=4)
    manual = ManualMLP([50, 20, 10], "sigmoid", init="scaled_normal", seed=4)
    loss = nn.cross_entropy(model(X), y)
    loss.backward()
    manual_loss, grads = manual.loss_and_grads(X, y)
    assert loss.dtype == np.float32 and grads["layers.0.weight"].dtype == np.float32
    np.testing.assert_allclose(loss.item(), manual_loss, rtol=1e-6)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name], rtol=1e-4, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("make, make_manual", [
    (lambda ps: optim.SGD(ps, 0.5), lambda ps: ManualSGD(ps, 0.5)),
    (lambda ps: optim.SGD(ps, 0.1, momentum=0.9), lambda ps: ManualSGD(ps, 0.1, momentum=0.9)),
    (lambda ps: optim.Adam(ps, 0.01), lambda ps: ManualAdam(ps, 0.01)),
    (lambda ps: optim.RMSprop(ps, 0.01, alpha=0.9), lambda ps: ManualRMSprop(ps, 0.01, alpha=0.9)),
])
def test_training_side_by_side_keeps_the_parameters_equal(make, make_manual):
    rng = np.random.default_rng(1)
    X, y = rng.random((20, 12)), rng.integers(0, 3, 20)
    model = MLP([12, 8, 6, 3], ["tanh", "relu"], init="he_normal", seed=5, dtype=np.float64)
    manual = ManualMLP([12, 8, 6, 3], ["tanh", "relu"], init="he_normal", seed=5, dtype=np.float64)
    opt, manual_opt = make(model.parameters()), make_manual(manual.params)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = nn.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        manual_loss, grads = manual.loss_and_grads(X, y)
        manual_opt.step(grads)
        losses.append(loss.item())
        np.testing.assert_allclose(loss.item(), manual_loss, rtol=1e-12)
    assert losses[-1] < losses[0]
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.data, manual.params[name], rtol=1e-10, atol=1e-13, err_msg=name)


def test_nested_lists_are_accepted_as_input():
    model = MLP([3, 2], seed=0)
    np.testing.assert_array_equal(model([[1, 2, 3]]).data, model(np.array([[1, 2, 3]], np.float32)).data)
    assert model([[1, 2, 3]]).dtype == np.float32


def test_dropout_is_active_in_training_only():
    model = MLP([10, 50, 4], dropout=0.5, seed=0)
    X = np.ones((8, 10), np.float32)
    assert model.training
    assert not np.array_equal(model(X).data, model(X).data)  # fresh masks
    model.eval()
    np.testing.assert_array_equal(model(X).data, model(X).data)
    plain = MLP([10, 50, 4], seed=0)
    np.testing.assert_array_equal(model(X).data, plain(X).data)  # same weights, dropout off


@pytest.mark.parametrize("make, message", [
    (lambda: MLP([784, 10])(np.ones((2, 100), np.float32)), r"expected input of shape \(m, 784\), got \(2, 100\)"),
    (lambda: ManualMLP([784, 10]).forward(np.ones((2, 100))), r"expected input of shape \(m, 784\), got \(2, 100\)"),
    (lambda: MLP([4, 3, 2], "gelu"), "unknown activation 'gelu'; valid names: relu, tanh, sigmoid"),
    (lambda: ManualMLP([4, 3, 2], "gelu"), "unknown activation 'gelu'"),
    (lambda: MLP([4, 3, 3, 2], ["relu"]), r"got 1 activations \['relu'\] for 2 hidden layers"),
    (lambda: MLP([4, 3, 2], init="glorot"), "unknown init 'glorot'; valid names: xavier_uniform"),
    (lambda: ManualMLP([4, 3, 2], init="glorot"), "unknown init 'glorot'"),
    (lambda: MLP([4]), "sizes must list at least inputs and outputs"),
    (lambda: MLP([4, 0, 2]), "all positive"),
    (lambda: MLP([4, 2], dropout=1.0), r"dropout must be in \[0, 1\)"),
])
def test_bad_specs_and_inputs_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_manual_load_state_dict_checks_keys_and_shapes_first():
    manual = ManualMLP([4, 3, 2], seed=0)
    before = manual.state_dict()
    bad = {k: v + 1 for k, v in before.items()}
    bad["layers.1.weight"] = np.zeros((2, 3))
    bad.pop("layers.0.bias")
    with pytest.raises(ValueError, match=r"missing \['layers.0.bias'\].*'layers.1.weight' has shape \(2, 3\)"):
        manual.load_state_dict(bad)
    for k, v in manual.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"integers in \[0, 3\)"):
        one_hot(np.array([3]), 3)


def test_manual_mlp_imports_nothing_from_the_autograd_engine():
    code = "import sys, models.manual; print(sorted(m for m in sys.modules if m.startswith('tinygrad_lite')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_mlp_graph_to_dot_has_one_node_per_op_and_the_right_edges():
    model = MLP([5, 4, 3, 2], "relu", seed=0)
    loss = nn.cross_entropy(model(np.ones((6, 5), np.float32)), np.array([0, 1, 0, 1, 1, 0]))
    dot = loss.to_dot()
    ops_in_graph = [line.split('label="', 1)[1].split("\\n", 1)[0] for line in dot.splitlines() if "label=\"" in line
                    and "->" not in line]
    # each Linear is one fused op x @ W + b; the loss is one fused softmax cross-entropy
    assert sorted(ops_in_graph) == sorted(["linear"] * 3 + ["relu"] * 2 + ["cross_entropy"] + ["leaf"] * 6)
    assert "linear\\n6x4" in dot and "relu\\n6x4" in dot and "leaf\\n5x4 float32" in dot
    # edges: first linear 2 (W, b; X is a constant), the others 3 each (input, W, b), relus 1, cross_entropy 1
    assert dot.count("->") == 2 + 3 * 2 + 2 + 1
    # with an input that requires grad the first layer has one more edge
    x = Tensor(np.ones((6, 5), np.float32), requires_grad=True)
    assert model(x).to_dot().count("->") == 3 + 3 * 2 + 2
    # a Linear without bias is a plain matmul
    assert "matmul" in nn.Linear(5, 2, bias=False)(x).sum().to_dot()

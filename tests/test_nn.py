"""tinygrad_lite.nn: module discovery, state dicts, Linear inits, Dropout, cross-entropy and its errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite.nn as nn
from tinygrad_lite import Tensor, gradcheck, no_grad, ops


class Net(nn.Module):
    def __init__(self):
        self.layers = [nn.Linear(4, 3, rng=0), nn.Linear(3, 2, rng=1)]
        self.head = nn.Sequential(nn.Linear(2, 2, rng=2), nn.ReLU())
        self.extra = {"scale": nn.Parameter(np.ones(2, dtype=np.float32))}
        self.constant = Tensor(np.ones(3, dtype=np.float32))  # no grad: not a parameter
        self.shared = self.layers[0]  # reached twice: reported once
        self._hidden = nn.Linear(2, 2)  # private: not searched

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return self.head(x) * self.extra["scale"]


NAMES = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "head.0.weight", "head.0.bias",
         "extra.scale"]


def test_named_parameters_follow_attributes_lists_dicts_and_sequential():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == NAMES
    assert net.parameters()[0] is net.layers[0].weight
    assert net.parameters()[-1] is net.extra["scale"]
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Linear", "Linear", "Sequential", "Linear", "ReLU"]


def test_train_eval_reach_every_submodule_and_zero_grad_resets():
    net = Net()
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    out = net(np.ones((5, 4), dtype=np.float32)).sum()
    out.backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_is_a_copy_and_round_trips_in_place():
    a, b = Net(), Net()
    with no_grad():
        for p in b.parameters():
            p += 1  # parameters change through the versioned in-place API
    state = a.state_dict()
    assert list(state) == NAMES
    state["layers.0.weight"][...] = 7  # a copy: the model is unchanged
    assert not np.any(a.layers[0].weight.data == 7)
    arrays_before = [p.data for p in b.parameters()]
    b.load_state_dict(a.state_dict())
    for (name, p), q in zip(b.named_parameters(), a.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert all(p.data is arr for p, arr in zip(b.parameters(), arrays_before))  # optimizers keep their references


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("layers.1.bias"), "missing keys ['layers.1.bias']"),
        (lambda s: s.update(surplus=np.zeros(2)), "unexpected keys ['surplus']"),
        (lambda s: s.update({"head.0.weight": np.zeros((3, 2), np.float32)}), "'head.0.weight' has shape (3, 2)"),
        (lambda s: s.update({"head.0.bias": np.zeros(2, np.float64)}), "'head.0.bias' has dtype float64"),
    ],
)
def test_load_state_dict_rejects_bad_entries_before_changing_anything(edit, message):
    net = Net()
    before = net.state_dict()
    state = {k: v + 1 for k, v in before.items()}
    edit(state)
    with pytest.raises(ValueError) as info:
        net.load_state_dict(state)
    assert message in str(info.value)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_load_state_dict_non_strict_ignores_missing_and_extra_but_checks_shapes():
    net = Net()
    net.load_state_dict({"layers.0.bias": np.full(3, 2, np.float32), "other": np.zeros(1)}, strict=False)
    np.testing.assert_array_equal(net.layers[0].bias.data, 2)
    with pytest.raises(ValueError, match="has shape"):
        net.load_state_dict({"layers.0.bias": np.zeros(4, np.float32)}, strict=False)


# ------------------------------------------------------------------ Linear
def test_linear_computes_x_at_w_plus_b_with_row_major_weight():
    lin = nn.Linear(5, 3, rng=0, dtype=np.float64)
    assert lin.weight.shape == (5, 3) and lin.bias.shape == (3,)
    np.testing.assert_array_equal(lin.bias.data, 0)
    with no_grad():
        lin.bias[:] = [1, 2, 3]
    x = np.random.default_rng(1).random((4, 5))
    np.testing.assert_allclose(lin(x).data, x @ lin.weight.data + lin.bias.data)
    assert nn.Linear(5, 3, bias=False).bias is None
    assert [n for n, _ in nn.Linear(5, 3, bias=False).named_parameters()] == ["weight"]


@pytest.mark.parametrize(
    "init, low, high, std",
    [
        ("xavier_uniform", -np.sqrt(6 / 500), np.sqrt(6 / 500), np.sqrt(6 / 500) / np.sqrt(3)),
        ("uniform_fan_in", -1 / np.sqrt(300), 1 / np.sqrt(300), 1 / np.sqrt(300) / np.sqrt(3)),
        ("he_normal", None, None, np.sqrt(2 / 300)),
        ("kaiming_normal", None, None, np.sqrt(2 / 300)),
        ("normal", None, None, 0.01),
        ("scaled_normal", None, None, 1 / np.sqrt(300)),
        ("small_random", -0.5, 0.5, 1 / np.sqrt(12)),
    ],
)
def test_linear_inits_have_the_documented_distribution(init, low, high, std):
    w = nn.Linear(300, 200, init=init, rng=0).weight.data
    assert w.dtype == np.float32
    if low is not None:
        assert low <= w.min() and w.max() <= high
        assert w.min() < 0.98 * low and w.max() > 0.98 * high  # fills the interval
    assert abs(w.mean()) < 0.05 * std
    assert abs(w.std() / std - 1) < 0.02


def test_linear_init_is_reproducible_from_seed_or_generator():
    a = nn.Linear(6, 4, rng=3).weight.data
    np.testing.assert_array_equal(a, nn.Linear(6, 4, rng=np.random.default_rng(3)).weight.data)
    assert not np.array_equal(a, nn.Linear(6, 4, rng=4).weight.data)
    np.testing.assert_allclose(nn.Linear(6, 4, init="normal", std=0.5, rng=0).weight.data.std(), 0.5, rtol=0.3)


def test_linear_bad_init_and_input_width_are_named():
    with pytest.raises(ValueError, match="unknown init 'glorot'.*xavier_uniform.*scaled_normal"):
        nn.Linear(3, 2, init="glorot")
    with pytest.raises(ValueError, match=r"input has 4 features.*expected 3"):
        nn.Linear(3, 2)(np.ones((2, 4), dtype=np.float32))


def test_activation_modules_match_the_ops():
    x = Tensor(np.linspace(-3, 3, 12).reshape(3, 4))
    for module, op in [(nn.ReLU(), ops.relu), (nn.Tanh(), ops.tanh), (nn.Sigmoid(), ops.sigmoid)]:
        np.testing.assert_array_equal(module(x).data, op(x).data)


# ----------------------------------------------------------------- Dropout
def test_dropout_keeps_the_mean_zeroes_about_p_and_is_off_in_eval():
    x = Tensor(np.ones((400, 500), dtype=np.float32), requires_grad=True)
    drop = nn.Dropout(0.3, seed=0)
    out = drop(x)
    zeros = np.mean(out.data == 0)
    assert abs(zeros - 0.3) < 0.01
    np.testing.assert_allclose(out.data[out.data != 0], 1 / 0.7, rtol=1e-6)
    assert abs(out.data.mean() - 1) < 0.01
    out.backward(np.full(x.shape, 2, np.float32))
    np.testing.assert_allclose(x.grad, 2 * out.data, rtol=1e-6)  # gradient flows only through the kept units
    drop.eval()
    assert drop(x) is x


def test_dropout_is_seeded_and_validates_p():
    x = np.ones((50, 50), dtype=np.float32)
    np.testing.assert_array_equal(nn.Dropout(0.5, seed=1)(x).data, nn.Dropout(0.5, seed=1)(x).data)
    assert not np.array_equal(nn.Dropout(0.5, seed=1)(x).data, nn.Dropout(0.5, seed=2)(x).data)
    np.testing.assert_array_equal(nn.Dropout(1.0, seed=0)(x).data, 0)
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="p must be in"):
            nn.Dropout(p)


# ---------------------------------------------------------- cross-entropy
def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@given(m=st.integers(1, 12), c=st.integers(2, 9), seed=st.integers(0, 2**16), as_rows=st.booleans())
def test_cross_entropy_value_and_gradient_softmax_minus_y_over_m(m, c, seed, as_rows):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (m, c))
    y = rng.integers(0, c, m)
    Y = np.eye(c)[y]
    logits = Tensor(z, requires_grad=True)
    loss = nn.cross_entropy(logits, Y if as_rows else y)
    expected = -np.mean(np.log(_softmax(z))[np.arange(m), y])
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12, atol=1e-15)  # a loss near 0 is only as exact as eps
    loss.backward()
    np.testing.assert_allclose(logits.grad, (_softmax(z) - Y) / m, atol=1e-15)


def test_cross_entropy_reductions_accept_int_tensor_targets_and_probability_rows():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 4))
    y = np.array([0, 3, 1, 1, 2, 0])
    logp = np.log(_softmax(z))
    per_row = -logp[np.arange(6), y]
    np.testing.assert_allclose(nn.cross_entropy(Tensor(z), Tensor(y), reduction="none").data, per_row)
    np.testing.assert_allclose(nn.cross_entropy(Tensor(z), y, reduction="sum").item(), per_row.sum())
    P = rng.dirichlet(np.ones(4), size=6)
    np.testing.assert_allclose(nn.cross_entropy(Tensor(z), P).item(), -(P * logp).sum() / 6)
    # a non-uniform cotangent on the per-row losses
    w = rng.random(6)
    logits = Tensor(z, requires_grad=True)
    nn.cross_entropy(logits, y, reduction="none").backward(w)
    np.testing.assert_allclose(logits.grad, w[:, None] * (_softmax(z) - np.eye(4)[y]), atol=1e-15)
    logits.grad = None
    nn.cross_entropy(logits, P, reduction="sum").backward()
    np.testing.assert_allclose(logits.grad, _softmax(z) - P, atol=1e-15)


def test_cross_entropy_gradient_matches_finite_differences():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(3, 5))
    y = np.array([4, 0, 2])
    logits = Tensor(z, requires_grad=True)
    nn.cross_entropy(logits, y).backward()
    eps = 1e-6
    numeric = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        dz = np.zeros_like(z)
        dz[i] = eps
        numeric[i] = (nn.cross_entropy(Tensor(z + dz), y).item() - nn.cross_entropy(Tensor(z - dz), y).item()) / (
            2 * eps)
    np.testing.assert_allclose(logits.grad, numeric, atol=1e-8)


def test_nll_loss_on_log_probs_equals_cross_entropy_on_logits():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5, 3)).astype(np.float32)
    y = np.array([2, 0, 1, 1, 0])
    logp = ops.log_softmax(Tensor(z))
    np.testing.assert_allclose(nn.nll_loss(logp, y).item(), nn.cross_entropy(Tensor(z), y).item(), rtol=1e-6)
    assert nn.cross_entropy(Tensor(z), y).dtype == np.float32


@pytest.mark.parametrize(
    "target, message",
    [
        (np.array([0, 1, 3, 2]), r"label 3 at row 2 is outside \[0, 3\)"),
        (np.array([0, -1, 1, 2]), r"label -1 at row 1 is outside \[0, 3\)"),
        (np.array([0, 1, 2]), r"batch mismatch: predictions have 4 rows .* labels have shape \(3,\)"),
        (np.eye(3)[[0, 1, 2, 0]][:3], "batch mismatch"),
        (np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1], [1, 0, 0]], float), r"target row 2 sums to 2"),
        (np.array([0.0, 1.0, 2.0, 1.0]), "integer-valued: pass them as an integer array"),
        (np.array([0.5, 1.0, 2.0, 1.0]), "class indices must be integers"),
        (np.array([[1, 0, 0], [0, np.nan, 1], [0, 1, 0], [1, 0, 0]]), r"NaN \(rows \[1\]\)"),
        (np.array([[1, 0, 0], [0.5, -0.5, 1], [0, 1, 0], [1, 0, 0]]), "negative entries"),
        (np.zeros((4, 2)), r"labels have shape \(4, 2\); expected class indices"),
    ],
)
def test_cross_entropy_bad_labels_are_named(target, message):
    logits = Tensor(np.zeros((4, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=message):
        nn.cross_entropy(logits, target)
    assert logits.grad is None


def test_cross_entropy_bad_shapes_and_reduction():
    with pytest.raises(ValueError, match=r"logits must have shape \(m, classes\)"):
        nn.cross_entropy(Tensor(np.zeros(3)), np.array([0]))
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        nn.cross_entropy(Tensor(np.zeros((1, 3))), np.array([0]), reduction="avg")
    with pytest.raises(ValueError, match="outside"):
        nn.nll_loss(Tensor(np.zeros((1, 3))), np.array([3]))


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
def test_cross_entropy_label_range_check_works_for_every_integer_dtype(dtype):
    logits = Tensor(np.zeros((3, 4)))
    assert nn.cross_entropy(logits, np.array([0, 3, 1], dtype=dtype)).item() == pytest.approx(np.log(4))
    with pytest.raises(ValueError, match=r"label 4 at row 1 is outside \[0, 4\)"):
        nn.cross_entropy(logits, np.array([0, 4, 1], dtype=dtype))
    if np.dtype(dtype).kind == "i":
        with pytest.raises(ValueError, match=r"label -1 at row 2 is outside \[0, 4\)"):
            nn.cross_entropy(logits, np.array([0, 1, -1], dtype=dtype))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kind", ["indices", "probabilities"])
def test_fused_cross_entropy_matches_finite_differences(reduction, kind):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((5, 4)) * 3
    target = rng.integers(0, 4, 5) if kind == "indices" else rng.dirichlet(np.ones(4), size=5)
    gradcheck(lambda t: (nn.cross_entropy(t, target, reduction=reduction) + 1) ** 2, [z])

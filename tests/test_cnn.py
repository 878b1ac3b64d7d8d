"""models.cnn.CNN against models.manual_cnn.ManualCNN: same weights, losses, gradients, running statistics and
training steps; and ManualCNN's own gradients against central differences, so the twin is checked on its own."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lite.nn as nn
import tinygrad_lite.optim as optim
from models.cnn import CNN, to_torch, torch_modules
from models.manual_cnn import CNNSpec, ManualAdam, ManualCNN, ManualSGD, col2im, im2col, maxpool, maxpool_backward

SMALL = CNNSpec(in_shape=(1, 12, 12), channels=(3, 4), hidden=(8,), n_classes=5)
MNIST_SHAPED = CNNSpec(in_shape=(1, 28, 28), channels=(2, 3), hidden=(6,), n_classes=10)
F64_TOL = 1e-10


def rel_err(a, b) -> float:
    """max |a − b| / max |b| (0 when both are 0): the error relative to the array's scale."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.abs(b).max(initial=0.0)
    return float(np.abs(a - b).max(initial=0.0) / scale) if scale else float(np.abs(a).max(initial=0.0))


def batch(spec: CNNSpec, m: int = 4, seed: int = 0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, *spec.in_shape)).astype(dtype), rng.integers(0, spec.n_classes, m)


def twins(spec: CNNSpec, seed: int = 1, dtype=np.float64):
    return CNN(spec, seed=seed, dtype=dtype), ManualCNN(spec, seed=seed, dtype=dtype)


def autograd_step(model: CNN, X, y):
    """(loss, logits, {name: grad}) of one forward and backward of the autograd CNN."""
    model.zero_grad()
    logits = model(X)
    loss = nn.cross_entropy(logits, y)
    loss.backward()
    return loss.item(), logits.data, {n: p.grad for n, p in model.named_parameters()}


def assert_same_pass(model: CNN, manual: ManualCNN, X, y, tol: float = F64_TOL) -> None:
    """Loss, logits, every gradient and every buffer of one forward/backward agree within ``tol``."""
    loss, logits, grads = autograd_step(model, X, y)
    manual_logits = manual.forward(X)
    manual_loss, manual_grads = manual.loss(y), manual.backward(y)
    assert rel_err(loss, manual_loss) <= tol
    assert rel_err(logits, manual_logits) <= tol
    assert list(manual_grads) == list(grads)
    # A weight feeding BatchNorm can have a gradient that is 0 in exact arithmetic (BN undoes its
    # scale): there both sides are rounding noise, so errors are also measured against the
    # largest gradient of the network.
    overall = max(float(np.abs(g).max(initial=0.0)) for g in manual_grads.values())
    for name, g in grads.items():
        assert g.dtype == manual_grads[name].dtype, name
        error = float(np.abs(np.asarray(g, np.float64) - manual_grads[name]).max(initial=0.0))
        assert rel_err(g, manual_grads[name]) <= tol or error <= tol * 1e-3 * overall, (name, error)
    state, manual_state = model.state_dict(), manual.state_dict()
    for name in manual.buffers:
        assert rel_err(state[name], manual_state[name]) <= tol, name


# ----------------------------------------------------------------------------------- the spec
def test_default_spec_is_the_documented_network():
    spec = CNNSpec()
    assert spec.describe() == ("conv(1→32,3×3,pad 1)-BN-ReLU-maxpool2 → conv(32→64,3×3,pad 1)-BN-ReLU-maxpool2 → "
                               "linear(3136→128)-ReLU → linear(128→10)")
    assert spec.widths == [3136, 128, 10] and spec.feature_sizes() == [(28, 28), (14, 14), (7, 7)]
    model = CNN(channels=(4, 8), hidden=(16,), batchnorm=False)
    assert model.spec == CNNSpec(channels=(4, 8), hidden=(16,), batchnorm=False)


@pytest.mark.parametrize("batchnorm", [True, False])
def test_state_dict_names_shapes_and_initial_values_are_the_same(batchnorm):
    spec = SMALL.replace(batchnorm=batchnorm)
    model, manual = twins(spec, dtype=np.float32)
    state, manual_state = model.state_dict(), manual.state_dict()
    assert list(state) == list(manual_state) == list(spec.shapes())
    assert [n for n, _ in model.named_parameters()] == list(manual.params) == list(spec.parameter_shapes())
    for name, value in state.items():
        assert value.shape == spec.shapes()[name] and value.dtype == manual_state[name].dtype, name
        np.testing.assert_array_equal(value, manual_state[name], err_msg=name)  # same draws from the same seed
    assert ("conv.0.bias" in state) is not batchnorm


@pytest.mark.parametrize("bad", [dict(channels=()), dict(in_shape=(1, 2, 2), channels=(3, 4)), dict(dropout=1.0),
                                 dict(pool=0), dict(in_shape=(28, 28)), dict(hidden=(0,))])
def test_bad_specs_are_refused_by_both(bad):
    with pytest.raises(ValueError, match="CNN"):
        CNN(**bad)
    with pytest.raises(ValueError, match="ManualCNN"):
        ManualCNN(**bad)


def test_wrong_input_shape_and_eval_before_statistics_raise():
    model, manual = twins(SMALL)
    X, _ = batch(SMALL.replace(in_shape=(1, 10, 12)))
    for m in (model, manual.forward):
        with pytest.raises(ValueError, match=r"expected input of shape \(m, 1, 12, 12\)"):
            m(X)
    X, _ = batch(SMALL)
    model.eval()
    manual.eval()
    for m in (model, manual.forward):
        with pytest.raises(ValueError, match="eval"):
            m(X)


# ----------------------------------------------------------------- autograd vs the hand derivation
@pytest.mark.parametrize("spec", [SMALL, MNIST_SHAPED], ids=["12x12", "28x28"])
@pytest.mark.parametrize("batchnorm", [True, False], ids=["bn", "no-bn"])
@pytest.mark.parametrize("dropout", [0.0, 0.4], ids=["", "dropout"])
def test_float64_losses_logits_gradients_and_running_stats_agree(spec, batchnorm, dropout):
    model, manual = twins(spec.replace(batchnorm=batchnorm, dropout=dropout))
    for seed in (0, 1):  # two batches: the running statistics accumulate, the dropout masks differ
        assert_same_pass(model, manual, *batch(model.spec, seed=seed))
    if batchnorm:
        assert int(model.state_dict()["bn.1.num_batches_tracked"]) == 2


def test_every_layer_output_agrees():
    model, manual = twins(SMALL.replace(dropout=0.3))
    X, _ = batch(SMALL)
    outputs = {}
    model(X, outputs)
    manual.forward(X)
    assert set(outputs) <= set(manual.cache) and len(outputs) == 4 * 2 + 1 + 2 + 1
    for name, out in outputs.items():
        assert rel_err(out.data, manual.cache[name]) <= F64_TOL, name


@pytest.mark.parametrize("batchnorm", [True, False])
def test_eval_mode_uses_the_running_statistics_in_both(batchnorm):
    model, manual = twins(SMALL.replace(batchnorm=batchnorm, dropout=0.5, bn_momentum=0.3))
    for seed in (0, 1, 2):
        assert_same_pass(model, manual, *batch(SMALL, seed=seed))
    model.eval()
    manual.eval()
    X, y = batch(SMALL, m=3, seed=7)
    assert_same_pass(model, manual, X, y)  # no dropout; BatchNorm an affine map of the running statistics
    first = model(X).data
    np.testing.assert_array_equal(model(X).data, first)  # eval mode changes nothing
    if batchnorm:
        assert int(manual.buffers["bn.0.num_batches_tracked"]) == 3


def test_cumulative_batchnorm_momentum_none_agrees():
    model, manual = twins(SMALL.replace(bn_momentum=None))
    for seed in range(3):
        assert_same_pass(model, manual, *batch(SMALL, seed=seed))


@settings(max_examples=15, deadline=None)
@given(channels=st.lists(st.integers(1, 3), min_size=1, max_size=2), hidden=st.lists(st.integers(1, 5), max_size=2),
       size=st.integers(5, 9), kernel=st.sampled_from([1, 2, 3, 5]), pool=st.integers(1, 3),
       batchnorm=st.booleans(), m=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_drawn_architectures_agree(channels, hidden, size, kernel, pool, batchnorm, m, seed):
    try:
        spec = CNNSpec(in_shape=(2, size, size - 1), channels=channels, hidden=hidden, n_classes=3,
                       kernel_size=kernel, pool=pool, batchnorm=batchnorm)
    except ValueError:  # the image shrinks to nothing
        return
    model, manual = twins(spec, seed=seed)
    assert_same_pass(model, manual, *batch(spec, m=m, seed=seed))


def test_float32_runs_agree_to_float32_rounding():
    spec = MNIST_SHAPED.replace(channels=(4, 8), hidden=(16,))
    model, manual = twins(spec, dtype=np.float32)
    for seed in (0, 1):
        X, y = batch(spec, m=8, seed=seed, dtype=np.float32)
        loss, logits, grads = autograd_step(model, X, y)
        manual_loss, manual_grads = manual.loss_and_grads(X, y)
        assert logits.dtype == manual.cache["fc.1"].dtype == np.float32
        assert rel_err(loss, manual_loss) <= 1e-5 and rel_err(logits, manual.cache["fc.1"]) <= 1e-5
        for name, g in grads.items():
            assert manual_grads[name].dtype == np.float32
            assert rel_err(g, manual_grads[name]) <= 1e-4, name
    state = model.state_dict()
    for name, buf in manual.buffers.items():
        assert rel_err(state[name], buf) <= 1e-5, name


# ------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_optimizer_steps_give_the_same_parameters(kind, batchnorm):
    model, manual = twins(SMALL.replace(batchnorm=batchnorm))
    if kind == "sgd":
        opt, manual_opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9), ManualSGD(manual.params, 0.1, 0.9)
    else:
        opt, manual_opt = optim.Adam(model.parameters(), lr=1e-2), ManualAdam(manual.params, lr=1e-2)
    for seed in (0, 1):
        X, y = batch(SMALL, seed=seed)
        autograd_step(model, X, y)
        opt.step()
        manual_opt.step(manual.loss_and_grads(X, y)[1])
        for name, p in model.named_parameters():
            assert rel_err(p.data, manual.params[name]) <= F64_TOL, name
    assert_same_pass(model, manual, *batch(SMALL, seed=2))


def test_state_dicts_round_trip_between_the_two():
    model, manual = twins(SMALL, seed=3)
    for seed in (0, 1):  # non-trivial running statistics
        model(batch(SMALL, seed=seed)[0])
    other = ManualCNN(SMALL, seed=4, dtype=np.float64)
    other.load_state_dict(model.state_dict())
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[name], value, err_msg=name)
    manual.forward(batch(SMALL, seed=5)[0])
    model.load_state_dict(manual.state_dict())  # dtypes too: num_batches_tracked is a 0-d int64
    for name, value in manual.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[name], value, err_msg=name)
    model.eval()
    other.load_state_dict(model.state_dict())
    other.eval()
    X, y = batch(SMALL, seed=6)
    assert_same_pass(model, other, X, y)
    bad = {k: v for k, v in model.state_dict().items() if k != "bn.0.running_var"}
    bad["fc.0.weight"] = bad["fc.0.weight"][:, :3]
    before = other.state_dict()
    with pytest.raises(ValueError, match=r"missing \['bn.0.running_var'\].*'fc.0.weight' has shape"):
        other.load_state_dict(bad)
    for name, value in before.items():
        np.testing.assert_array_equal(other.state_dict()[name], value)


# ---------------------------------------------------------- ManualCNN checked on its own
def central_differences(manual: ManualCNN, X, y, h: float = 1e-6) -> dict:
    """∂loss/∂θ for every parameter entry by (L(θ + h) − L(θ − h)) / 2h (the forward of each call uses the
    current mode; in training mode BatchNorm's running statistics change, its output does not)."""
    out = {}
    for name, p in manual.params.items():
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            manual.forward(X)
            up = manual.loss(y)
            p[i] = old - h
            manual.forward(X)
            down = manual.loss(y)
            p[i] = old
            g[i] = (up - down) / (2 * h)
        out[name] = g
    return out


def gradient_problems(analytic: dict, numeric: dict, tol: float = 1e-6) -> list[str]:
    """Parameters whose analytic gradient is off by more than ``tol`` of its scale."""
    return [f"{name}: {rel_err(analytic[name], numeric[name]):.2e}" for name in numeric
            if rel_err(analytic[name], numeric[name]) > tol]


TINY = CNNSpec(in_shape=(1, 7, 7), channels=(2, 3), hidden=(4,), n_classes=3)  # 7 → 3 → 1: pools drop a row


@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_manual_gradients_match_central_differences(batchnorm, mode):
    manual = ManualCNN(TINY.replace(batchnorm=batchnorm, kernel_size=3), seed=5, dtype=np.float64)
    X, y = batch(TINY, m=3, seed=5)
    if mode == "eval":
        manual.forward(X * 1.5 + 0.2)  # running statistics that differ from the batch's
        manual.eval()
    _, grads = manual.loss_and_grads(X, y)
    assert gradient_problems(grads, central_differences(manual, X, y)) == []


def test_the_central_difference_check_catches_a_wrong_gradient():
    manual = ManualCNN(TINY, seed=5, dtype=np.float64)
    X, y = batch(TINY, m=3, seed=5)
    _, grads = manual.loss_and_grads(X, y)
    numeric = central_differences(manual, X, y)
    grads["conv.1.weight"].flat[7] += 1e-4 * np.abs(grads["conv.1.weight"]).max()
    assert [p.split(":")[0] for p in gradient_problems(grads, numeric)] == ["conv.1.weight"]


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 3, 6, 5))
    for k, pad in ((1, 0), (3, 1), (3, 0), (5, 2), (2, 1)):
        cols = im2col(X, k, pad)
        C = rng.normal(size=cols.shape)
        np.testing.assert_allclose(np.vdot(cols, C), np.vdot(X, col2im(C, X.shape, k, pad)), rtol=1e-12)
        ref = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # a plain loop over (c, a, b) for the values
        for c in range(3):
            for a in range(k):
                for b in range(k):
                    patch = ref[:, c, a:a + X.shape[2] + 2 * pad - k + 1, b:b + X.shape[3] + 2 * pad - k + 1]
                    np.testing.assert_array_equal(cols[:, (c * k + a) * k + b], patch.reshape(2, -1))


@pytest.mark.parametrize("size", [(4, 6), (5, 7)])
def test_manual_maxpool_routes_ties_to_the_first_maximum_as_the_library(size):
    from tinygrad_lite import Tensor
    from tinygrad_lite.ops import max_pool2d

    R = np.random.default_rng(0).integers(0, 3, size=(2, 3, *size)).astype(np.float64)  # many ties
    dA = np.random.default_rng(1).normal(size=(2, 3, size[0] // 2, size[1] // 2))
    A, masks = maxpool(R, 2)
    x = Tensor(R, requires_grad=True)
    out = max_pool2d(x, kernel_size=2)
    (out * Tensor(dA)).sum().backward()
    np.testing.assert_array_equal(A, out.data)
    np.testing.assert_array_equal(maxpool_backward(dA, masks, R.shape, 2), x.grad)
    assert sum(int(M.sum()) for M in masks) == A.size  # one winner per window


def test_manual_cnn_imports_nothing_from_tinygrad_lite():
    code = ("import sys, models.manual_cnn; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tinygrad_lite'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_pytorch_layout_gives_the_same_logits():
    torch = pytest.importorskip("torch")
    spec = SMALL.replace(dropout=0.2)
    model = CNN(spec, seed=2, dtype=np.float64)
    for seed in (0, 1):
        model(batch(spec, seed=seed)[0])
    model.eval()
    net = eval("torch.nn.Sequential(" + ", ".join(f"torch.nn.{m}" for m in torch_modules(spec)) + ")",
               {"torch": torch}).double().eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch(spec, model.state_dict()).items()})
    X, _ = batch(spec, seed=3)
    with torch.no_grad():
        expected = net(torch.from_numpy(X)).numpy()
    assert rel_err(model(X).data, expected) <= F64_TOL

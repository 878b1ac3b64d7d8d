"""tinygrad_lite.compile: replays equal eager steps (MLP and CNN, every optimizer, dropout, BatchNorm,
schedulers), retrace on new shapes and replaced parameters, and trace-time errors for what a replay
could not repeat."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_lite as tg
from models.cnn import CNN, CNNSpec
from models.mlp import MLP
from tinygrad_lite import nn, optim
from tinygrad_lite.optim.lr_scheduler import CosineAnnealingLR

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda p: optim.Adam(p, lr=1e-2),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    "rmsprop": lambda p: optim.RMSprop(p, lr=1e-3),
}


def _batches(n: int, shape: tuple[int, ...], classes: int, dtype: type, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=shape).astype(dtype), rng.integers(0, classes, shape[0])) for _ in range(n)]


def _train(make, batches, steps: int, compiled: bool, schedule: bool = False):
    model, opt = make()
    sched = CosineAnnealingLR(opt, T_max=steps) if schedule else None

    def step(x, y):
        logits = model(x)
        loss = nn.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        return loss, logits

    fn = tg.compile(step) if compiled else step
    losses = []
    for i in range(steps):
        x, y = batches[i % len(batches)]
        loss, logits = fn(x, y)
        losses.append(float(loss.data))
    return model, losses, fn


def _mlp(dtype, opt_name, dropout=0.0):
    def make():
        m = MLP([12, 10, 8, 4], dropout=dropout, init="he_normal", seed=3, dtype=dtype)
        return m, OPTIMIZERS[opt_name](m.named_parameters())
    return make


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_100_mlp_steps_equal_eager(opt_name, dtype):
    batches = _batches(7, (6, 12), 4, dtype)
    eager, eager_losses, _ = _train(_mlp(dtype, opt_name), batches, 100, False)
    comp, comp_losses, fn = _train(_mlp(dtype, opt_name), batches, 100, True)
    assert fn.traces == 2 and fn.replays == 98  # the equality below is about replays
    a, b = eager.state_dict(), comp.state_dict()
    for k in a:
        if dtype is np.float64:
            np.testing.assert_array_equal(a[k], b[k])
        else:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7 * np.abs(a[k]).max())
    assert comp_losses == eager_losses


def test_dropout_draws_fresh_masks_from_the_same_generator():
    batches = _batches(3, (6, 12), 4, np.float64)
    eager, eager_losses, _ = _train(_mlp(np.float64, "sgd", dropout=0.5), batches, 30, False)
    comp, comp_losses, fn = _train(_mlp(np.float64, "sgd", dropout=0.5), batches, 30, True)
    assert comp_losses == eager_losses
    assert len(set(comp_losses[3::3])) > 5  # the same batch gives different losses: new masks each replay
    for k, v in eager.state_dict().items():
        np.testing.assert_array_equal(comp.state_dict()[k], v)


def test_scheduler_inside_the_step_is_replayed():
    batches = _batches(4, (5, 12), 4, np.float64)
    eager, _, _ = _train(_mlp(np.float64, "momentum"), batches, 20, False, schedule=True)
    comp, _, fn = _train(_mlp(np.float64, "momentum"), batches, 20, True, schedule=True)
    assert fn.replays == 18
    for k, v in eager.state_dict().items():
        np.testing.assert_array_equal(comp.state_dict()[k], v)


def test_cnn_with_batchnorm_equals_eager_running_statistics_included():
    spec = CNNSpec(in_shape=(1, 8, 8), channels=(3, 4), hidden=(6,), n_classes=3)

    def make():
        m = CNN(spec, seed=0, dtype=np.float64)
        return m, optim.SGD(m.named_parameters(), lr=0.05, momentum=0.9)

    batches = _batches(3, (4, 1, 8, 8), 3, np.float64)
    eager, _, _ = _train(make, batches, 12, False)
    comp, _, fn = _train(make, batches, 12, True)
    assert fn.replays == 10
    a, b = eager.state_dict(), comp.state_dict()
    assert any("running_mean" in k for k in a)
    for k in a:
        np.testing.assert_array_equal(b[k], a[k], err_msg=k)


def test_new_batch_size_traces_again_and_stays_exact():
    batches = _batches(4, (6, 12), 4, np.float64) + _batches(2, (3, 12), 4, np.float64, seed=1)
    eager, eager_losses, _ = _train(_mlp(np.float64, "adam"), batches, 30, False)
    comp, comp_losses, fn = _train(_mlp(np.float64, "adam"), batches, 30, True)
    assert fn.traces == 4  # two per batch size
    assert comp_losses == eager_losses


def test_replaced_parameter_retraces_instead_of_replaying_stale_tensors():
    m, opt = _mlp(np.float64, "sgd")()
    x, y = _batches(1, (6, 12), 4, np.float64)[0]

    def loss_of(x, y):
        return nn.cross_entropy(m(x), y)

    f = tg.compile(loss_of)
    for _ in range(3):
        f(x, y)
    assert f.replays == 1
    new = tg.Tensor(np.zeros_like(m.layers[0].weight.data), requires_grad=True)
    m.layers[0].weight = new
    got = f(x, y)
    assert f.traces == 3 and f.replays == 1
    assert float(got.data) == float(loss_of(tg.from_numpy(x), y).data)
    m.layers[0] = nn.Linear(12, 10, dtype=np.float64)  # a whole layer swapped in the model's list
    f(x, y)
    assert f.traces == 4


def test_switching_to_eval_mode_retraces():
    m, _ = _mlp(np.float64, "sgd", dropout=0.5)()
    x, _ = _batches(1, (6, 12), 4, np.float64)[0]
    f = tg.compile(lambda x: m(x))
    for _ in range(3):
        f(x)
    m.eval()
    a = f(x).data
    np.testing.assert_array_equal(a, f(x).data)  # dropout off: deterministic
    np.testing.assert_array_equal(a, m(tg.from_numpy(x)).data)
    assert f.traces == 4


def test_replay_returns_values_without_a_graph():
    m, _ = _mlp(np.float32, "sgd")()
    x, y = _batches(1, (6, 12), 4, np.float32)[0]
    f = tg.compile(lambda x, y: {"loss": nn.cross_entropy(m(x), y), "x": x})
    for _ in range(3):
        out = f(x, y)
    assert isinstance(out["loss"], tg.Tensor) and not out["loss"].requires_grad
    assert out["x"].data is x


@pytest.mark.parametrize("read", [
    lambda t: t.item(), lambda t: bool(t), lambda t: t.numpy(), lambda t: float(t), lambda t: np.asarray(t),
    lambda t: t.tolist(),
])
def test_reading_a_traced_value_raises_at_trace_time(read):
    w = tg.Tensor(np.ones(3), requires_grad=True)

    def f(x):
        loss = (x * w).sum()
        read(loss)
        return loss

    with pytest.raises(tg.TraceError, match="compiled function"):
        tg.compile(f)(np.ones(3))
    read((tg.from_numpy(np.ones(3)) * w).sum().detach())  # outside a trace the same read works


def test_reading_data_of_a_traced_tensor_raises_and_python_values_are_caught_by_the_second_trace():
    w = tg.Tensor(np.ones(3), requires_grad=True)

    def f(x):
        scale = x.data.sum()  # read from .data: a replay would freeze it
        return (w * float(scale)).sum()

    with pytest.raises(tg.TraceError, match="reading .data"):
        tg.compile(f)(np.ones(3))
    calls = iter(range(100))
    g = tg.compile(lambda x: (x * w * float(next(calls))).sum())  # a Python value that changes per call
    g(np.ones(3))
    with pytest.raises(tg.TraceError, match="differs between the first two calls"):
        g(np.ones(3))


def test_random_draw_outside_an_op_is_caught():
    rng = np.random.default_rng(0)
    w = tg.Tensor(np.ones(3), requires_grad=True)
    g = tg.compile(lambda x: (x * w * tg.Tensor(rng.random(3))).sum())
    g(np.ones(3))
    with pytest.raises(tg.TraceError, match="differs between the first two calls"):
        g(np.ones(3))


def test_python_control_flow_on_shapes_is_fine_but_on_state_is_caught():
    calls = []
    w = tg.Tensor(np.ones(3), requires_grad=True)

    def f(x):
        calls.append(1)
        return (x * w).sum() if len(calls) % 2 else (x + w).sum()

    g = tg.compile(f)
    g(np.ones(3))
    with pytest.raises(tg.TraceError, match="step 0 was op 'mul' on the first call and op 'add'"):
        g(np.ones(3))


def test_inplace_change_and_grad_and_hooks_raise_while_tracing():
    w = tg.Tensor(np.ones(3), requires_grad=True)

    def inplace(x):
        with tg.no_grad():
            w.sub_(x)
        return (x * w).sum()

    def grads(x):
        loss = (x * w).sum()
        return tg.grad(loss, w)[0]

    def hooked(x):
        y = x * w
        y.register_hook(lambda g: g)
        loss = y.sum()
        loss.backward()
        return loss

    for fn, match in [(inplace, "in-place"), (grads, "tinygrad_lite.grad"), (hooked, "hook")]:
        with pytest.raises(tg.TraceError, match=match):
            tg.compile(fn)(np.ones(3))


def test_bad_functions_and_returns():
    with pytest.raises(TypeError, match="needs a function"):
        tg.compile(3)
    with pytest.raises(TypeError, match="needs a function"):
        tg.compile(tg.Tensor(np.ones(2)))
    w = tg.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match="returned nothing"):
        tg.compile(lambda x: None)(np.ones(3))
    with pytest.raises(TypeError, match="returned a float"):
        tg.compile(lambda x: 1.5)(np.ones(3))
    with pytest.raises(TypeError, match="argument 1 is a list"):
        tg.compile(lambda x, s: (x * w).sum())(np.ones(3), [1, 2])


def test_input_gradients_reach_the_callers_tensor():
    w = tg.Tensor(np.arange(3.0), requires_grad=True)

    def f(x):
        loss = (x * x * w).sum()
        loss.backward()
        return loss

    g = tg.compile(f)
    for i in range(4):
        x = tg.Tensor(np.full(3, float(i + 1)), requires_grad=True)
        g(x)
        np.testing.assert_array_equal(x.grad, 2 * x.data * w.data)
    assert g.replays == 2


def test_nested_compiled_function_is_recorded_by_the_outer_trace():
    w = tg.Tensor(np.ones(3), requires_grad=True)
    inner = tg.compile(lambda x: x * w)
    outer = tg.compile(lambda x: inner(x).sum())
    for i in range(4):
        assert float(outer(np.full(3, float(i))).data) == 3.0 * i
    assert inner.traces == 0 and outer.replays == 2


def test_detached_and_masked_values_follow_the_new_inputs():
    w = tg.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)

    def f(x, y):
        scale = (x * w).detach()  # a detached traced value is still the replay's value, not the trace's
        loss = nn.huber_loss(x * w * scale, y, delta=0.5)  # its |d| < delta mask is an op
        loss.backward()
        return loss

    g = tg.compile(f)
    rng = np.random.default_rng(1)
    for _ in range(6):
        x, y = rng.normal(size=3), rng.normal(size=3)
        w.grad = None
        got = float(g(x, y).data)
        got_grad = w.grad.copy()
        w.grad = None
        assert got == float(f(tg.from_numpy(x), y).data)
        np.testing.assert_array_equal(got_grad, w.grad)
    assert g.replays == 4


def test_a_replay_builds_no_tensors_but_the_ones_it_returns():
    import gc

    m, opt = _mlp(np.float32, "adam", dropout=0.3)()
    x, y = _batches(1, (6, 12), 4, np.float32)[0]

    def step(x, y):
        opt.zero_grad()
        loss = nn.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss

    f = tg.compile(step)
    for _ in range(3):
        f(x, y)

    def tensors() -> int:
        gc.collect()
        return sum(isinstance(o, tg.Tensor) for o in gc.get_objects())

    before = tensors()
    loss = f(x, y)
    assert tensors() == before + 1 and loss.is_leaf and f.replays == 2
    assert "def replay(arrays, values):" in f._entries[next(iter(f._entries))].replay.source


def test_a_replay_checks_each_new_batch_of_labels_and_indices():
    m, _ = _mlp(np.float32, "sgd")()
    x, y = _batches(1, (6, 12), 4, np.float32)[0]
    f = tg.compile(lambda x, y: nn.cross_entropy(m(x), y))
    for _ in range(3):
        f(x, y)
    for bad in (-1, 4):  # -1 would silently pick the last class without the op's own check
        with pytest.raises(ValueError, match=f"label {bad} at row 2 is outside"):
            f(x, np.where(np.arange(6) == 2, bad, y))
    emb = nn.Embedding(5, 3, rng=0)
    g = tg.compile(lambda i: emb(i).sum())
    for _ in range(3):
        g(np.array([0, 4, 2]))
    with pytest.raises(ValueError, match="index -1 at position"):
        g(np.array([0, -1, 2]))


def _agree(f, g, calls):
    """f compiled and g eager give the same results on every call (replays included)."""
    for args in calls:
        a, b = f(*args), g(*[tg.from_numpy(v) if isinstance(v, np.ndarray) else v for v in args])
        np.testing.assert_array_equal(a.data, b.data)
        assert a.dtype == b.dtype


def test_keywords_numpy_scalars_and_index_inputs_follow_each_call():
    rng = np.random.default_rng(0)
    w = tg.Tensor(rng.normal(size=(4, 3)).astype(np.float32), requires_grad=True)

    def f(x, *, y, a):  # keywords given out of order; NumPy scalars; a label array used as an index
        logp = tg.log_softmax(x @ w / np.sqrt(np.float64(8.0)), axis=1) * np.float32(2) + a
        return -logp[np.arange(len(y)), y].sum() / np.prod(x.shape)

    calls = [(rng.random((5, 4), dtype=np.float32),) for _ in range(5)]
    labels = [rng.integers(0, 3, 5) for _ in range(5)]
    shifts = [rng.random(3, dtype=np.float32) for _ in range(5)]
    g = tg.compile(f)
    for (x,), y, a in zip(calls, labels, shifts):
        got = g(x, y=y, a=a)
        want = f(tg.from_numpy(x), a=tg.from_numpy(a), y=y)
        assert got.dtype == np.float32 and float(got.data) == float(want.data)
    assert g.replays == 3


def test_the_same_tensor_twice_is_another_signature():
    w = tg.Tensor(np.arange(3.0), requires_grad=True)
    g = tg.compile(lambda a, b: (a * w + b * b).sum())
    t, u = np.ones(3), np.full(3, 2.0)
    for _ in range(3):
        g(t, t)
    assert float(g(t, u).data) == float((t * w.data + u * u).sum())


def test_batchnorm_in_eval_mode_reads_the_running_statistics_at_each_replay():
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    rng = np.random.default_rng(0)
    f = tg.compile(lambda x: bn(x))
    for epoch in range(3):
        bn.train()
        for _ in range(2):
            bn(tg.from_numpy(rng.normal(epoch, 1.0, size=(8, 3))))
        bn.eval()
        x = rng.normal(size=(4, 3))
        np.testing.assert_array_equal(f(x).data, bn(tg.from_numpy(x)).data)
    assert f.replays >= 1


def test_model_zero_grad_is_replayed():
    x, y = _batches(1, (6, 12), 4, np.float64)[0]
    runs = []
    for compiled in (False, True):
        m, opt = _mlp(np.float64, "sgd")()

        def step(x, y, m=m, opt=opt):
            m.zero_grad()  # Module.zero_grad, not the optimizer's: replayed too
            loss = nn.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss

        f = tg.compile(step) if compiled else step
        for _ in range(5):
            f(x, y) if compiled else f(tg.from_numpy(x), y)
        runs.append({k: (p.data.copy(), p.grad.copy()) for k, p in m.named_parameters()})
    for k, (w, g) in runs[0].items():
        np.testing.assert_array_equal(runs[1][k][0], w)
        np.testing.assert_array_equal(runs[1][k][1], g)  # accumulated over replays it would be about 3x this


def test_changed_settings_and_containers_retrace():
    class Heads(nn.Module):
        def __init__(self):
            self.parts = {"a": nn.Linear(3, 2, dtype=np.float64)}

        def forward(self, x):
            return self.parts["a"](x)

    drop, heads = nn.Dropout(0.5, seed=0), Heads()
    f = tg.compile(lambda x: heads(drop(x)).sum())
    x = np.ones((4, 3))
    for _ in range(3):
        f(x)
    drop.p = 0.0  # a dropout schedule: replays must see it
    assert float(f(x).data) == float(heads.parts["a"](tg.from_numpy(x)).sum().data)
    heads.parts["a"] = nn.Linear(3, 2, dtype=np.float64)  # replaced inside a dict
    for _ in range(3):
        assert float(f(x).data) == float(heads(tg.from_numpy(x)).sum().data)
    assert f.traces == 5 and f.replays == 2


def test_refusals_for_values_computed_in_python_and_outside_graphs():
    w = tg.Tensor(np.arange(4.0), requires_grad=True)
    for fn, match in [
        (lambda x: tg.argsort(x * w), "argsort's order"),
        (lambda x: tg.max_dim(x * w, 0).values, "max_dim's indices"),
        (lambda x: nn.cross_entropy((x * w).reshape(2, 2), x[:2].astype(np.intp) % 2, label_smoothing=0.1),
         "target rows"),
        (lambda x: tg.take_along_dim(w, x.astype(np.intp)), "take_along_axis"),
    ]:
        with pytest.raises(tg.TraceError, match=match):
            tg.compile(fn)(np.arange(4.0))
    h = (tg.Tensor(np.ones(4), requires_grad=True) * 2)  # carries a graph from outside
    with pytest.raises(tg.TraceError, match="outside the compiled function"):
        tg.compile(lambda a: _backward_of((a * w).sum()))(h)


def _backward_of(loss):
    loss.backward()
    return loss


def test_methods_and_grad_mode():
    class Trainer:
        def __init__(self):
            self.w = tg.Tensor(np.ones(3), requires_grad=True)

        @tg.compile
        def step(self, x):
            loss = (x * self.w).sum()
            loss.backward()
            return loss

    t = Trainer()
    for i in range(3):
        assert float(t.step(np.full(3, float(i))).data) == 3.0 * i
    with tg.no_grad(), pytest.raises(RuntimeError, match="does not require grad"):
        t.step(np.ones(3))  # under no_grad the eager step fails at backward(), and so does a compiled one


def test_python_state_changes_and_reads_of_parameters_raise():
    m, opt = _mlp(np.float64, "sgd")()
    x, y = _batches(1, (6, 12), 4, np.float64)[0]

    def manual_zero(x, y):
        for p in m.parameters():
            p.grad = None  # not replayed: refused
        loss = nn.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss

    def reads_weights(x, y):
        return nn.cross_entropy(m(x), y) + float((m.layers[0].weight.data ** 2).sum())

    for fn, match in [(manual_zero, "setting .grad"), (reads_weights, "reading .data")]:
        f = tg.compile(fn)
        with pytest.raises(tg.TraceError, match=match):
            for _ in range(2):
                f(x, y)
    assert type(m.layers[0].weight) is nn.Parameter  # the class a trace gives read tensors is taken back


def test_value_dependent_shapes_and_value_reading_numpy_functions():
    w = tg.Tensor(np.arange(1.0, 5.0), requires_grad=True)

    def masked(x):
        loss = (w[x > 0] ** 2).sum()  # how many elements depends on the values
        loss.backward()
        return loss

    f = tg.compile(masked)
    one = np.array([1.0, -1.0, -1.0, -1.0])
    for _ in range(3):
        f(one)
    with pytest.raises(tg.TraceError, match="depends on the values"):
        f(np.array([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(tg.TraceError, match="count_nonzero"):
        tg.compile(lambda x: (x * w).sum() * float(np.count_nonzero(x)))(one)


def test_losses_cast_integer_targets_with_an_op_and_modules_settings_are_guarded():
    rng = np.random.default_rng(0)
    lin = nn.Linear(3, 1, dtype=np.float64)
    f = tg.compile(lambda x, t: nn.binary_cross_entropy_with_logits(lin(x).reshape(-1), t))
    for _ in range(4):
        x, t = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)  # integer 0/1 targets
        assert float(f(x, t).data) == float(nn.binary_cross_entropy_with_logits(
            lin(tg.from_numpy(x)).reshape(-1), t).data)
    conv = nn.Conv2d(1, 1, 3, padding=1, rng=0, dtype=np.float64)
    g = tg.compile(lambda x: conv(x).sum())
    x = rng.normal(size=(1, 1, 6, 6))
    for _ in range(3):
        g(x)
    conv.stride = (2, 2)  # a tuple setting: the next call traces again
    assert float(g(x).data) == float(conv(tg.from_numpy(x)).sum().data) and g.traces == 3


def test_third_review_cases():
    w = tg.Tensor(np.array([[3.0, 1.0, 2.0]]), requires_grad=True)
    with pytest.raises(tg.TraceError, match="max_dim"):  # indices from a parameter's values: frozen otherwise
        tg.compile(lambda x: (tg.max_dim(w, 1).values * x).sum())(np.ones(1))
    # a detached parameter keeps following the parameter (its array rebound between calls)
    p = tg.Tensor(np.ones(3), requires_grad=True)
    f = tg.compile(lambda x: (x * p.detach()).sum())
    for _ in range(3):
        f(np.ones(3))
    p.data = np.full(3, 2.0)
    assert float(f(np.ones(3)).data) == 6.0 and f.traces == 2
    # 2, 2.0 and True, and 0.0 and -0.0, are different signatures
    g = tg.compile(lambda x, s: x * s)
    for s in (2, 2, 2, 2.0, True, 0.0, 0.0, 0.0, -0.0):
        got, want = g(np.ones(1, np.float32), s), tg.from_numpy(np.ones(1, np.float32)) * s
        assert got.dtype == want.dtype and np.array_equal(got.data, want.data)
    # an iterator given to a replayed call is kept as a list (a replay needs it again)
    import itertools

    m, opt = _mlp(np.float64, "sgd")()
    x, y = _batches(1, (6, 12), 4, np.float64)[0]

    def step(x, y):
        opt.zero_grad()
        loss = nn.cross_entropy(m(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(itertools.chain(m.layers[0].parameters(), m.layers[1].parameters()), 0.1)
        opt.step()
        return loss

    c = tg.compile(step)
    for _ in range(4):
        c(x, y)
    assert c.replays == 2


def test_fourth_review_cases():
    import threading

    w = tg.Tensor(np.ones(3), requires_grad=True)

    def masked(x, y):  # a masked loss: targets go missing (NaN) only after the traces
        mask = np.isfinite(y)
        err = tg.where(mask, x * w - tg.where(mask, y, 0.0), 0.0)
        loss = (err * err).sum()
        loss.backward()
        return loss

    f = tg.compile(masked)
    for y in (np.ones(3), np.ones(3), np.array([1.0, np.nan, 1.0])):
        w.grad = None
        got = float(f(np.ones(3), y).data)
        w.grad = None
        assert got == float(masked(tg.from_numpy(np.ones(3)), tg.from_numpy(y)).data)
    beta = tg.Tensor(np.array(2.0))  # a tensor from outside read into Python: it may change between calls
    lin = nn.Linear(3, 1, dtype=np.float64)
    for fn, match in [(lambda x: x * float(beta), "item()"),
                      (lambda x: _clipped(lin, x), "item()"),
                      (lambda x: x * len(lin.state_dict()), "state_dict")]:
        with pytest.raises(tg.TraceError, match=match):
            tg.compile(fn)(np.ones(3))
    errors = []  # another thread's eager reads of the same parameters are not refused while a step traces
    reader = threading.Thread(target=lambda: [errors.append(e) for e in _read_many(lin)])
    g = tg.compile(lambda x: _backward_of(lin(x).sum()))
    reader.start()
    for _ in range(50):
        g(np.ones((2, 3)))
    reader.join()
    assert errors == []


def _clipped(lin, x):
    loss = lin(x.reshape(1, 3)).sum()
    loss.backward()
    norm = nn.utils.clip_grad_norm_(lin.parameters(), 1.0)
    return loss * (1.0 if float(norm) < 10 else 0.0)  # Python control flow on the norm: refused


def _read_many(lin):
    out = []
    for _ in range(2000):
        try:
            lin.weight.data.sum()
            lin.state_dict()
        except Exception as e:  # noqa: BLE001
            out.append(e)
    return out


def test_a_parameter_pickles_as_itself_while_a_trace_has_it():
    import pickle

    from tinygrad_lite.trace import _mark, _unmark

    lin = nn.Linear(3, 2)
    _mark(lin.weight)  # what a trace in another thread does to the parameters it reads
    try:
        copy = pickle.loads(pickle.dumps(lin))
        assert type(copy.weight) is nn.Parameter and np.array_equal(copy.weight.data, lin.weight.data)
    finally:
        _unmark(lin.weight)
    assert type(lin.weight) is nn.Parameter

"""The CNN in the training app (models.registry's ``cnn``): a run on the bundled digits, exact resume with
BatchNorm's buffers, checkpoints that hold them, evaluate, export to PyTorch, the ``cnn`` preset. A tiny CNN
keeps every run here well under a second."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import evaluate, export, presets, registry, train
from models import run as run_module
from models.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint, save_model
from models.cnn import CNN
from models.config import ConfigError, TrainConfig, memory_needed
from models.manual_cnn import CNNSpec
from models.presets import resolve_config
from tinygrad_lite.nn.state import load_safetensors, read_safetensors_header

# conv(1→3)-BN-ReLU-pool → conv(3→4)-BN-ReLU-pool → 196 → 8 → 10, dropout, 1cycle with Nesterov momentum
TINY = ["--preset", "cnn", "--channels", "3,4", "--hidden", "8", "--dropout", "0.2", "--batch-size", "250",
        "--threads", "1", "--quiet", "--no-plots"]
BUFFERS = [f"bn.{l}.{b}" for l in (0, 1) for b in ("running_mean", "running_var", "num_batches_tracked")]


def cli(*args) -> int:
    return train.main([str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``straight``: 2 epochs in one go; ``split``: the same run interrupted after its first epoch's
    checkpoint (the 1cycle schedule spans both epochs), then resumed."""
    base = tmp_path_factory.mktemp("cnn")
    assert cli(*TINY, "--epochs", "2", "--out", base / "straight") == 0
    real = run_module.train

    def stop_after_the_first_checkpoint(*args, save, **kwargs):
        def save_then_stop(epoch):
            save(epoch)
            raise KeyboardInterrupt

        return real(*args, save=save_then_stop, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "train", stop_after_the_first_checkpoint)
        assert cli(*TINY, "--epochs", "2", "--out", base / "split") == 130
    assert load_checkpoint(base / ".split.partial" / "checkpoint.safetensors").epoch == 1
    assert cli("--resume", "--out", base / "split", "--quiet", "--no-plots") == 0
    return base


def test_a_cnn_run_learns_and_its_files_hold_the_buffers(runs):
    m = json.loads((runs / "straight" / "metrics.json").read_text())
    assert m["config"]["model"] == "cnn" and m["config"]["channels"] == [3, 4] and m["config"]["batchnorm"]
    assert m["test_accuracy"] > 0.3 and m["steps"] == 2 * 16  # chance is 0.1; 4000 images in batches of 250
    ckpt = load_checkpoint(runs / "straight" / "checkpoint.safetensors")
    spec = CNNSpec(channels=(3, 4), hidden=(8,), dropout=0.2)
    assert {k: v.shape for k, v in ckpt.params.items()} == spec.shapes()
    counter = ckpt.params["bn.1.num_batches_tracked"]
    assert counter.dtype == np.int64 and counter.shape == () and int(counter) == 32
    assert ckpt.params["bn.0.running_var"].dtype == np.float32 and not np.all(ckpt.params["bn.0.running_var"] == 1)
    # the optimizer's buffers index the trainable parameters only (not BatchNorm's running statistics)
    assert sorted(k for k in ckpt.optim if k.startswith("momentum_buffer.")) == sorted(
        f"momentum_buffer.{i}" for i in range(len(spec.parameter_shapes())))
    assert ckpt.scheduler["total_steps"] == 32
    tensors, _ = read_safetensors_header(runs / "straight" / "model.safetensors")
    assert set(BUFFERS) <= set(tensors)


def test_resume_is_exact_buffers_included(runs):
    a = load_checkpoint(runs / "straight" / "checkpoint.safetensors")
    b = load_checkpoint(runs / "split" / "checkpoint.safetensors")
    assert a.epoch == b.epoch == 2 and a.params.keys() == b.params.keys() and a.optim.keys() == b.optim.keys()
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=k)
    for k in a.optim:
        np.testing.assert_array_equal(a.optim[k], b.optim[k], err_msg=k)
    assert a.scheduler == b.scheduler
    ma = json.loads((runs / "straight" / "metrics.json").read_text())
    mb = json.loads((runs / "split" / "metrics.json").read_text())
    strip = lambda eps: [{k: v for k, v in e.items() if k != "seconds"} for e in eps]  # noqa: E731
    assert strip(ma["epochs"]) == strip(mb["epochs"]) and ma["test_loss"] == mb["test_loss"]


def test_resume_refuses_another_architecture(runs, capsys):
    assert cli("--resume", "--out", runs / "split", "--channels", "3,5", "--epochs", "3", "--quiet") == 2
    err = capsys.readouterr().err
    assert "does not match the CNN architecture" in err and "bn.1.running_mean has shape (4,), expected (5,)" in err


def test_checkpoint_round_trip_checks_the_buffers(tmp_path):
    config = TrainConfig(model="cnn", channels=(2,), hidden=(5,), batchnorm=True)
    model = CNN(CNNSpec(channels=(2,), hidden=(5,)), seed=3)
    x = np.random.default_rng(0).random((6, 1, 28, 28), dtype=np.float32)
    model(x)  # training mode: the running statistics move
    path = save_model(tmp_path / "model.safetensors", model, config, 1)
    loaded = load_model(path)
    assert not loaded.training
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value, err_msg=name)
    np.testing.assert_array_equal(loaded(x).numpy(), model.eval()(x).numpy())  # eval: the running statistics
    state = model.state_dict()
    broken = {**state, "bn.0.num_batches_tracked": np.float32(1)}  # a counter must stay an integer
    save_checkpoint(tmp_path / "dtype.safetensors", broken, None, 1, config, kind="model")
    with pytest.raises(CheckpointError, match="bn.0.num_batches_tracked is float32, expected int64"):
        load_checkpoint(tmp_path / "dtype.safetensors")
    missing = {k: v for k, v in state.items() if k != "bn.0.running_var"}
    save_checkpoint(tmp_path / "missing.safetensors", missing, None, 1, config, kind="model")
    with pytest.raises(CheckpointError, match="missing bn.0.running_var"):
        load_checkpoint(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="does not match the CNN architecture"):
        load_checkpoint(path, [784, 7, 10])


def test_evaluate_runs_the_cnn_in_eval_mode(runs, tmp_path):
    m = json.loads((runs / "straight" / "metrics.json").read_text())
    r = evaluate.evaluate_checkpoint(runs / "straight")
    assert r["accuracy"] == pytest.approx(m["test_accuracy"]) and r["loss"] == pytest.approx(m["test_loss"], rel=1e-5)
    assert evaluate.main([str(runs / "straight" / "model.safetensors"), "--split", "train", "--batch-size", "300",
                          "--out", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "evaluation.json").read_text())["n"] == 4000


def test_export_has_the_layout_of_torch_sequential(runs, capsys):
    out, code = export.export_torch(runs / "straight", runs / "cnn.torch.safetensors")
    assert code == ("torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1, bias=False), torch.nn.BatchNorm2d(3, "
                    "eps=1e-05, momentum=0.1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(3, 4, 3, "
                    "padding=1, bias=False), torch.nn.BatchNorm2d(4, eps=1e-05, momentum=0.1), torch.nn.ReLU(), "
                    "torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(196, 8), torch.nn.ReLU(), "
                    "torch.nn.Dropout(0.2), torch.nn.Linear(8, 10))")
    arrays = load_safetensors(out)
    assert {k: v.shape for k, v in arrays.items()} == {
        "0.weight": (3, 1, 3, 3), "1.weight": (3,), "1.bias": (3,), "1.running_mean": (3,), "1.running_var": (3,),
        "1.num_batches_tracked": (), "4.weight": (4, 3, 3, 3), "5.weight": (4,), "5.bias": (4,),
        "5.running_mean": (4,), "5.running_var": (4,), "5.num_batches_tracked": (), "9.weight": (8, 196),
        "9.bias": (8,), "12.weight": (10, 8), "12.bias": (10,)}
    assert arrays["5.num_batches_tracked"].dtype == np.int64
    assert export.main(["--format", "torch", str(runs / "straight"), "-o", str(runs / "c2.safetensors")]) == 0
    assert "net.eval()" in capsys.readouterr().out


def test_pytorch_loads_the_export_and_computes_the_same_logits(runs):
    torch = pytest.importorskip("torch")
    out, code = export.export_torch(runs / "straight", runs / "t.safetensors")
    net = eval(code, {"torch": torch})
    net.load_state_dict({k: torch.from_numpy(v) for k, v in load_safetensors(out).items()}, strict=True)
    net.eval()
    x = np.random.default_rng(0).random((16, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    ours = load_model(runs / "straight" / "model.safetensors")(x).numpy()
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)


def test_the_cnn_preset_is_the_documented_recipe():
    c = resolve_config("cnn")
    assert (c.model, c.channels, c.batchnorm, c.hidden, c.dropout, c.augment) == ("cnn", (32, 64), True, (128,), 0.0,
                                                                                  False)
    assert (c.optimizer, c.momentum, c.nesterov, c.weight_decay, c.lr, c.schedule) == ("sgd", 0.9, True, 5e-4, 0.1,
                                                                                      "onecycle")
    assert (c.batch_size, c.epochs, c.dataset) == (128, 5, "digits")
    spec = registry.cnn_spec(c, [784, *c.hidden, 10])
    assert spec == CNNSpec()  # the default network: conv 32-64 3×3 with BatchNorm, max-pool, fc 128
    assert presets.REFERENCE["cnn"].startswith("target")
    # its schedule: OneCycleLR over all steps, the SGD momentum cycling 0.95 → 0.85 → 0.95 (PyTorch's defaults)
    model = registry.MODELS["cnn"].build(c, [784, 8, 10], np.random.default_rng(0))
    opt = registry.OPTIMIZERS["sgd"].build(model.named_parameters(), c)
    sched = registry.make_scheduler(opt, c, 10, 100)
    lrs, momenta = [], []
    for _ in range(100):
        lrs.append(opt.lr)
        momenta.append(opt.momentum)
        sched.step()
    assert lrs[0] == pytest.approx(0.004) and lrs[29] == pytest.approx(0.1) and lrs[99] == pytest.approx(4e-7)
    assert momenta[0] == pytest.approx(0.95) and momenta[29] == pytest.approx(0.85) and momenta[99] == pytest.approx(
        0.95) and opt.nesterov
    # the memory estimate counts the trainable parameters and the conv activations
    n_params, _, acts = memory_needed(c, 784, 10)
    assert n_params == sum(int(np.prod(s)) for s in spec.parameter_shapes().values())
    per_example = (32 * 784 * 4 + 32 * 196 + 9 * 784) + (64 * 196 * 4 + 64 * 49 + 32 * 9 * 196) + 3136 + 128 + 10
    assert registry.MODELS["cnn"].values(c, [784, 128, 10]) == per_example  # conv, BN X̂ and Y, ReLU; pool; im2col
    assert acts == 4 * c.batch_size * per_example * 4  # float32, training (4×) beats evaluating 500 at once


def test_a_cnn_that_cannot_fit_names_channels_or_batch_size(monkeypatch):
    from models import config as config_module

    monkeypatch.setattr(config_module, "_physical_memory", lambda: 512 << 20)
    with pytest.raises(ConfigError) as e:
        resolve_config("cnn", overrides=dict(channels=[512, 512]), memory=True)
    assert e.value.key == "channels" and "CNN with" in str(e.value)
    with pytest.raises(ConfigError) as e:
        resolve_config("cnn", memory=True)
    assert e.value.key == "batch_size"
    with pytest.raises(ConfigError) as e:
        resolve_config("cnn", overrides=dict(batch_size=64), memory=True)
    assert e.value.key == "eval_batch_size"  # now evaluating 500 images at once is the larger part
    assert resolve_config("cnn", overrides=dict(batch_size=64, eval_batch_size=200), memory=True).batch_size == 64


@pytest.mark.parametrize("changes, key", [(dict(channels=(8, 0)), "channels"),
                                          (dict(channels=(4,) * 5), "channels"),
                                          (dict(activations=("tanh",)), "activations")])
def test_bad_cnn_configs_name_their_key(changes, key):
    with pytest.raises(ConfigError) as e:
        TrainConfig(model="cnn", **changes)
    assert e.value.key == key

"""models.compare: the table, exit status 0 when autograd equals the manual backprop, 1 when it does not."""

import subprocess
import sys
import types

import numpy as np
import pytest

import models.compare as compare
from models import registry
from models.checkpoint import save_checkpoint
from models.cnn import CNN
from models.config import TrainConfig
from models.manual import ManualMLP
from models.manual_cnn import ManualCNN
from models.mlp import MLP
from tinygrad_lite.nn.state import save_safetensors

SMALL = ["--sizes", "30,12,8,5", "--batch", "16"]


def test_agreement_prints_the_table_and_exits_0(capsys):
    assert compare.main(SMALL + ["--activations", "relu", "tanh"]) == 0
    out = capsys.readouterr().out
    for name in ["loss", "logits", "grad layers.0.weight", "grad layers.2.bias"]:
        assert f"\n{name} " in out
    assert "30x12" in out and "OK: all 8 quantities agree" in out and "tolerance 1e-10 for float64" in out


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam", "rmsprop"])
def test_training_steps_keep_the_parameters_equal(optimizer, capsys):
    assert compare.main(SMALL + ["--steps", "4", "--optimizer", optimizer, "--activations", "sigmoid"]) == 0
    out = capsys.readouterr().out
    assert "param layers.1.weight after 4" in out and f"loss after 4 {optimizer} steps" in out


def test_float32_uses_its_own_tolerance(capsys):
    assert compare.main(SMALL + ["--dtype", "float32", "--steps", "3", "--optimizer", "adam"]) == 0
    assert "tolerance 0.0001 for float32" in capsys.readouterr().out


def test_a_planted_discrepancy_exits_1(capsys):
    assert compare.main(SMALL + ["--perturb", "1e-6"]) == 1
    out = capsys.readouterr().out
    assert "FAIL: 1 of 8 quantities" in out and "grad layers.0.weight" in out.split("FAIL")[1]
    assert "<-- exceeds tolerance" in out


def test_a_sabotaged_manual_backward_is_caught(monkeypatch, capsys):
    original = ManualMLP.backward

    def wrong_relu_derivative(self, Y):  # uses g′ = 1 everywhere in the first hidden layer
        self.Z[1] = np.abs(self.Z[1]) + 1
        return original(self, Y)

    monkeypatch.setattr(ManualMLP, "backward", wrong_relu_derivative)
    assert compare.main(SMALL) == 1
    out = capsys.readouterr().out.split("FAIL")[1]
    assert "grad layers.0.weight" in out and "grad layers.2.weight" not in out


def test_compare_function_reports_rows():
    model, manual = MLP([6, 4, 3], seed=0, dtype=np.float64), ManualMLP([6, 4, 3], seed=0, dtype=np.float64)
    rng = np.random.default_rng(0)
    report = compare.compare(model, manual, rng.random((5, 6)), rng.integers(0, 3, 5))
    assert report.ok and [r.name for r in report.rows][:2] == ["loss", "logits"]
    manual.params["layers.0.weight"][0, 0] += 1e-3  # the twins no longer share weights
    report = compare.compare(model, manual, rng.random((5, 6)), rng.integers(0, 3, 5))
    assert not report.ok
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        compare.compare(model, manual, rng.random((5, 6)), rng.integers(0, 3, 5), optimizer="lbfgs")


def test_difference_metrics():
    row = compare.difference("x", np.array([3.0, 4.0]), np.array([3.0, 4.0 + 5e-11]), 1e-10)
    assert row.ok and row.max_abs == pytest.approx(5e-11) and row.rel == pytest.approx(1e-11, rel=1e-3)
    assert compare.difference("z", np.zeros(3), np.zeros(3), 1e-10).cosine == 1.0
    assert not compare.difference("s", np.zeros(3), np.zeros(4), 1).ok
    assert not compare.difference("n", np.array([np.nan]), np.array([1.0]), 1).ok
    assert not compare.difference("n", np.array([np.nan]), np.array([np.nan]), 1).ok
    assert not compare.difference("i", np.array([np.inf]), np.array([1.0]), 1).ok
    row = compare.difference("c", np.array([1.0, 0.0]), np.array([0.0, 1.0]), 1)
    assert row.cosine == 0.0 and row.rel == pytest.approx(np.sqrt(2))


def test_checkpoint_weights_are_loaded_and_sizes_read_from_it(tmp_path, capsys):
    trained = MLP([9, 7, 4], seed=42, dtype=np.float64)
    path = tmp_path / "weights.npz"
    np.savez(path, **trained.state_dict())  # a plain state dict
    assert compare.main(["--checkpoint", str(path), "--batch", "5"]) == 0
    out = capsys.readouterr().out
    assert "MLP [9, 7, 4]" in out and "weights from" in out
    save_safetensors(tmp_path / "weights.safetensors", trained.state_dict())  # the same, as safetensors
    assert compare.main(["--checkpoint", str(tmp_path / "weights.safetensors"), "--batch", "5"]) == 0
    assert "MLP [9, 7, 4]" in capsys.readouterr().out
    # a training checkpoint: optimizer.* and best.* ignored, activations from the stored config
    trained = MLP([784, 7, 6, 10], ["tanh", "sigmoid"], seed=42, dtype=np.float64)
    params = trained.state_dict()
    path = save_checkpoint(tmp_path / "checkpoint.safetensors", params, {"m.0": np.zeros((784, 7))}, 1,
                           TrainConfig(activations=("tanh", "sigmoid"), hidden=(7, 6), dtype="float64"),
                           best={k: v + 1 for k, v in params.items()})
    assert compare.main(["--checkpoint", str(path), "--batch", "5"]) == 0
    assert "MLP [784, 7, 6, 10], activations ['tanh', 'sigmoid']" in capsys.readouterr().out
    sizes, state, activations = compare._load_checkpoint(str(path), np.dtype(np.float32))
    assert sizes == [784, 7, 6, 10] and activations == ["tanh", "sigmoid"]
    for name, value in params.items():
        np.testing.assert_array_equal(state[name], value.astype(np.float32))  # the parameters, not best.*
    np.savez(tmp_path / "gap.npz", **{"layers.1.weight": np.zeros((7, 4))})
    assert compare.main(["--checkpoint", str(tmp_path / "gap.npz")]) == 2
    assert "holds no MLP parameters" in capsys.readouterr().err


def test_dataset_batch_comes_from_load_dataset(monkeypatch, capsys):
    calls = []

    def load_dataset(name, data_dir=None):
        calls.append((name, data_dir))
        rng = np.random.default_rng(0)
        return types.SimpleNamespace(x_train=rng.random((40, 30), dtype=np.float32), y_train=rng.integers(0, 5, 40))

    monkeypatch.setitem(sys.modules, "tinygrad_lite.data", types.SimpleNamespace(load_dataset=load_dataset))
    assert compare.main(SMALL + ["--dataset", "toy", "--data-dir", "/somewhere"]) == 0
    assert calls == [("toy", "/somewhere")]
    assert "first 16 training examples of toy" in capsys.readouterr().out
    assert compare.main(["--sizes", "784,10", "--dataset", "toy", "--batch", "8"]) == 2  # 30 pixels, 784 inputs
    assert "dataset toy has examples of shape (30,); the model takes 784 inputs" in capsys.readouterr().err
    assert compare.main(SMALL[:2] + ["--dataset", "toy", "--batch", "41"]) == 2
    assert "--batch 41 is larger than the dataset (40 examples)" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--activations", "gelu"], "unknown activation 'gelu'"),
    (["--init", "glorot"], "unknown init 'glorot'"),
    (["--batch", "0"], "--batch must be"),
    (["--sizes", "5"], "sizes must list at least inputs and outputs"),
])
def test_bad_arguments_exit_2_with_a_message(args, message, capsys):
    assert compare.main(SMALL + args) == 2
    assert message in capsys.readouterr().err


def test_module_entry_point_exit_codes():
    base = [sys.executable, "-m", "models.compare", *SMALL]
    assert subprocess.run(base, capture_output=True).returncode == 0
    assert subprocess.run(base + ["--perturb", "1e-3"], capture_output=True).returncode == 1


# ------------------------------------------------------------------------ the CNN
CNN_SMALL = ["--model", "cnn", "--channels", "2,3", "--hidden", "6", "--image-size", "12", "--classes", "5",
             "--batch", "6"]


def test_cnn_compares_every_layer_gradient_and_buffer(capsys):
    assert compare.main(CNN_SMALL + ["--dropout", "0.3", "--steps", "2", "--optimizer", "nesterov"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CNN conv(1→2,3×3,pad 1)-BN-ReLU-maxpool2 → conv(2→3,3×3,pad 1)-BN-ReLU-maxpool2 → "
                          "linear(27→6)-ReLU-dropout(0.3) → linear(6→5), init uniform_fan_in, float64")
    rows = [line.split()[0:2] for line in out.splitlines()]
    names = [" ".join(r) for r in rows]
    layers = [n for n in names if n.startswith("layer ")]
    assert layers == [f"layer {k}" for k in ("conv.0", "bn.0", "relu.0", "pool.0", "conv.1", "bn.1", "relu.1",
                                              "pool.1", "flatten", "fc.0", "hidden.0", "fc.1")]
    assert names.index("logits 6x5") < names.index("layer conv.0") < names.index("grad conv.0.weight")
    for name in ("grad bn.1.weight", "grad fc.1.bias", "buffer bn.0.running_var", "param conv.1.weight",
                 "buffer bn.1.num_batches_tracked"):
        assert name in out
    assert "bn.0.running_mean after the step" in out and "bn.1.running_var after 2" in out
    assert "loss after 2 nesterov steps" in out and "OK: all 47 quantities agree" in out


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_cnn_without_batchnorm_and_in_float32(optimizer, capsys):
    assert compare.main(CNN_SMALL + ["--no-batchnorm", "--dtype", "float32", "--steps", "2", "--optimizer",
                                     optimizer]) == 0
    out = capsys.readouterr().out
    assert "grad conv.0.bias" in out and "buffer" not in out and "layer bn.0" not in out
    assert "tolerance 0.0001 for float32" in out


def test_cnn_discrepancies_are_caught(monkeypatch, capsys):
    assert compare.main(CNN_SMALL + ["--perturb", "1e-6"]) == 1
    out = capsys.readouterr().out.split("FAIL")[1]
    assert "grad conv.0.weight" in out and "grad conv.1.weight" not in out

    def without_the_mean_term(self, l, dY, grads):  # BatchNorm's backward forgets −mean(dX̂)
        c = self.cache
        grads[f"bn.{l}.weight"] = (dY * c[f"xhat.{l}"]).sum(axis=(0, 2, 3))
        grads[f"bn.{l}.bias"] = dY.sum(axis=(0, 2, 3))
        dXhat = dY * self.params[f"bn.{l}.weight"][:, None, None]
        xhat = c[f"xhat.{l}"]
        return (dXhat - xhat * (dXhat * xhat).mean(axis=(0, 2, 3), keepdims=True)) * c[f"rstd.{l}"][:, None, None]

    monkeypatch.setattr(ManualCNN, "_batchnorm_backward", without_the_mean_term)
    assert compare.main(CNN_SMALL) == 1
    fail = capsys.readouterr().out.split("FAIL")[1].split("\n")[0]
    assert "grad conv.0.weight" in fail and "grad conv.1.weight" in fail and "grad bn.1.weight" not in fail
    assert "layer" not in fail and "logits" not in fail  # the forward pass still agrees


def test_cnn_from_a_run_checkpoint_and_a_dataset_batch(tmp_path, capsys):
    config = TrainConfig(model="cnn", channels=(2, 3), hidden=(4,), init="he_normal")
    model = CNN(registry.cnn_spec(config, [784, 4, 10]), seed=5)
    model(np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32))  # moves the running statistics
    path = save_checkpoint(tmp_path / "model.safetensors", model.state_dict(), None, 1, config, kind="model")
    assert compare.main(["--checkpoint", str(path), "--batch", "4", "--dataset", "digits", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CNN conv(1→2,3×3,pad 1)") and "init he_normal" in out and "weights from" in out
    assert "first 4 training examples of digits" in out
    spec, state, init = compare._load_cnn_checkpoint(str(path), np.dtype(np.float64))
    assert spec.channels == (2, 3) and init == "he_normal" and state["bn.0.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(state["bn.1.running_var"], model.state_dict()["bn.1.running_var"])
    assert compare.main(["--checkpoint", str(path), "--channels", "4"]) == 2
    assert "--channels: the architecture comes from --checkpoint" in capsys.readouterr().err
    mlp = tmp_path / "mlp.safetensors"
    save_safetensors(mlp, MLP([9, 7, 4], seed=1).state_dict())
    assert compare.main(["--model", "cnn", "--checkpoint", str(mlp)]) == 2
    assert "holds no CNN" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--model", "cnn", "--channels", "2,x"], "--channels expects integers"),
    (["--model", "cnn", "--image-size", "2", "--channels", "2,2"], "shrinks to nothing"),
    (["--model", "cnn", "--dropout", "1"], "dropout must be in [0, 1)"),
    (["--hidden", "8"], "--hidden is an option of --model cnn"),
])
def test_bad_cnn_arguments_exit_2(args, message, capsys):
    assert compare.main(args) == 2
    assert message in capsys.readouterr().err

"""models.train / models.evaluate / models.presets / models.config: the CLI end to end, exact resume, config
precedence, schedules, bad input."""

import dataclasses
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import evaluate, presets, registry, report, train
from models import run as train_run
from models.checkpoint import load_checkpoint, save_checkpoint
from models.config import ConfigError, TrainConfig
from models.presets import resolve_config
from tinygrad_lite import Tensor, optim

ROOT = Path(__file__).resolve().parents[1]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FAST = ["--hidden", "32", "--epochs", "2", "--threads", "1", "--quiet"]


def cli(*args):
    """Run ``python -m models.train`` in-process; returns the exit code."""
    return train.main([str(a) for a in args])


def config_of(*args):
    return train.config_from_args(train.build_parser().parse_args([str(a) for a in args]))


# ------------------------------------------------------------------ end to end
def test_cli_end_to_end_on_digits(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "models.train", "--out", str(out), "--epochs", "3", "--threads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "epoch 3/3" in proc.stdout and "most confused pairs" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"test_accuracy", "test_loss", "seconds", "epochs", "config"} <= set(metrics)
    assert metrics["test_accuracy"] > 0.85  # chance is 0.10
    assert len(metrics["epochs"]) == 3 and metrics["epochs"][-1]["val_loss"] is not None
    assert metrics["config"]["seed"] == 0 and metrics["config"]["preset"] == "default"
    assert np.asarray(metrics["confusion_matrix"]).sum() == 1000
    for name in ("curves.png", "confusion.png", "samples.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert TrainConfig.from_toml(out / "config.toml").to_dict() == metrics["config"]  # the saved TOML repeats the run
    assert sorted(p.name for p in out.iterdir()) == sorted(train_run.OUTPUT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging folder or lock left
    ckpt = load_checkpoint(out / "checkpoint.safetensors")
    assert ckpt.epoch == 3 and "layers.2.weight" in ckpt.params and ckpt.optim and ckpt.scheduler
    assert load_checkpoint(out / "model.safetensors").run_id == metrics["run_id"] == ckpt.run_id
    # evaluate the model, on the data it was trained on
    r = evaluate.evaluate_checkpoint(out)
    assert r["accuracy"] == pytest.approx(metrics["test_accuracy"]) and r["loss"] == pytest.approx(
        metrics["test_loss"], rel=1e-5)
    assert evaluate.main([str(out / "model.safetensors"), "--split", "train", "--out", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "evaluation.json").read_text())["n"] == 4000


def test_default_preset_is_fast_and_accurate(tmp_path):
    m = train.run(resolve_config(), tmp_path / "d", quiet=True, plots=False)
    assert m["test_accuracy"] > 0.92 and m["seconds"] < 20
    assert m["config"]["dataset"] == "digits" and len(m["epochs"]) == presets.PRESETS["default"]["epochs"]
    assert m["n_train"] == 3600 and m["n_val"] == 400 and m["n_test"] == 1000  # as the README says


@pytest.mark.skipif(not (FASHION_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_one_epoch_on_fashion_mnist(tmp_path):
    out = tmp_path / "f"
    assert cli("--dataset", "fashion-mnist", "--epochs", "1", "--batch-size", "128", "--threads", "1",
               "--quiet", "--no-plots", "--out", out) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_train"] + m["n_val"] == 60000 and m["n_test"] == 10000 and m["test_accuracy"] > 0.75


# ------------------------------------------------------------------ resume
def test_resume_is_exact(tmp_path):
    # dropout, augmentation, shuffling, a validation split and a step schedule all draw on the saved state
    common = ["--hidden", "24,16", "--activations", "relu,tanh", "--dropout", "0.1", "--augment",
              "--val-fraction", "0.2", "--schedule", "step", "--gamma", "0.5", "--batch-size", "256",
              "--optimizer", "adam", "--lr", "0.003", "--threads", "1", "--quiet", "--no-plots", "--seed", "3"]
    assert cli(*common, "--epochs", "4", "--out", tmp_path / "straight") == 0
    assert cli(*common, "--epochs", "2", "--out", tmp_path / "split") == 0
    assert load_checkpoint(tmp_path / "split" / "checkpoint.safetensors").epoch == 2
    assert cli("--resume", "--out", tmp_path / "split", "--epochs", "4", "--quiet", "--no-plots") == 0
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.safetensors")
    b = load_checkpoint(tmp_path / "split" / "checkpoint.safetensors")
    assert a.epoch == b.epoch == 4
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=k)
    for k in a.optim:
        np.testing.assert_array_equal(a.optim[k], b.optim[k], err_msg=k)
    ma = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert ma["test_loss"] == mb["test_loss"]
    strip = lambda eps: [{k: v for k, v in e.items() if k != "seconds"} for e in eps]
    assert strip(ma["epochs"]) == strip(mb["epochs"])


def test_early_stopping_restores_best(tmp_path):
    m = train.run(resolve_config(overrides=dict(hidden=[32], epochs=30, val_fraction=0.25, patience=2, lr=0.01,
                                                threads=1)), tmp_path / "e", quiet=True, plots=False)
    assert m["stopped_early"] and len(m["epochs"]) < 30
    vals = [e["val_loss"] for e in m["epochs"]]
    assert m["best_epoch"] == 1 + int(np.argmin(vals)) and m["restored_best"]
    r = evaluate.evaluate_checkpoint(tmp_path / "e" / "model.safetensors")  # the saved model is the best one
    assert r["accuracy"] == pytest.approx(m["test_accuracy"])


# ------------------------------------------------------------------ configuration
def test_precedence_defaults_preset_file_flags(tmp_path):
    assert config_of() == TrainConfig(**presets.PRESETS["default"])
    c = config_of("--preset", "e")
    assert c.preset == "E" and c.batch_size == 16 and c.activations == ("relu", "tanh")
    assert c.lr == 1e-3 and c.momentum == TrainConfig().momentum
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "tiny"\nlr = 0.2\nbatch_size = 100\nhidden = [20, 10]\nactivations = "tanh"\n')
    c = config_of("--config", toml)
    assert (c.preset, c.lr, c.batch_size, c.hidden, c.activations) == ("A", 0.2, 100, (20, 10), ("tanh",))
    assert c.init == "small_random"  # from preset A, not overridden
    c = config_of("--config", toml, "--lr", "0.3", "--hidden", "7", "--preset", "B", "--no-shuffle")
    assert (c.preset, c.lr, c.batch_size, c.hidden, c.shuffle) == ("B", 0.3, 100, (7,), False)
    assert c.init == "xavier_uniform"  # the flag's preset B wins over the file's preset
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lr = 1.0
    for alias, name in (("tiny", "A"), ("b", "B"), ("BEST", "best"), ("configurable", "E"), ("Default", "default")):
        assert presets.canonical_preset(alias) == name


def _lrs(steps_per_epoch=10, total=100, **changes):
    """The lr of each of ``total`` steps under the registry's schedule for the default config with ``changes``."""
    c = TrainConfig(lr=0.1, **changes)
    opt = optim.SGD([Tensor(np.zeros(2), requires_grad=True)], lr=c.lr)
    sched = registry.make_scheduler(opt, c, steps_per_epoch, total)
    out = []
    for _ in range(total):
        out.append(opt.lr)
        if sched is not None:
            sched.step()
    return np.array(out)


def test_schedules_are_the_librarys_schedulers_with_the_documented_values():
    t = np.arange(100)
    np.testing.assert_allclose(_lrs(schedule="constant"), 0.1)
    np.testing.assert_allclose(_lrs(schedule="step", step_size=2, gamma=0.5), 0.1 * 0.5 ** (t // 10 // 2))
    np.testing.assert_allclose(_lrs(schedule="cosine", min_lr=0.01), 0.01 + 0.045 * (1 + np.cos(np.pi * t / 100)))
    np.testing.assert_allclose(_lrs(warmup_steps=4), 0.1 * np.minimum((t + 1) / 4, 1.0))
    np.testing.assert_allclose(_lrs(schedule="cosine", warmup_steps=4),
                               0.05 * (1 + np.cos(np.pi * t / 100)) * np.minimum((t + 1) / 4, 1.0))
    # 1cycle, PyTorch's defaults: lr/25 at the start, lr at 30% of the steps, lr/25e4 at the last, cosine between
    one = _lrs(schedule="onecycle")
    assert one[0] == pytest.approx(0.004) and one[29] == pytest.approx(0.1) and one[99] == pytest.approx(4e-7)
    assert np.all(np.diff(one[:30]) > 0) and np.all(np.diff(one[29:]) < 0)
    np.testing.assert_allclose(one[29:], 4e-7 + (0.1 - 4e-7) / 2 * (1 + np.cos(np.pi * (t[29:] - 29) / 70)))
    assert set(registry.SCHEDULES) == {"constant", "step", "cosine", "onecycle"}
    # the registry's names are the CLI's choices and the config's
    assert f"must be one of {', '.join(registry.SCHEDULES)}" in str(pytest.raises(ConfigError, TrainConfig,
                                                                                  schedule="linear").value)


def test_an_optimizer_is_one_registry_entry(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.OPTIMIZERS, "plain", dataclasses.replace(registry.OPTIMIZERS["sgd"], help="SGD"))
    assert "one of sgd, adam, rmsprop, adamw, plain" in " ".join(train.build_parser().format_help().split())
    assert cli(*FAST, "--no-plots", "--epochs", "1", "--optimizer", "plain", "--out", tmp_path / "p") == 0
    assert load_checkpoint(tmp_path / "p" / "checkpoint.safetensors").config["optimizer"] == "plain"
    assert cli(*FAST, "--no-plots", "--epochs", "1", "--optimizer", "adamw", "--weight-decay", "0.01",
               "--out", tmp_path / "w") == 0


def test_report_metrics():
    cm = report.confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 1, 1, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 2, 0]])
    np.testing.assert_array_equal(report.per_class_errors(cm), [1, 0, 3])
    assert report.most_confused(cm) == [(2, 1, 2), (0, 1, 1), (2, 0, 1)]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("args, message", [
    (["--dataset", "cifar"], "--dataset names an unknown dataset 'cifar'"),
    (["--preset", "Z"], "unknown preset 'Z'; valid names: default, A, B"),
    (["--optimizer", "lbfgs"], "--optimizer must be one of sgd, adam, rmsprop, adamw, got 'lbfgs'"),
    (["--activations", "relu,gelu"], "--activations must be one of relu, tanh, sigmoid"),
    (["--val-fraction", "0", "--patience", "3"], "--patience needs a validation split"),
    (["--hidden", "8,8", "--activations", "relu,tanh,relu"], "--activations must give one activation or one per"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--lr", "nan"], "--lr must be a finite number >= 0, got nan"),
    (["--hidden", "100000000"], "--hidden is too large: a 784-100000000-10 MLP with 79,500,000,010 parameters"),
    (["--batch-size", "-5"], "--batch-size must be >= 0"),
])
def test_bad_values_are_named(tmp_path, capsys, args, message):
    assert cli(*args, "--out", tmp_path / "x", "--quiet") == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err  # one line
    assert list(tmp_path.iterdir()) == []  # nothing written: not the folder, its staging folder or its lock


def test_bad_flag_type_names_flag_and_type(capsys):
    with pytest.raises(SystemExit):
        cli("--epochs", "two")
    assert "--epochs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli("--hidden", "12,x")
    assert "comma-separated list of int" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("learning_rate = 0.1\n", "unknown config key 'learning_rate'"),
    ('lr = "fast"\n', "c.toml: config key 'lr' must be float, got str 'fast'"),
    ("lr = -1\n", "c.toml: config key 'lr' must be a finite number >= 0, got -1.0"),
    ("epochs = 2.5\n", "config key 'epochs' must be int, got float 2.5"),
    ("augment = 1\n", "config key 'augment' must be bool, got int 1"),
    ('hidden = [64, "x"]\n', "config key 'hidden' must be list[int]"),
    ("lr = \n", "is not valid TOML"),
    ("[optim]\nlr = 0.1\n", "unexpected table [optim]"),
])
def test_bad_config_files_are_named(tmp_path, capsys, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert cli("--config", path, "--out", tmp_path / "x", "--quiet") == 2
    err = capsys.readouterr().err
    assert message in err, err
    with pytest.raises(ConfigError):
        config_of("--config", path)


def test_missing_or_corrupted_data_dir(tmp_path, capsys):
    assert cli("--dataset", "mnist", "--data-dir", tmp_path / "nowhere", "--out", tmp_path / "a", "--quiet") == 2
    assert "is not a directory" in capsys.readouterr().err
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x03"))
    assert cli("--dataset", "mnist", "--data-dir", partial, "--out", tmp_path / "b", "--quiet") == 2
    assert "incomplete mnist directory, missing train-labels" in capsys.readouterr().err
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (partial / name).write_bytes(b"\x1f\x8b garbage")
    assert cli("--dataset", "mnist", "--data-dir", partial, "--out", tmp_path / "c", "--quiet") == 2
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err


def test_never_overwrites_without_being_asked(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli(*FAST, "--no-plots", "--out", out) == 0
    before = (out / "metrics.json").read_text()
    assert cli(*FAST, "--no-plots", "--out", out, "--lr", "0.01") == 2
    assert "already holds a run's results" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == before
    (out / "notes.txt").write_text("mine")
    assert cli(*FAST, "--no-plots", "--out", out, "--lr", "0.01", "--overwrite") == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["lr"] == 0.01
    assert (out / "notes.txt").read_text() == "mine"  # files that are not results are kept


def test_checkpoint_from_another_architecture(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli(*FAST, "--no-plots", "--out", out) == 0
    assert cli("--resume", "--out", out, "--hidden", "64", "--epochs", "3", "--quiet") == 2
    err = capsys.readouterr().err
    assert "does not match the architecture 784-64-10 (it holds 784-32-10)" in err
    assert cli("--resume", "--out", out, "--optimizer", "sgd", "--epochs", "3", "--quiet") == 2
    assert "optimizer state does not fit optimizer 'sgd'" in capsys.readouterr().err
    assert cli("--resume", "--out", tmp_path / "none", "--quiet") == 2
    assert "checkpoint.safetensors does not exist" in capsys.readouterr().err
    # a checkpoint whose stored config disagrees with its own parameters
    ck = load_checkpoint(out / "model.safetensors")
    save_checkpoint(tmp_path / "bad.safetensors", ck.params, ck.optim, ck.epoch, {**ck.config, "hidden": [16]})
    assert evaluate.main([str(tmp_path / "bad.safetensors")]) == 2
    assert "does not match the architecture 784-16-10" in capsys.readouterr().err
    assert evaluate.main([str(out / "model.safetensors"), "--dataset", "svhn"]) == 2
    assert "unknown dataset 'svhn'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.safetensors", "r"]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_diverging_run_is_reported(tmp_path, capsys):
    assert cli(*FAST, "--no-plots", "--optimizer", "sgd", "--lr", "1e30", "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert "training diverged in epoch 1" in err and "try a smaller lr" in err


def test_compiled_and_eager_training_give_the_same_run(tmp_path):
    """The CLI's compiled step (the default) and --no-compile make identical runs, dropout and a schedule included."""
    args = ["--hidden", "16", "--epochs", "2", "--dropout", "0.2", "--schedule", "cosine", "--quiet", "--no-plots"]
    assert train.main([*args, "--out", str(tmp_path / "c")]) == 0
    assert train.main([*args, "--no-compile", "--out", str(tmp_path / "e")]) == 0
    c, e = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ce")
    for key in ("test_accuracy", "test_loss", "steps"):
        assert c[key] == e[key]
    assert [h["train_loss"] for h in c["epochs"]] == [h["train_loss"] for h in e["epochs"]]

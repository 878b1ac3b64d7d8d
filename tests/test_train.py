"""models.train / models.evaluate / models.presets: the CLI end to end, exact resume, config precedence, bad input."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import evaluate, presets, report, train
from models.checkpoint import load_checkpoint
from models.presets import DEFAULTS, ConfigError, resolve_config

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
    assert json.loads((out / "config.json").read_text()) == metrics["config"]
    assert presets.read_toml(out / "config.toml") == metrics["config"]  # the saved TOML repeats the run
    ckpt = load_checkpoint(out / "model.npz")
    assert ckpt.epoch == 3 and "layers.2.weight" in ckpt.params and ckpt.optim
    # evaluate the checkpoint, on the data it was trained on and on another dataset's shape-compatible split
    r = evaluate.evaluate_checkpoint(out / "model.npz")
    assert r["accuracy"] == pytest.approx(metrics["test_accuracy"]) and r["loss"] == pytest.approx(
        metrics["test_loss"], rel=1e-5)
    assert evaluate.main([str(out / "model.npz"), "--split", "train", "--out", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "evaluation.json").read_text())["n"] == 4000


def test_default_preset_is_fast_and_accurate(tmp_path):
    m = train.run(resolve_config(), tmp_path / "d", quiet=True, plots=False)
    assert m["test_accuracy"] > 0.92 and m["seconds"] < 20
    assert m["config"]["dataset"] == "digits" and len(m["epochs"]) == presets.PRESETS["default"]["epochs"]


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
    assert load_checkpoint(tmp_path / "split" / "checkpoint.npz").epoch == 2
    assert cli("--resume", "--out", tmp_path / "split", "--epochs", "4", "--quiet", "--no-plots") == 0
    a, b = load_checkpoint(tmp_path / "straight" / "model.npz"), load_checkpoint(tmp_path / "split" / "model.npz")
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
    r = evaluate.evaluate_checkpoint(tmp_path / "e" / "model.npz")  # the saved model is the best one
    assert r["accuracy"] == pytest.approx(m["test_accuracy"])


# ------------------------------------------------------------------ configuration
def test_precedence_defaults_preset_file_flags(tmp_path):
    assert config_of() == {**DEFAULTS, **presets.PRESETS["default"], "preset": "default"}
    c = config_of("--preset", "e")
    assert c["preset"] == "E" and c["batch_size"] == 16 and c["activations"] == ["relu", "tanh"]
    assert c["lr"] == 1e-3 and c["momentum"] == DEFAULTS["momentum"]
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "tiny"\nlr = 0.2\nbatch_size = 100\nhidden = [20, 10]\nactivations = "tanh"\n')
    c = config_of("--config", toml)
    assert (c["preset"], c["lr"], c["batch_size"], c["hidden"], c["activations"]) == ("A", 0.2, 100, [20, 10],
                                                                                      ["tanh"])
    assert c["init"] == "small_random"  # from preset A, not overridden
    c = config_of("--config", toml, "--lr", "0.3", "--hidden", "7", "--preset", "B", "--no-shuffle")
    assert (c["preset"], c["lr"], c["batch_size"], c["hidden"], c["shuffle"]) == ("B", 0.3, 100, [7], False)
    assert c["init"] == "uniform_fan_in"  # the flag's preset B wins over the file's preset
    for alias, name in (("tiny", "A"), ("b", "B"), ("BEST", "best"), ("configurable", "E"), ("Default", "default")):
        assert presets.canonical_preset(alias) == name


def test_learning_rate_schedules():
    c = {**DEFAULTS, "lr": 0.1}
    assert train.learning_rate({**c, "schedule": "constant"}, 50, 3, 100) == 0.1
    assert train.learning_rate({**c, "schedule": "step", "step_size": 2, "gamma": 0.5}, 0, 5, 100) == 0.1 * 0.25
    cos = {**c, "schedule": "cosine", "min_lr": 0.01}
    assert train.learning_rate(cos, 0, 0, 100) == pytest.approx(0.1)
    assert train.learning_rate(cos, 50, 0, 100) == pytest.approx(0.055)
    assert train.learning_rate(cos, 100, 0, 100) == pytest.approx(0.01)
    assert train.learning_rate({**c, "warmup_steps": 4}, 0, 0, 100) == pytest.approx(0.025)


def test_report_metrics():
    cm = report.confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 1, 1, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 2, 0]])
    np.testing.assert_array_equal(report.per_class_errors(cm), [1, 0, 3])
    assert report.most_confused(cm) == [(2, 1, 2), (0, 1, 1), (2, 0, 1)]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("args, message", [
    (["--dataset", "cifar"], "unknown dataset 'cifar'"),
    (["--preset", "Z"], "unknown preset 'Z'; valid names: default, A, B"),
    (["--optimizer", "lbfgs"], "'optimizer' must be one of sgd, adam, rmsprop"),
    (["--activations", "relu,gelu"], "'activations' must be one of relu, tanh, sigmoid"),
    (["--val-fraction", "0", "--patience", "3"], "needs a validation split"),
    (["--hidden", "8,8", "--activations", "relu,tanh,relu"], "one activation or one per hidden layer"),
])
def test_bad_values_are_named(tmp_path, capsys, args, message):
    assert cli(*args, "--out", tmp_path / "x", "--quiet") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_bad_flag_type_names_flag_and_type(capsys):
    with pytest.raises(SystemExit):
        cli("--epochs", "two")
    assert "--epochs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli("--hidden", "12,x")
    assert "comma-separated list of int" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("learning_rate = 0.1\n", "unknown config key 'learning_rate'"),
    ('lr = "fast"\n', "config key 'lr' must be float, got str 'fast'"),
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
    assert cli(*FAST, "--no-plots", "--out", out, "--lr", "0.01", "--overwrite") == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["lr"] == 0.01


def test_checkpoint_from_another_architecture(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli(*FAST, "--no-plots", "--out", out) == 0
    assert cli("--resume", "--out", out, "--hidden", "64", "--epochs", "3", "--quiet") == 2
    err = capsys.readouterr().err
    assert "does not match the architecture 784-64-10 (it holds 784-32-10)" in err
    assert cli("--resume", "--out", out, "--optimizer", "sgd", "--epochs", "3", "--quiet") == 2
    assert "optimizer state does not fit optimizer 'sgd'" in capsys.readouterr().err
    assert cli("--resume", "--out", tmp_path / "none", "--quiet") == 2
    assert "checkpoint.npz does not exist" in capsys.readouterr().err
    # a checkpoint whose stored config disagrees with its own parameters
    ck = load_checkpoint(out / "model.npz")
    from models.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "bad.npz", ck.params, ck.optim, ck.epoch, {**ck.config, "hidden": [16]})
    assert evaluate.main([str(tmp_path / "bad.npz")]) == 2
    assert "does not match the architecture 784-16-10" in capsys.readouterr().err
    assert evaluate.main([str(out / "model.npz"), "--dataset", "svhn"]) == 2
    assert "unknown dataset 'svhn'" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_diverging_run_is_reported(tmp_path, capsys):
    assert cli(*FAST, "--no-plots", "--optimizer", "sgd", "--lr", "1e30", "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert "training diverged in epoch 1" in err and "try a smaller lr" in err

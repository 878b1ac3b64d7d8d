"""The reference systems' presets (A–E): bias_init, the metric each reference reports, the seeds table."""

import json

import numpy as np
import pytest

import tinygrad_lite.nn as nn
from benchmarks import results
from models import registry
from models import run as train_run
from models.config import ConfigError, TrainConfig
from models.manual import ManualMLP
from models.mlp import MLP
from models.presets import PRESETS, REFERENCE, REFERENCE_METRIC, resolve_config


# ------------------------------------------------------------------ bias_init
@pytest.mark.parametrize("init", ["small_random", "uniform_fan_in", "scaled_normal"])
def test_uniform_biases_are_drawn_in_range_and_both_twins_agree(init):
    sizes = [20, 7, 5, 3]
    model = MLP(sizes, ["relu", "tanh"], init=init, seed=3, dtype=np.float64, bias_init="uniform")
    manual = ManualMLP(sizes, ["relu", "tanh"], init=init, seed=3, dtype=np.float64, bias_init="uniform")
    for name, p in model.named_parameters():  # the same draws in the same order: W_1, b_1, W_2, b_2, ...
        np.testing.assert_array_equal(p.data, manual.params[name], err_msg=name)
    biases = [layer.bias.data for layer in model.layers]
    assert all(b.dtype == np.float64 and np.all((b >= -0.5) & (b < 0.5)) and np.ptp(b) > 0 for b in biases)
    rng = np.random.default_rng(0)
    X, y = rng.random((6, sizes[0])), rng.integers(0, sizes[-1], 6)
    loss = nn.cross_entropy(model(X), y)
    loss.backward()
    manual_loss, grads = manual.loss_and_grads(X, y)
    np.testing.assert_allclose(loss.item(), manual_loss, rtol=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name], rtol=1e-9, atol=1e-13, err_msg=name)


def test_uniform_biases_follow_the_tutorial_draw_order():
    """b_1 = rand − 0.5 is drawn right after W_1 = rand − 0.5 from the same generator."""
    model = MLP([6, 4, 3], "relu", init="small_random", seed=5, dtype=np.float64, bias_init="uniform")
    rng = np.random.default_rng(5)
    W1, b1 = rng.random((6, 4)) - 0.5, rng.random(4) - 0.5
    W2, b2 = rng.random((4, 3)) - 0.5, rng.random(3) - 0.5
    for got, want in zip((p.data for _, p in model.named_parameters()), (W1, b1, W2, b2)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


def test_zero_biases_stay_the_default():
    default = MLP([8, 5, 3], "relu", init="small_random", seed=1)
    zeros = MLP([8, 5, 3], "relu", init="small_random", seed=1, bias_init="zeros")
    for (name, a), (_, b) in zip(default.named_parameters(), zeros.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    assert not any(layer.bias.data.any() for layer in default.layers)
    assert TrainConfig().bias_init == "zeros" and all("bias_init" not in p for p in PRESETS.values())


def test_bias_init_is_a_checked_config_key_saved_with_the_run():
    c = resolve_config("A", overrides={"bias_init": "uniform"})
    assert TrainConfig.from_dict(c.to_dict()) == c and 'bias_init = "uniform"' in c.to_toml()
    model = registry.MODELS["mlp"].build(c, [784, 10, 10], np.random.default_rng(0))
    assert all(layer.bias.data.any() for layer in model.layers)
    with pytest.raises(ConfigError, match=r"--bias-init must be one of zeros, uniform, got 'rand'"):
        resolve_config("A", overrides={"bias_init": "rand"}, flags=True)
    with pytest.raises(ConfigError, match="bias_init.*must be zeros for model = 'cnn'"):
        resolve_config("cnn", overrides={"bias_init": "uniform"})
    with pytest.raises(ValueError, match="unknown bias_init 'ones'"):
        MLP([4, 3, 2], bias_init="ones")
    with pytest.raises(ValueError, match="unknown bias_init 'ones'"):
        ManualMLP([4, 3, 2], bias_init="ones")


# ------------------------------------------------------------------ presets and the metric each reports
def test_reference_presets_keep_the_stated_facts():
    a, b, c, d, e = (resolve_config(p) for p in "ABCDE")
    for tiny in (a, c):
        assert (tiny.hidden, tiny.init, tiny.optimizer, tiny.lr, tiny.batch_size, tiny.iterations) == \
            ((10,), "small_random", "sgd", 0.1, 0, 750)
    # B: Glorot's Xavier uniform and 256-128 (unstated sizes), what reproduces its 97.2% (README)
    assert (b.init, b.optimizer, b.lr, b.batch_size, b.epochs, b.hidden) == ("xavier_uniform", "sgd", 0.13, 50, 2,
                                                                            (256, 128))
    assert (d.hidden, d.init, d.init_std, d.batch_size) == ((128,), "normal", 0.01, 0)
    assert (e.hidden, e.activations, e.optimizer, e.lr, e.batch_size, e.epochs, e.val_fraction, e.patience) == \
        ((128, 64), ("relu", "tanh"), "adam", 1e-3, 16, 15, 0.25, 5)
    assert set(REFERENCE_METRIC) == set("ABCDE") <= set(REFERENCE)
    assert {k: m for k, (m, _) in REFERENCE_METRIC.items()} == {
        "A": "train_accuracy_final", "B": "test_accuracy", "C": "train_accuracy_final", "D": "test_accuracy",
        "E": "test_accuracy"}


def test_metrics_hold_the_final_model_training_accuracy(tmp_path):
    m = train_run.run(dict(preset="default", hidden=[16], epochs=1, threads=1), tmp_path / "run", quiet=True,
                      plots=False, progress=False)
    assert 0.5 < m["train_accuracy_final"] <= 1 and m["train_loss_final"] > 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["train_accuracy_final"] == \
        m["train_accuracy_final"]


# ------------------------------------------------------------------ the seeds table
def test_mean_std_and_the_two_sigma_verdict():
    mean, std = results.mean_std([0.86, 0.87, 0.88])
    assert mean == pytest.approx(0.87) and std == pytest.approx(0.01)
    assert results.mean_std([0.5]) == (0.5, 0.0)
    assert results.verdict(0.86, 0.01, 0.87) == "✓"
    assert results.verdict(0.90, 0.01, 0.87) == "✓ (above)"
    assert results.verdict(0.84, 0.01, 0.87) == "✗ (-3.00 points, -3.0σ)"
    assert results.verdict(0.84, 0.0, None) == "—"


def test_seeds_table_reports_each_reference_metric(tmp_path):
    rows = [dict(preset="A", dataset="mnist", seed=s, test_accuracy=0.86 + s / 100, train_accuracy_final=0.85 + s / 100)
            for s in range(3)]
    rows += [dict(preset="B", dataset="mnist", seed=s, test_accuracy=acc) for s, acc in enumerate((0.95, 0.96))]
    text = results.seeds_table(rows)
    a_line, b_line = text.splitlines()[2:4]
    assert "| A | mnist | 3 (0,1,2) | train accuracy (final model) | 86.00% ± 1.00 | 87.00% ± 1.00 |" in a_line
    assert a_line.endswith("| ✓ |")
    assert "| B | mnist | 2 (0,1) | test accuracy | 95.50% ± 0.71 |" in b_line and "✗" in b_line
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps({**r, "test_loss": 0.3, "seconds": 1.0, "total_seconds": 2.0}) + "\n"
                            for r in rows))
    assert results.main(["--table", str(path)]) == 0

"""Tests of the benchmark suite: ``python -m benchmarks --quick`` runs end to end and writes valid JSON,
and the optimised NumPy baseline (``benchmarks.fast_numpy``) makes the same update as autograd.

No timing is asserted (machines differ); only that every section runs, prints its tables with
the BLAS tag, and that the JSON holds the same tables. The optional comparison frameworks are
left out so the tests take a few seconds whether or not the ``bench`` extra is installed.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ["step", "epoch", "overhead", "memory", "gradcheck", "scaling", "hvp", "cnn"]
SIZES = [784, 128, 64, 10]

# One BLAS thread: on a busy shared 2-core machine a 2-thread OpenBLAS can be 20x slower on these small
# matrices, and these tests only check that the suite runs. (OPENBLAS_CORETYPE and friends are left alone.)
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _repo_root_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """``benchmarks`` is a folder of the repository, not an installed package: import it from the root."""
    monkeypatch.syspath_prepend(str(ROOT))


def _run(tmp_path: Path, *args: str) -> tuple[str, dict]:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=ENV,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, json.loads(out.read_text())


def _finite_numbers(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite_numbers(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite_numbers(v) for v in value)
    return True


# ------------------------------------------------------------- end to end
def test_quick_run_end_to_end_writes_valid_json(tmp_path: Path) -> None:
    stdout, data = _run(tmp_path, "--quick", "--repeats", "1", "--frameworks", "tinygrad_lite")
    assert "BLAS" in stdout and "machine" in stdout
    assert data["quick"] is True
    assert list(data["sections"]) == SECTIONS
    meta = data["meta"]
    assert {"machine", "versions", "blas"} <= set(meta)
    assert meta["versions"]["numpy"]
    assert meta["malloc"].startswith("the C library's default")  # no allocator tuning unless asked
    for name, section in data["sections"].items():
        assert section["tables"], name
        for table in section["tables"]:
            assert table["title"] in stdout
            assert table["blas"].startswith("BLAS:")
            assert table["rows"], table["title"]
            assert all(len(row) == len(table["columns"]) for row in table["rows"]), table["title"]
            assert len(table["records"]) == len(table["rows"])
        assert _finite_numbers(section["tables"]), name

    # both hand-written baselines always run, and every ratio is taken to each of them
    step = data["sections"]["step"]["tables"][0]["records"]
    assert [r["framework"] for r in step] == ["manual", "numpy-opt", "tinygrad_lite"]
    assert step[0]["x manual b=64"] == 1.0 and step[1]["x numpy-opt b=64"] == 1.0
    assert {"x manual", "x numpy-opt"} <= set(data["sections"]["epoch"]["tables"][0]["columns"])
    # one BLAS thread is this process's default here, so the step section runs once
    assert data["step_threads"] == ["default"] and data["other_threads"] == "default"
    # the sanity check ran and agreed: same loss and parameters from the same weights and batch
    assert data["sections"]["step"]["raw"]["default"]["64"]["sanity"]["ok"] is True
    # the CNN section: ManualCNN is the baseline, the first step agrees, GFLOP/s from CNNSpec.flops
    cnn = data["sections"]["cnn"]["tables"][0]["records"]
    assert [r["framework"] for r in cnn] == ["ManualCNN", "tinygrad_lite"] and cnn[0]["x ManualCNN"] == 1.0
    assert all(r["GFLOP/s"] > 0 and r["x torch"] is None for r in cnn)
    assert data["sections"]["cnn"]["raw"]["default"]["sanity"]["ok"] is True
    # the graph is freed: only the 6 parameters stay alive between steps
    growth = data["sections"]["memory"]["tables"][1]["records"]
    assert [r["live Tensors"] for r in growth if r["framework"] == "tinygrad_lite"] == [6, 6]


def test_only_selects_sections_and_unknown_names_fail(tmp_path: Path) -> None:
    _, data = _run(tmp_path, "--quick", "--repeats", "1", "--frameworks", "numpy-opt", "--only", "step",
                   "--batches", "8,32")
    assert list(data["sections"]) == ["step"]
    assert list(data["sections"]["step"]["raw"]["default"]) == ["8", "32"]
    for args, message in ((["--only", "nope"], "unknown section"), (["--frameworks", "nope"], "unknown framework")):
        proc = subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, env=ENV)
        assert proc.returncode == 2 and message in proc.stderr


def test_sections_are_modules_over_one_set_of_adapters() -> None:
    from benchmarks import frameworks as fw
    from benchmarks.sections import DEFAULT
    from benchmarks.sections import SECTIONS as registry

    assert list(DEFAULT) == SECTIONS and set(registry) == {*SECTIONS, "profile"}
    for name, section in registry.items():
        assert section.__module__ == f"benchmarks.sections.{name}"
    assert set(fw.TRAINERS) == set(fw.ORDER)
    for path in (ROOT / "benchmarks").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 400, f"{path.relative_to(ROOT)}: split it"
        assert "sys.path" not in text and not re.search(r"\bissues? #?\d", text, re.I), path.relative_to(ROOT)


def test_step_section_runs_once_per_thread_setting() -> None:
    pytest.importorskip("threadpoolctl")
    from benchmarks.common import Config
    from benchmarks.sections.step import section_step

    cfg = Config(quick=True, repeats=1, frameworks=[], min_time=0.001, batches=[8], step_threads=[None, 1])
    result = section_step(cfg)
    assert list(result.raw) == ["default", "threads=1"]
    assert len(result.tables) == 2 and result.tables[1].title.startswith("1b.")
    assert result.tables[1].blas.endswith("1 thread")


def test_allocator_tuning_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    allocator = pytest.importorskip("models.allocator")
    from benchmarks.__main__ import allocator_setting, parse_args

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    assert parse_args([]).keep_freed_memory is False
    assert "default" in allocator_setting(False) and calls == []
    assert "every framework alike" in allocator_setting(True) and calls == [1]


def test_missing_framework_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import frameworks as fw
    from benchmarks.common import Config
    from benchmarks.sections.overhead import section_overhead

    monkeypatch.setattr(fw, "installed", lambda name: name in (*fw.BASELINES, "tinygrad_lite"))
    result = section_overhead(Config(quick=True, repeats=1, frameworks=["tinygrad_lite", "torch"], min_time=0.001))
    rows = result.tables[0].to_dict()["records"]
    torch_rows = [r for r in rows if r["framework"] == "torch"]
    assert torch_rows and all(r["us/call"] == "not installed" for r in torch_rows)


# --------------------------------------------------- the optimised baseline
Weights = dict[str, np.ndarray]


def _one_step(name: str, dtype: type, batch: int, lr: float = 0.1) -> tuple[float, Weights, Weights]:
    from benchmarks import frameworks as fw

    weights = fw.make_weights(SIZES, seed=0, dtype=dtype)
    rng = np.random.default_rng(batch)
    x, y = rng.random((batch, SIZES[0])).astype(dtype), rng.integers(0, SIZES[-1], batch)
    trainer = fw.make(name, weights, lr)
    loss = trainer.loss(x, y)
    return loss, trainer.params(), weights


def _max_diff(a: Weights, b: Weights) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def _ulps(weights: Weights, n: int) -> float:
    """n units in the last place of the largest parameter."""
    return n * float(np.finfo(next(iter(weights.values())).dtype).eps) * max(float(np.abs(w).max())
                                                                          for w in weights.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [64, 7])
def test_numpy_opt_makes_the_same_update_as_autograd(dtype: type, batch: int) -> None:
    fast_loss, fast, w0 = _one_step("numpy-opt", dtype, batch)
    ref_loss, ref, _ = _one_step("tinygrad_lite", dtype, batch)
    assert fast_loss == pytest.approx(ref_loss, rel=4 * float(np.finfo(dtype).eps))
    assert _max_diff(fast, w0) > 1e3 * _ulps(w0, 1)  # the step moved the parameters
    assert _max_diff(fast, ref) <= _ulps(ref, 4)  # and to the same place, to rounding
    assert all(v.dtype == np.dtype(dtype) for v in fast.values())


def test_the_update_check_can_fail() -> None:
    _, ref, _ = _one_step("tinygrad_lite", np.float32, 64, lr=0.1)
    _, off, _ = _one_step("numpy-opt", np.float32, 64, lr=0.1001)
    assert _max_diff(off, ref) > _ulps(ref, 4)


def test_numpy_opt_allocates_its_buffers_once_per_batch_size() -> None:
    from benchmarks import frameworks as fw
    from benchmarks.fast_numpy import FastMLP

    batch = 2048  # large enough that every buffer of a step outsizes NumPy's own casting scratch
    model = FastMLP(fw.make_weights(SIZES, seed=0), lr=0.1)
    rng = np.random.default_rng(0)
    x, y = rng.random((batch, SIZES[0]), dtype=np.float32), rng.integers(0, SIZES[-1], batch)
    model.step(x, y)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        model.step(x, y)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peak < batch * SIZES[-1] * 4  # less than the smallest (batch x 10) buffer a step writes
    model.step(x[:5], y[:5])  # a smaller last batch gets its own buffers
    assert model.batch_sizes == [5, batch]


def test_cnn_section_times_the_three_contenders_from_the_same_start() -> None:
    from benchmarks.common import Config
    from benchmarks.sections import cnn

    c, spec = cnn.preset()
    assert spec.describe().startswith("conv(1→32,3×3,pad 1)-BN") and (c.nesterov, c.weight_decay) == (True, 5e-4)
    cfg = Config(quick=True, repeats=1, frameworks=["torch"], min_time=0.001)
    result = cnn.section_cnn(cfg)
    rows = result.tables[0].to_dict()["records"]
    assert [r["framework"] for r in rows] == ["ManualCNN", "tinygrad_lite", "torch"]
    sanity = result.raw["default"]["sanity"]
    if rows[2]["ms/step"] == "not installed":
        assert list(sanity["losses"]) == ["ManualCNN", "tinygrad_lite"]
    else:  # the same first step in PyTorch: loss, parameters and BatchNorm's buffers
        assert rows[2]["x torch"] == 1.0 and list(sanity["losses"]) == ["ManualCNN", "tinygrad_lite", "torch"]
    assert sanity["ok"] and max(sanity["state_max_abs_diff"].values()) < 1e-4
    assert result.raw["default"]["flops_per_step"] == spec.flops(64)[1]


def test_cnn_sanity_check_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.sections import cnn
    from models.cnn import CNN

    c, spec = cnn.preset()
    weights = CNN(spec, seed=0).state_dict()
    batch = cnn.image_batches(1, 0)[0]
    text, check = cnn.sanity(weights, ["ManualCNN", "tinygrad_lite"], c, spec, batch)
    assert check["ok"] and "-> OK" in text
    real = cnn.TRAINERS["tinygrad_lite"]
    off = {**weights, "fc.1.bias": weights["fc.1.bias"] + 1e-3}  # one contender starts elsewhere
    monkeypatch.setitem(cnn.TRAINERS, "tinygrad_lite", lambda w, c_, s_: real(off, c_, s_))
    text, check = cnn.sanity(weights, ["ManualCNN", "tinygrad_lite"], c, spec, batch)
    assert not check["ok"] and "MISMATCH" in text


@pytest.mark.parametrize("name", ["tg-compiled", "jax-jit"])
def test_compiled_contenders_take_the_same_steps_as_numpy_opt(name: str) -> None:
    from benchmarks import frameworks as fw

    if not fw.installed(name):
        pytest.skip(f"{name} is not installed (optional benchmark dependency)")
    weights = fw.make_weights([12, 8, 4], seed=0)
    rng = np.random.default_rng(0)
    batches = [(rng.random((6, 12), dtype=np.float32), rng.integers(0, 4, 6)) for _ in range(5)]
    ours, ref = fw.make(name, weights, 0.1), fw.make("numpy-opt", weights, 0.1)
    for x, y in batches:  # two traces, then three replays for tg-compiled
        assert abs(ours.loss(x, y) - ref.loss(x, y)) < 1e-5
    for k, v in ref.params().items():
        np.testing.assert_allclose(ours.params()[k], v, atol=1e-5)


def test_step_flops_count_the_three_matmuls_per_layer() -> None:
    from benchmarks.sections.step import step_flops

    # forward x W and xᵀ g for both layers, g Wᵀ for the second only: 2·m·(2·(6·4 + 4·3) + 4·3)
    assert step_flops([6, 4, 3], 5) == 2 * 5 * (2 * (24 + 12) + 12)


def test_step_sanity_check_fails_on_a_wrong_update_but_allows_a_flipped_relu(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import frameworks as fw
    from benchmarks.common import sanity

    weights = fw.make_weights([12, 8, 4], seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.random((6, 12), dtype=np.float32), rng.integers(0, 4, 6)
    assert sanity(weights, ["manual", "tinygrad_lite"], 0.1, x, y)[1]["ok"]
    real = fw.TinygradLite.params

    def nudged(self, n: int, by: float) -> dict:
        p = real(self)
        p["layers.0.weight"].flat[:n] += by
        return p

    monkeypatch.setattr(fw.TinygradLite, "params", lambda self: nudged(self, 96, 1e-4))  # every element wrong
    text, check = sanity(weights, ["manual", "tinygrad_lite"], 0.1, x, y)
    assert not check["ok"] and "MISMATCH" in text
    big = fw.make_weights([12, 800, 40], seed=0)  # 42,440 elements: up to 424 may differ (flipped units)
    monkeypatch.setattr(fw.TinygradLite, "params", lambda self: nudged(self, 4, 3e-5))
    text, check = sanity(big, ["manual", "tinygrad_lite"], 0.1, x, y)
    assert check["ok"] and "a ReLU sign flipped" in text
    monkeypatch.setattr(fw.TinygradLite, "params", lambda self: nudged(self, 4, 2e-3))  # too large for rounding
    assert not sanity(big, ["manual", "tinygrad_lite"], 0.1, x, y)[1]["ok"]

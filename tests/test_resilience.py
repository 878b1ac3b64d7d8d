"""Resilience: a training run killed at random moments, long runs, huge graphs.

- ``python -m models.train`` is SIGKILLed repeatedly, between epochs and in the middle of
  writing a checkpoint: ``--out`` never appears half-written, the unfinished run's checkpoint
  is absent (before the first save) or whole, and ``--resume`` then finishes with exactly the
  parameters of an uninterrupted run.
- A run with ``--overwrite`` is SIGKILLed at random moments, up to and through its final
  rename: ``--out`` holds the old results or the new ones, complete, never a mix.
- 10,000 training steps keep traced memory and the number of live Tensors flat: each step's
  graph is released.
- Backward through 100,000-op diamond and fan-out graphs needs no recursion.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import pytest

import tinygrad_lite as tg
from models.checkpoint import load_checkpoint
from models.config import TrainConfig
from models.mlp import MLP
from tinygrad_lite import Tensor, nn, optim

ROOT = Path(__file__).resolve().parents[1]
# the default preset (Adam, cosine schedule, validation split), small and long enough to be killed mid-run
RUN = ["--hidden", "32", "--epochs", "40", "--batch-size", "128", "--seed", "7", "--threads", "1",
       "--quiet", "--no-plots"]
RESULTS = ("config.toml", "checkpoint.safetensors", "model.safetensors", "metrics.json", "report.txt")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _train(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "models.train", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> None:
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("training subprocess did not finish in 120 s")
    assert proc.returncode == 0, err


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _wait(condition, proc: subprocess.Popen, limit: float = 30.0) -> bool:
    """Poll ``condition()`` until true (or the process ends); whether it came true."""
    end = time.monotonic() + limit
    while proc.poll() is None and time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.0005)
    return False


def _writing(folder: Path) -> bool:
    try:
        return any(name.startswith(".checkpoint.safetensors.") for name in os.listdir(folder))
    except FileNotFoundError:
        return False


def _params(path: Path) -> dict[str, np.ndarray]:
    c = load_checkpoint(path)
    return {**c.params, **{f"optimizer.{k}": v for k, v in c.optim.items()}}


def _complete(out: Path) -> str:
    """The run_id of the complete results in ``out``: every file present and from the same run."""
    assert sorted(p.name for p in out.iterdir()) == sorted(RESULTS)
    metrics = json.loads((out / "metrics.json").read_text())
    ids = {metrics["run_id"], load_checkpoint(out / "model.safetensors").run_id,
           load_checkpoint(out / "checkpoint.safetensors").run_id}
    assert len(ids) == 1, ids
    assert TrainConfig.from_toml(out / "config.toml").to_dict() == metrics["config"]
    assert (out / "report.txt").read_text().startswith("test: accuracy")
    return metrics["run_id"]


def test_killed_runs_leave_a_whole_checkpoint_and_resume_exactly(tmp_path):
    straight = tmp_path / "straight"
    _finish(_train(*RUN, "--out", str(straight)))
    want = _params(straight / "checkpoint.safetensors")
    assert load_checkpoint(straight / "checkpoint.safetensors").epoch == 40

    out = tmp_path / "killed"
    staging = tmp_path / ".killed.partial"
    ckpt = staging / "checkpoint.safetensors"
    rng = np.random.default_rng(0)
    epochs_seen, kinds, t0 = [0], [], time.monotonic()
    for kill in range(6):
        resume = ckpt.exists()
        before = _stamp(ckpt)
        proc = _train(*(["--resume", "--quiet", "--no-plots"] if resume else RUN), "--out", str(out))
        if kill % 3 == 0:  # a random moment from the start: start-up, data loading or training
            time.sleep(rng.uniform(0.0, 0.8))
            kinds.append("any")
        elif kill % 3 == 1:  # between epochs: soon after one of its saves
            _wait(lambda: _stamp(ckpt) != before, proc)
            time.sleep(rng.uniform(0.0, 0.05))
            kinds.append("between")
        else:  # while a checkpoint is being written: its temporary file exists
            kinds.append("mid-checkpoint" if _wait(lambda: _writing(staging), proc) else "missed")
        _kill(proc)
        assert not out.exists(), "a killed run must not leave --out"
        if not ckpt.exists():
            assert epochs_seen[-1] == 0, "a checkpoint disappeared"
            continue
        c = load_checkpoint(ckpt)  # whole, or this raises
        assert 0 < c.epoch <= 40 and c.epoch >= epochs_seen[-1], (epochs_seen, c.epoch)
        assert all(np.isfinite(v).all() for v in c.params.values())
        assert c.config["seed"] == 7 and c.config["hidden"] == [32]
        epochs_seen.append(c.epoch)
        TrainConfig.from_toml(staging / "config.toml")  # the other files are whole too
    assert time.monotonic() - t0 < 60
    print("epochs after each kill:", epochs_seen, kinds)
    assert "mid-checkpoint" in kinds and any(0 < e < 40 for e in epochs_seen), (epochs_seen, kinds)

    _finish(_train(*(["--resume", "--quiet", "--no-plots"] if ckpt.exists() else RUN), "--out", str(out)))
    _complete(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed", "straight"]  # no staging, lock or temp
    got = _params(out / "checkpoint.safetensors")
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert a["test_loss"] == b["test_loss"] and a["steps"] == b["steps"]
    strip = lambda eps: [{k: v for k, v in e.items() if k != "seconds"} for e in eps]
    assert strip(a["epochs"]) == strip(b["epochs"])


def test_a_killed_overwrite_leaves_the_old_or_the_new_results_never_a_mix(tmp_path):
    out = tmp_path / "r"
    args = ["--hidden", "16", "--epochs", "3", "--threads", "1", "--quiet", "--no-plots", "--out", str(out)]
    t0 = time.monotonic()
    _finish(_train(*args))
    took = time.monotonic() - t0
    current = _complete(out)
    rng = np.random.default_rng(1)
    outcomes = []
    for attempt in range(6):
        proc = _train(*args, "--overwrite", "--seed", str(attempt + 1))
        time.sleep(rng.uniform(0.5, 1.1) * took)  # around the end of the run: its last files and the rename
        _kill(proc)
        now = _complete(out)  # complete, or this fails
        outcomes.append("old" if now == current else "new")
        current = now
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["r"]
    print("after each kill:", outcomes)
    _finish(_train(*args, "--overwrite", "--seed", "9"))
    assert _complete(out) != current and json.loads((out / "metrics.json").read_text())["config"]["seed"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


# ------------------------------------------------------------------ long runs
def _live_tensors() -> int:
    gc.collect()
    return sum(isinstance(o, Tensor) for o in gc.get_objects())


def test_ten_thousand_steps_keep_memory_flat():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 20)).astype(np.float32)
    y = rng.integers(0, 4, 256)
    model = MLP([20, 16, 4], seed=0)
    opt = optim.SGD(model.named_parameters(), lr=0.01, momentum=0.9)
    gc.collect()
    tracemalloc.start()
    try:
        for step in range(1, 10_001):
            i = (step * 8) % 256
            logits = model(x[i:i + 8])
            loss = nn.cross_entropy(logits, y[i:i + 8])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step == 1_000:
                old_loss, old_logits = weakref.ref(loss), weakref.ref(logits)
                tensors_1k, memory_1k = _live_tensors(), tracemalloc.get_traced_memory()[0]
            if step == 1_001:  # the previous step's graph is gone as soon as nothing refers to it
                assert old_loss() is None and old_logits() is None
        tensors_10k, memory_10k = _live_tensors(), tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    print("tensors", tensors_1k, tensors_10k, "memory", memory_1k, memory_10k)
    assert tensors_10k == tensors_1k
    assert memory_10k - memory_1k < 16 * 1024, (memory_1k, memory_10k)
    assert np.isfinite(loss.item())


def _frames() -> int:
    n, f = 0, sys._getframe()
    while f is not None:
        n, f = n + 1, f.f_back
    return n


def test_a_diamond_graph_of_100000_ops_needs_no_recursion():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(33_334):  # three ops a round; each y is used twice
        y = y * 0.5 + y * 0.5
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_frames() + 100)  # any recursion over the graph would fail at once
    try:
        y.backward()
    finally:
        sys.setrecursionlimit(limit)
    assert x.grad == 1.0 and y.item() == 1.0


def test_a_fan_out_of_100000_uses_of_one_tensor():
    x = Tensor(np.arange(3.0), requires_grad=True)
    parts = [x * float(i % 7) for i in range(100_000)]
    tg.stack(*parts).sum().backward()
    assert np.array_equal(x.grad, np.full(3, float(sum(i % 7 for i in range(100_000)))))

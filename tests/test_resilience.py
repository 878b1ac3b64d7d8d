"""Resilience (issue 7): a training run killed at random moments, long runs, huge graphs.

- ``python -m models.train`` is SIGKILLed repeatedly; after every kill ``checkpoint.npz`` is
  absent (before the first save) or a complete checkpoint, never a partial file; ``--resume``
  then finishes with exactly the parameters of an uninterrupted run.
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
from models.mlp import MLP
from tinygrad_lite import Tensor, nn, optim

ROOT = Path(__file__).resolve().parents[1]
# the default preset (Adam, cosine schedule, validation split), small and long enough to be killed mid-run
RUN = ["--hidden", "32", "--epochs", "100", "--batch-size", "128", "--seed", "7", "--threads", "1",
       "--quiet", "--no-plots"]
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


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _wait_for_new_save(path: Path, proc: subprocess.Popen, old: tuple[int, int] | None, limit: float = 30.0) -> None:
    """Block until ``path`` is replaced by a new save (or the process ends)."""
    end = time.monotonic() + limit
    while _stamp(path) == old and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.002)


def _params(path: Path) -> dict[str, np.ndarray]:
    c = load_checkpoint(path)
    return {**{f"param.{k}": v for k, v in c.params.items()}, **{f"optim.{k}": v for k, v in c.optim.items()}}


def test_killed_runs_leave_a_whole_checkpoint_and_resume_exactly(tmp_path):
    straight = tmp_path / "straight"
    _finish(_train(*RUN, "--out", str(straight)))
    want = _params(straight / "model.npz")
    total = load_checkpoint(straight / "model.npz").epoch
    assert total == 100

    out = tmp_path / "killed"
    ckpt = out / "checkpoint.npz"
    rng = np.random.default_rng(0)
    epochs_seen, mid_run_kills, t0 = [0], 0, time.monotonic()
    for kill in range(6):
        resume = ckpt.exists()
        before = _stamp(ckpt)
        proc = _train(*(["--resume"] if resume else [*RUN, "--overwrite"]), "--out", str(out))
        if kill % 2:  # a random moment from the start: start-up, data loading or training
            time.sleep(rng.uniform(0.0, 1.2))
        else:  # a random moment soon after the run's first save of its own: mid-training
            _wait_for_new_save(ckpt, proc, before)
            time.sleep(rng.uniform(0.0, 0.2))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        if not ckpt.exists():
            assert epochs_seen[-1] == 0, "a checkpoint disappeared"
            continue
        c = load_checkpoint(ckpt)  # whole, or this raises
        assert 0 <= c.epoch <= total and c.epoch >= epochs_seen[-1], (epochs_seen, c.epoch)
        assert all(np.isfinite(v).all() for v in c.params.values())
        assert c.config["seed"] == 7 and c.config["hidden"] == [32]
        epochs_seen.append(c.epoch)
        mid_run_kills += 0 < c.epoch < total
        for name in ("config.json", "metrics.json"):  # the other files are written atomically too
            if (out / name).exists():
                json.loads((out / name).read_text())
        if (out / "model.npz").exists():
            load_checkpoint(out / "model.npz")
    assert time.monotonic() - t0 < 60
    print("epochs after each kill:", epochs_seen, "tmp files:", sorted(p.name for p in out.iterdir()))
    assert mid_run_kills >= 1, f"no kill landed mid-run (epochs after each kill: {epochs_seen})"

    _finish(_train(*(["--resume"] if ckpt.exists() else [*RUN, "--overwrite"]), "--out", str(out)))
    got = _params(out / "model.npz")
    assert not list(out.glob(".*.tmp")), "a resumed run clears the temp files killed saves left"
    assert load_checkpoint(out / "model.npz").epoch == total
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert a["test_loss"] == b["test_loss"] and a["steps"] == b["steps"]


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

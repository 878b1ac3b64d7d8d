"""Section ``epoch``: one epoch on the bundled digits (and Fashion-MNIST in a full run): seconds, ratios, accuracy.

Every framework trains on the same shuffled batches from the same initial weights; rounds
rotate the order of the frameworks, and the ratios to each baseline are medians of per-round ratios.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import frameworks as fw
from ..common import MLP_SIZES, NOT_INSTALLED, Batch, Config, Result, dataset, ratio_columns
from ..table import Table
from ..timing import timed


def _epoch_batches(d: Any, batch: int, seed: int) -> list[Batch]:
    from tinygrad_lite.data import iterate_minibatches

    return [(np.ascontiguousarray(x), y.astype(np.int64))
            for x, y in iterate_minibatches(d.x_train, d.y_train, batch, rng=seed)]


def _timed_epoch(name: str, weights: fw.Weights, lr: float, batches: list[Batch]) -> tuple[float, fw.Trainer]:
    """Seconds of one epoch by a fresh trainer (after an untimed warm-up step by another one)."""
    fw.make(name, weights, lr).step(*batches[0])  # imports, first allocations: not timed
    trainer = fw.make(name, weights, lr)

    def run() -> None:
        step = trainer.step
        for x, y in batches:
            step(x, y)

    seconds, _ = timed(run)
    return seconds, trainer


def section_epoch(cfg: Config) -> Result:
    names = ["digits"] if cfg.quick else ["digits", "fashion-mnist"]
    batch_sizes = [64] if cfg.quick else [64, 256]
    weights = fw.make_weights(MLP_SIZES, cfg.seed)
    wanted, runnable = cfg.wanted(), cfg.runnable()
    table = Table("2. One epoch (every training sample once, same shuffled order, same initial weights): "
                  "seconds, ratio to each hand-written NumPy baseline, test accuracy",
                  ["dataset", "batch", "framework", "steps", "seconds", *ratio_columns(), "test acc %"],
                  blas=cfg.blas_tag)
    raw: dict[str, Any] = {}
    for name in names:
        d = dataset(name)
        if d is None:
            table.add(name, None, "-", None, "dataset not installed", *[None] * len(fw.BASELINES), None)
            table.notes.append(f"{name}: not found (Debian: apt-get install -y dataset-fashion-mnist)")
            continue
        repeats = 1 if cfg.quick else (cfg.repeats if len(d.x_train) <= 10_000 else max(1, min(cfg.repeats, 5)))
        for batch in batch_sizes:
            batches = _epoch_batches(d, batch, cfg.seed)
            seconds: dict[str, list[float]] = {n: [] for n in runnable}
            acc: dict[str, float] = {}
            for r in range(repeats):
                shift = r % len(runnable)
                for n in runnable[shift:] + runnable[:shift]:
                    s, trainer = _timed_epoch(n, weights, cfg.lr, batches)
                    seconds[n].append(s)
                    acc[n] = float((trainer.predict(d.x_test) == d.y_test).mean() * 100)
            raw[f"{name}/{batch}"] = {"seconds": seconds, "test_accuracy": acc, "steps": len(batches)}
            for n in wanted:
                if n not in seconds:
                    table.add(name, batch, n, None, NOT_INSTALLED, *[None] * len(fw.BASELINES), None)
                    continue
                ratios = [float(np.median([a / b for a, b in zip(seconds[n], seconds[base])]))
                          for base in fw.BASELINES]
                table.add(name, batch, n, len(batches), float(np.median(seconds[n])), *ratios, acc[n])
    table.notes.append("reference ratios to manual (2-core x86, batch 64 / 256): PyTorch 1.57 / 1.35, MyGrad "
                       "1.52 / 1.20, HIPS autograd 3.5 / 2.3, jitted JAX 1.0 / 0.84")
    return Result([table], raw)

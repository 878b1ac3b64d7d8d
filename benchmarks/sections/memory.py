"""Section ``memory``: tracemalloc peak of an epoch; memory and live Tensors after N vs 10N steps.

Runs the hand-written baselines and tinygrad_lite (the frameworks whose allocations go
through NumPy, which tracemalloc sees).
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from .. import frameworks as fw
from ..common import MLP_SIZES, Config, Result, cycling_step, dataset, fixed_batches, ratio_columns
from ..table import Table

NAMES = (*fw.BASELINES, "tinygrad_lite")


def _count_tensors() -> int:
    from tinygrad_lite import Tensor

    return sum(1 for o in gc.get_objects() if isinstance(o, Tensor))


def section_memory(cfg: Config) -> Result:
    from tinygrad_lite.data import iterate_minibatches

    names = [n for n in NAMES if n in cfg.runnable()]
    weights = fw.make_weights(MLP_SIZES, cfg.seed)
    d_name = "digits" if cfg.quick or dataset("fashion-mnist") is None else "fashion-mnist"
    d = dataset(d_name)
    batch = 64
    peak = Table(f"4a. Memory: tracemalloc peak above the start during one epoch of {d_name} at batch {batch} "
                 "(model, optimizer and batches included)", ["framework", "steps", "peak MiB", *ratio_columns(),
                                                            "end MiB"], blas=cfg.blas_tag)
    raw: dict[str, Any] = {"epoch": {}, "growth": {}}
    for n in names:
        trainer = fw.make(n, weights, cfg.lr)
        gc.collect()
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        steps = 0
        for x, y in iterate_minibatches(d.x_train, d.y_train, batch, rng=cfg.seed):
            trainer.step(x, y)
            steps += 1
        current, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        raw["epoch"][n] = {"peak_bytes": top - start, "end_bytes": current - start, "steps": steps}
    for n in names:
        r = raw["epoch"][n]
        ratios = [r["peak_bytes"] / raw["epoch"][b]["peak_bytes"] for b in fw.BASELINES]
        peak.add(n, r["steps"], r["peak_bytes"] / 2**20, *ratios, r["end_bytes"] / 2**20)
    peak.notes.append("numpy-opt allocates its buffers on its first step of each batch size and keeps them")

    total = 200 if cfg.quick else 1000
    marks = (total // 10, total)
    growth = Table(f"4b. Memory does not grow: tracemalloc current memory and live Tensors (beyond those alive before "
                   f"the model was built) after {marks[0]} and {marks[1]} training steps (batch {batch}, no forced gc)",
                   ["framework", "step", "traced MiB", "live Tensors", "gc-collected objects"], blas=cfg.blas_tag)
    batches = fixed_batches(batch, 8, cfg.seed)
    for n in names:
        gc.collect()
        before = _count_tensors() if n == "tinygrad_lite" else 0  # Tensors alive before this model existed
        step = cycling_step(fw.make(n, weights, cfg.lr), batches)
        step()
        gc.collect()
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        rows = []
        for i in range(1, total + 1):
            step()
            if i in marks:
                current = tracemalloc.get_traced_memory()[0] - start
                live = _count_tensors() - before if n == "tinygrad_lite" else None
                rows.append([n, i, current / 2**20, live])
        tracemalloc.stop()
        collected = gc.collect()  # > 0 would mean the steps leave reference cycles behind
        rows[-1].append(collected)
        rows[0].append(None)
        for row in rows:
            growth.add(*row)
        raw["growth"][n] = {"rows": rows, "gc_collected_at_end": collected}
        delta = (rows[1][2] - rows[0][2]) * 1024
        growth.notes.append(f"{n}: {delta:+.1f} KiB from step {marks[0]} to {marks[1]}")
    return Result([peak, growth], raw)

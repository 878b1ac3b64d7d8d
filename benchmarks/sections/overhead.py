"""Section ``overhead``: what a framework costs beyond the NumPy work it does.

- per-op overhead: forward + backward of ``(a + b).sum()`` on 2x2 and ``relu(x @ W + b).sum()``
  at 64x784x128 in every autograd framework (``Trainer.tiny`` / ``Trainer.dense``), against
  the same work written in NumPy;
- the fixed cost of a training step: the 3-layer step on tiny arrays (16-16-16-4 at batch 4),
  where NumPy's arithmetic is negligible, against both hand-written baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import frameworks as fw
from ..common import NOT_INSTALLED, Config, Result, baseline_ratios, cycling_step, ratio_columns
from ..table import Table
from ..timing import ratio as rr_ratio
from ..timing import round_robin

BOOKKEEPING_SIZES = [16, 16, 16, 4]
BOOKKEEPING_BATCH = 4


def _numpy_tiny(a0: np.ndarray, b0: np.ndarray) -> Callable[[], object]:
    ga, gb = np.zeros_like(a0), np.zeros_like(b0)

    def run() -> object:
        s = (a0 + b0).sum()  # forward
        g = np.ones_like(a0)  # d sum / d (a + b), broadcast back
        ga.__iadd__(g)  # accumulate into both inputs' gradients
        gb.__iadd__(g)
        return s

    return run


def _numpy_dense(x0: np.ndarray, W0: np.ndarray, b0: np.ndarray) -> Callable[[], object]:
    gW, gb = np.zeros_like(W0), np.zeros_like(b0)

    def run() -> object:
        Z = x0 @ W0 + b0  # forward
        A = np.maximum(Z, 0)
        s = A.sum()
        dZ = np.ones_like(A) * (Z > 0)  # backward: d sum / dA = 1, relu mask
        gW.__iadd__(x0.T @ dZ)
        gb.__iadd__(dZ.sum(axis=0))
        return s

    return run


def _cases(kind: str, runnable: list[str], dtype: Any = np.float32) -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(0)
    if kind == "tiny":
        arrays = tuple(rng.standard_normal((2, 2)).astype(dtype) for _ in range(2))
        cases = {"numpy": _numpy_tiny(*arrays)}
    else:
        arrays = (rng.random((64, 784), dtype=np.float32).astype(dtype),
                  (rng.standard_normal((784, 128)) * 0.05).astype(dtype),
                  (rng.standard_normal(128) * 0.05).astype(dtype))
        cases = {"numpy": _numpy_dense(*arrays)}
    for n in runnable:
        if n in fw.AUTOGRAD:
            adapter = fw.TRAINERS[n]
            cases[n] = adapter.tiny(*arrays) if kind == "tiny" else adapter.dense(*arrays)
    return cases


def section_overhead(cfg: Config) -> Result:
    wanted, runnable = [n for n in cfg.wanted() if n in fw.AUTOGRAD], cfg.runnable()
    table = Table(f"3. Per-op overhead: forward + backward, us per call (median of {cfg.repeats}), "
                  "overhead = framework - NumPy work", ["case", "framework", "us/call", "overhead us", "x numpy"],
                  blas=cfg.blas_tag)
    raw: dict[str, Any] = {}
    for kind, label in {"tiny": "(a + b).sum(), 2x2", "medium": "relu(x @ W + b).sum(), 64x784x128"}.items():
        samples = round_robin(_cases(kind, runnable), cfg.repeats, min(cfg.min_time, 0.05))
        raw[kind] = {n: s.values for n, s in samples.items()}
        base = samples["numpy"].median
        table.add(label, "numpy (the work itself)", base * 1e6, 0.0, 1.0)
        for n in wanted:
            if n not in samples:
                table.add(label, n, NOT_INSTALLED, None, None)
                continue
            s = samples[n].median
            table.add(label, n, s * 1e6, (s - base) * 1e6, rr_ratio(samples, n, "numpy"))
    table.notes.append("target for the tiny case: tinygrad_lite <= 2x the NumPy work (reference machine: PyTorch "
                       "19 us, MyGrad 23, HIPS autograd 62, jitted JAX 7, NumPy work 3); autograd returns gradients, "
                       "the others accumulate them into .grad")
    floor = _bookkeeping(cfg)
    raw["bookkeeping"] = floor.raw
    return Result([table, *floor.tables], raw)


def bookkeeping_data() -> tuple[np.ndarray, np.ndarray]:
    """The batch of the fixed-cost step (float32 inputs, int64 labels)."""
    rng = np.random.default_rng(0)
    x = rng.random((BOOKKEEPING_BATCH, BOOKKEEPING_SIZES[0]), dtype=np.float32)
    return x, np.arange(BOOKKEEPING_BATCH, dtype=np.int64) % BOOKKEEPING_SIZES[-1]


def _bookkeeping(cfg: Config) -> Result:
    """The fixed cost of a training step: the same 3-layer step on tiny arrays, where NumPy's work is negligible."""
    wanted, runnable = cfg.wanted(), cfg.runnable()
    weights = fw.make_weights(BOOKKEEPING_SIZES, cfg.seed)
    x, y = bookkeeping_data()
    cases = {n: cycling_step(fw.make(n, weights, cfg.lr), [(x, y)]) for n in runnable}
    samples = round_robin(cases, cfg.repeats, min(cfg.min_time, 0.05))
    extra = [f"extra us vs {b}" for b in fw.BASELINES]
    table = Table(f"3b. Fixed cost of a training step: {'-'.join(map(str, BOOKKEEPING_SIZES))} ReLU MLP at batch "
                  f"{BOOKKEEPING_BATCH} (same ops as the real step, negligible arithmetic), us/step",
                  ["framework", "us/step", *ratio_columns(), *extra], blas=cfg.blas_tag)
    for n in wanted:
        if n not in samples:
            table.add(n, NOT_INSTALLED, *[None] * (2 * len(fw.BASELINES)))
            continue
        m = samples[n].median
        table.add(n, m * 1e6, *baseline_ratios(samples, n), *[(m - samples[b].median) * 1e6 for b in fw.BASELINES])
    table.notes.append("this is what engine bookkeeping (op wrappers, graph, backward loop, optimizer loop) costs "
                       "per step; it is independent of the batch and layer widths")
    return Result([table], {n: s.values for n, s in samples.items()})

"""Section ``scaling``: step time vs depth (2-16 hidden layers) and vs batch size.

tinygrad_lite against both hand-written baselines; the overhead is tinygrad_lite's time
minus numpy-opt's, the cost of autograd over the best NumPy we can write by hand.
"""

from __future__ import annotations

from typing import Any

from .. import frameworks as fw
from ..common import MLP_SIZES, Config, Result, baseline_ratios, cycling_step, fixed_batches, ratio_columns
from ..table import Table
from ..timing import Samples, round_robin

NAMES = (*fw.BASELINES, "tinygrad_lite")
FAST = "numpy-opt"


def _times(sizes: list[int], batch: int, cfg: Config) -> dict[str, Samples]:
    weights = fw.make_weights(sizes, cfg.seed)
    data = fixed_batches(batch, 4, cfg.seed + batch)
    return round_robin({n: cycling_step(fw.make(n, weights, cfg.lr), data) for n in NAMES}, cfg.repeats,
                       cfg.min_time)


def _cells(s: dict[str, Samples]) -> list[Any]:
    return [s[n].median * 1e3 for n in NAMES] + baseline_ratios(s, "tinygrad_lite")


def section_scaling(cfg: Config) -> Result:
    depths = [2, 4, 8] if cfg.quick else [2, 4, 8, 16]
    batches = cfg.batches or ([16, 256] if cfg.quick else [16, 32, 64, 128, 256, 512, 1024])
    ms = [f"{n} ms" for n in NAMES]
    ratios = ratio_columns("tinygrad_lite ")
    depth = Table("6a. Scaling with depth: hidden layers of width 128, batch 64, ms/step; overhead = tinygrad_lite - "
                  f"{FAST}", ["hidden layers", *ms, *ratios, "overhead us", "overhead us/layer"], blas=cfg.blas_tag)
    raw: dict[str, Any] = {"depth": {}, "batch": {}}
    for dpt in depths:
        s = _times([784] + [128] * dpt + [10], 64, cfg)
        over = (s["tinygrad_lite"].median - s[FAST].median) * 1e6
        depth.add(dpt, *_cells(s), over, over / (dpt + 1))
        raw["depth"][dpt] = {n: s[n].values for n in NAMES}
    bt = Table(f"6b. Scaling with batch size: {'-'.join(map(str, MLP_SIZES))} MLP, ms/step; overhead = tinygrad_lite "
               f"- {FAST}", ["batch", *ms, *ratios, "overhead us", "tinygrad_lite us/sample"], blas=cfg.blas_tag)
    for b in batches:
        s = _times(MLP_SIZES, b, cfg)
        bt.add(b, *_cells(s), (s["tinygrad_lite"].median - s[FAST].median) * 1e6, s["tinygrad_lite"].median / b * 1e6)
        raw["batch"][b] = {n: s[n].values for n in NAMES}
    depth.notes.append("a constant overhead per layer means bookkeeping grows with the graph, not with the data")
    bt.notes.append("an overhead that does not grow with the batch means the extra cost is per op, not per element")
    return Result([depth, bt], raw)

"""Section ``step``: one training step of the 784-128-64-10 ReLU MLP in every framework, several batch sizes.

Same float32 weights and batches for all; ms per step and the ratio to each hand-written
baseline (``manual``, the readable one, and ``numpy-opt``, the optimised one), medians of
per-round ratios. Runs once per BLAS thread setting of ``Config.step_threads`` (by default the
machine's default thread count and then one thread), one table each.
"""

from __future__ import annotations

from typing import Any

from .. import env
from .. import frameworks as fw
from ..common import (
    MLP_SIZES,
    NOT_INSTALLED,
    Config,
    Result,
    baseline_ratios,
    cycling_step,
    fixed_batches,
    ratio_columns,
    sanity,
)
from ..table import Table
from ..timing import round_robin


def threads_text(n: int) -> str:
    """``1 BLAS thread``, ``4 BLAS threads``."""
    return f"{n} BLAS thread{'' if n == 1 else 's'}"


def threads_label(n: int | None) -> str:
    """The key of one thread setting in the JSON: ``default`` or ``threads=N``."""
    return "default" if n is None else f"threads={n}"


def section_step(cfg: Config) -> Result:
    batches = cfg.batches or ([64, 256] if cfg.quick else [16, 64, 256, 1024])
    weights = fw.make_weights(MLP_SIZES, cfg.seed)
    tables, raw = [], {}
    for i, threads in enumerate(cfg.step_threads):
        with env.limit_threads(threads):
            number = "1" if i == 0 else f"1{chr(ord('a') + i)}"
            setting = "the BLAS's default threads" if threads is None else f"limited to {threads_text(threads)}"
            table, runs = _one_setting(cfg, batches, weights, number, setting, env.blas_tag())
        tables.append(table)
        raw[threads_label(threads)] = runs
    return Result(tables, raw)


def _one_setting(cfg: Config, batches: list[int], weights: fw.Weights, number: str, setting: str,
                 tag: str) -> tuple[Table, dict[str, Any]]:
    wanted, runnable = cfg.wanted(), cfg.runnable()
    cols = ["framework"]
    for b in batches:
        cols += [f"ms b={b}", *ratio_columns(suffix=f" b={b}")]
    table = Table(f"{number}. Training step, {'-'.join(map(str, MLP_SIZES))} ReLU MLP, float32, SGD lr {cfg.lr}, "
                  f"{setting}: ms/step (median of {cfg.repeats}) and ratio to each hand-written NumPy baseline "
                  "(median of per-round ratios)", cols, blas=tag)
    cells: dict[str, list[Any]] = {n: [] for n in wanted}
    raw: dict[str, Any] = {}
    for b in batches:
        data = fixed_batches(b, 4, cfg.seed + b)
        note, check = sanity(weights, runnable, cfg.lr, *data[0])
        if b == batches[0] or not check["ok"]:
            table.notes.append(f"b={b}: {note}")
        cases = {n: cycling_step(fw.make(n, weights, cfg.lr), data) for n in runnable}
        samples = round_robin(cases, cfg.repeats, cfg.min_time)
        raw[str(b)] = {"sanity": check, "seconds_per_step": {n: s.values for n, s in samples.items()},
                       "steps_per_sample": {n: s.number for n, s in samples.items()}}
        for n in wanted:
            if n in samples:
                cells[n] += [samples[n].median * 1e3, *baseline_ratios(samples, n)]
            else:
                cells[n] += [NOT_INSTALLED] + [None] * len(fw.BASELINES)
    for n in wanted:
        table.add(n, *cells[n])
    table.notes.append("manual: models/manual.py, written to be read; numpy-opt: benchmarks/fast_numpy.py, every "
                       "buffer preallocated, the same step written to be fast")
    table.notes.append("targets for tinygrad_lite's eager step: <= 1.10x numpy-opt at batch 64, <= 1.05x at 256")
    return table, raw

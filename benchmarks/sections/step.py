"""Section ``step``: one training step of the 784-128-64-10 ReLU MLP in every framework, several batch sizes.

Same float32 weights and batches for all; ms per step and the ratio to each hand-written
baseline (``manual``, the readable one, and ``numpy-opt``, the optimised one), medians of
per-round ratios, and the GFLOP/s achieved (`step_flops`) next to this machine's sgemm peak
(`sgemm_peak`, with the same threads). Runs once per BLAS thread setting of
``Config.step_threads`` (by default the machine's default thread count and then one thread),
one table each.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

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


def step_flops(sizes: list[int] | tuple[int, ...], batch: int) -> float:
    """Floating-point operations of one training step: the matmuls (2 per multiply-add) of the forward
    (x W), the weight gradients (xᵀ g) and the input gradients (g Wᵀ, every layer but the first)."""
    products = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2.0 * batch * (2 * sum(products) + sum(products[1:]))


def sgemm_peak(n: int = 1024, seconds: float = 0.3) -> float:
    """GFLOP/s of the best of repeated float32 n×n×n matmuls with the current BLAS threads."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


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
        cols += [f"ms b={b}", *ratio_columns(suffix=f" b={b}"), f"GFLOP/s b={b}"]
    peak = sgemm_peak()
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
        flops = step_flops(MLP_SIZES, b)
        raw[str(b)].update(gflops_per_step=flops / 1e9, sgemm_peak_gflops=peak)
        for n in wanted:
            if n in samples:
                cells[n] += [samples[n].median * 1e3, *baseline_ratios(samples, n), flops / samples[n].median / 1e9]
            else:
                cells[n] += [NOT_INSTALLED] + [None] * (len(fw.BASELINES) + 1)
    for n in wanted:
        table.add(n, *cells[n])
    table.notes.append("manual: models/manual.py, written to be read; numpy-opt: benchmarks/fast_numpy.py, every "
                       "buffer preallocated, the same step written to be fast")
    table.notes.append("targets: tinygrad_lite's eager step <= 1.10x numpy-opt at batch 64, <= 1.05x at 256; "
                       "tg-compiled <= 0.95x at 64, <= 1.00x at 256, and faster than jax-jit and torch")
    table.notes.append(f"GFLOP/s: the step's matmuls ({step_flops(MLP_SIZES, 1) / 1e6:.2f} MFLOP per example) per "
                       f"second; this machine's sgemm peak with these threads: {peak:.0f} GFLOP/s (1024^3 matmul)")
    if "jax-jit" in samples_names(cells):
        from ..jit import JAX_THREADS
        threads = JAX_THREADS[0] if JAX_THREADS else None
        used = threads_text(threads) if threads else "its default threads"
        table.notes.append(f"jax-jit: XLA's threads were set when JAX was imported ({used}); they do not follow "
                           f"later thread settings in this run")
    return table, raw


def samples_names(cells: dict[str, list[Any]]) -> list[str]:
    """The frameworks that ran (a row with a time)."""
    return [n for n, c in cells.items() if c and c[0] != NOT_INSTALLED]

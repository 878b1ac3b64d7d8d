"""Section ``profile`` (only when asked for): where tinygrad_lite's training step spends its time.

A phase breakdown (zero_grad, forward, loss, backward, optimizer) against ``manual``, and
cProfile of tinygrad_lite's step at each batch size and of the tiny fixed-cost step.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import frameworks as fw
from ..common import MLP_SIZES, Config, Result, cycling_step, fixed_batches
from ..table import Table
from .overhead import BOOKKEEPING_BATCH, BOOKKEEPING_SIZES, bookkeeping_data

PHASES = ("zero_grad", "forward", "loss", "backward", "optimizer")
ROOT = str(Path(__file__).resolve().parents[2]) + "/"


def _phases_tinygrad(trainer: fw.TinygradLite, x: np.ndarray, y: np.ndarray, clock: dict[str, float]) -> None:
    t0 = time.perf_counter()
    trainer.opt.zero_grad()
    t1 = time.perf_counter()
    logits = trainer.model(x)
    t2 = time.perf_counter()
    loss = trainer.cross_entropy(logits, y)
    t3 = time.perf_counter()
    loss.backward()
    t4 = time.perf_counter()
    trainer.opt.step()
    t5 = time.perf_counter()
    for k, v in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
        clock[k] = clock.get(k, 0.0) + v


def _phases_manual(trainer: fw.Manual, x: np.ndarray, y: np.ndarray, clock: dict[str, float]) -> None:
    model = trainer.model
    t1 = time.perf_counter()
    model.forward(x)
    t2 = time.perf_counter()
    model.loss(y)
    t3 = time.perf_counter()
    grads = model.backward(y)
    t4 = time.perf_counter()
    trainer.opt.step(grads)
    t5 = time.perf_counter()
    for k, v in zip(PHASES, (0.0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
        clock[k] = clock.get(k, 0.0) + v


def _cprofile(step: Callable[[], object], n: int) -> str:
    for _ in range(10):
        step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        step()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
    lines = buf.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.replace(ROOT, "") for line in lines[start:]).rstrip()


def _phase_table(cfg: Config, b: int, steps: int, weights: fw.Weights) -> tuple[Table, dict]:
    data = fixed_batches(b, 4, cfg.seed + b)
    phase = Table(f"P. Phases of one training step at batch {b}, us/step (median of {cfg.repeats} rounds of "
                  f"{steps} steps, interleaved)", ["phase", "manual us", "tinygrad_lite us", "extra us"],
                  blas=cfg.blas_tag)
    names = ("manual", "tinygrad_lite")
    rounds: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    trainers = {n: fw.make(n, weights, cfg.lr) for n in names}
    runners = {"manual": _phases_manual, "tinygrad_lite": _phases_tinygrad}
    for r in range(cfg.repeats):
        for n in (names if r % 2 == 0 else names[::-1]):
            clock: dict[str, float] = {}
            for i in range(steps):
                runners[n](trainers[n], *data[i % len(data)], clock)  # type: ignore[operator]
            rounds[n].append({k: v / steps for k, v in clock.items()})
    total = dict.fromkeys(names, 0.0)
    for k in PHASES:
        med = {n: float(np.median([c[k] for c in rounds[n]])) for n in names}
        for n in names:
            total[n] += med[n]
        phase.add(k, med["manual"] * 1e6, med["tinygrad_lite"] * 1e6, (med["tinygrad_lite"] - med["manual"]) * 1e6)
    phase.add("total", total["manual"] * 1e6, total["tinygrad_lite"] * 1e6,
              (total["tinygrad_lite"] - total["manual"]) * 1e6)
    phase.notes.append("manual's 'loss' computes the cross-entropy value only; its backward recomputes the "
                       "softmax (ManualMLP.loss / .backward)")
    return phase, rounds


def section_profile(cfg: Config) -> Result:
    batches = cfg.batches or [64, 256]
    weights = fw.make_weights(MLP_SIZES, cfg.seed)
    steps = max(20, cfg.profile_steps // (3 if cfg.quick else 1))
    tables, texts, raw = [], [], {}
    for b in batches:
        phase, raw[str(b)] = _phase_table(cfg, b, steps, weights)
        tables.append(phase)
        step = cycling_step(fw.make("tinygrad_lite", weights, cfg.lr), fixed_batches(b, 4, cfg.seed + b))
        texts.append(f"cProfile of {steps} tinygrad_lite training steps at batch {b} (divide times by {steps} "
                     f"for one step; sorted by tottime)\n" + _cprofile(step, steps))
    trainer = fw.make("tinygrad_lite", fw.make_weights(BOOKKEEPING_SIZES, cfg.seed), cfg.lr)
    n = steps * 10
    step = cycling_step(trainer, [bookkeeping_data()])
    texts.append(f"cProfile of {n} tinygrad_lite training steps of the {'-'.join(map(str, BOOKKEEPING_SIZES))} MLP "
                 f"at batch {BOOKKEEPING_BATCH} (pure bookkeeping: divide by {n} for one step)\n" + _cprofile(step, n))
    return Result(tables, raw, "\n\n".join(texts))

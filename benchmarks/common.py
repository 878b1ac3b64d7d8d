"""What every benchmark section shares: the options, the result record, the data and the sanity check."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import frameworks as fw
from .table import Table
from .timing import Samples
from .timing import ratio as rr_ratio

MLP_SIZES = [784, 128, 64, 10]
NOT_INSTALLED = "not installed"
Batch = tuple[np.ndarray, np.ndarray]


@dataclass
class Config:
    """Options shared by all sections (set from the command line)."""

    quick: bool = False
    repeats: int = 11
    frameworks: list[str] = field(default_factory=lambda: list(fw.ORDER))
    min_time: float = 0.03
    lr: float = 0.1
    seed: int = 0
    profile_steps: int = 300
    blas_tag: str = ""
    batches: list[int] | None = None  # overrides the batch sizes of step, scaling (batch) and profile
    #: BLAS thread limits the step section runs under in turn; None: as the process runs (the default)
    step_threads: list[int | None] = field(default_factory=lambda: [None])

    def wanted(self) -> list[str]:
        """Requested frameworks in table order (the baselines always, every ratio is taken to them)."""
        return [n for n in fw.ORDER if n in fw.BASELINES or n in self.frameworks]

    def runnable(self) -> list[str]:
        return [n for n in self.wanted() if fw.installed(n)]


@dataclass
class Result:
    tables: list[Table]
    raw: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # extra printed output (profiles)


def ratio_columns(prefix: str = "", suffix: str = "") -> list[str]:
    """Column names of the ratios to each baseline: ``x manual``, ``x numpy-opt`` (with a prefix/suffix)."""
    return [f"{prefix}x {b}{suffix}" for b in fw.BASELINES]


def baseline_ratios(samples: dict[str, Samples], name: str) -> list[float]:
    """Median per-round ratio of ``name`` to each baseline (the baselines ran in the same rounds)."""
    return [rr_ratio(samples, name, b) for b in fw.BASELINES]


@functools.cache
def dataset(name: str) -> Any:
    """A dataset by name, never downloading (None when it is not installed)."""
    from tinygrad_lite.data import DatasetNotFoundError, load_dataset

    try:
        return load_dataset(name, download=False)
    except DatasetNotFoundError:
        return None


def fixed_batches(batch: int, count: int, seed: int = 0) -> list[Batch]:
    """``count`` distinct batches of the bundled digits (float32 images, int64 labels)."""
    d = dataset("digits")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        idx = rng.choice(len(d.x_train), size=batch, replace=batch > len(d.x_train))
        out.append((np.ascontiguousarray(d.x_train[idx]), d.y_train[idx].astype(np.int64)))
    return out


def cycling_step(trainer: fw.Trainer, batches: list[Batch]) -> Callable[[], object]:
    """A zero-argument callable doing one training step on the next batch of the cycle."""
    state = {"i": 0}
    n = len(batches)

    def run() -> object:
        i = state["i"]
        state["i"] = i + 1 if i + 1 < n else 0
        x, y = batches[i]
        return trainer.step(x, y)

    return run


def sanity(weights: fw.Weights, names: list[str], lr: float, x: np.ndarray, y: np.ndarray) -> tuple[str, dict]:
    """First-step loss of every framework from the same weights, and parameter agreement after it."""
    losses, diffs, far = {}, {}, {}
    ref_params = None
    for name in names:
        t = fw.make(name, weights, lr)
        losses[name] = t.loss(x, y)
        params = t.params()
        if ref_params is None:
            ref_params = params
        delta = [np.abs(params[k] - ref_params[k]) for k in ref_params]
        diffs[name] = max(float(d.max()) for d in delta)
        far[name] = sum(int((d > 1e-5).sum()) for d in delta)
    ref = losses[names[0]]
    worst = max(abs(v - ref) for v in losses.values())
    # Another summation order can flip the sign of a pre-activation within rounding of 0 for one sample, and
    # with it that unit's share of the gradient (a column of W, up to one entry per nonzero input): allow such
    # elements in at most 1% of the parameters, each under 1e-3.
    size = sum(a.size for a in ref_params.values())
    ok = worst <= 1e-5 * max(1.0, abs(ref)) and max(diffs.values()) <= 1e-3 and max(far.values()) <= size // 100
    flips = {n: c for n, c in far.items() if c}
    text = ("sanity (first step, same weights and batch): loss " +
            ", ".join(f"{n} {v:.7f}" for n, v in losses.items()) +
            f"; max |Δloss| {worst:.1e}, max |Δparam| after the step {max(diffs.values()):.1e}" +
            (f" (elements over 1e-5 of {size}: " + ", ".join(f"{n} {c}" for n, c in flips.items()) +
             "; a ReLU sign flipped by another summation order)" if flips else "") +
            f" -> {'OK' if ok else 'MISMATCH'}")
    return text, {"losses": losses, "param_max_abs_diff": diffs, "params_over_1e-5": far, "ok": ok}

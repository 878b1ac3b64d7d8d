"""Timing on a shared, noisy machine: calibrated loops, round-robin repetitions, medians.

Each case is a zero-argument callable. ``round_robin`` first calibrates, for every case, how
many calls make one sample last at least ``min_time`` seconds, then takes ``repeats`` samples
of every case in turn (rotating the order each round), so machine noise falls on all cases
alike. Ratios are taken sample by sample within a round and then their median is reported.
The garbage collector stays on: collecting a framework's garbage is part of its cost.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Case = Callable[[], object]


@dataclass
class Samples:
    """Seconds per call of one case: one value per round."""

    number: int  # calls per sample
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        """Half the interquartile range relative to the median (0 with fewer than 4 samples)."""
        if len(self.values) < 4:
            return 0.0
        q = statistics.quantiles(self.values, n=4)
        return (q[2] - q[0]) / 2 / self.median


def _time(fn: Case, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def calibrate(fn: Case, min_time: float, warmup: int = 1) -> int:
    """Calls per sample so that one sample takes at least ``min_time`` seconds (after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    number = 1
    while True:
        elapsed = _time(fn, number) * number
        if elapsed >= min_time:
            return number
        # aim a little above min_time; grow at most 10x per try
        guess = int(number * min_time * 1.2 / max(elapsed, 1e-9)) + 1
        number = min(max(guess, number + 1), number * 10)


def round_robin(cases: dict[str, Case], repeats: int, min_time: float = 0.02,
                numbers: dict[str, int] | None = None) -> dict[str, Samples]:
    """``repeats`` samples of each case, seconds per call, interleaved case by case.

    ``numbers`` fixes the calls per sample for some cases (others are calibrated).
    """
    numbers = dict(numbers or {})
    samples = {}
    for name, fn in cases.items():
        n = numbers.get(name) or calibrate(fn, min_time)
        samples[name] = Samples(n)
    names = list(cases)
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].values.append(_time(cases[name], samples[name].number))
    return samples


def ratio(samples: dict[str, Samples], name: str, reference: str) -> float:
    """Median over rounds of samples[name] / samples[reference] (rounds are interleaved, so noise cancels)."""
    a, b = samples[name].values, samples[reference].values
    return statistics.median(x / y for x, y in zip(a, b))


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result

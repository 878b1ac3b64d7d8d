"""The benchmark sections of issue 6; each returns its tables (and raw samples for the JSON).

``step``       training step of the 784-128-64-10 ReLU MLP, every framework, several batch sizes
``epoch``      one epoch on the bundled digits (and Fashion-MNIST in a full run): seconds, accuracy
``overhead``   per-op overhead: (a + b).sum() on 2x2, relu(x @ W + b).sum() at 64x784x128, vs NumPy
``memory``     tracemalloc peak of an epoch; memory and live Tensors after N vs 10N steps
``gradcheck``  cost of full and fast ``gradcheck`` on the MLP
``scaling``    step time vs depth (2-16 hidden layers) and vs batch size, tinygrad_lite vs manual
``hvp``        cost of a Hessian-vector product relative to one gradient (benchmarks/higher_order.py)
``profile``    (only when asked for) cProfile and a phase breakdown of tinygrad_lite's training step
"""

from __future__ import annotations

import cProfile
import functools
import gc
import io
import pstats
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import env
from . import frameworks as fw
from .higher_order import section_hvp
from .table import Table
from .timing import Samples, round_robin, timed
from .timing import ratio as rr_ratio

MLP_SIZES = [784, 128, 64, 10]
NOT_INSTALLED = "not installed"


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

    def wanted(self) -> list[str]:
        """Requested frameworks in table order (manual always, as the reference)."""
        return [n for n in fw.ORDER if n == fw.REFERENCE or n in self.frameworks]

    def runnable(self) -> list[str]:
        return [n for n in self.wanted() if fw.installed(n)]


@dataclass
class Result:
    tables: list[Table]
    raw: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # extra printed output (profiles)


# ------------------------------------------------------------------- data
@functools.cache
def dataset(name: str) -> Any:
    """A dataset by name, never downloading (None when it is not installed)."""
    from tinygrad_lite.data import DatasetNotFoundError, load_dataset

    try:
        return load_dataset(name, download=False)
    except DatasetNotFoundError:
        return None


def fixed_batches(batch: int, count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` distinct batches of the bundled digits (float32 images, int64 labels)."""
    d = dataset("digits")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        idx = rng.choice(len(d.x_train), size=batch, replace=batch > len(d.x_train))
        out.append((np.ascontiguousarray(d.x_train[idx]), d.y_train[idx].astype(np.int64)))
    return out


def cycling_step(trainer: fw.Trainer, batches: list[tuple[np.ndarray, np.ndarray]]) -> Callable[[], object]:
    """A zero-argument callable doing one training step on the next batch of the cycle."""
    state = {"i": 0}
    n = len(batches)

    def run() -> object:
        i = state["i"]
        state["i"] = i + 1 if i + 1 < n else 0
        x, y = batches[i]
        return trainer.step(x, y)

    return run


def _sanity(weights: fw.Weights, names: list[str], lr: float, x: np.ndarray, y: np.ndarray) -> tuple[str, dict]:
    """First-step loss of every framework from the same weights, and parameter agreement after it."""
    losses, diffs = {}, {}
    ref_params = None
    for name in names:
        t = fw.make(name, weights, lr)
        losses[name] = t.loss(x, y)
        params = t.params()
        if ref_params is None:
            ref_params = params
        diffs[name] = max(float(np.abs(params[k] - ref_params[k]).max()) for k in ref_params)
    ref = losses[names[0]]
    worst = max(abs(v - ref) for v in losses.values())
    ok = worst <= 1e-5 * max(1.0, abs(ref)) and max(diffs.values()) <= 1e-5
    text = ("sanity (first step, same weights and batch): loss " +
            ", ".join(f"{n} {v:.7f}" for n, v in losses.items()) +
            f"; max |Δloss| {worst:.1e}, max |Δparam| after the step {max(diffs.values()):.1e} -> "
            f"{'OK' if ok else 'MISMATCH'}")
    return text, {"losses": losses, "param_max_abs_diff": diffs, "ok": ok}


# ------------------------------------------------------------ 1. step
def section_step(cfg: Config) -> Result:
    batches = cfg.batches or ([64, 256] if cfg.quick else [16, 64, 256, 1024])
    weights = fw.make_weights(MLP_SIZES, cfg.seed)
    wanted, runnable = cfg.wanted(), cfg.runnable()
    cols = ["framework"]
    for b in batches:
        cols += [f"ms b={b}", f"x manual b={b}"]
    table = Table(f"1. Training step, {'-'.join(map(str, MLP_SIZES))} ReLU MLP, float32, SGD lr {cfg.lr}: "
                  f"ms/step (median of {cfg.repeats}) and ratio to manual (median of per-round ratios)",
                  cols, blas=cfg.blas_tag)
    cells: dict[str, list[Any]] = {n: [] for n in wanted}
    raw: dict[str, Any] = {}
    for b in batches:
        data = fixed_batches(b, 4, cfg.seed + b)
        note, sanity = _sanity(weights, runnable, cfg.lr, *data[0])
        if b == batches[0] or not sanity["ok"]:
            table.notes.append(f"b={b}: {note}")
        cases = {n: cycling_step(fw.make(n, weights, cfg.lr), data) for n in runnable}
        samples = round_robin(cases, cfg.repeats, cfg.min_time)
        raw[str(b)] = {"sanity": sanity, "seconds_per_step": {n: s.values for n, s in samples.items()},
                       "steps_per_sample": {n: s.number for n, s in samples.items()}}
        for n in wanted:
            if n in samples:
                cells[n] += [samples[n].median * 1e3, rr_ratio(samples, n, fw.REFERENCE)]
            else:
                cells[n] += [NOT_INSTALLED, None]
    for n in wanted:
        table.add(n, *cells[n])
    table.notes.append("targets for tinygrad_lite: <= 1.10x manual at batch 64, <= 1.05x at batch 256")
    return Result([table], raw)


# ----------------------------------------------------------- 2. epoch
def _epoch_batches(d: Any, batch: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from tinygrad_lite.data import iterate_minibatches

    return [(np.ascontiguousarray(x), y.astype(np.int64))
            for x, y in iterate_minibatches(d.x_train, d.y_train, batch, rng=seed)]


def section_epoch(cfg: Config) -> Result:
    names = ["digits"] if cfg.quick else ["digits", "fashion-mnist"]
    batch_sizes = [64] if cfg.quick else [64, 256]
    weights = fw.make_weights(MLP_SIZES, cfg.seed)
    wanted, runnable = cfg.wanted(), cfg.runnable()
    table = Table("2. One epoch (every training sample once, same shuffled order, same initial weights): "
                  "seconds, ratio to manual, test accuracy", ["dataset", "batch", "framework", "steps", "seconds",
                                                             "x manual", "test acc %"], blas=cfg.blas_tag)
    raw: dict[str, Any] = {}
    for name in names:
        d = dataset(name)
        if d is None:
            table.add(name, None, "-", None, "dataset not installed", None, None)
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
                    trainer = fw.make(n, weights, cfg.lr)
                    trainer.step(*batches[0])  # warm-up (imports, first allocations), not timed
                    trainer = fw.make(n, weights, cfg.lr)  # and a fresh one from the same weights

                    def run(trainer: fw.Trainer = trainer) -> None:
                        step = trainer.step
                        for x, y in batches:
                            step(x, y)

                    s, _ = timed(run)
                    seconds[n].append(s)
                    acc[n] = float((trainer.predict(d.x_test) == d.y_test).mean() * 100)
            raw[f"{name}/{batch}"] = {"seconds": seconds, "test_accuracy": acc, "steps": len(batches)}
            for n in wanted:
                if n not in seconds:
                    table.add(name, batch, n, None, NOT_INSTALLED, None, None)
                    continue
                ratios = [a / b for a, b in zip(seconds[n], seconds[fw.REFERENCE])]
                table.add(name, batch, n, len(batches), float(np.median(seconds[n])), float(np.median(ratios)),
                          acc[n])
    table.notes.append("reference ratios (2-core x86, batch 64 / 256): PyTorch 1.57 / 1.35, MyGrad 1.52 / 1.20, "
                       "HIPS autograd 3.5 / 2.3, jitted JAX 1.0 / 0.84; tinygrad_lite target <= 1.10 / 1.05")
    return Result([table], raw)


# -------------------------------------------------------- 3. overhead
def _overhead_cases(kind: str, runnable: list[str], dtype: Any = np.float32) -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(0)
    cases: dict[str, Callable[[], object]] = {}
    if kind == "tiny":
        a0, b0 = rng.standard_normal((2, 2)).astype(dtype), rng.standard_normal((2, 2)).astype(dtype)
        ga, gb = np.zeros_like(a0), np.zeros_like(b0)

        def numpy_tiny() -> object:
            s = (a0 + b0).sum()  # forward
            g = np.ones_like(a0)  # d sum / d (a + b), broadcast back
            ga.__iadd__(g)  # accumulate into both inputs' gradients
            gb.__iadd__(g)
            return s

        cases["numpy"] = numpy_tiny
    else:
        x0 = rng.random((64, 784), dtype=np.float32).astype(dtype)
        W0 = (rng.standard_normal((784, 128)) * 0.05).astype(dtype)
        b0 = (rng.standard_normal(128) * 0.05).astype(dtype)
        gW, gb_ = np.zeros_like(W0), np.zeros_like(b0)

        def numpy_medium() -> object:
            Z = x0 @ W0 + b0  # forward
            A = np.maximum(Z, 0)
            s = A.sum()
            dZ = np.ones_like(A) * (Z > 0)  # backward: d sum / dA = 1, relu mask
            gW.__iadd__(x0.T @ dZ)
            gb_.__iadd__(dZ.sum(axis=0))
            return s

        cases["numpy"] = numpy_medium

    arrays = ((a0, b0) if kind == "tiny" else (x0, W0, b0))
    for n in runnable:
        if n == "manual":
            continue
        cases[n] = _overhead_case(n, kind, arrays)
    return cases


def _overhead_case(name: str, kind: str, arrays: tuple[np.ndarray, ...]) -> Callable[[], object]:
    if name == "tinygrad_lite":
        import tinygrad_lite as tg

        if kind == "tiny":
            a, b = (tg.Tensor(v.copy(), requires_grad=True) for v in arrays)
            return lambda: (a + b).sum().backward()
        x = tg.Tensor(arrays[0])
        W, b = (tg.Tensor(v.copy(), requires_grad=True) for v in arrays[1:])
        return lambda: (x @ W + b).relu().sum().backward()
    if name == "torch":
        torch = fw.import_torch()
        if kind == "tiny":
            a, b = (torch.tensor(v, requires_grad=True) for v in arrays)
            return lambda: (a + b).sum().backward()
        x = torch.from_numpy(arrays[0])
        W, b = (torch.tensor(v, requires_grad=True) for v in arrays[1:])
        return lambda: torch.relu(x @ W + b).sum().backward()
    if name == "mygrad":
        import mygrad as mg
        from mygrad.nnet.activations import relu

        if kind == "tiny":
            a, b = (mg.tensor(v.copy()) for v in arrays)
            return lambda: (a + b).sum().backward()
        x = arrays[0]
        W, b = (mg.tensor(v.copy()) for v in arrays[1:])
        return lambda: relu(mg.matmul(x, W) + b).sum().backward()
    if name == "autograd":
        import autograd.numpy as anp
        from autograd import grad

        if kind == "tiny":
            g = grad(lambda ab: anp.sum(ab[0] + ab[1]))
            pair = tuple(v.copy() for v in arrays)
            return lambda: g(pair)
        x = arrays[0]
        g = grad(lambda Wb: anp.sum(anp.maximum(anp.dot(x, Wb[0]) + Wb[1], 0.0)))
        pair = tuple(v.copy() for v in arrays[1:])
        return lambda: g(pair)
    raise ValueError(name)


def section_overhead(cfg: Config) -> Result:
    wanted, runnable = cfg.wanted(), cfg.runnable()
    table = Table(f"3. Per-op overhead: forward + backward, us per call (median of {cfg.repeats}), "
                  "overhead = framework - NumPy work", ["case", "framework", "us/call", "overhead us", "x numpy"],
                  blas=cfg.blas_tag)
    raw: dict[str, Any] = {}
    cases_by_kind = {"tiny": "(a + b).sum(), 2x2", "medium": "relu(x @ W + b).sum(), 64x784x128"}
    for kind, label in cases_by_kind.items():
        cases = _overhead_cases(kind, runnable)
        samples = round_robin(cases, cfg.repeats, min(cfg.min_time, 0.05))
        raw[kind] = {n: s.values for n, s in samples.items()}
        base = samples["numpy"].median
        table.add(label, "numpy (the work itself)", base * 1e6, 0.0, 1.0)
        for n in wanted:
            if n == "manual":
                continue
            if n not in samples:
                table.add(label, n, NOT_INSTALLED, None, None)
                continue
            s = samples[n].median
            table.add(label, n, s * 1e6, (s - base) * 1e6, rr_ratio(samples, n, "numpy"))
    table.notes.append("target for the tiny case: tinygrad_lite <= 10 us (PyTorch 19, MyGrad 23, HIPS autograd 62, "
                       "jitted JAX 7, NumPy work 3 on the reference machine); autograd returns gradients, the others "
                       "accumulate them into .grad")
    floor = _bookkeeping(cfg)
    raw["bookkeeping"] = floor.raw
    return Result([table, *floor.tables], raw)


BOOKKEEPING_SIZES = [16, 16, 16, 4]
BOOKKEEPING_BATCH = 4


def _bookkeeping_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((BOOKKEEPING_BATCH, BOOKKEEPING_SIZES[0]), dtype=np.float32)
    return x, np.arange(BOOKKEEPING_BATCH, dtype=np.int64) % BOOKKEEPING_SIZES[-1]


def _bookkeeping(cfg: Config) -> Result:
    """The fixed cost of a training step: the same 3-layer step on tiny arrays, where NumPy's work is negligible."""
    wanted, runnable = cfg.wanted(), cfg.runnable()
    weights = fw.make_weights(BOOKKEEPING_SIZES, cfg.seed)
    x, y = _bookkeeping_data()
    cases = {n: cycling_step(fw.make(n, weights, cfg.lr), [(x, y)]) for n in runnable}
    samples = round_robin(cases, cfg.repeats, min(cfg.min_time, 0.05))
    table = Table(f"3b. Fixed cost of a training step: {'-'.join(map(str, BOOKKEEPING_SIZES))} ReLU MLP at batch "
                  f"{BOOKKEEPING_BATCH} (same ops as the real step, negligible arithmetic), us/step",
                  ["framework", "us/step", "extra us vs manual", "x manual"], blas=cfg.blas_tag)
    base = samples[fw.REFERENCE].median
    for n in wanted:
        if n not in samples:
            table.add(n, NOT_INSTALLED, None, None)
            continue
        m = samples[n].median
        table.add(n, m * 1e6, (m - base) * 1e6, rr_ratio(samples, n, fw.REFERENCE))
    table.notes.append("this is what engine bookkeeping (op wrappers, graph, backward loop, optimizer loop) costs "
                       "per step; it is independent of the batch and layer widths")
    return Result([table], {n: s.values for n, s in samples.items()})


# ----------------------------------------------------------- 4. memory
def _count_tensors() -> int:
    from tinygrad_lite import Tensor

    return sum(1 for o in gc.get_objects() if type(o) is Tensor)


def section_memory(cfg: Config) -> Result:
    from tinygrad_lite.data import iterate_minibatches

    names = [n for n in ("manual", "tinygrad_lite") if n in cfg.runnable()]
    weights = fw.make_weights(MLP_SIZES, cfg.seed)
    d_name = "digits" if cfg.quick or dataset("fashion-mnist") is None else "fashion-mnist"
    d = dataset(d_name)
    batch = 64
    peak = Table(f"4a. Memory: tracemalloc peak above the start during one epoch of {d_name} at batch {batch} "
                 "(model, optimizer and batches included)", ["framework", "steps", "peak MiB", "x manual",
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
        ref = raw["epoch"].get("manual", r)["peak_bytes"]
        peak.add(n, r["steps"], r["peak_bytes"] / 2**20, r["peak_bytes"] / ref, r["end_bytes"] / 2**20)

    total = 200 if cfg.quick else 1000
    marks = (total // 10, total)
    growth = Table(f"4b. Memory does not grow: tracemalloc current memory and live Tensors (beyond those alive before "
                   f"the model was built) after {marks[0]} and {marks[1]} training steps (batch {batch}, no forced gc)",
                   ["framework", "step", "traced MiB", "live Tensors", "gc-collected objects"], blas=cfg.blas_tag)
    batches = fixed_batches(batch, 8, cfg.seed)
    for n in names:
        gc.collect()
        before = _count_tensors() if n == "tinygrad_lite" else 0  # Tensors alive before this model existed
        trainer = fw.make(n, weights, cfg.lr)
        step = cycling_step(trainer, batches)
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


# -------------------------------------------------------- 5. gradcheck
def section_gradcheck(cfg: Config) -> Result:
    import tinygrad_lite.nn as nn
    from models.mlp import MLP
    from tinygrad_lite import gradcheck

    d = dataset("digits")
    batch = 4
    x, y = d.x_train[:batch].astype(np.float64), d.y_train[:batch]
    plan = [("fast", MLP_SIZES)]
    plan.append(("full", [784, 4, 10] if cfg.quick else MLP_SIZES))
    table = Table(f"5. Gradient check cost: gradcheck of the mean cross-entropy wrt every parameter, float64, "
                  f"batch {batch}",
                  ["mode", "MLP", "params", "fn calls", "seconds", "ms per call", "x one step"], blas=cfg.blas_tag)
    raw: dict[str, Any] = {}
    for mode, sizes in plan:
        model = MLP(sizes, "relu", seed=cfg.seed, dtype=np.float64)
        layers = model.layers
        inputs = [p.data.copy() for p in model.parameters()]
        calls = [0]

        def fn(*params: Any, layers: Any = layers, model: Any = model, calls: list[int] = calls) -> Any:
            calls[0] += 1
            for l, layer in enumerate(layers):
                layer.weight, layer.bias = params[2 * l], params[2 * l + 1]
            return nn.cross_entropy(model(x), y)

        # cost of one plain forward + backward of the same function, for scale
        def one_step(fn: Any = fn, inputs: list[np.ndarray] = inputs) -> None:
            import tinygrad_lite as tg

            fn(*[tg.Tensor(a, requires_grad=True) for a in inputs]).backward()

        step_s = round_robin({"step": one_step}, 3, 0.02)["step"].median
        reps = 1 if mode == "full" else max(1, min(cfg.repeats, 5))
        times = []
        for _ in range(reps):
            calls[0] = 0
            s, ok = timed(lambda fn=fn, inputs=inputs, fast=(mode == "fast"): gradcheck(fn, inputs, fast=fast, seed=0))
            times.append(s)
        sec = float(np.median(times))
        n_params = sum(a.size for a in inputs)
        raw[f"{mode}/{'-'.join(map(str, sizes))}"] = {"seconds": times, "calls": calls[0], "params": n_params}
        table.add(mode, "-".join(map(str, sizes)), n_params, calls[0], sec, sec / calls[0] * 1e3, sec / step_s)
    if cfg.quick:
        table.notes.append("quick run: full check on a smaller MLP (the full 784-128-64-10 check takes ~2x109k "
                           "forward passes)")
    return Result([table], raw)


# ---------------------------------------------------------- 6. scaling
def _pair_times(sizes: list[int], batch: int, cfg: Config) -> tuple[Samples, Samples, float]:
    weights = fw.make_weights(sizes, cfg.seed)
    data = fixed_batches(batch, 4, cfg.seed + batch)
    cases = {n: cycling_step(fw.make(n, weights, cfg.lr), data) for n in ("manual", "tinygrad_lite")}
    s = round_robin(cases, cfg.repeats, cfg.min_time)
    return s["manual"], s["tinygrad_lite"], rr_ratio(s, "tinygrad_lite", "manual")


def section_scaling(cfg: Config) -> Result:
    depths = [2, 4, 8] if cfg.quick else [2, 4, 8, 16]
    batches = cfg.batches or ([16, 256] if cfg.quick else [16, 32, 64, 128, 256, 512, 1024])
    depth = Table("6a. Scaling with depth: hidden layers of width 128, batch 64, ms/step; overhead = tinygrad_lite - "
                  "manual", ["hidden layers", "manual ms", "tinygrad_lite ms", "x manual", "overhead us",
                             "overhead us/layer"], blas=cfg.blas_tag)
    raw: dict[str, Any] = {"depth": {}, "batch": {}}
    for dpt in depths:
        m, t, r = _pair_times([784] + [128] * dpt + [10], 64, cfg)
        over = (t.median - m.median) * 1e6
        depth.add(dpt, m.median * 1e3, t.median * 1e3, r, over, over / (dpt + 1))
        raw["depth"][dpt] = {"manual": m.values, "tinygrad_lite": t.values}
    bt = Table(f"6b. Scaling with batch size: {'-'.join(map(str, MLP_SIZES))} MLP, ms/step",
               ["batch", "manual ms", "tinygrad_lite ms", "x manual", "overhead us", "tinygrad_lite us/sample"],
               blas=cfg.blas_tag)
    for b in batches:
        m, t, r = _pair_times(MLP_SIZES, b, cfg)
        bt.add(b, m.median * 1e3, t.median * 1e3, r, (t.median - m.median) * 1e6, t.median / b * 1e6)
        raw["batch"][b] = {"manual": m.values, "tinygrad_lite": t.values}
    depth.notes.append("a constant overhead per layer means bookkeeping grows with the graph, not with the data")
    bt.notes.append("an overhead that does not grow with the batch means the extra cost is per op, not per element")
    return Result([depth, bt], raw)


# ---------------------------------------------------------- profile
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
    for k, v in (("zero_grad", t1 - t0), ("forward", t2 - t1), ("loss", t3 - t2), ("backward", t4 - t3),
                 ("optimizer", t5 - t4)):
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
    for k, v in (("zero_grad", 0.0), ("forward", t2 - t1), ("loss", t3 - t2), ("backward", t4 - t3),
                 ("optimizer", t5 - t4)):
        clock[k] = clock.get(k, 0.0) + v


def section_profile(cfg: Config) -> Result:
    batches = cfg.batches or [64, 256]
    weights = fw.make_weights(MLP_SIZES, cfg.seed)
    steps = max(20, cfg.profile_steps // (3 if cfg.quick else 1))
    tables, texts, raw = [], [], {}
    for b in batches:
        data = fixed_batches(b, 4, cfg.seed + b)
        phase = Table(f"P. Phases of one training step at batch {b}, us/step (median of {cfg.repeats} rounds of "
                      f"{steps} steps, interleaved)", ["phase", "manual us", "tinygrad_lite us", "extra us"],
                      blas=cfg.blas_tag)
        rounds: dict[str, list[dict[str, float]]] = {"manual": [], "tinygrad_lite": []}
        trainers = {"manual": fw.make("manual", weights, cfg.lr), "tinygrad_lite": fw.make("tinygrad_lite", weights,
                                                                                         cfg.lr)}
        runners = {"manual": _phases_manual, "tinygrad_lite": _phases_tinygrad}
        for r in range(cfg.repeats):
            for n in (["manual", "tinygrad_lite"] if r % 2 == 0 else ["tinygrad_lite", "manual"]):
                clock: dict[str, float] = {}
                for i in range(steps):
                    runners[n](trainers[n], *data[i % len(data)], clock)  # type: ignore[operator]
                rounds[n].append({k: v / steps for k, v in clock.items()})
        total = {"manual": 0.0, "tinygrad_lite": 0.0}
        for k in ("zero_grad", "forward", "loss", "backward", "optimizer"):
            med = {n: float(np.median([c[k] for c in rounds[n]])) for n in rounds}
            for n in med:
                total[n] += med[n]
            phase.add(k, med["manual"] * 1e6, med["tinygrad_lite"] * 1e6, (med["tinygrad_lite"] - med["manual"]) * 1e6)
        phase.add("total", total["manual"] * 1e6, total["tinygrad_lite"] * 1e6,
                  (total["tinygrad_lite"] - total["manual"]) * 1e6)
        phase.notes.append("manual's 'loss' computes the cross-entropy value only; its backward recomputes the "
                           "softmax (ManualMLP.loss / .backward)")
        tables.append(phase)
        raw[str(b)] = rounds

        trainer = fw.make("tinygrad_lite", weights, cfg.lr)
        step = cycling_step(trainer, data)
        for _ in range(10):
            step()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(steps):
            step()
        prof.disable()
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.sort_stats("tottime").print_stats(25)
        texts.append(f"cProfile of {steps} tinygrad_lite training steps at batch {b} (divide times by {steps} "
                     f"for one step; sorted by tottime)\n" + _trim_profile(buf.getvalue()))
    weights = fw.make_weights(BOOKKEEPING_SIZES, cfg.seed)
    trainer = fw.make("tinygrad_lite", weights, cfg.lr)
    x, y = _bookkeeping_data()
    for _ in range(10):
        trainer.step(x, y)
    n = steps * 10
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        trainer.step(x, y)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
    texts.append(f"cProfile of {n} tinygrad_lite training steps of the {'-'.join(map(str, BOOKKEEPING_SIZES))} MLP "
                 f"at batch {BOOKKEEPING_BATCH} (pure bookkeeping: divide by {n} for one step)\n"
                 + _trim_profile(buf.getvalue()))
    return Result(tables, raw, "\n\n".join(texts))


def _trim_profile(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.replace(str(env.__file__).rsplit("/", 2)[0] + "/", "") for line in lines[start:]).rstrip()


SECTIONS: dict[str, Callable[[Config], Result]] = {
    "step": section_step,
    "epoch": section_epoch,
    "overhead": section_overhead,
    "memory": section_memory,
    "gradcheck": section_gradcheck,
    "scaling": section_scaling,
    "profile": section_profile,
    "hvp": section_hvp,
}
#: run when --only is not given (profile is on request only)
DEFAULT = ("step", "epoch", "overhead", "memory", "gradcheck", "scaling", "hvp")

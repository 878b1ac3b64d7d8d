"""Section ``cnn``: one training step of the ``cnn`` preset's network at batch 64, float32 images 1×28×28.

The network is ``CNNSpec()`` (conv 1→32 and 32→64, 3×3, BatchNorm, ReLU, 2×2 max-pool, then
3136→128→10), the update the preset's SGD (Nesterov momentum 0.9, weight decay 5e-4, lr 0.1;
its 1cycle schedule is left out: a constant rate). Contenders, from the same float32 weights
and batches (bundled digits):

- ``ManualCNN``: ``models.manual_cnn`` (im2col backprop written out) + ``ManualSGD``, the baseline;
- ``tinygrad_lite``: ``models.cnn.CNN`` + ``nn.cross_entropy`` + the registry's ``optim.SGD``;
- ``torch``: the same ``nn.Sequential`` (``models.cnn.torch_modules``) + ``F.cross_entropy`` +
  ``torch.optim.SGD``, CPU eager, as many threads as the BLAS (when installed and asked for).

ms per step (median of round-robin samples), the ratio to ManualCNN and to PyTorch (medians of
per-round ratios) and the GFLOP/s achieved (``CNNSpec.flops``: the convolutions' and linear
layers' multiply-adds, forward and backward, over the step's time). Runs once per BLAS thread
setting of ``Config.step_threads``, like the step section. Sensitive to the allocator: a
backward frees about 48 MB at once, which glibc by default returns to the OS (see
``models.allocator``); compare a run with ``--keep-freed-memory``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import env
from .. import frameworks as fw
from ..common import NOT_INSTALLED, Batch, Config, Result, cycling_step, fixed_batches
from ..table import Table
from ..timing import ratio, round_robin
from .step import threads_label, threads_text

BATCH = 64
#: the frameworks of this section, in table order; the first is the baseline
NAMES = ("ManualCNN", "tinygrad_lite", "torch")
TARGETS = {"ManualCNN": 1.10, "torch": 1.5}  # tinygrad_lite's step: at most these times theirs


def preset() -> tuple[Any, Any]:
    """(the cnn preset's TrainConfig, its CNNSpec for 28×28 images and 10 classes)."""
    from models import registry
    from models.presets import resolve_config

    c = resolve_config("cnn")
    return c, registry.cnn_spec(c, [784, *c.hidden, 10])


class _Manual:
    def __init__(self, weights: dict[str, np.ndarray], c: Any, spec: Any) -> None:
        from models import registry
        from models.manual_cnn import ManualCNN

        self.model = ManualCNN(spec)
        self.model.load_state_dict(weights)
        self.opt = registry.OPTIMIZERS["sgd"].manual(self.model.params, c)

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        loss, grads = self.model.loss_and_grads(x, y)
        self.opt.step(grads)
        return loss

    def params(self) -> dict[str, np.ndarray]:
        return self.model.state_dict()


class _Tinygrad:
    def __init__(self, weights: dict[str, np.ndarray], c: Any, spec: Any) -> None:
        import tinygrad_lite.nn as nn
        from models import registry
        from models.cnn import CNN

        self.model = CNN(spec)
        self.model.load_state_dict(weights)
        self.opt = registry.OPTIMIZERS["sgd"].build(self.model.named_parameters(), c)
        self.cross_entropy = nn.cross_entropy

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.opt.zero_grad()
        loss = self.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return float(loss.data)

    def params(self) -> dict[str, np.ndarray]:
        return self.model.state_dict()


class _Torch:
    def __init__(self, weights: dict[str, np.ndarray], c: Any, spec: Any) -> None:
        from models.cnn import to_torch, torch_modules

        torch = self.torch = fw.import_torch()  # as many threads as the BLAS has now
        self.spec, self.F = spec, torch.nn.functional
        self.model = eval("torch.nn.Sequential(" + ", ".join(f"torch.nn.{m}" for m in torch_modules(spec)) + ")",
                          {"torch": torch})
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch(spec, weights).items()})
        self.opt = torch.optim.SGD(self.model.parameters(), lr=c.lr, momentum=c.momentum, nesterov=c.nesterov,
                                   weight_decay=c.weight_decay)

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = self.F.cross_entropy(self.model(self.torch.from_numpy(x)), self.torch.from_numpy(y))
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def params(self) -> dict[str, np.ndarray]:
        from models.cnn import to_torch

        state = {k: v.detach().numpy() for k, v in self.model.state_dict().items()}
        shapes = self.spec.shapes()  # to_torch maps each CNN name, in order, to its Sequential key
        keys = dict(zip(shapes, to_torch(self.spec, {n: np.zeros(s, np.float32) for n, s in shapes.items()})))
        return {n: (state[k].T if n.startswith("fc.") and n.endswith(".weight") else state[k]).copy()
                for n, k in keys.items()}


TRAINERS = {"ManualCNN": _Manual, "tinygrad_lite": _Tinygrad, "torch": _Torch}


def wanted(cfg: Config) -> list[str]:
    """ManualCNN and tinygrad_lite always; torch when it is among ``cfg.frameworks``."""
    return [n for n in NAMES if n != "torch" or "torch" in cfg.frameworks]


def runnable(cfg: Config) -> list[str]:
    """The wanted ones that can run here (torch only when installed)."""
    return [n for n in wanted(cfg) if n != "torch" or fw.installed("torch")]


def image_batches(count: int, seed: int) -> list[Batch]:
    """``count`` batches of 64 bundled digits as float32 images (64, 1, 28, 28)."""
    return [(np.ascontiguousarray(x.reshape(len(x), 1, 28, 28)), y) for x, y in fixed_batches(BATCH, count, seed)]


def sanity(weights: dict[str, np.ndarray], names: list[str], c: Any, spec: Any, batch: Batch) -> tuple[str, dict]:
    """First-step loss of each contender from the same weights and batch, and the state dicts after it."""
    losses, states = {}, {}
    for n in names:
        t = TRAINERS[n](weights, c, spec)
        losses[n] = t.step(*batch)
        states[n] = t.params()
    ref = states[names[0]]
    diffs = {n: max(float(np.abs(s[k].astype(np.float64) - ref[k]).max()) for k in ref) for n, s in states.items()}
    worst = max(abs(v - losses[names[0]]) for v in losses.values())
    ok = worst <= 1e-5 * max(1.0, abs(losses[names[0]])) and max(diffs.values()) <= 1e-4
    text = ("sanity (first step, same weights and batch): loss " + ", ".join(f"{n} {v:.7f}" for n, v in losses.items())
            + f"; max |Δloss| {worst:.1e}, max |Δ| of parameters and buffers after the step "
              f"{max(diffs.values()):.1e} -> {'OK' if ok else 'MISMATCH'}")
    return text, {"losses": losses, "state_max_abs_diff": diffs, "ok": ok}


def section_cnn(cfg: Config) -> Result:
    from models.cnn import CNN

    c, spec = preset()
    weights = CNN(spec, init=c.init, seed=cfg.seed).state_dict()
    data = image_batches(4, cfg.seed + BATCH)
    tables, raw = [], {}
    for i, threads in enumerate(cfg.step_threads):
        with env.limit_threads(threads):
            number = "8" if i == 0 else f"8{chr(ord('a') + i)}"
            setting = "the BLAS's default threads" if threads is None else f"limited to {threads_text(threads)}"
            table, run = _one_setting(cfg, c, spec, weights, data, number, setting, env.blas_tag())
        tables.append(table)
        raw[threads_label(threads)] = run
    return Result(tables, raw)


def _one_setting(cfg: Config, c: Any, spec: Any, weights: dict[str, np.ndarray], data: list[Batch], number: str,
                 setting: str, tag: str) -> tuple[Table, dict[str, Any]]:
    names = runnable(cfg)
    note, check = sanity(weights, names, c, spec, data[0])
    cases = {n: cycling_step(TRAINERS[n](weights, c, spec), data) for n in names}  # type: ignore[arg-type]
    samples = round_robin(cases, cfg.repeats, cfg.min_time)
    _, flops = spec.flops(BATCH)
    table = Table(f"{number}. CNN training step (the cnn preset: {spec.describe()}; SGD Nesterov 0.9, weight decay "
                  f"5e-4), batch {BATCH}, float32, {setting}: ms/step (median of {cfg.repeats}), ratios (median of "
                  f"per-round ratios), GFLOP/s", ["framework", "ms/step", "x ManualCNN", "x torch", "GFLOP/s"],
                  blas=tag)
    for n in wanted(cfg):
        if n not in samples:
            table.add(n, NOT_INSTALLED, None, None, None)
            continue
        ratio = {ref: _ratio(samples, n, ref) for ref in ("ManualCNN", "torch")}
        table.add(n, samples[n].median * 1e3, ratio["ManualCNN"], ratio["torch"], flops / samples[n].median / 1e9)
    table.notes.append(note)
    table.notes.append(f"GFLOP/s: {flops / 1e9:.2f} GFLOP per step (conv and linear multiply-adds, forward and "
                       f"backward, CNNSpec.flops({BATCH})) over the step's time")
    table.notes.append("targets for tinygrad_lite: <= 1.5x PyTorch eager (same threads), <= 1.10x ManualCNN; the "
                       "backward frees ~48 MB at once: compare a run with --keep-freed-memory (the training CLI's "
                       "allocator setting)")
    run = {"sanity": check, "seconds_per_step": {n: s.values for n, s in samples.items()},
           "steps_per_sample": {n: s.number for n, s in samples.items()}, "flops_per_step": flops,
           "targets_met": {ref: (_ratio(samples, "tinygrad_lite", ref) <= t) for ref, t in TARGETS.items()
                           if ref in samples}}
    return table, run


def _ratio(samples: dict[str, Any], name: str, reference: str) -> float | None:
    return ratio(samples, name, reference) if reference in samples else None

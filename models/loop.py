"""The training loop: epochs of mini-batch steps, the learning-rate schedule, validation and early stopping.

``train`` runs from whatever ``TrainState`` it is given (a fresh one, or one restored from a
checkpoint) to the end of the run, calling ``save(epoch)`` after each logged epoch; the state
and the two random generators are all a checkpoint needs to continue exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tinygrad_lite as tg
import tinygrad_lite.nn as nn
from tinygrad_lite.data import augment, iterate_minibatches
from tinygrad_lite.tensor import from_numpy, no_grad

__all__ = ["TrainState", "RunData", "Plan", "Observer", "train", "evaluate_model", "as_input"]


class Observer:
    """Hooks a run calls as it goes (TensorBoard logging, a sweep's pruning); each does nothing by default.

    ``on_start`` before the first step (``out``: the run's working folder), ``on_step`` after each
    optimizer step (the model's parameters still hold that step's ``.grad``), ``on_epoch`` after
    each epoch's validation with the epoch's history entry, ``on_end`` with the final metrics once
    the run's files are written, ``close`` always (also when the run fails). An exception raised by
    a hook stops the run like any other error (the run's folder is then all or nothing as usual).
    """

    def on_start(self, *, model: nn.Module, config: Any, data: RunData, out: Any, resumed_step: int) -> None:
        """Before training (``resumed_step``: the step a resumed run continues from)."""

    def on_step(self, step: int, loss: float, accuracy: float, lr: float, model: nn.Module) -> None:
        """After optimizer step ``step`` (1-based) with the batch's loss and accuracy and the lr it used."""

    def on_epoch(self, entry: dict[str, Any], model: nn.Module) -> None:
        """After epoch ``entry["epoch"]`` (train/validation loss and accuracy, lr, steps, seconds)."""

    def on_end(self, metrics: dict[str, Any], out: Any) -> None:
        """After the run's results are written to ``out`` (not yet committed to the final folder)."""

    def close(self) -> None:
        """Release what the observer holds; called once, whether the run succeeded or not."""


@dataclass
class RunData:
    """The arrays a run trains, validates and tests on (flat images, (n, 784)); ``input_shape``: the shape
    of one example as the model takes it (each batch is reshaped to (m, *input_shape), a view; None: as
    stored)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    source: str
    input_shape: tuple[int, ...] | None = None


def as_input(x: np.ndarray, input_shape: tuple[int, ...] | None) -> np.ndarray:
    """A batch of flat examples as the model takes them: (m, *input_shape) (a view), or as it is."""
    return x if input_shape is None else x.reshape(len(x), *input_shape)


@dataclass(frozen=True)
class Plan:
    """How many steps the run makes: ``batch_size`` (full batch resolved), steps per epoch, in all, epochs."""

    batch_size: int
    steps_per_epoch: int
    total_steps: int
    epochs: int

    @classmethod
    def of(cls, config: Any, n_train: int) -> Plan:
        bs = min(config.batch_size or n_train, n_train)
        per_epoch = math.ceil(n_train / bs)
        total = config.iterations or config.epochs * per_epoch
        return cls(bs, per_epoch, total, math.ceil(total / per_epoch))


@dataclass
class TrainState:
    """Progress that a checkpoint stores: steps, time, history, early-stopping counters (and best weights)."""

    step: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, np.ndarray] | None = None
    best_val: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False

    @property
    def epoch(self) -> int:
        """Completed epochs."""
        return len(self.history)

    def to_json(self, model_rng: np.random.Generator, train_rng: np.random.Generator) -> dict[str, Any]:
        """Everything but the best weights (saved as tensors), JSON-able, with the generators' states."""
        return {"step": self.step, "seconds": self.seconds, "history": self.history,
                "model_rng": model_rng.bit_generator.state, "train_rng": train_rng.bit_generator.state,
                "best_val": self.best_val if math.isfinite(self.best_val) else None, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "stopped": self.stopped}

    @classmethod
    def from_json(cls, s: dict[str, Any], best: dict[str, np.ndarray] | None, model_rng: np.random.Generator,
                  train_rng: np.random.Generator) -> TrainState:
        """The state ``to_json`` saved; sets the generators' states."""
        model_rng.bit_generator.state = s["model_rng"]
        train_rng.bit_generator.state = s["train_rng"]
        return cls(int(s.get("step", 0)), float(s.get("seconds", 0.0)), list(s.get("history", [])), best or None,
                   math.inf if s.get("best_val") is None else float(s["best_val"]), int(s.get("best_epoch", 0)),
                   int(s.get("bad_epochs", 0)), bool(s.get("stopped", False)))


def evaluate_model(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 5000,
                   input_shape: tuple[int, ...] | None = None) -> tuple[float, float, np.ndarray]:
    """(mean cross-entropy, accuracy, predictions) in eval mode (dropout off, BatchNorm's running
    statistics), without gradients, in large batches (each reshaped to (m, *input_shape) when given)."""
    was_training = model.training
    model.eval()
    total, preds = 0.0, []
    with no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(from_numpy(as_input(x[start:start + batch_size], input_shape)))
            total += float(nn.cross_entropy(logits, y[start:start + batch_size], reduction="sum").data)
            preds.append(logits.data.argmax(axis=1))
    model.train(was_training)
    pred = np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
    n = max(len(x), 1)
    return total / n, float((pred == y).sum()) / n, pred


def _progress(total: int, desc: str, disable: bool) -> Any:
    """A tqdm bar, or None when disabled or tqdm is not installed."""
    if disable:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, unit="batch", dynamic_ncols=True)


def training_step(model: nn.Module, opt: Any) -> Callable[[Any, np.ndarray], tuple[Any, Any]]:
    """The step the loop makes: ``(loss, logits) = step(x, y)`` after forward, mean cross-entropy,
    ``opt.zero_grad()``, ``loss.backward()`` and ``opt.step()``."""
    def step(x: Any, y: np.ndarray) -> tuple[Any, Any]:
        logits = model(x)
        loss = nn.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss, logits

    return step


def train(model: nn.Module, opt: Any, scheduler: Any, data: RunData, config: Any, plan: Plan, st: TrainState,
          train_rng: np.random.Generator, *, save: Callable[[int], None], say: Callable[[str], None],
          progress: bool, observers: Sequence[Observer] = (), compiled: bool = True) -> TrainState:
    """Train from ``st`` to the end of ``plan``: each step forward, cross-entropy, backward, ``opt.step()``
    and ``scheduler.step()``, in training mode (``model.train()``: dropout on, BatchNorm's batch statistics);
    per epoch validation (in eval mode), early stopping, a summary line and ``save``; ``observers``' hooks
    after each step and epoch. ``compiled``: the step runs through ``tinygrad_lite.compile`` (the same
    results as eager, without building a graph per step)."""
    c, width = config, len(str(plan.epochs))
    step = training_step(model, opt)
    if compiled:
        step = tg.compile(step)
    for epoch in range(st.epoch, plan.epochs):
        if st.stopped or st.step >= plan.total_steps:
            break
        t0 = time.perf_counter()
        model.train()
        x_epoch = data.x_train
        if c.augment:
            x_epoch = augment(x_epoch, train_rng, c.augment_shift, c.augment_rotation)
        batches = iterate_minibatches(x_epoch, data.y_train, plan.batch_size, rng=train_rng, shuffle=c.shuffle)
        n_batches = min(plan.steps_per_epoch, plan.total_steps - st.step)
        bar = _progress(n_batches, f"epoch {epoch + 1:>{width}}/{plan.epochs}", not progress or n_batches < 2)
        loss_sum, correct, seen, lr = 0.0, 0, 0, opt.lr
        for b, (xb, yb) in enumerate(batches):
            if b >= n_batches:
                break
            xb = as_input(xb, data.input_shape)  # a batch is read, never copied
            loss, logits = step(xb if compiled else from_numpy(xb), yb)
            if scheduler is not None:
                lr = opt.lr
                scheduler.step()
            st.step += 1
            m, batch_loss = len(yb), float(loss.data)
            batch_correct = int((logits.data.argmax(axis=1) == yb).sum())
            loss_sum += batch_loss * m
            correct += batch_correct
            seen += m
            for o in observers:
                o.on_step(st.step, batch_loss, batch_correct / m, lr, model)
            if bar is not None:
                bar.update(1)
                if b % 10 == 0 or b == n_batches - 1:
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}%", refresh=False)
        if bar is not None:
            bar.close()
        if not math.isfinite(loss_sum):
            raise FloatingPointError(f"training diverged in epoch {epoch + 1} (loss {loss_sum / max(seen, 1)}); "
                                     f"try a smaller lr than {c.lr:g} (--lr)")
        entry: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
                                 "val_loss": None, "val_accuracy": None, "lr": lr, "steps": st.step}
        if data.x_val is not None:
            vl, va, _ = evaluate_model(model, data.x_val, data.y_val, c.eval_batch_size, data.input_shape)
            entry["val_loss"], entry["val_accuracy"] = vl, va
            if c.patience:
                if vl < st.best_val:
                    st.best_val, st.best_epoch, st.bad_epochs = vl, epoch + 1, 0
                    st.best = model.state_dict()
                else:
                    st.bad_epochs += 1
                    st.stopped = st.bad_epochs >= c.patience
        st.seconds += time.perf_counter() - t0
        entry["seconds"] = st.seconds
        st.history.append(entry)
        for o in observers:
            o.on_epoch(entry, model)
        last = st.stopped or st.step >= plan.total_steps
        if (epoch + 1) % c.log_every == 0 or last:
            line = (f"epoch {epoch + 1:>{width}}/{plan.epochs}  train loss {entry['train_loss']:.4f} "
                    f"acc {100 * entry['train_accuracy']:.2f}%")
            if entry["val_loss"] is not None:
                line += f"  val loss {entry['val_loss']:.4f} acc {100 * entry['val_accuracy']:.2f}%"
            line += f"  lr {lr:.3g}  {st.seconds:.1f}s"
            if st.stopped:
                line += f"  (early stop: no better validation loss for {st.bad_epochs} epochs)"
            say(line)
            t1 = time.perf_counter()
            save(epoch + 1)
            st.seconds += time.perf_counter() - t1
    return st

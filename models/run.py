"""A training run from start to finish: its folder, data, model, optimizer, schedule, resume, results.

``run(config, out_dir)`` trains with a ``TrainConfig`` and returns the metrics. Everything
goes to ``out_dir`` (default: a new folder under ``runs/``), all or nothing: the run works in
a staging folder beside it, locked against a second run, and renames it into place only when
every file is written (``models.rundir``). Files:

- ``config.toml``: the resolved configuration, seed included (``--config`` repeats the run);
- ``checkpoint.safetensors``: the training state after the last logged epoch (``--resume``);
- ``model.safetensors``: the final model (the best weights when early stopping restored them);
- ``metrics.json``: ``test_accuracy``, ``test_loss``, ``seconds`` (training wall time), ``epochs``
  (per-epoch train/validation loss and accuracy), ``config``, ``run_id``, the confusion matrix,
  per-class errors and most confused pairs;
- ``report.txt`` and the plots ``curves.png``, ``confusion.png``, ``samples.png``;
- ``tensorboard/``: TensorBoard event files (``models.tensorboard``), which a resumed run continues.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models import registry, report
from models.checkpoint import (
    CHECKPOINT,
    MODEL,
    Checkpoint,
    CheckpointError,
    check_architecture,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
    save_model,
)
from models.config import ConfigError, TrainConfig, check_memory, display
from models.files import atomic_write
from models.loop import Observer, Plan, RunData, TrainState, evaluate_model, train
from models.presets import REFERENCE, resolve_config
from models.rundir import RunDir, RunDirError

__all__ = ["run", "resume_config", "load_data", "build_model", "build_optimizer", "model_input_shape",
           "blas_threads", "deadline", "DeadlineError", "OUTPUT_FILES", "LEGACY_FILES", "LOG_DIRS",
           "DOWNLOAD_DEADLINE"]

OUTPUT_FILES = ("config.toml", CHECKPOINT, MODEL, "metrics.json", "report.txt", "curves.png", "confusion.png",
                "samples.png")
#: What earlier versions wrote: results too, replaced with the rest.
LEGACY_FILES = ("config.json", "checkpoint.npz", "model.npz")
#: Logs a run may write (``--tensorboard``): replaced by a new run, carried into a resumed one.
LOG_DIRS = ("tensorboard",)
#: Seconds a dataset download may take in all (each network operation also has its own timeout).
DOWNLOAD_DEADLINE = 600.0


# ------------------------------------------------------------------ pieces
class DeadlineError(Exception):
    """A step (a download) that did not finish in the time allowed."""


@contextlib.contextmanager
def deadline(seconds: float, message: Any) -> Iterator[None]:
    """Raise ``DeadlineError(message())`` in the main thread if the block runs longer than ``seconds``
    (SIGALRM; a no-op for 0, off the main thread, or where there is no SIGALRM)."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise DeadlineError(message())

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _downloading(name: str) -> str:
    """The files of ``name`` a download is writing now (their ``.part`` temporaries), for messages."""
    from tinygrad_lite.data import default_cache_dir

    parts = sorted(p.name for p in (default_cache_dir() / name).glob(".*.part"))
    files = sorted({p[1:].rsplit(".", 2)[0] for p in parts})
    return ", ".join(files)


def load_data(config: TrainConfig, download_deadline: float = DOWNLOAD_DEADLINE) -> RunData:
    """The dataset named by the config, cast to its dtype, with the validation split (seeded by ``seed``)."""
    from tinygrad_lite.data import load_dataset, train_val_split

    def late() -> str:
        files = _downloading(config.dataset)
        return (f"the download of {config.dataset}" + (f" ({files})" if files else "")
                + f" did not finish within {download_deadline:g} s (--download-timeout); try again, or put the "
                  f"files in place yourself (see --data-dir)")

    with deadline(download_deadline, late):
        d = load_dataset(config.dataset, config.data_dir or None)
    dtype = np.dtype(config.dtype)
    x_train, y_train = d.x_train.astype(dtype, copy=False), d.y_train
    x_val = y_val = None
    if config.val_fraction:
        x_train, y_train, x_val, y_val = train_val_split(
            x_train, y_train, config.val_fraction, rng=np.random.default_rng([config.seed, 1]))
    sizes = [x_train.shape[1], *config.hidden, len(d.classes)]
    return RunData(x_train, y_train, x_val, y_val, d.x_test.astype(dtype, copy=False), d.y_test, d.classes,
                   display(d.source), model_input_shape(config, sizes))


def model_input_shape(config: TrainConfig, sizes: list[int]) -> tuple[int, ...] | None:
    """The shape of one example as the config's model takes it, or None where that is the flat image."""
    shape = registry.MODELS[config.model].input_shape(config, sizes)
    return None if shape == (sizes[0],) else tuple(shape)


def build_model(config: TrainConfig, n_in: int, n_out: int, rng: np.random.Generator | None = None) -> Any:
    """The registry's model for the config; ``rng`` draws the weights and, later, the dropout masks."""
    rng = np.random.default_rng(config.seed) if rng is None else rng
    return registry.MODELS[config.model].build(config, [n_in, *config.hidden, n_out], rng)


def build_optimizer(config: TrainConfig, model: Any) -> Any:
    """The registry's optimizer for the config, over ``model.named_parameters()``."""
    return registry.OPTIMIZERS[config.optimizer].build(model.named_parameters(), config)


def blas_threads(n: int) -> Any:
    """A context limiting BLAS to ``n`` threads (threadpoolctl, when installed); a no-op for 0."""
    if not n:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("note: threads is set but threadpoolctl is not installed; using the BLAS default", file=sys.stderr)
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def _settings(state: Any) -> Any:
    """A scheduler state without its counters: what must agree for a saved state to continue a new schedule."""
    if isinstance(state, dict):
        return {k: _settings(v) for k, v in state.items() if k not in ("last_epoch", "step_count", "last_lr")}
    if isinstance(state, list):
        return [_settings(v) for v in state]
    return state


def _restore_schedule(opt: Any, sched: Any, config: TrainConfig, plan: Plan, ckpt: Checkpoint, say: Any) -> Any:
    """``sched`` (built before the optimizer state was loaded) at ``ckpt``'s step: its saved state when the
    schedule is unchanged, else the new schedule replayed to that step (what an uninterrupted run with
    this config has there)."""
    if sched is None:
        opt.lr = config.lr
        return None
    if ckpt.scheduler is not None and _settings(ckpt.scheduler) == _settings(sched.state_dict()):
        sched.load_state_dict(ckpt.scheduler)
        return sched
    if ckpt.scheduler is not None:
        say("note: the learning-rate schedule changed; it is replayed to the checkpoint's step")
    for g in opt.param_groups:
        g["lr"] = g["initial_lr"]
    sched = registry.make_scheduler(opt, config, plan.steps_per_epoch, plan.total_steps)
    for _ in range(int(ckpt.state.get("step", 0))):
        sched.step()
    return sched


def _json_safe(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


# ------------------------------------------------------------------ the run
def _as_config(config: TrainConfig | Mapping[str, Any]) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config
    values = dict(config)
    return resolve_config(values.pop("preset", None), overrides=values, file_name="config")


def _new_run_dir(config: TrainConfig) -> RunDir:
    base = Path("runs") / f"{config.preset}-{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    for i in range(1000):
        rd = RunDir(base if i == 0 else base.with_name(f"{base.name}-{i + 1}"),
                    OUTPUT_FILES + LEGACY_FILES + LOG_DIRS, label="run folder")
        if rd.out.exists() or rd.staging.exists():
            continue
        try:
            return rd.__enter__()
        except RunDirError as e:
            if "in use by another run" not in str(e):
                raise
    raise RunDirError(f"could not find a new folder name like {base}")  # pragma: no cover


def run(config: TrainConfig | Mapping[str, Any], out_dir: str | Path | None = None, *, resume: bool = False,
        overwrite: bool = False, quiet: bool = False, progress: bool | None = None, plots: bool = True,
        download_timeout: float = DOWNLOAD_DEADLINE, observers: Sequence[Observer] = (),
        compiled: bool = True) -> dict[str, Any]:
    """Train with ``config`` (a ``TrainConfig``, or a mapping resolved like flags), write everything to
    ``out_dir`` all or nothing, and return the metrics.

    ``resume``: continue the run in ``out_dir`` (its unfinished staging folder if there is one, else
    its ``checkpoint.safetensors``) with ``config`` (``resume_config(out_dir, epochs=10)``).
    ``overwrite``: replace the results already in ``out_dir`` once the new run has succeeded.
    ``progress``: a tqdm bar (default: when stdout is a terminal and not ``quiet``). On failure the
    exception carries ``unfinished`` (the staging folder kept for ``--resume``, or None).
    ``observers``: ``models.loop.Observer`` hooks called during the run (each closed at its end).
    ``compiled``: training steps through ``tinygrad_lite.compile`` (False: eager steps; the same results).
    """
    config = _as_config(config)
    check_memory(config)
    if resume and out_dir is None:
        raise ConfigError("--resume needs --out DIR (the folder of the run to continue)")
    with blas_threads(config.threads):
        rd = (_new_run_dir(config) if out_dir is None
              else RunDir(out_dir, OUTPUT_FILES + LEGACY_FILES + LOG_DIRS).__enter__())
        try:
            return _run(rd, config, resume=resume, overwrite=overwrite, quiet=quiet, progress=progress, plots=plots,
                        download_timeout=download_timeout, observers=observers, compiled=compiled)
        finally:
            try:
                for o in observers:
                    o.close()
            finally:
                rd.__exit__(None, None, None)


def _resumable(rd: RunDir) -> bool:
    """Whether an unfinished run with a checkpoint is in the staging folder (one killed before its first
    checkpoint left nothing to continue)."""
    return rd.interrupted() and find_checkpoint(rd.staging) is not None


def _source_checkpoint(rd: RunDir) -> Checkpoint:
    path = find_checkpoint(rd.staging if _resumable(rd) else rd.out)
    if path is None:
        raise CheckpointError(f"--resume: {display(rd.out / CHECKPOINT)} does not exist" + (
            f" (the unfinished run in {display(rd.staging)} stopped before its first checkpoint: start it again "
            f"without --resume)" if rd.interrupted() else ""))
    ckpt = load_checkpoint(path)
    problem = ckpt.missing_training_state()
    if problem:
        raise CheckpointError(f"--resume: {problem}")
    return ckpt


def _run(rd: RunDir, config: TrainConfig, *, resume: bool, overwrite: bool, quiet: bool, progress: bool | None,
         plots: bool, download_timeout: float, observers: Sequence[Observer], compiled: bool) -> dict[str, Any]:
    ckpt, reused = None, resume and _resumable(rd)
    if resume:
        ckpt = _source_checkpoint(rd)
        staging = rd.start(keep=reused)
        if not reused:
            rd.carry(LOG_DIRS)  # the event log continues
    else:
        if _resumable(rd) and not overwrite:
            raise RunDirError(f"{rd.label}: an unfinished run is in {display(rd.staging)}; continue it with --resume, "
                              f"or pass --overwrite to start over")
        existing = rd.results()
        if existing and not overwrite:
            raise RunDirError(f"{rd.label} already holds a run's results ({', '.join(existing)}); pass --overwrite "
                              f"to replace them, --resume to continue, or choose another --out")
        staging = rd.start()
    try:
        metrics = _train_into(staging, config, ckpt, rd.out, quiet=quiet, progress=progress, plots=plots,
                              download_timeout=download_timeout, observers=observers, compiled=compiled)
        rd.commit()
    except BaseException as e:
        kept = rd.interrupted() and (reused or (find_checkpoint(staging) is not None
                                                and isinstance(e, (OSError, KeyboardInterrupt, MemoryError))))
        if not kept:
            rd.discard()
        try:
            e.unfinished = staging if kept else None  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - exceptions without a __dict__
            pass
        raise
    return metrics


def _train_into(out: Path, c: TrainConfig, ckpt: Checkpoint | None, final: Path, *, quiet: bool,
                progress: bool | None, plots: bool, download_timeout: float,
                observers: Sequence[Observer] = (), compiled: bool = True) -> dict[str, Any]:
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, flush=True))
    progress = (not quiet and sys.stdout.isatty()) if progress is None else progress
    data = load_data(c, download_timeout)
    n_in, n_out = data.x_train.shape[1], len(data.classes)
    sizes = [n_in, *c.hidden, n_out]
    model_rng = np.random.default_rng(c.seed)  # weights, then dropout masks
    train_rng = np.random.default_rng([c.seed, 2])  # shuffling and augmentation
    if ckpt is not None:
        check_architecture(ckpt, sizes, c.dtype, c)
    model = build_model(c, n_in, n_out, model_rng)
    opt = build_optimizer(c, model)
    plan = Plan.of(c, len(data.x_train))
    st, run_id = TrainState(), uuid.uuid4().hex
    sched = registry.make_scheduler(opt, c, plan.steps_per_epoch, plan.total_steps)
    if ckpt is not None:
        model.load_state_dict(ckpt.params)
        try:
            opt.load_state_dict(ckpt.optim)
        except ValueError as e:
            raise CheckpointError(f"{ckpt.path}: optimizer state does not fit optimizer {c.optimizer!r}: {e}") from None
        st = TrainState.from_json(ckpt.state, ckpt.best, model_rng, train_rng)
        sched = _restore_schedule(opt, sched, c, plan, ckpt, say)
        run_id = ckpt.run_id or run_id
        say(f"resuming {display(final)} from epoch {st.epoch} (step {st.step})")
    atomic_write(out / "config.toml", c.to_toml().encode("utf-8"))
    say(f"{c.preset} on {c.dataset} ({len(data.x_train)} train"
        + (f", {len(data.x_val)} validation" if data.x_val is not None else "")
        + f", {len(data.x_test)} test): {registry.MODELS[c.model].describe(c, sizes)}, "
          f"{c.optimizer} lr {c.lr:g}, batch {plan.batch_size}, {plan.epochs} epochs ({plan.total_steps} steps) "
          f"→ {display(final)}")

    def save(epoch: int) -> None:
        save_checkpoint(out / CHECKPOINT, model.state_dict(), opt.state_dict(), epoch, c,
                        st.to_json(model_rng, train_rng), st.best, None if sched is None else sched.state_dict(),
                        run_id=run_id)

    for o in observers:
        o.on_start(model=model, config=c, data=data, out=out, resumed_step=st.step)
    train(model, opt, sched, data, c, plan, st, train_rng, save=save, say=say, progress=progress, observers=observers,
          compiled=compiled)
    restored = False
    if c.patience and c.restore_best and st.best is not None and st.best_epoch != st.epoch:
        model.load_state_dict(st.best)
        restored = True
        say(f"restored the weights of epoch {st.best_epoch} (validation loss {st.best_val:.4f})")
    save(st.epoch)
    save_model(out / MODEL, model, c, st.epoch, run_id=run_id)

    test_loss, test_acc, pred = evaluate_model(model, data.x_test, data.y_test, c.eval_batch_size, data.input_shape)
    cm = report.confusion_matrix(data.y_test, pred, len(data.classes))
    text = report.format_report(test_acc, test_loss, cm, data.classes)
    metrics = {
        "test_accuracy": test_acc, "test_loss": test_loss, "seconds": st.seconds, "epochs": st.history,
        "config": c.to_dict(), "run_id": run_id, "dataset": c.dataset, "data_source": data.source, "sizes": sizes,
        "n_train": len(data.x_train), "n_val": 0 if data.x_val is None else len(data.x_val),
        "n_test": len(data.x_test), "steps": st.step, "best_epoch": st.best_epoch if c.patience else None,
        "restored_best": restored, "stopped_early": st.stopped, "classes": list(data.classes),
        "confusion_matrix": cm.tolist(), "per_class_errors": report.per_class_errors(cm).tolist(),
        "most_confused": [{"true": t, "predicted": p, "count": n} for t, p, n in report.most_confused(cm)],
        "reference": REFERENCE.get(c.preset),
        # the final model on the training split (eval mode): what a reference that reports "train" figures measured
        **dict(zip(("train_loss_final", "train_accuracy_final"),
                   evaluate_model(model, data.x_train, data.y_train, c.eval_batch_size, data.input_shape)[:2])),
    }
    metrics["epochs"] = [{k: _json_safe(v) for k, v in e.items()} for e in st.history]
    atomic_write(out / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode("utf-8"))
    atomic_write(out / "report.txt", (text + "\n").encode("utf-8"))
    if plots:
        if report.have_matplotlib():
            report.plot_curves(st.history, out / "curves.png")
            report.plot_confusion(cm, data.classes, out / "confusion.png")
            report.plot_samples(data.x_test, data.y_test, pred, data.classes, out / "samples.png")
        else:
            say("matplotlib is not installed: no plots (pip install 'tinygrad-lite[train]')")
    for o in observers:
        o.on_end(metrics, out)
    say("\n" + text)
    say(f"\ntest accuracy {100 * test_acc:.2f}%, loss {test_loss:.4f}, training {st.seconds:.1f}s; results in "
        f"{display(final)}")
    return metrics


# ------------------------------------------------------------------ resuming
def resume_config(out_dir: str | Path, file_config: Mapping[str, Any] | None = None, *, file_name: str = "config file",
                  flags: bool = False, **changes: Any) -> TrainConfig:
    """The config stored with the run in ``out_dir`` (its unfinished staging folder first), then
    ``file_config``, then ``changes``, validated."""
    rd = RunDir(out_dir, OUTPUT_FILES)
    path = find_checkpoint(rd.staging if _resumable(rd) else rd.out)
    if path is None:
        raise CheckpointError(f"--resume: {display(Path(out_dir) / CHECKPOINT)} does not exist")
    ckpt = load_checkpoint(path)
    if "preset" in changes or "preset" in (file_config or {}):
        raise ConfigError("--resume continues the stored config; do not give --preset")
    try:
        base = TrainConfig.from_dict(ckpt.config, f"{ckpt.path}: stored config")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    return resolve_config(base.preset, file_config, changes, file_name=file_name, flags=flags, memory=True,
                          base=base)

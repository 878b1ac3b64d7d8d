"""One sweep trial, and the worker processes that run them: ``make_objective`` trains a trial's config with
``models.run.run`` into ``--out/trials/NNNN/`` and scores it; ``run_jobs`` starts ``--jobs`` workers.

A trial reports its validation accuracy after each epoch (``trial.report``), so the study's pruner
can stop it (``TrialPruned``: its run folder is discarded, the trial is PRUNED); it scores the
validation accuracy of the model it ends with, records ``test_accuracy``, ``seconds``, ``epochs``,
``host`` and ``run_dir`` as user attributes, and an error as ``error`` (the trial is then FAIL).
A retried trial (``retry_of``) runs again in the folder of the trial it repeats.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from models.allocator import keep_freed_memory
from models.config import ConfigError, display
from models.files import describe_os_error
from models.loop import Observer
from models.study import INTERRUPTS, Sweep, SweepError, open_storage, open_study, work

__all__ = ["Settings", "objective_value", "make_objective", "run_worker", "run_jobs", "quiet_optuna", "STOP_WAIT"]

#: Seconds a worker has, after Ctrl-C, to fail and queue its trial again before it is killed.
STOP_WAIT = 30.0


@dataclass(frozen=True)
class Settings:
    """What one worker process needs (picklable: ``--jobs`` starts each worker with it)."""

    out: str
    storage: str
    study: str
    heartbeat: int
    quiet: bool = False
    trial_plots: bool = False
    prune: bool = True
    prune_startup: int = 5
    prune_from: int = 2
    download_timeout: float = 600.0
    worker: int = 0
    compiled: bool = True  # trials' steps through tinygrad_lite.compile (--no-compile: eager, the same results)

    def pruner(self) -> Any:
        """The median pruner over per-epoch validation accuracy (or none, with ``prune`` False)."""
        import optuna

        if not self.prune:
            return optuna.pruners.NopPruner()
        return optuna.pruners.MedianPruner(n_startup_trials=self.prune_startup, n_warmup_steps=self.prune_from)


def objective_value(metrics: dict[str, Any]) -> float:
    """The validation accuracy of the model a run ends with (the restored best epoch's under early stopping)."""
    history = metrics["epochs"]
    entry = history[metrics["best_epoch"] - 1] if metrics.get("restored_best") else history[-1]
    return float(entry["val_accuracy"])


class _Reporter(Observer):
    """Reports each epoch's validation accuracy to the trial; raises TrialPruned when the pruner says so."""

    def __init__(self, trial: Any) -> None:
        self.trial, self.epochs = trial, 0

    def on_start(self, *, model: Any, config: Any, data: Any, out: Any, resumed_step: int) -> None:
        from models.loop import Plan

        self.epochs = Plan.of(config, len(data.x_train)).epochs

    def on_epoch(self, entry: dict[str, Any], model: Any) -> None:
        import optuna

        if entry.get("val_accuracy") is None:
            return
        self.trial.report(entry["val_accuracy"], entry["epoch"])
        if entry["epoch"] < self.epochs and self.trial.should_prune():  # never throw a finished run away
            self.trial.set_user_attr("pruned_at_epoch", entry["epoch"])
            raise optuna.TrialPruned(f"validation accuracy {entry['val_accuracy']:.4f} after epoch {entry['epoch']}")


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError):
        return describe_os_error(e)
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return text if isinstance(e, (ConfigError, ValueError, FloatingPointError)) else f"{type(e).__name__}: {text}"


def make_objective(sweep: Sweep, settings: Settings) -> Any:
    """The Optuna objective of ``sweep``: one training run per trial (see the module docstring)."""
    import optuna

    from models.run import run

    say = (lambda msg: None) if settings.quiet else (lambda msg: print(msg, flush=True))

    def objective(trial: Any) -> float:
        origin = int(trial.user_attrs.get("retry_of", trial.number))
        folder = Path(settings.out) / "trials" / f"{origin:04d}"
        trial.set_user_attr("host", socket.gethostname())
        values = {p.name: p.suggest(trial) for p in sweep.params}
        shown = " ".join(f"{p.name}={_shown(values[p.name])}" for p in sweep.params)
        try:
            with INTERRUPTS.training_run():
                metrics = run(sweep.config(values), folder, overwrite=origin != trial.number, quiet=True,
                              progress=False, plots=settings.trial_plots, download_timeout=settings.download_timeout,
                              observers=[_Reporter(trial)], compiled=settings.compiled)
        except optuna.TrialPruned as e:
            say(f"trial {trial.number} pruned: {e}  {shown}")
            raise
        except Exception as e:
            trial.set_user_attr("error", _one_line(e))
            say(f"trial {trial.number} failed: {_one_line(e)}  {shown}")
            raise
        value = objective_value(metrics)
        for key in ("test_accuracy", "seconds"):
            trial.set_user_attr(key, metrics[key])
        trial.set_user_attr("epochs", len(metrics["epochs"]))
        trial.set_user_attr("run_dir", str(folder))
        say(f"trial {trial.number}: val {100 * value:.2f}% test {100 * metrics['test_accuracy']:.2f}% "
            f"{metrics['seconds']:.1f}s  {shown}  → {display(folder)}")
        return value

    return objective


def _shown(v: Any) -> str:
    if isinstance(v, tuple):
        return ",".join(map(str, v))
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each worker prints its own line per trial


def run_worker(settings: Settings) -> None:
    """One worker: open the storage and the study, run queued trials until none is left."""
    quiet_optuna()
    storage = open_storage(settings.storage, settings.heartbeat)
    say = (lambda msg: None) if settings.quiet else (lambda msg: print(msg, flush=True))
    study, sweep = open_study(storage, settings.study, None, None, heartbeat=settings.heartbeat,
                              pruner=settings.pruner(), worker=settings.worker, say=lambda msg: None)
    work(study, storage, make_objective(sweep, settings), heartbeat=settings.heartbeat, say=say)


def _child(settings: Settings) -> None:
    """A ``--jobs`` worker process: Ctrl-C reaches it from the parent only, as SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()
    try:
        with INTERRUPTS.installed(signal.SIGTERM):
            run_worker(settings)
    except KeyboardInterrupt:
        sys.exit(130)
    except (SweepError, ConfigError) as e:
        print(f"error: worker {settings.worker}: {e}", file=sys.stderr)
        sys.exit(2)


def run_jobs(settings: Settings, jobs: int, storage: Any) -> None:
    """``jobs`` worker processes, each with its own connection to the database: forked on Linux (fast: nothing
    to import again) once this process has closed its own connections, spawned elsewhere."""
    fork = sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
    if fork:
        storage.remove_session()
        storage.engine.dispose()  # no SQLite connection may cross a fork; this process reconnects when it needs to
    sys.stdout.flush()
    sys.stderr.flush()
    ctx = multiprocessing.get_context("fork" if fork else "spawn")
    procs = [ctx.Process(target=_child, args=(replace(settings, worker=i),), daemon=False) for i in range(jobs)]
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])  # a Ctrl-C now waits until all have started
        try:
            for p in procs:
                p.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        _stop(procs)
        raise
    codes = [p.exitcode for p in procs]
    if any(c == 130 for c in codes):
        raise KeyboardInterrupt
    bad = [f"worker {i} exited with status {c}" for i, c in enumerate(codes) if c]
    if bad:
        raise SweepError("; ".join(bad) + " (see its message above)")


def _stop(procs: list[Any]) -> None:
    """Ctrl-C: each worker fails its running trial and queues it again (SIGTERM); one that has not ended
    after ``STOP_WAIT`` seconds is killed (its trial is then failed by its heartbeat)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    try:
        started = [p for p in procs if p.pid is not None]
        for p in started:
            if p.is_alive():
                p.terminate()
        for p in started:
            p.join(STOP_WAIT)
            if p.is_alive():
                print(f"worker pid {p.pid} did not stop within {STOP_WAIT:g} s: killed", file=sys.stderr)
                p.kill()
                p.join()
    finally:
        signal.signal(signal.SIGINT, previous)

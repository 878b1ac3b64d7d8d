"""A sweep's Optuna study: its storage, what it searches (``Sweep``), its trial queue, and the worker loop.

The study is a plain Optuna RDB study (``optuna-dashboard URL`` opens it). What models.sweep adds,
all in the study itself:

- user attribute ``sweep``: the definition (space, base config, sampler) a joining worker must match;
  ``trials``: the planned number of trials; ``heartbeat``: the heartbeat interval in seconds;
- the plan as a queue: the creator adds one WAITING trial per planned trial, and workers only ever run
  queued trials (a worker's storage refuses to create any other), so ``--trials N`` is exact however
  many workers on however many machines take part;
- a trial whose worker was killed stops sending heartbeats and is failed by the next worker that looks
  (``fail_stale_trials``); one interrupted with Ctrl-C is failed at once. Either is queued again with
  the same parameters (``requeue``, up to ``MAX_RETRIES`` times) so ``--resume`` finishes the plan.

SQLite (the default) is put in WAL mode (readers and the writer do not wait for each other), and a file
lock beside the database serializes changes of a trial's state, which Optuna guards with row locks
that SQLite does not have.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from models.config import ConfigError, TrainConfig
from models.space import Param, grid_size, grid_space, parse_param

__all__ = ["SweepError", "Sweep", "NoQueuedTrial", "Interrupts", "INTERRUPTS", "open_storage", "open_study",
           "requeue", "work", "safe_url", "MAX_RETRIES"]

MAX_RETRIES = 3
WAITING_FOR_DEFINITION = 30.0  # seconds a joining worker waits for the creator to store the definition


class SweepError(Exception):
    """A sweep that cannot start: storage that cannot be opened, a study that does not match, ..."""


class NoQueuedTrial(Exception):
    """Raised by the storage when a worker asks for a trial and none is queued."""


@dataclass(frozen=True)
class Sweep:
    """What a study searches: the config every trial starts from, the searched fields, the sampler."""

    base: TrainConfig
    params: tuple[Param, ...]
    sampler: str = "tpe"
    seed: int | None = None

    def definition(self) -> dict[str, Any]:
        """JSON for the study's ``sweep`` attribute (searched fields left out of the base)."""
        searched = {p.name for p in self.params}
        return {"version": 1, "objective": "val_accuracy", "sampler": self.sampler, "seed": self.seed,
                "space": [p.spec for p in self.params],
                "base": {k: v for k, v in self.base.to_dict().items() if k not in searched}}

    @classmethod
    def from_definition(cls, d: dict[str, Any]) -> Sweep:
        params = tuple(parse_param(s) for s in d["space"])
        return cls(TrainConfig.from_dict(d["base"], "the study's stored base config"), params, d["sampler"],
                   d.get("seed"))

    def config(self, values: dict[str, Any]) -> TrainConfig:
        """The config of one trial: the base with the sampled ``values``."""
        return self.base.replace(**values)

    def make_sampler(self, worker: int = 0, started: int = 0) -> Any:
        """The Optuna sampler. TPE and random are seeded per worker and by the number of trials ``started``
        before it joined, so no two workers draw the same values; the grid has the same seed everywhere
        (all workers must agree on its order)."""
        import numpy as np
        import optuna

        if self.sampler == "grid":
            return optuna.samplers.GridSampler(grid_space(self.params), seed=self.seed or 0)
        seed = None if self.seed is None else int(np.random.SeedSequence([self.seed, worker, started])
                                                   .generate_state(1)[0])
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def difference(self, other: dict[str, Any]) -> str | None:
        """What differs between this sweep and a stored definition, in words (None when they agree)."""
        mine = self.definition()
        if mine["space"] != other.get("space"):
            return (f"it searches {' '.join(other.get('space', [])) or 'nothing'}, not "
                    f"{' '.join(mine['space']) or 'nothing'}")
        for key in sorted(set(mine["base"]) | set(other.get("base", {}))):
            if mine["base"].get(key) != other.get("base", {}).get(key):
                return (f"its trials start from {key} = {other.get('base', {}).get(key)!r}, not "
                        f"{mine['base'].get(key)!r}")
        if (mine["sampler"], mine["seed"]) != (other.get("sampler"), other.get("seed")):
            return f"it uses sampler {other.get('sampler')} (seed {other.get('seed')}), not {mine['sampler']} " \
                   f"(seed {mine['seed']})"
        return None


class Interrupts:
    """Ctrl-C (or the parent's SIGTERM) for a worker: it stops a trial's training at once, but is held while
    Optuna does its bookkeeping (asking, telling: Optuna cannot be cut short there) until ``check()``;
    a second one stops at once anyway."""

    def __init__(self) -> None:
        self.pending = self.training = False

    def handler(self, signum: int, frame: Any) -> None:
        if self.training or self.pending:
            self.training = False
            raise KeyboardInterrupt
        self.pending = True

    @contextlib.contextmanager
    def installed(self, signum: int = signal.SIGINT) -> Iterator[None]:
        """This handler for ``signum`` in the block (the previous one restored after it)."""
        self.pending = self.training = False
        previous = signal.signal(signum, self.handler)
        try:
            yield
        finally:
            signal.signal(signum, previous)

    @contextlib.contextmanager
    def training_run(self) -> Iterator[None]:
        """The block (a trial's training) that a Ctrl-C interrupts at once."""
        self.check()
        self.training = True
        try:
            yield
        finally:
            self.training = False

    def check(self) -> None:
        """KeyboardInterrupt if a Ctrl-C is being held."""
        if self.pending:
            raise KeyboardInterrupt


#: The worker process's interrupts (``installed`` by models.sweep around its work).
INTERRUPTS = Interrupts()


# ------------------------------------------------------------------ storage
def safe_url(url: str) -> str:
    """The storage URL with its password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL at all: show only its scheme
        return url.split("://", 1)[0] + "://..." if "://" in url else "<not a URL>"


@functools.cache
def _queue_storage_class() -> type:
    from optuna.storages import RDBStorage

    class QueueStorage(RDBStorage):
        """An RDBStorage whose workers run queued trials only: creating a trial without a template (what
        ``Study.ask`` does when the queue is empty) raises ``NoQueuedTrial``. On SQLite, which has no row
        locks (Optuna's ``SELECT ... FOR UPDATE``), each change of a trial's state holds ``state_lock`` (a
        file lock): else two workers can both take the same queued trial, or both fail the same stale one."""

        state_lock: str | None = None
        claimed: list[int]  # the trials this process took from the queue (for Ctrl-C); set by open_storage

        def _create_new_trial(self, study_id: int, template_trial: Any = None, *args: Any, **kwargs: Any) -> Any:
            # what both create_new_trial and Optuna's cache in front of this storage call
            if template_trial is None:
                raise NoQueuedTrial()
            return super()._create_new_trial(study_id, template_trial, *args, **kwargs)

        def set_trial_state_values(self, trial_id: int, state: Any, values: Any = None) -> bool:
            if self.state_lock is None:
                changed = super().set_trial_state_values(trial_id, state, values)
            else:
                import fcntl

                with open(self.state_lock, "ab") as f:
                    fcntl.flock(f, fcntl.LOCK_EX)  # released when the file is closed
                    changed = super().set_trial_state_values(trial_id, state, values)
            if changed and state.name == "RUNNING":
                self.claimed.append(trial_id)
            return changed

    return QueueStorage


def _sqlite_file(url: str) -> str | None:
    """The database file of an SQLite URL (None for another database, or one in memory)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return u.database if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:") else None


def open_storage(url: str, heartbeat: int) -> Any:
    """An Optuna RDB storage for ``url`` with heartbeats every ``heartbeat`` seconds; SweepError (one line,
    password hidden) when the database cannot be opened."""
    import inspect

    import sqlalchemy.exc
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    # Optuna < 4.9 names the stale-trial callback failed_trial_callback
    callback = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in inspect.signature(
        RDBStorage.__init__).parameters else "failed_trial_callback"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            storage = _queue_storage_class()(url, engine_kwargs=kwargs, heartbeat_interval=heartbeat,
                                             **{callback: requeue})
        storage.claimed = []
        database = _sqlite_file(url)
        if database is not None:
            with storage.engine.connect() as connection:  # readers and the writer do not wait for each other
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            if sys.platform != "win32":
                storage.state_lock = os.path.join(os.path.dirname(os.path.abspath(database)),
                                                  f".{os.path.basename(database)}.lock")
        return storage
    except ImportError as e:
        missing = getattr(e.__cause__, "name", None) or getattr(e, "name", None)
        hint = {"psycopg": "pip install 'psycopg[binary]'", "psycopg2": "pip install psycopg2-binary",
                "MySQLdb": "pip install mysqlclient (or PyMySQL, with mysql+pymysql://)"}
        reason = (f"its Python driver{f' ({missing})' if missing else ''} is not installed"
                  + (f"; {hint.get(missing, f'pip install {missing}')}" if missing else ""))
    except sqlalchemy.exc.ArgumentError:
        reason = "not a database URL (e.g. sqlite:///sweep.db or postgresql://user:password@host/database)"
    except sqlalchemy.exc.SQLAlchemyError as e:
        orig = getattr(e, "orig", None)
        reason = str(orig if orig is not None else e).strip().splitlines()[0]
    except (ValueError, RuntimeError) as e:  # a schema of another Optuna version, a bad option in the URL
        reason = str(e).strip().splitlines()[0]
    raise SweepError(f"--storage {safe_url(url)}: cannot open the database: {reason}")


def _add_queued(study: Any, n: int) -> None:
    import optuna

    study.add_trials([optuna.create_trial(state=optuna.trial.TrialState.WAITING) for _ in range(n)])


def open_study(storage: Any, name: str, sweep: Sweep | None, trials: int | None, *, heartbeat: int,
               pruner: Any, worker: int = 0, say: Callable[[str], None] = print) -> tuple[Any, Sweep]:
    """Create study ``name`` for ``sweep`` with ``trials`` queued (default 20, a grid's size), or join it when
    it exists and searches the same (``sweep`` None: continue it as stored). ``trials`` larger than the
    study's plan queues the difference. Returns the study (with this worker's sampler) and its sweep."""
    import optuna

    where = f"study {name!r} in {safe_url(storage.url)}"
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        study_id = None
    if study_id is None:
        if sweep is None:
            raise SweepError(f"--resume: there is no {where} to continue")
        planned = trials or _default_trials(sweep)
        try:
            study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], name)
        except optuna.exceptions.DuplicatedStudyError:  # another worker created it first: join it
            pass
        else:
            storage.set_study_user_attr(study_id, "trials", planned)
            storage.set_study_user_attr(study_id, "heartbeat", heartbeat)
            study = optuna.load_study(study_name=name, storage=storage, sampler=sweep.make_sampler(worker),
                                      pruner=pruner)
            _add_queued(study, planned)
            storage.set_study_user_attr(study_id, "sweep", sweep.definition())  # last: the study is ready
            say(f"{where}: created, {planned} trials queued")
            return study, sweep
    stored = _wait_for_definition(storage, study_id, where)
    if sweep is None:
        try:
            sweep = Sweep.from_definition(stored)
        except (ConfigError, KeyError, TypeError) as e:
            raise SweepError(f"{where} holds a sweep definition this version cannot read: {e}") from None
    else:
        diff = sweep.difference(stored)
        if diff is not None:
            raise SweepError(f"{where}: {diff}; continue it as stored with --resume, or start another with --study "
                             f"NAME (or another --out)")
    from optuna.trial import TrialState

    started = len(storage.get_all_trials(study_id, deepcopy=False, states=tuple(s for s in TrialState
                                                                                 if s != TrialState.WAITING)))
    study = optuna.load_study(study_name=name, storage=storage, sampler=sweep.make_sampler(worker, started),
                              pruner=pruner)
    planned = int(study.user_attrs.get("trials", 0))
    if trials is not None and trials != planned:
        if trials < planned:
            raise SweepError(f"--trials {trials}: {where} already plans {planned} trials; a study cannot shrink")
        _add_queued(study, trials - planned)
        study.set_user_attr("trials", trials)
        say(f"{where}: {trials - planned} more trials queued ({trials} in all)")
    else:
        say(f"{where}: joined ({_progress(study)})")
    return study, sweep


def _default_trials(sweep: Sweep) -> int:
    return grid_size(sweep.params) if sweep.sampler == "grid" else 20


def _wait_for_definition(storage: Any, study_id: int, where: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAITING_FOR_DEFINITION
    while True:
        attrs = storage.get_study_user_attrs(study_id)
        if "sweep" in attrs:
            return attrs["sweep"]
        if time.monotonic() > deadline:
            raise SweepError(f"{where} holds no sweep definition (not made by models.sweep, or its creator was "
                             f"killed while making it); choose another --study")
        time.sleep(0.5)


def _progress(study: Any) -> str:
    from collections import Counter

    counts = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials"


# ------------------------------------------------------------------ the queue
def requeue(study: Any, trial: Any) -> None:
    """Queue a failed trial again with the same parameters (a trial whose worker died or was interrupted);
    ``retry_of`` (user attribute) names the original trial, whose run folder the retry reuses."""
    import optuna

    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RETRIES:
        return
    original = trial.user_attrs.get("retry_of", trial.number)
    study.add_trial(optuna.create_trial(
        state=optuna.trial.TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        system_attrs={**trial.system_attrs, "failed_trial": history[0], "retry_history": history},
        user_attrs={"retry_of": original}))


def _fail_stale(study: Any) -> None:
    import optuna
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _fail_interrupted(study: Any, storage: Any, claimed: list[int]) -> None:
    """Fail (where Optuna has not) and queue again the trials this process took and did not finish."""
    from optuna.trial import TrialState

    for trial_id in claimed:
        trial = storage.get_trial(trial_id)
        if trial.state == TrialState.RUNNING:
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            trial = storage.get_trial(trial_id)
        if trial.state == TrialState.FAIL and "error" not in trial.user_attrs:
            requeue(study, trial)


def work(study: Any, storage: Any, objective: Callable[[Any], float], *, heartbeat: int,
         say: Callable[[str], None] = print) -> None:
    """Run queued trials of ``study`` (whose storage is ``storage``, from ``open_storage``) until none is
    queued or running (waiting, meanwhile, for running trials elsewhere: a worker that died leaves its
    trial to be failed and queued again). On Ctrl-C the trial running here is failed and queued again,
    and KeyboardInterrupt propagates."""
    from optuna.trial import TrialState

    idle_since = None
    storage.claimed = []
    try:
        while True:
            INTERRUPTS.check()
            _fail_stale(study)
            states = [t.state for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,
                                                                                TrialState.RUNNING))]
            if TrialState.WAITING in states:
                idle_since = None
                storage.claimed = []
                try:
                    study.optimize(objective, n_trials=1, catch=(Exception,))
                except NoQueuedTrial:  # another worker took the last queued trial
                    pass
            elif states:
                if idle_since is None:
                    idle_since = time.monotonic()
                    say(f"waiting for {len(states)} running trial(s) to end (a dead worker's trial is queued "
                        f"again {2 * heartbeat} s after its last heartbeat)")
                time.sleep(0.5)
            else:
                return
    except KeyboardInterrupt:
        _fail_interrupted(study, storage, storage.claimed)
        raise

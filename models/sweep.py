"""Hyper-parameter sweeps on Optuna: ``python -m models.sweep --param lr=loguniform:1e-4:1e-1 [train flags]``.

Each ``--param NAME=DISTRIBUTION`` searches one ``TrainConfig`` field (syntax: ``models.space``);
every other field comes from ``--preset``, ``--config`` and the flags, exactly as for
``models.train``. Each trial is one ``models.run.run`` into ``--out/trials/NNNN/`` (its folder is
the trial's ``run_dir`` user attribute), reports its validation accuracy after each epoch
(hopeless trials are pruned by the median rule) and scores the final model's validation accuracy
(test accuracy is recorded, never optimized): ``models.sweep_worker``. ``--jobs K`` runs K worker
processes; ``--storage URL --study NAME`` lets workers on other machines join the same study
(``models.study``). At the end: ``report.txt``, ``best.toml`` and the plots in ``--out``
(``models.sweep_report``). Errors are one line with exit status 2 (130 on Ctrl-C: finished trials
are kept, running ones failed and queued again for ``--resume``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.allocator import keep_freed_memory
from models.config import KINDS, ConfigError, TrainConfig, display
from models.files import describe_os_error
from models.presets import flag_name
from models.space import Param, grid_size, parse_space
from models.study import INTERRUPTS, Sweep, SweepError, open_storage, open_study, safe_url, work
from models.sweep_worker import Settings, make_objective, quiet_optuna, run_jobs

__all__ = ["main", "build_parser", "DEFAULT_STUDY", "STUDY_FILE"]

STUDY_FILE = "study.db"
DEFAULT_STUDY = "sweep"
DEFAULT_HEARTBEAT = 10
DEFAULT_VAL_FRACTION = 0.1
# models.train's own options that mean something here too (the others are refused)
_SHARED = {"config", "download_timeout", "list_presets", "print_config", "quiet", "plots", "out", "resume", "compiled"}


def _positive(flag: str, minimum: int = 1) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{flag} expects an integer >= {minimum}, got {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    from models.train import build_parser as train_parser

    p = argparse.ArgumentParser(
        prog="python -m models.sweep", parents=[train_parser()], conflict_handler="resolve",
        description="Search hyper-parameters with Optuna. --param NAME=DISTRIBUTION searches a config field; every "
                    "other field comes from --preset, --config and the flags, as for python -m models.train.",
        epilog="distributions: int:LOW:HIGH[:STEP], uniform:LOW:HIGH, loguniform:LOW:HIGH, choice:A|B|... (quote "
               "it: the shell reads |); a list field's option is a comma list: 'hidden=choice:128,64|256,128'")
    s = p.add_argument_group("sweep")
    s.add_argument("--param", action="append", default=[], metavar="NAME=DIST",
                   help="a config field to search and its distribution (repeat for more fields)")
    s.add_argument("--trials", type=_positive("--trials"), metavar="N",
                   help="trials in the study in all (default 20; a grid: its size)")
    s.add_argument("--jobs", type=int, default=1, metavar="K", help="worker processes on this machine (default 1)")
    s.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe", help="Optuna sampler (default tpe)")
    s.add_argument("--sampler-seed", type=int, metavar="N", help="seed of the sampler (default: random; grid: 0)")
    s.add_argument("--out", metavar="DIR", help="folder for the trials' run folders, the report and best.toml "
                                                "(default: new folder under runs/)")
    s.add_argument("--storage", metavar="URL", help=f"Optuna database URL (default: sqlite:///DIR/{STUDY_FILE}); "
                                                    f"e.g. postgresql://user:password@host/db to share a study")
    s.add_argument("--study", default=DEFAULT_STUDY, metavar="NAME", help=f"study name (default {DEFAULT_STUDY}); "
                                                                         "workers with the same one join it")
    s.add_argument("--resume", action="store_true", help="continue the study as stored (no --param or config flags)")
    s.add_argument("--heartbeat", type=_positive("--heartbeat"), metavar="SECONDS",
                   help=f"heartbeat interval; a trial silent for twice as long is failed and queued again "
                        f"(default {DEFAULT_HEARTBEAT}, or the study's)")
    s.add_argument("--no-prune", dest="prune", action="store_false", help="never prune trials")
    s.add_argument("--prune-startup", type=_positive("--prune-startup", 0), default=5, metavar="N",
                   help="complete trials before any is pruned (default 5)")
    s.add_argument("--prune-from", type=_positive("--prune-from"), default=2, metavar="EPOCH",
                   help="the first epoch at which a trial may be pruned (default 2)")
    s.add_argument("--trial-plots", action="store_true", help="also draw each trial's plots (slower)")
    s.add_argument("--quiet", action="store_true", help="no line per trial")
    s.add_argument("--no-plots", dest="plots", action="store_false", help="skip the sweep's plots")
    s.add_argument("--print-config", action="store_true", help="print the config the trials start from and exit")
    return p


# ------------------------------------------------------------------ setting up
def _given(args: argparse.Namespace) -> list[str]:
    """The config flags given on the command line."""
    return [k for k in KINDS if hasattr(args, k)]


def _check_train_only(args: argparse.Namespace) -> None:
    from models.train import build_parser as train_parser

    for dest, default in vars(train_parser().parse_args([])).items():
        if dest not in _SHARED and dest not in KINDS and getattr(args, dest, default) != default:
            raise ConfigError(f"{flag_name(dest)} is an option of models.train; a sweep does not take it")


def _base_config(args: argparse.Namespace, params: Sequence[Param], say: Any) -> TrainConfig:
    """The config trials start from (as models.train resolves it), checked against the searched fields."""
    from models.train import config_from_args

    for k in _given(args):
        if any(p.name == k for p in params):
            raise ConfigError(f"{flag_name(k)} is also searched by --param {k}=...; give one of them", k)
    base = config_from_args(args)
    if base.val_fraction == 0 and "val_fraction" not in {p.name for p in params}:
        if "val_fraction" in _given(args):
            raise ConfigError("--val-fraction must be > 0 for a sweep: it optimizes validation accuracy, never test "
                              "accuracy", "val_fraction")
        base = base.replace(val_fraction=DEFAULT_VAL_FRACTION)
        say(f"note: the config holds out no validation data; the sweep holds out {DEFAULT_VAL_FRACTION:g} of the "
            f"training data (--val-fraction)")
    if base.threads == 0 and "threads" not in _given(args):
        base = base.replace(threads=1)  # one BLAS thread per trial: trials run side by side
    for p in params:
        for v in p.values_to_check():
            if p.name == "val_fraction" and v == 0:
                raise ConfigError(f"--param {p.spec}: val_fraction must be > 0 in a sweep (it optimizes validation "
                                  f"accuracy)", p.name)
            try:
                base.replace(**{p.name: v})
            except ConfigError as e:
                if e.key == p.name:  # a problem of the value itself (not of its combination with another field)
                    raise ConfigError(f"--param {p.spec}: config key {p.name!r} {e.detail}", p.name) from None
    return base


def _new_out(label: str) -> Path:
    stem = Path("runs") / f"sweep-{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    for i in range(1000):
        candidate = stem if i == 0 else stem.with_name(f"{stem.name}-{i + 1}")
        if not candidate.exists():
            return candidate
    raise SweepError(f"could not find a new folder name like {stem}")  # pragma: no cover


def _prepare_out(out: Path, default_storage: bool, resume: bool) -> None:
    db = out / STUDY_FILE
    if resume and default_storage and not db.exists():
        raise SweepError(f"--resume: --out {display(out)} holds no study ({STUDY_FILE}); give the sweep's folder, "
                         f"or --storage URL")
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {display(out)} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (db.exists() or (out / "trials").is_dir()):
        raise SweepError(f"--out {display(out)} holds something other than a sweep; choose another --out")
    if default_storage:  # the database lives there (with --storage, the folder is made when a trial needs it)
        _make_out(out)


def _make_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SweepError(f"--out {display(out)}: {describe_os_error(e, path=False)}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_presets:
        from models.train import main as train_main

        return train_main(["--list-presets"])
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    out = None
    try:
        _check_train_only(args)
        if args.jobs < 1:
            raise ConfigError(f"--jobs must be >= 1 (worker processes), got {args.jobs}")
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise ConfigError("python -m models.sweep needs Optuna: pip install 'tinygrad-lite[sweep]'") from None
        if args.resume:
            extra = (["--param"] if args.param else []) + (["--config"] if args.config else []) + \
                (["--print-config"] if args.print_config else []) + [flag_name(k) for k in _given(args)]
            if extra:
                raise ConfigError(f"--resume continues the study as stored; do not give {', '.join(extra)}")
            if not (args.out or args.storage):
                raise ConfigError("--resume needs --out DIR (the sweep's folder) or --storage URL")
            sweep = None
        else:
            params = parse_space(args.param)
            if not params:
                raise ConfigError("give at least one --param NAME=DISTRIBUTION, e.g. --param lr=loguniform:1e-4:1e-1")
            base = _base_config(args, params, say)
            if args.print_config:
                print(base.to_toml(), end="")
                return 0
            sweep = Sweep(base, tuple(params), args.sampler, args.sampler_seed)
            if args.sampler == "grid":
                size = grid_size(params)
                if args.trials is not None and args.trials > size:
                    raise ConfigError(f"--trials {args.trials}: the grid has only {size} points")
        out = Path(args.out) if args.out else _new_out(sweep.base.dataset if sweep else args.study)
        _prepare_out(out, args.storage is None, args.resume)
        url = args.storage or f"sqlite:///{os.path.abspath(out / STUDY_FILE)}"
        quiet_optuna()
        storage = open_storage(url, args.heartbeat or DEFAULT_HEARTBEAT)
        study_id = _study_id(storage, args.study)
        stored_heartbeat = storage.get_study_user_attrs(study_id).get("heartbeat") if study_id is not None else None
        if args.heartbeat and stored_heartbeat and args.heartbeat != stored_heartbeat:
            raise SweepError(f"--heartbeat {args.heartbeat}: study {args.study!r} uses {stored_heartbeat} s, and all "
                             f"its workers must agree (a shorter one would fail trials that are still running)")
        heartbeat = args.heartbeat or stored_heartbeat or DEFAULT_HEARTBEAT
        if heartbeat != storage.heartbeat_interval:
            storage = open_storage(url, heartbeat)
        settings = Settings(os.path.abspath(out), url, args.study, heartbeat, args.quiet, args.trial_plots,
                            args.prune, args.prune_startup, args.prune_from, args.download_timeout,
                            compiled=args.compiled)
        study, sweep = open_study(storage, args.study, sweep, args.trials, heartbeat=heartbeat,
                                  pruner=settings.pruner(), say=say)
        keep_freed_memory()
        if args.jobs == 1:
            with INTERRUPTS.installed():
                work(study, storage, make_objective(sweep, settings), heartbeat=heartbeat, say=say)
        else:
            run_jobs(settings, args.jobs, storage)
        from models.sweep_report import write_report

        _make_out(out)
        text, best = write_report(study, sweep, out, f"study {args.study!r} in {safe_url(url)}", plots=args.plots)
        say("\n" + text.rstrip())
        if best is None:
            errors = [t.user_attrs["error"] for t in study.get_trials(deepcopy=False) if "error" in t.user_attrs]
            raise SweepError("no trial completed" + (f"; the first error: {errors[0]}" if errors else ""))
    except KeyboardInterrupt:
        where = "" if out is None else f" (continue with --resume --out {display(out)}" + (
            f" --storage {safe_url(args.storage)} --study {args.study}" if args.storage else "") + ")"
        print(f"\ninterrupted; finished trials are kept in the study, the running ones marked failed and queued "
              f"again{where}", file=sys.stderr)
        return 130
    except (ConfigError, SweepError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {describe_os_error(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        if not type(e).__module__.startswith("sqlalchemy"):
            raise
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]  # the database failed mid-sweep
        print(f"error: the study's database: {reason}", file=sys.stderr)
        return 2
    return 0


def _study_id(storage: Any, name: str) -> int | None:
    try:
        return storage.get_study_id_from_name(name)
    except KeyError:
        return None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

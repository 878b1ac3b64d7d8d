"""Train an MLP or CNN classifier: ``python -m models.train [--preset NAME] [--config FILE.toml] [--flags...]``.

Every field of ``models.config.TrainConfig`` is a flag (``--batch-size 128``) and a key of the
TOML file; values come from the defaults, then the preset, then ``--config``, then the flags.
The run itself is ``models.run.run`` (what it writes: see there). Errors are one line on
stderr, naming the flag, key or file, with exit status 2 (130 when interrupted); the
previous results in ``--out`` are never touched by a run that does not finish.

Importable: ``run(config, out_dir)`` trains with a ``TrainConfig`` and returns the metrics.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from models import registry
from models.allocator import keep_freed_memory
from models.checkpoint import CheckpointError
from models.config import DEFAULTS, HELP, KINDS, ConfigError, TrainConfig, display, read_toml, toml_text
from models.files import describe_os_error
from models.presets import PRESETS, REFERENCE, flag_name, resolve_config
from models.run import DOWNLOAD_DEADLINE, DeadlineError, build_model, build_optimizer, load_data, resume_config, run
from models.rundir import RunDirError

__all__ = ["run", "main", "build_parser", "config_from_args", "resume_config", "build_model", "build_optimizer",
           "load_data"]


def _list_of(elem: type, key: str) -> Any:
    def parse(text: str) -> list:
        parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
        try:
            return [elem(p) for p in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag_name(key)} expects a comma-separated list of "
                                             f"{elem.__name__}, got {text!r}") from None
    parse.__name__ = f"list of {elem.__name__}"
    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"--download-timeout expects seconds >= 0 (0 = no limit), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m models.train",
        description="Train an MLP (or, with --model cnn, a CNN) classifier. Values come from the defaults, then "
                    "the preset, then --config, then the flags below.",
        epilog=f"presets: {', '.join(PRESETS)} (case-insensitive; aliases tiny=A, configurable=E, ...)")
    run_opts = p.add_argument_group("run")
    run_opts.add_argument("--config", metavar="FILE.toml", help="TOML file of config keys (flags override it)")
    run_opts.add_argument("--out", metavar="DIR", help="folder for everything the run writes (default: new "
                                                       "folder under runs/)")
    run_opts.add_argument("--overwrite", action="store_true", help="replace the results in --out once the new run "
                                                                   "has succeeded")
    run_opts.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    run_opts.add_argument("--quiet", action="store_true", help="no progress bar, no per-epoch lines")
    run_opts.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    run_opts.add_argument("--no-compile", dest="compiled", action="store_false",
                          help="run every training step eagerly instead of replaying it with tinygrad_lite.compile "
                               "(the same results; for debugging)")
    run_opts.add_argument("--tensorboard", action="store_true", help="also write TensorBoard event files into "
                                                                     "the run's tensorboard/ (needs tensorboardX)")
    run_opts.add_argument("--download-timeout", type=_seconds, default=DOWNLOAD_DEADLINE, metavar="SECONDS",
                          help=f"give up a dataset download after this long in all (default {DOWNLOAD_DEADLINE:g}; "
                               f"0 = no limit)")
    run_opts.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    run_opts.add_argument("--print-config", action="store_true", help="print the resolved config as TOML and exit")
    hyper = p.add_argument_group("configuration (all also settable in the TOML file)")
    for key, kind in KINDS.items():
        names = f"; one of {', '.join(registry.choices(key))}" if key in registry.CHOICE_KEYS else ""
        kw: dict[str, Any] = {"dest": key, "default": argparse.SUPPRESS, "help": f"{HELP[key]}{names} "
                              f"(default {DEFAULTS[key]!r})".replace("%", "%%")}
        if kind is bool:
            hyper.add_argument(flag_name(key), action=argparse.BooleanOptionalAction, **kw)
        elif kind in (tuple[int, ...], tuple[str, ...]):
            elem = int if kind == tuple[int, ...] else str
            hyper.add_argument(flag_name(key), type=_list_of(elem, key), metavar="N,N,..." if elem is int else
                               "NAME,...", **kw)
        else:
            hyper.add_argument(flag_name(key), type=kind, metavar=kind.__name__.upper(), **kw)
    return p


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in KINDS if hasattr(args, k)}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults < preset < --config file < flags (only the flags given); errors name the flag or file."""
    overrides = _flags(args)
    file_config = read_toml(args.config) if args.config else {}
    return resolve_config(overrides.pop("preset", None), file_config, overrides, flags=True, memory=True,
                          file_name=display(args.config) if args.config else "config file")


def _resume_config(args: argparse.Namespace) -> TrainConfig:
    """On --resume: the checkpoint's config, then the --config file and flags given now."""
    file_config = read_toml(args.config) if args.config else {}
    return resume_config(args.out, file_config, file_name=display(args.config) if args.config else "config file",
                         flags=True, **_flags(args))


def _list_presets() -> None:
    for name, preset in PRESETS.items():
        print(f"[{name}]  # reference: {REFERENCE.get(name)}")
        print(toml_text(preset))


def _unfinished(e: BaseException, out: str | None) -> str:
    staging = getattr(e, "unfinished", None)
    if staging is None:
        return ""
    target = f"--out {display(out)}" if out else f"--out {display(staging.parent / staging.name[1:-8])}"
    return f"; the unfinished run is kept in {display(staging)}: continue it with --resume {target}"


def _tensorboard_observer() -> Any:
    """The ``--tensorboard`` observer (a ConfigError naming the extra to install when tensorboardX is missing)."""
    from models.tensorboard import TensorBoardObserver

    return TensorBoardObserver()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()  # the training loop frees and re-allocates the same activations every step
    if args.list_presets:
        _list_presets()
        return 0
    try:
        if args.resume and not args.out:
            raise ConfigError("--resume needs --out DIR (the folder of the run to continue)")
        config = _resume_config(args) if args.resume else config_from_args(args)
        if args.print_config:
            print(config.to_toml(), end="")
            return 0
        observers = [_tensorboard_observer()] if args.tensorboard else []
        run(config, args.out, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet, plots=args.plots,
            download_timeout=args.download_timeout, observers=observers, compiled=args.compiled)
    except KeyboardInterrupt as e:
        where = args.out or "the run's folder"
        print(f"\ninterrupted; {display(where)} is unchanged" + (_unfinished(e, args.out) or
              " (nothing was saved yet)"), file=sys.stderr)
        return 130
    except (ConfigError, CheckpointError, RunDirError, DeadlineError, FloatingPointError, ValueError) as e:
        print(f"error: {e}{_unfinished(e, args.out)}", file=sys.stderr)
        return 2
    except MemoryError as e:
        print(f"error: out of memory (reduce --hidden or --batch-size){_unfinished(e, args.out)}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permission denied, a dataset file that cannot be read, ...
        unchanged = f" (--out {display(args.out)} is unchanged)" if args.out else ""
        print(f"error: {describe_os_error(e)}{unchanged}{_unfinished(e, args.out)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

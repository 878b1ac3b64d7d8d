"""Train an MLP classifier: ``python -m models.train [--preset NAME] [--config FILE.toml] [--flags...]``.

Configuration: ``models.presets`` (defaults < preset < TOML file < flags). Everything a run
writes goes to ``--out DIR`` (default: a new folder under ``runs/``):

- ``config.json``, ``config.toml``: the resolved configuration, seed included (the TOML file
  can be passed back with ``--config`` to repeat the run);
- ``checkpoint.npz``: the training state after the last logged epoch (``--resume`` continues it);
- ``model.npz``: the final model (best weights when early stopping restored them);
- ``metrics.json``: ``test_accuracy``, ``test_loss``, ``seconds`` (training wall time),
  ``epochs`` (per-epoch train/validation loss and accuracy), ``config``, and the confusion
  matrix, per-class errors and most confused pairs;
- ``report.txt`` and the plots ``curves.png``, ``confusion.png``, ``samples.png``.

A run never writes into a folder that already holds results unless ``--overwrite`` (or
``--resume``, which continues the run stored there).

Importable: ``run(config, out_dir)`` trains with a resolved config and returns the metrics.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_lite.nn as nn
from models import report
from models.allocator import keep_freed_memory
from models.checkpoint import (
    CheckpointError,
    atomic_write_text,
    check_architecture,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from models.mlp import MLP
from models.presets import (
    DEFAULTS,
    HELP,
    PRESETS,
    REFERENCE,
    TYPES,
    ConfigError,
    check_config,
    read_toml,
    resolve_config,
    to_toml,
)
from tinygrad_lite import optim
from tinygrad_lite.data import DatasetNotFoundError, augment, iterate_minibatches, load_dataset, train_val_split
from tinygrad_lite.tensor import from_numpy, no_grad

__all__ = ["run", "resume_config", "main", "build_parser", "build_model", "build_optimizer", "load_data",
           "evaluate_model", "learning_rate", "RunData", "OUTPUT_FILES"]

OUTPUT_FILES = ("config.json", "config.toml", "checkpoint.npz", "model.npz", "metrics.json", "report.txt",
                "curves.png", "confusion.png", "samples.png")


# ------------------------------------------------------------------ pieces
@dataclass
class RunData:
    """The arrays a run trains, validates and tests on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    source: str


def load_data(config: dict[str, Any]) -> RunData:
    """The dataset named by the config, cast to its dtype, with the validation split (seeded by ``seed``)."""
    d = load_dataset(config["dataset"], config["data_dir"] or None)
    dtype = np.dtype(config["dtype"])
    x_train, y_train = d.x_train.astype(dtype, copy=False), d.y_train
    x_val = y_val = None
    if config["val_fraction"]:
        x_train, y_train, x_val, y_val = train_val_split(
            x_train, y_train, config["val_fraction"], rng=np.random.default_rng([config["seed"], 1]))
    return RunData(x_train, y_train, x_val, y_val, d.x_test.astype(dtype, copy=False), d.y_test, d.classes,
                   d.source)


def model_sizes(config: dict[str, Any], n_in: int, n_out: int) -> list[int]:
    return [n_in, *config["hidden"], n_out]


def build_model(config: dict[str, Any], n_in: int, n_out: int, rng: np.random.Generator | None = None) -> MLP:
    """The MLP the config describes; ``rng`` draws the weights and, later, the dropout masks."""
    acts = config["activations"]
    return MLP(model_sizes(config, n_in, n_out), acts[0] if len(acts) == 1 else acts, dropout=config["dropout"],
               init=config["init"], seed=np.random.default_rng(config["seed"]) if rng is None else rng,
               dtype=np.dtype(config["dtype"]), std=config["init_std"])


def build_optimizer(config: dict[str, Any], model: nn.Module) -> optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or RMSprop with the config's parameters."""
    params, c = model.named_parameters(), config
    if c["optimizer"] == "sgd":
        return optim.SGD(params, lr=c["lr"], momentum=c["momentum"], nesterov=c["nesterov"],
                         weight_decay=c["weight_decay"])
    if c["optimizer"] == "adam":
        return optim.Adam(params, lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["eps"],
                          weight_decay=c["weight_decay"])
    return optim.RMSprop(params, lr=c["lr"], alpha=c["alpha"], eps=c["eps"], weight_decay=c["weight_decay"])


def learning_rate(config: dict[str, Any], step: int, epoch: int, total_steps: int) -> float:
    """η at optimizer step ``step`` (0-based) in epoch ``epoch`` (0-based).

    constant: η;  step: η γ^⌊epoch / step_size⌋;  cosine (per step):
    η_min + ½ (η − η_min)(1 + cos(π t / T)), T = total steps. A linear warm-up over the
    first ``warmup_steps`` steps multiplies any of them by (step + 1) / warmup_steps.
    """
    lr = config["lr"]
    if config["schedule"] == "step":
        lr *= config["gamma"] ** (epoch // config["step_size"])
    elif config["schedule"] == "cosine":
        lo = config["min_lr"]
        lr = lo + 0.5 * (lr - lo) * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    if step < config["warmup_steps"]:
        lr *= (step + 1) / config["warmup_steps"]
    return lr


def evaluate_model(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 5000
                   ) -> tuple[float, float, np.ndarray]:
    """(mean cross-entropy, accuracy, predictions) in eval mode, without gradients, in large batches."""
    was_training = model.training
    model.eval()
    total, preds = 0.0, []
    with no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(from_numpy(x[start:start + batch_size]))
            total += float(nn.cross_entropy(logits, y[start:start + batch_size], reduction="sum").data)
            preds.append(logits.data.argmax(axis=1))
    model.train(was_training)
    pred = np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
    n = max(len(x), 1)
    return total / n, float((pred == y).sum()) / n, pred


def _progress(total: int, desc: str, disable: bool):
    """A tqdm bar, or None when disabled or tqdm is not installed."""
    if disable:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, unit="batch", dynamic_ncols=True)


def blas_threads(n: int):
    """A context limiting BLAS to ``n`` threads (threadpoolctl, when installed); a no-op for 0."""
    import contextlib

    if not n:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("note: threads is set but threadpoolctl is not installed; using the BLAS default", file=sys.stderr)
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def _rng_state(g: np.random.Generator) -> dict[str, Any]:
    return g.bit_generator.state


def _set_rng_state(g: np.random.Generator, state: dict[str, Any]) -> None:
    g.bit_generator.state = state


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ------------------------------------------------------------------ the run
def prepare_out_dir(out: str | Path | None, config: dict[str, Any], *, resume: bool, overwrite: bool) -> Path:
    """The output folder: a new one under ``runs/`` by default; refuses to clobber a previous run's results."""
    if out is None:
        if resume:
            raise ConfigError("--resume needs --out DIR (the folder of the run to continue)")
        base = Path("runs") / f"{config['preset']}-{config['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
        for i in range(1000):
            path = base if i == 0 else base.with_name(f"{base.name}-{i + 1}")
            try:
                path.mkdir(parents=True, exist_ok=False)
                return path
            except FileExistsError:
                continue
        raise FileExistsError(f"could not create a new folder like {base}")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"--out {path} exists and is not a directory")
    if resume:
        if not (path / "checkpoint.npz").is_file():
            raise CheckpointError(f"--resume: {path / 'checkpoint.npz'} does not exist")
        remove_stale_temporaries(path)  # left by a run killed while it was saving
        return path
    if path.is_dir():
        existing = [f for f in OUTPUT_FILES if (path / f).exists()]
        if existing and not overwrite:
            raise FileExistsError(f"{path} already holds a run's results ({', '.join(existing)}); "
                                  f"pass --overwrite to replace them, --resume to continue, or choose another --out")
        if overwrite:
            for f in existing:
                (path / f).unlink()
            remove_stale_temporaries(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, flush=True)


def run(config: dict[str, Any], out_dir: str | Path | None = None, *, resume: bool = False, overwrite: bool = False,
        quiet: bool = False, progress: bool | None = None, plots: bool = True) -> dict[str, Any]:
    """Train with a resolved config (``presets.resolve_config``), write everything to ``out_dir``, return the metrics.

    Keys missing from ``config`` take ``DEFAULTS``. ``resume``: continue the run whose
    ``checkpoint.npz`` is in ``out_dir``; pass its config, changed where wanted (e.g. more
    epochs): ``run(resume_config(out_dir, epochs=10), out_dir, resume=True)``.
    ``progress``: a tqdm bar (default: when stdout is a terminal and not ``quiet``).
    """
    with blas_threads(config.get("threads", DEFAULTS["threads"])):
        return _run(config, out_dir, resume=resume, overwrite=overwrite, quiet=quiet, progress=progress, plots=plots)


def _run(config: dict[str, Any], out_dir: str | Path | None, *, resume: bool, overwrite: bool, quiet: bool,
         progress: bool | None, plots: bool) -> dict[str, Any]:
    ckpt = None
    if resume:
        if out_dir is None:
            raise ConfigError("resume needs out_dir (the folder of the run to continue)")
        ckpt = load_checkpoint(Path(out_dir) / "checkpoint.npz")
    config = check_config({**DEFAULTS, **config}, "config", partial=False)
    out = prepare_out_dir(out_dir, config, resume=resume, overwrite=overwrite)
    if progress is None:
        progress = not quiet and sys.stdout.isatty()

    data = load_data(config)
    n_in, n_out = data.x_train.shape[1], len(data.classes)
    sizes = model_sizes(config, n_in, n_out)
    model_rng = np.random.default_rng(config["seed"])  # weights, then dropout masks
    train_rng = np.random.default_rng([config["seed"], 2])  # shuffling and augmentation
    if ckpt is not None:
        check_architecture(ckpt, sizes, config["dtype"])
    model = build_model(config, n_in, n_out, model_rng)
    opt = build_optimizer(config, model)

    n_train = len(data.x_train)
    bs = config["batch_size"] or n_train
    steps_per_epoch = math.ceil(n_train / bs)
    total_steps = config["iterations"] or config["epochs"] * steps_per_epoch
    n_epochs = math.ceil(total_steps / steps_per_epoch)

    history: list[dict[str, Any]] = []
    start_epoch, step, seconds = 0, 0, 0.0
    best: dict[str, np.ndarray] | None = None
    best_val, best_epoch, bad_epochs, stopped = math.inf, 0, 0, False
    if ckpt is not None:
        model.load_state_dict(ckpt.params)
        try:
            opt.load_state_dict(ckpt.optim)
        except ValueError as e:
            raise CheckpointError(f"{ckpt.path}: optimizer state does not fit optimizer "
                                  f"{config['optimizer']!r}: {e}") from None
        s = ckpt.state
        start_epoch, step, seconds = ckpt.epoch, int(s.get("step", 0)), float(s.get("seconds", 0.0))
        history = list(s.get("history", []))
        _set_rng_state(model_rng, s["model_rng"])
        _set_rng_state(train_rng, s["train_rng"])
        best = dict(ckpt.best) or None
        best_val = math.inf if s.get("best_val") is None else float(s["best_val"])
        best_epoch, bad_epochs, stopped = int(s.get("best_epoch", 0)), int(s.get("bad_epochs", 0)), bool(
            s.get("stopped", False))
        _say(f"resuming {out} from epoch {start_epoch} (step {step})", quiet)

    json_config = dict(config)
    atomic_write_text(out / "config.json", json.dumps(json_config, indent=2) + "\n")
    atomic_write_text(out / "config.toml", to_toml(json_config))
    _say(f"{config['preset']} on {config['dataset']} ({n_train} train"
         + (f", {len(data.x_val)} validation" if data.x_val is not None else "")
         + f", {len(data.x_test)} test): MLP {'-'.join(map(str, sizes))} {','.join(config['activations'])}, "
           f"{config['optimizer']} lr {config['lr']:g}, batch {bs}, {n_epochs} epochs ({total_steps} steps) → {out}",
         quiet)

    def state() -> dict[str, Any]:
        return {"step": step, "seconds": seconds, "history": history, "model_rng": _rng_state(model_rng),
                "train_rng": _rng_state(train_rng), "best_val": _json_safe(best_val), "best_epoch": best_epoch,
                "bad_epochs": bad_epochs, "stopped": stopped}

    def save(path: Path, epoch: int) -> None:
        save_checkpoint(path, model.state_dict(), opt.state_dict(), epoch, json_config, state(), best)

    width = len(str(n_epochs))
    epoch = start_epoch
    for epoch in range(start_epoch, n_epochs):
        if stopped or step >= total_steps:
            break
        t0 = time.perf_counter()
        model.train()
        x_epoch = data.x_train
        if config["augment"]:
            x_epoch = augment(x_epoch, train_rng, config["augment_shift"], config["augment_rotation"])
        batches = iterate_minibatches(x_epoch, data.y_train, bs, rng=train_rng, shuffle=config["shuffle"])
        n_batches = min(steps_per_epoch, total_steps - step)
        bar = _progress(n_batches, f"epoch {epoch + 1:>{width}}/{n_epochs}", not progress or n_batches < 2)
        loss_sum, correct, seen = 0.0, 0, 0
        for b, (xb, yb) in enumerate(batches):
            if b >= n_batches:
                break
            opt.lr = learning_rate(config, step, epoch, total_steps)
            logits = model(from_numpy(xb))  # a batch is read, never copied
            loss = nn.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            m = len(yb)
            loss_sum += float(loss.data) * m
            correct += int((logits.data.argmax(axis=1) == yb).sum())
            seen += m
            if bar is not None:
                bar.update(1)
                if b % 10 == 0 or b == n_batches - 1:
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}%", refresh=False)
        if bar is not None:
            bar.close()
        if not math.isfinite(loss_sum):
            raise FloatingPointError(f"training diverged in epoch {epoch + 1} (loss {loss_sum / max(seen, 1)}); "
                                     f"try a smaller lr than {config['lr']:g}")
        entry: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
                                 "val_loss": None, "val_accuracy": None, "lr": opt.lr, "steps": step}
        if data.x_val is not None:
            vl, va, _ = evaluate_model(model, data.x_val, data.y_val, config["eval_batch_size"])
            entry["val_loss"], entry["val_accuracy"] = vl, va
            if config["patience"]:
                if vl < best_val:
                    best_val, best_epoch, bad_epochs = vl, epoch + 1, 0
                    best = model.state_dict()
                else:
                    bad_epochs += 1
                    stopped = bad_epochs >= config["patience"]
        seconds += time.perf_counter() - t0
        entry["seconds"] = seconds
        history.append(entry)
        last = stopped or step >= total_steps
        if (epoch + 1) % config["log_every"] == 0 or last:
            line = (f"epoch {epoch + 1:>{width}}/{n_epochs}  train loss {entry['train_loss']:.4f} "
                    f"acc {100 * entry['train_accuracy']:.2f}%")
            if entry["val_loss"] is not None:
                line += f"  val loss {entry['val_loss']:.4f} acc {100 * entry['val_accuracy']:.2f}%"
            line += f"  lr {opt.lr:.3g}  {seconds:.1f}s"
            if stopped:
                line += f"  (early stop: no better validation loss for {bad_epochs} epochs)"
            _say(line, quiet)
            t1 = time.perf_counter()
            save(out / "checkpoint.npz", epoch + 1)
            seconds += time.perf_counter() - t1
    completed = len(history)

    restored = False
    if config["patience"] and config["restore_best"] and best is not None and best_epoch != completed:
        model.load_state_dict(best)
        restored = True
        _say(f"restored the weights of epoch {best_epoch} (validation loss {best_val:.4f})", quiet)
    save(out / "checkpoint.npz", completed)
    save(out / "model.npz", completed)

    test_loss, test_acc, pred = evaluate_model(model, data.x_test, data.y_test, config["eval_batch_size"])
    k = len(data.classes)
    cm = report.confusion_matrix(data.y_test, pred, k)
    text = report.format_report(test_acc, test_loss, cm, data.classes)
    metrics = {
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "seconds": seconds,
        "epochs": history,
        "config": json_config,
        "dataset": config["dataset"],
        "data_source": data.source,
        "sizes": sizes,
        "n_train": n_train,
        "n_val": 0 if data.x_val is None else len(data.x_val),
        "n_test": len(data.x_test),
        "steps": step,
        "best_epoch": best_epoch if config["patience"] else None,
        "restored_best": restored,
        "stopped_early": stopped,
        "classes": list(data.classes),
        "confusion_matrix": cm.tolist(),
        "per_class_errors": report.per_class_errors(cm).tolist(),
        "most_confused": [{"true": t, "predicted": p, "count": c} for t, p, c in report.most_confused(cm)],
        "reference": REFERENCE.get(config["preset"]),
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    atomic_write_text(out / "report.txt", text + "\n")
    if plots:
        if report.have_matplotlib():
            report.plot_curves(history, out / "curves.png")
            report.plot_confusion(cm, data.classes, out / "confusion.png")
            report.plot_samples(data.x_test, data.y_test, pred, data.classes, out / "samples.png")
        else:
            _say("matplotlib is not installed: no plots (pip install 'tinygrad-lite[train]')", quiet)
    _say("\n" + text, quiet)
    _say(f"\ntest accuracy {100 * test_acc:.2f}%, loss {test_loss:.4f}, training {seconds:.1f}s; results in {out}",
         quiet)
    return metrics


# ------------------------------------------------------------------ CLI
def _list_of(elem: type, key: str):
    def parse(text: str) -> list:
        parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
        try:
            return [elem(p) for p in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{key.replace('_', '-')} expects a comma-separated list of "
                                             f"{elem.__name__}, got {text!r}") from None
    parse.__name__ = f"list of {elem.__name__}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m models.train",
        description="Train an MLP classifier. Values come from the defaults, then the preset, then --config, "
                    "then the flags below.",
        epilog=f"presets: {', '.join(PRESETS)} (case-insensitive; aliases tiny=A, configurable=E, ...)")
    run_opts = p.add_argument_group("run")
    run_opts.add_argument("--config", metavar="FILE.toml", help="TOML file of config keys (flags override it)")
    run_opts.add_argument("--out", metavar="DIR", help="folder for everything the run writes (default: new "
                                                       "folder under runs/)")
    run_opts.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    run_opts.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    run_opts.add_argument("--quiet", action="store_true", help="no progress bar, no per-epoch lines")
    run_opts.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    run_opts.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    hyper = p.add_argument_group("configuration (all also settable in the TOML file)")
    for key, t in TYPES.items():
        flag = "--" + key.replace("_", "-")
        kw: dict[str, Any] = {"dest": key, "default": argparse.SUPPRESS, "help": f"{HELP[key]} "
                              f"(default {DEFAULTS[key]!r})".replace("%", "%%")}
        if t is bool:
            hyper.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif t == "list[int]":
            hyper.add_argument(flag, type=_list_of(int, key), metavar="N,N,...", **kw)
        elif t == "list[str]":
            hyper.add_argument(flag, type=_list_of(str, key), metavar="NAME,...", **kw)
        else:
            hyper.add_argument(flag, type=t, metavar=t.__name__.upper(), **kw)
    return p


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Resolve DEFAULTS < preset < --config file < flags (only the flags actually given)."""
    overrides = {k: getattr(args, k) for k in TYPES if hasattr(args, k)}
    file_config = read_toml(args.config) if args.config else {}
    return resolve_config(overrides.pop("preset", None), file_config, overrides,
                          file_name=str(args.config) if args.config else "config file")


def resume_config(out_dir: str | Path, file_config: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """The config stored in ``out_dir/checkpoint.npz``, then ``file_config``, then ``changes`` (checked)."""
    ckpt = load_checkpoint(Path(out_dir) / "checkpoint.npz")
    base = check_config(ckpt.config, f"{ckpt.path} config")
    file_config = check_config(file_config or {}, "config file")
    changes = check_config(changes, "command line")
    if "preset" in changes or "preset" in file_config:
        raise ConfigError("--resume continues the stored config; do not give --preset")
    return check_config({**DEFAULTS, **base, **file_config, **changes}, "config", partial=False)


def _resume_config(args: argparse.Namespace) -> dict[str, Any]:
    """On --resume: the checkpoint's config, then the --config file and flags given now."""
    file_config = read_toml(args.config) if args.config else {}
    return resume_config(args.out, file_config, **{k: getattr(args, k) for k in TYPES if hasattr(args, k)})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()  # the training loop frees and re-allocates the same activations every step
    if args.list_presets:
        for name, preset in PRESETS.items():
            print(f"{name:8s} {json.dumps(preset)}\n{'':8s} reference: {REFERENCE.get(name)}")
        return 0
    try:
        config = _resume_config(args) if args.resume and args.out else config_from_args(args)
        run(config, args.out, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet, plots=args.plots)
    except (ConfigError, CheckpointError, DatasetNotFoundError, FileExistsError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # e.g. a corrupted IDX file
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; the last checkpoint is kept (continue with --resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

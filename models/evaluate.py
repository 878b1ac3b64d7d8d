"""Evaluate a saved model on a dataset: ``python -m models.evaluate MODEL [--dataset NAME] [--split test]``.

MODEL is a run folder (its ``model.safetensors``), a ``model.safetensors`` or
``checkpoint.safetensors``, or an earlier version's ``.npz``. Prints accuracy, loss, the
confusion matrix, per-class error counts and the most confused pairs (``--json``: the metrics
as JSON). The dataset defaults to the one the model was trained on; another one must have the
same number of inputs and classes, and a warning says when its classes differ in meaning.
``--out DIR`` also writes ``evaluation.json``, ``report.txt`` and the plots into a new folder
(``--overwrite`` to replace those files in an existing one, all or nothing); nothing is ever
written into a run's folder unless you name it there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models import registry, report
from models.checkpoint import CheckpointError, load_checkpoint, model_file
from models.config import ConfigError, TrainConfig, display
from models.files import atomic_write, describe_os_error
from models.loop import evaluate_model
from models.run import DOWNLOAD_DEADLINE, DeadlineError, blas_threads, build_model, deadline, model_input_shape
from models.rundir import RunDir, RunDirError

__all__ = ["evaluate_checkpoint", "main", "EVALUATION_FILES"]

EVALUATION_FILES = ("evaluation.json", "report.txt", "confusion.png", "samples.png")


def evaluate_checkpoint(path: str | Path, dataset: str | None = None, data_dir: str | None = None,
                        split: str = "test", batch_size: int = 5000, *, warn: Any = None,
                        download_timeout: float = DOWNLOAD_DEADLINE) -> dict[str, Any]:
    """Load the model in ``path``, check it against its own config, and evaluate it on ``dataset``'s ``split``.

    ``dataset`` defaults to the one it was trained on; another one must match its inputs and
    class count (else ConfigError), and ``warn(message)`` is called when its classes differ.
    Returns ``accuracy``, ``loss``, ``confusion_matrix``, ``per_class_errors``, ``most_confused``,
    ``classes``, ``predictions``, ``images``, ``labels``, ``config`` and more.
    """
    from tinygrad_lite.data import load_dataset

    ckpt = load_checkpoint(model_file(path))
    if not ckpt.config:
        raise CheckpointError(f"{ckpt.path}: holds no config (a plain weights file); evaluate needs a file "
                              f"models.train wrote")
    try:
        config = TrainConfig.from_dict(ckpt.config, f"{ckpt.path}: stored config")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    name = dataset or config.dataset
    if name not in registry.dataset_names():
        raise ConfigError(f"--dataset: unknown dataset {name!r}; valid names: {', '.join(registry.dataset_names())}")
    if split not in ("train", "test"):
        raise ConfigError(f"--split must be 'train' or 'test', got {split!r}")
    trained, info = registry.dataset_info(config.dataset), registry.dataset_info(name)
    n_in = trained.n_inputs  # what the stored config's model was built for (load_checkpoint checked the shapes)
    if info.n_inputs != n_in or len(info.classes) != len(trained.classes):
        raise ConfigError(f"--dataset {name}: the model ({ckpt.path}) takes {n_in} inputs and predicts "
                          f"{len(trained.classes)} classes of {config.dataset}; {name} has {info.n_inputs} inputs and "
                          f"{len(info.classes)} classes")
    if name != config.dataset and warn is not None:
        same = info.classes == trained.classes
        warn(f"warning: the model was trained on {config.dataset}, evaluated here on {name}"
             + ("" if same else f" — whose classes mean something else ({', '.join(info.classes[:3])}, ... vs "
                                f"{', '.join(trained.classes[:3])}, ...): expect accuracy near chance"))
    given = data_dir if data_dir is not None else (config.data_dir if name == config.dataset else None)
    with deadline(download_timeout, lambda: f"the download of {name} did not finish within {download_timeout:g} s"):
        d = load_dataset(name, given or None)
    x, y = (d.x_test, d.y_test) if split == "test" else (d.x_train, d.y_train)
    x = x.astype(np.dtype(config.dtype), copy=False)
    model = build_model(config, x.shape[1], len(d.classes))
    model.load_state_dict(ckpt.params)
    shape = model_input_shape(config, [x.shape[1], *config.hidden, len(d.classes)])
    with blas_threads(config.threads):
        loss, acc, pred = evaluate_model(model, x, y, batch_size, shape)
    cm = report.confusion_matrix(y, pred, len(d.classes))
    return {"checkpoint": ckpt.path, "dataset": name, "trained_on": config.dataset, "split": split,
            "accuracy": acc, "loss": loss, "n": len(y), "classes": list(d.classes), "confusion_matrix": cm.tolist(),
            "per_class_errors": report.per_class_errors(cm).tolist(),
            "most_confused": [{"true": t, "predicted": p, "count": c} for t, p, c in report.most_confused(cm)],
            "epoch": ckpt.epoch, "config": config.to_dict(), "predictions": pred, "images": x, "labels": y}


def _write(out: str, overwrite: bool, r: dict[str, Any], text: str, images: np.ndarray, labels: np.ndarray,
           pred: np.ndarray) -> Path:
    with RunDir(out, EVALUATION_FILES) as rd:
        if rd.out.is_dir() and any(rd.out.iterdir()) and not overwrite:
            raise RunDirError(f"{rd.label} already exists; pass --overwrite to write the evaluation files into it "
                              f"(its other files are kept), or choose a new folder")
        staging = rd.start()
        try:
            atomic_write(staging / "evaluation.json", (json.dumps(r, indent=2) + "\n").encode("utf-8"))
            atomic_write(staging / "report.txt", (text + "\n").encode("utf-8"))
            if report.have_matplotlib():
                cm = np.asarray(r["confusion_matrix"])
                report.plot_confusion(cm, r["classes"], staging / "confusion.png")
                report.plot_samples(images, labels, pred, r["classes"], staging / "samples.png")
            rd.commit()
        except BaseException:
            rd.discard()
            raise
    return rd.out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a run folder, or a .safetensors (or older .npz) written by models.train")
    p.add_argument("--dataset", help=f"dataset to evaluate on ({', '.join(registry.dataset_names())}; default: the "
                                     f"one it was trained on)")
    p.add_argument("--data-dir", help="directory holding the dataset's IDX files")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--out", help="also write evaluation.json, report.txt and plots into this new folder")
    p.add_argument("--overwrite", action="store_true", help="with --out: replace those files in an existing folder")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = p.parse_args(argv)
    try:
        if args.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
        if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
            raise RunDirError(f"--out {display(args.out)} exists and is not a folder")
        r = evaluate_checkpoint(args.model, args.dataset, args.data_dir, args.split, args.batch_size,
                                warn=lambda msg: print(msg, file=sys.stderr))
        pred, images, labels = r.pop("predictions"), r.pop("images"), r.pop("labels")
        cm = np.asarray(r["confusion_matrix"])
        text = report.format_report(r["accuracy"], r["loss"], cm, r["classes"], title=r["split"])
        if args.json:
            print(json.dumps(r, indent=2))
        else:
            print(f"{r['checkpoint']} (epoch {r['epoch']}) on {r['dataset']} {r['split']}")
            print(text)
        if args.out:
            out = _write(args.out, args.overwrite, r, text, images, labels, pred)
            print(f"wrote {', '.join(EVALUATION_FILES)} to {display(out)}", file=sys.stderr)
    except (ConfigError, CheckpointError, RunDirError, DeadlineError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {describe_os_error(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

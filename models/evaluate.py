"""Evaluate a checkpoint on any dataset: ``python -m models.evaluate CHECKPOINT [--dataset NAME] [--split test]``.

Prints accuracy, loss, the confusion matrix, per-class error counts and the most confused
pairs; ``--out DIR`` also writes ``evaluation.json`` and the confusion-matrix and sample-grid
plots there; ``--json`` prints the metrics as JSON instead of text.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models import report
from models.checkpoint import CheckpointError, check_architecture, load_checkpoint
from models.presets import DEFAULTS, ConfigError, check_config
from models.train import blas_threads, build_model, evaluate_model, model_sizes
from tinygrad_lite.data import DatasetNotFoundError, dataset_names, load_dataset

__all__ = ["evaluate_checkpoint", "main"]


def evaluate_checkpoint(path: str | Path, dataset: str | None = None, data_dir: str | None = None,
                        split: str = "test", batch_size: int = 5000) -> dict[str, Any]:
    """Load the checkpoint, check it against its own config, and evaluate it on ``dataset``'s ``split``.

    Returns a dict with ``accuracy``, ``loss``, ``confusion_matrix``, ``per_class_errors``,
    ``most_confused``, ``classes``, ``predictions`` and the ``config``.
    """
    ckpt = load_checkpoint(path)
    config = {**DEFAULTS, **check_config(ckpt.config, f"{ckpt.path}: stored config")}
    name = dataset or config["dataset"]
    if name not in dataset_names():
        raise ConfigError(f"unknown dataset {name!r}; valid names: {', '.join(dataset_names())}")
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    d = load_dataset(name, data_dir if data_dir is not None else (config["data_dir"] if name == config["dataset"]
                                                                   else None) or None)
    x, y = (d.x_test, d.y_test) if split == "test" else (d.x_train, d.y_train)
    x = x.astype(np.dtype(config["dtype"]), copy=False)
    sizes = model_sizes(config, x.shape[1], len(d.classes))
    stored = [int(ckpt.params[k].shape[0]) for k in ("layers.0.weight",) if k in ckpt.params]
    if stored and stored[0] != x.shape[1]:
        raise CheckpointError(f"{ckpt.path}: the model takes {stored[0]} inputs, {name} has {x.shape[1]} features")
    check_architecture(ckpt, sizes, config["dtype"])
    model = build_model(config, x.shape[1], len(d.classes))
    model.load_state_dict(ckpt.params)
    with blas_threads(config.get("threads", 0)):
        loss, acc, pred = evaluate_model(model, x, y, batch_size)
    cm = report.confusion_matrix(y, pred, len(d.classes))
    return {"checkpoint": str(path), "dataset": name, "split": split, "accuracy": acc, "loss": loss,
            "n": len(y), "classes": list(d.classes), "confusion_matrix": cm.tolist(),
            "per_class_errors": report.per_class_errors(cm).tolist(),
            "most_confused": [{"true": t, "predicted": p, "count": c} for t, p, c in report.most_confused(cm)],
            "epoch": ckpt.epoch, "config": config, "predictions": pred, "images": x, "labels": y}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a .npz written by models.train (checkpoint.npz or model.npz)")
    p.add_argument("--dataset", help=f"dataset to evaluate on ({', '.join(dataset_names())}; default: the "
                                     f"one it was trained on)")
    p.add_argument("--data-dir", help="directory holding the dataset's IDX files")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--out", help="also write evaluation.json and plots into this folder")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = p.parse_args(argv)
    try:
        r = evaluate_checkpoint(args.checkpoint, args.dataset, args.data_dir, args.split, args.batch_size)
    except (ConfigError, CheckpointError, DatasetNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pred, images, labels = r.pop("predictions"), r.pop("images"), r.pop("labels")
    cm = np.asarray(r["confusion_matrix"])
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"{args.checkpoint} (epoch {r['epoch']}) on {r['dataset']} {r['split']}")
        print(report.format_report(r["accuracy"], r["loss"], cm, r["classes"], title=r["split"]))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.json").write_text(json.dumps(r, indent=2) + "\n")
        if report.have_matplotlib():
            report.plot_confusion(cm, r["classes"], out / "confusion.png")
            report.plot_samples(images, labels, pred, r["classes"], out / "samples.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

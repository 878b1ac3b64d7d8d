"""The README's results table: train presets on the datasets present and print a Markdown table.

    python -m benchmarks.results                                  # every preset, every dataset found
    python -m benchmarks.results --presets best --datasets mnist,fashion-mnist --data-dir PATH/TO/MNIST
    python -m benchmarks.results --table runs/results/results.jsonl  # re-print a table from saved rows

MNIST is used when its files are found (``--data-dir``, ``$TINYGRAD_LITE_DATA`` or the
loader's cache; never downloaded here); Fashion-MNIST from Debian's
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) or the same places; the
bundled ``digits`` always. Without MNIST, the presets that default to it run on digits
instead, and the table says so. Each run's folder (metrics, plots, checkpoint) is kept under
``--out``; one JSON line per run is appended to ``<out>/results.jsonl``.

Every preset runs as the training CLI runs it: with the preset's own BLAS thread setting
(``--threads N`` overrides it for every run) and the CLI's allocator setting.

Columns: test accuracy and loss, the last epoch's running training accuracy, ``train s``
(the training wall time that ``metrics.json`` records: the epochs, validation and
checkpoints) and ``total s`` (the whole run: loading the data, training, testing; plots are
skipped), and the figure the reference system reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .env import cpu_model

#: (preset, dataset): (test accuracy, seconds of the whole run) to reach
TARGETS = {("best", "mnist"): (0.980, 60.0), ("best", "fashion-mnist"): (0.895, 60.0),
           ("cnn", "mnist"): (0.992, 300.0), ("cnn", "fashion-mnist"): (0.915, 300.0)}


def app() -> SimpleNamespace:
    """The training app's entry points this runner uses: the presets, one training run, the allocator setting.

    Imported when a run starts; raises ImportError naming what is missing.
    """
    try:
        from models.presets import PRESETS, REFERENCE, canonical_preset, resolve_config
        from models.train import run
    except ImportError as e:
        raise ImportError(f"benchmarks.results needs the training app (models.presets, models.train): {e}") from e
    try:
        from models.allocator import keep_freed_memory
    except ImportError:
        keep_freed_memory = None
    return SimpleNamespace(PRESETS=PRESETS, REFERENCE=REFERENCE, canonical_preset=canonical_preset,
                           resolve_config=resolve_config, run=run, keep_freed_memory=keep_freed_memory)


def available(name: str, data_dir: str | None) -> str | None:
    """Where the dataset's files are, or None (no download is attempted)."""
    from tinygrad_lite.data import DatasetNotFoundError, load_arrays

    try:
        return load_arrays(name, data_dir if name == "mnist" else None, download=False).source
    except (DatasetNotFoundError, ValueError):
        return None


def machine() -> str:
    import platform

    import numpy as np

    return (f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}, "
            f"{platform.system()} {platform.release()}")


def reference(preset: str, dataset: str, presets: dict[str, Any], reported: dict[str, str]) -> str:
    """The reference column: our presets' targets (``best``, ``cnn``), or what the reference system reported on
    MNIST."""
    if (preset, dataset) in TARGETS:
        accuracy, seconds = TARGETS[preset, dataset]
        return f"target ≥{100 * accuracy:.1f}% in ≤{seconds:.0f} s"
    if any(p == preset for p, _ in TARGETS):
        return "—"
    home = presets.get(preset, {}).get("dataset")
    return reported.get(preset, "—") if dataset == home and dataset == "mnist" else "—"


def table(rows: list[dict]) -> str:
    """The Markdown table of result rows (the reference column stays empty without the training app)."""
    try:
        a = app()
        presets, reported = a.PRESETS, a.REFERENCE
    except ImportError:
        presets, reported = {}, {}
    lines = ["| preset | dataset | test accuracy | test loss | train accuracy | train s | total s "
             "| reference reported |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        train_acc = r.get("train_accuracy")
        if train_acc is None and Path(r.get("run", ""), "metrics.json").is_file():
            train_acc = json.loads(Path(r["run"], "metrics.json").read_text())["epochs"][-1]["train_accuracy"]
        acc = f"{100 * r['test_accuracy']:.2f}%"
        target = TARGETS.get((r["preset"], r["dataset"]))
        if target is not None:
            ok = r["test_accuracy"] >= target[0] and r["total_seconds"] <= target[1]
            acc += " ✓" if ok else " ✗"
        note = f" ({r['note']})" if r.get("note") else ""
        train_col = "—" if train_acc is None else f"{100 * train_acc:.2f}%"
        ref = reference(r["preset"], r["dataset"], presets, reported)
        lines.append(f"| {r['preset']} | {r['dataset']}{note} | {acc} | {r['test_loss']:.4f} | {train_col} | "
                     f"{r['seconds']:.1f} | {r['total_seconds']:.1f} | {ref} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.results", description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="all", help="comma-separated preset names, or 'all'")
    p.add_argument("--datasets", default="home,mnist,fashion-mnist",
                   help="comma-separated: mnist, fashion-mnist, digits, or 'home' (each preset's own)")
    p.add_argument("--data-dir", default=os.environ.get("TINYGRAD_LITE_DATA"), help="folder with the MNIST files")
    p.add_argument("--out", default="runs/results", help="folder for the runs and results.jsonl")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS threads for every run (0 = the library's default; default: each preset's own setting)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--table", metavar="JSONL", help="only print the table of an existing results.jsonl")
    args = p.parse_args(argv)
    if args.table:
        rows = [json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]
        print(table(rows))
        return 0

    try:
        a = app()
    except ImportError as e:
        p.error(str(e))
    if a.keep_freed_memory is not None:
        a.keep_freed_memory()  # the training CLI's allocator setting, so every run is timed as users run it
    names = list(a.PRESETS) if args.presets.strip() == "all" else [n for n in args.presets.split(",") if n.strip()]
    try:
        presets = [a.canonical_preset(n.strip()) for n in names]
    except (KeyError, ValueError) as e:
        p.error(f"--presets: {e}")
    found = {name: available(name, args.data_dir) for name in ("mnist", "fashion-mnist", "digits")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at start")
    for name, where in found.items():
        print(f"  {name}: {where or 'not found'}")
    rows = []
    for preset in presets:
        wanted = [d.strip() for d in args.datasets.split(",") if d.strip()]
        for dataset in wanted:
            if dataset == "home":
                dataset = a.PRESETS[preset].get("dataset", "digits")
            note = ""
            if found.get(dataset) is None:
                if dataset == "mnist" and found["digits"]:
                    dataset, note = "digits", "full MNIST not available"
                else:
                    print(f"skip {preset} on {dataset}: data not found")
                    continue
            if any(r["preset"] == preset and r["dataset"] == dataset for r in rows):
                continue
            overrides: dict[str, Any] = {"dataset": dataset, "seed": args.seed,
                                         "data_dir": args.data_dir if dataset == "mnist" and args.data_dir else ""}
            if args.threads is not None:
                overrides["threads"] = args.threads
            config = a.resolve_config(preset, overrides=overrides)
            run_dir = out / f"{preset}-{dataset}-{stamp}"
            print(f"running {preset} on {dataset} ...", flush=True)
            t0 = time.perf_counter()
            m = a.run(config, run_dir, quiet=True, plots=False, progress=False)
            total = time.perf_counter() - t0
            row = {"preset": preset, "dataset": dataset, "test_accuracy": m["test_accuracy"],
                   "test_loss": m["test_loss"], "train_accuracy": m["epochs"][-1]["train_accuracy"],
                   "seconds": m["seconds"], "total_seconds": total,
                   "epochs": len(m["epochs"]), "note": note, "run": str(run_dir), "machine": machine(),
                   "load_average": os.getloadavg()[0], "threads": config.get("threads")}
            rows.append(row)
            with open(out / "results.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"  {100 * m['test_accuracy']:.2f}%  loss {m['test_loss']:.4f}  train {m['seconds']:.1f}s  "
                  f"total {total:.1f}s  (load average {row['load_average']:.2f})", flush=True)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

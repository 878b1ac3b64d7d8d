"""The README's results table: train presets on the datasets present and print a Markdown table.

    python -m benchmarks.results                                  # every preset, every dataset found
    python -m benchmarks.results --presets best --datasets mnist,fashion-mnist --data-dir PATH/TO/MNIST
    python -m benchmarks.results --table runs/results/results.jsonl  # re-print a table from saved rows
    python -m benchmarks.results --presets A,B,C,D,E --datasets mnist --seeds 5 --threads 1  # seeds 0..4

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

``--seeds N`` trains every preset with seeds ``--seed`` … ``--seed + N − 1`` and adds a second
table: per preset, the mean ± standard deviation (over the seeds, n − 1 in the denominator) of
the metric its reference system reported (``models.presets.REFERENCE_METRIC``: the final
model's accuracy on the training data where the write-up reports a training figure, test
accuracy otherwise), the test accuracy, and whether the mean is within two standard deviations
below the reported figure or above it (✓) or further below (✗).
"""

from __future__ import annotations

import argparse
import json
import math
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
    from models import presets

    return SimpleNamespace(PRESETS=PRESETS, REFERENCE=REFERENCE, canonical_preset=canonical_preset,
                           resolve_config=resolve_config, run=run, keep_freed_memory=keep_freed_memory,
                           REFERENCE_METRIC=getattr(presets, "REFERENCE_METRIC", {}))


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
    repeated = len({(r["preset"], r["dataset"]) for r in rows}) < len(rows)  # several seeds: name each row's
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
        if repeated and r.get("seed") is not None:
            note += f" seed {r['seed']}"
        train_col = "—" if train_acc is None else f"{100 * train_acc:.2f}%"
        ref = reference(r["preset"], r["dataset"], presets, reported)
        lines.append(f"| {r['preset']} | {r['dataset']}{note} | {acc} | {r['test_loss']:.4f} | {train_col} | "
                     f"{r['seconds']:.1f} | {r['total_seconds']:.1f} | {ref} |")
    return "\n".join(lines)


def _stored(row: dict, key: str) -> float | None:
    """``row[key]``, or the run's ``metrics.json`` value when the row lacks it (None when neither has it)."""
    if row.get(key) is not None:
        return row[key]
    path = Path(row.get("run", ""), "metrics.json")
    return json.loads(path.read_text()).get(key) if path.is_file() else None


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1 in the denominator; 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0


def verdict(mean: float, std: float, figure: float | None) -> str:
    """✓ when ``mean`` is at most two standard deviations below ``figure`` (or above it), ✗ with the gap if not."""
    if figure is None:
        return "—"
    gap = mean - figure
    if gap >= -2 * std:
        return "✓ (above)" if gap > 2 * std else "✓"
    return f"✗ ({100 * gap:+.2f} points" + (f", {gap / std:.1f}σ)" if std else ")")


def seeds_table(rows: list[dict]) -> str:
    """The Markdown table over seeds: per (preset, dataset), the mean ± std of the metric its reference system
    reported (``REFERENCE_METRIC``; test accuracy off its home dataset or without one) and of test accuracy."""
    try:
        a = app()
        presets, reported, metric_of = a.PRESETS, a.REFERENCE, a.REFERENCE_METRIC
    except ImportError:
        presets, reported, metric_of = {}, {}, {}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["preset"], r["dataset"]), []).append(r)
    lines = ["| preset | dataset | seeds | metric | mean ± std | test accuracy | reference reported | within 2σ |",
             "|---|---|---:|---|---:|---:|---|---|"]
    for (preset, dataset), group in groups.items():
        home = presets.get(preset, {}).get("dataset")
        key, figure = metric_of.get(preset, ("test_accuracy", None)) if dataset == home == "mnist" \
            else ("test_accuracy", None)
        values = [v for v in (_stored(r, key) for r in group) if v is not None]
        if not values:
            key, figure, values = "test_accuracy", None, [r["test_accuracy"] for r in group]
        mean, std = mean_std(values)
        test_mean, test_std = mean_std([r["test_accuracy"] for r in group])
        name = {"test_accuracy": "test accuracy", "train_accuracy_final": "train accuracy (final model)"}.get(key, key)
        seeds = ",".join(str(r.get("seed", "?")) for r in group)
        lines.append(f"| {preset} | {dataset} | {len(values)} ({seeds}) | {name} | {100 * mean:.2f}% ± {100 * std:.2f} "
                     f"| {100 * test_mean:.2f}% ± {100 * test_std:.2f} | "
                     f"{reference(preset, dataset, presets, reported)} | {verdict(mean, std, figure)} |")
    return "\n".join(lines)


def _print_tables(rows: list[dict]) -> None:
    print(table(rows))
    if len({(r["preset"], r["dataset"]) for r in rows}) < len(rows):  # some preset ran with several seeds
        print()
        print(seeds_table(rows))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.results", description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="all", help="comma-separated preset names, or 'all'")
    p.add_argument("--datasets", default="home,mnist,fashion-mnist",
                   help="comma-separated: mnist, fashion-mnist, digits, or 'home' (each preset's own)")
    p.add_argument("--data-dir", default=os.environ.get("TINYGRAD_LITE_DATA"), help="folder with the MNIST files")
    p.add_argument("--out", default="runs/results", help="folder for the runs and results.jsonl")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS threads for every run (0 = the library's default; default: each preset's own setting)")
    p.add_argument("--seed", type=int, default=0, help="the (first) seed")
    p.add_argument("--seeds", type=int, default=1,
                   help="train each preset with this many seeds (--seed, --seed + 1, ...) and print mean ± std")
    p.add_argument("--table", metavar="JSONL", help="only print the table of an existing results.jsonl")
    args = p.parse_args(argv)
    if args.table:
        rows = [json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]
        _print_tables(rows)
        return 0
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1, got {args.seeds}")

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
            for seed in range(args.seed, args.seed + args.seeds):
                overrides: dict[str, Any] = {"dataset": dataset, "seed": seed,
                                             "data_dir": args.data_dir if dataset == "mnist" and args.data_dir else ""}
                if args.threads is not None:
                    overrides["threads"] = args.threads
                config = a.resolve_config(preset, overrides=overrides)
                run_dir = out / (f"{preset}-{dataset}-{stamp}" + (f"-seed{seed}" if args.seeds > 1 else ""))
                print(f"running {preset} on {dataset}" + (f" (seed {seed})" if args.seeds > 1 else "") + " ...",
                      flush=True)
                t0 = time.perf_counter()
                m = a.run(config, run_dir, quiet=True, plots=False, progress=False)
                total = time.perf_counter() - t0
                row = {"preset": preset, "dataset": dataset, "seed": seed, "test_accuracy": m["test_accuracy"],
                       "test_loss": m["test_loss"], "train_accuracy": m["epochs"][-1]["train_accuracy"],
                       "train_accuracy_final": m.get("train_accuracy_final"),
                       "train_loss_final": m.get("train_loss_final"), "seconds": m["seconds"],
                       "total_seconds": total, "epochs": len(m["epochs"]), "note": note, "run": str(run_dir),
                       "machine": machine(), "load_average": os.getloadavg()[0], "threads": config.get("threads")}
                rows.append(row)
                with open(out / "results.jsonl", "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"  {100 * m['test_accuracy']:.2f}%  loss {m['test_loss']:.4f}  train {m['seconds']:.1f}s  "
                      f"total {total:.1f}s  (load average {row['load_average']:.2f})", flush=True)
    print()
    _print_tables(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

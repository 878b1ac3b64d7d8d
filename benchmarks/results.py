"""The README's results table: train presets on the datasets present and print a Markdown table.

    python benchmarks/results.py                                   # every preset, every dataset found
    python benchmarks/results.py --presets best --datasets mnist,fashion-mnist --data-dir ../shared/data/mnist
    python benchmarks/results.py --table runs/results/results.jsonl  # re-print a table from saved rows

MNIST is used when its files are found (``--data-dir``, ``$TINYGRAD_LITE_DATA`` or the
loader's cache; never downloaded here); Fashion-MNIST from Debian's
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) or the same places; the
bundled ``digits`` always. Without MNIST, the presets that default to it run on digits
instead, and the table says so. Each run's folder (metrics, plots, checkpoint) is kept under
``--out``; one JSON line per run is appended to ``<out>/results.jsonl``.

Columns: test accuracy and loss, the last epoch's running training accuracy, ``train s``
(the training wall time that ``metrics.json`` records: the epochs, validation and
checkpoints) and ``total s`` (the whole run: loading the data, training, testing; plots are
skipped), and the figure the reference system reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from models.allocator import keep_freed_memory  # noqa: E402
from models.presets import PRESETS, REFERENCE, canonical_preset, resolve_config  # noqa: E402
from models.train import run  # noqa: E402
from tinygrad_lite.data import DatasetNotFoundError, load_arrays  # noqa: E402

TARGETS = {("best", "mnist"): 0.980, ("best", "fashion-mnist"): 0.895}
TIME_LIMIT = 60.0


def available(name: str, data_dir: str | None) -> str | None:
    """Where the dataset's files are, or None (no download is attempted)."""
    try:
        return load_arrays(name, data_dir if name == "mnist" else None, download=False).source
    except (DatasetNotFoundError, ValueError):
        return None


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}, "
            f"{platform.system()} {platform.release()}")


def reference(preset: str, dataset: str) -> str:
    if preset == "best":
        return f"target ≥{100 * TARGETS.get(('best', dataset), 0):.1f}% in ≤{TIME_LIMIT:.0f} s" if (
            "best", dataset) in TARGETS else "—"
    home = PRESETS[preset].get("dataset")
    return REFERENCE.get(preset, "—") if dataset == home and dataset == "mnist" else "—"


def table(rows: list[dict]) -> str:
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
            ok = r["test_accuracy"] >= target and r["total_seconds"] <= TIME_LIMIT
            acc += " ✓" if ok else " ✗"
        note = f" ({r['note']})" if r.get("note") else ""
        train_col = "—" if train_acc is None else f"{100 * train_acc:.2f}%"
        lines.append(f"| {r['preset']} | {r['dataset']}{note} | {acc} | {r['test_loss']:.4f} | {train_col} | "
                     f"{r['seconds']:.1f} | {r['total_seconds']:.1f} | {reference(r['preset'], r['dataset'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    p.add_argument("--datasets", default="home,mnist,fashion-mnist",
                   help="comma-separated: mnist, fashion-mnist, digits, or 'home' (each preset's own)")
    p.add_argument("--data-dir", default=os.environ.get("TINYGRAD_LITE_DATA"), help="folder with the MNIST files")
    p.add_argument("--out", default="runs/results", help="folder for the runs and results.jsonl")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads for every run (0 = library default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--table", metavar="JSONL", help="only print the table of an existing results.jsonl")
    args = p.parse_args(argv)
    if args.table:
        rows = [json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]
        print(table(rows))
        return 0

    keep_freed_memory()  # as the training CLI does
    presets = [canonical_preset(n) for n in args.presets.split(",") if n.strip()]
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
                dataset = PRESETS[preset].get("dataset", "digits")
            note = ""
            if found.get(dataset) is None:
                if dataset == "mnist" and found["digits"]:
                    dataset, note = "digits", "full MNIST not available"
                else:
                    print(f"skip {preset} on {dataset}: data not found")
                    continue
            if any(r["preset"] == preset and r["dataset"] == dataset for r in rows):
                continue
            overrides = {"dataset": dataset, "seed": args.seed, "threads": args.threads,
                         "data_dir": args.data_dir if dataset == "mnist" and args.data_dir else ""}
            config = resolve_config(preset, overrides=overrides)
            run_dir = out / f"{preset}-{dataset}-{stamp}"
            print(f"running {preset} on {dataset} ...", flush=True)
            t0 = time.perf_counter()
            m = run(config, run_dir, quiet=True, plots=False, progress=False)
            total = time.perf_counter() - t0
            row = {"preset": preset, "dataset": dataset, "test_accuracy": m["test_accuracy"],
                   "test_loss": m["test_loss"], "train_accuracy": m["epochs"][-1]["train_accuracy"],
                   "seconds": m["seconds"], "total_seconds": total,
                   "epochs": len(m["epochs"]), "note": note, "run": str(run_dir), "machine": machine(),
                   "load_average": os.getloadavg()[0], "threads": args.threads}
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

"""List the training runs under a folder: ``python -m models.runs [FOLDER] [--sort KEY] [--reverse] [--json]``.

A run folder is one that holds ``metrics.json`` and ``config.toml`` (what ``models.train``
writes); FOLDER (default ``runs``) is searched recursively, without entering hidden folders.
Each run is a row: its folder (relative to FOLDER), preset, model, dataset, hidden widths,
optimizer, lr, batch size (0 = full batch), epochs trained, test accuracy, training seconds and
date (``metrics.json``'s ``date`` where it has one, else the time the file was written).
``--sort KEY`` orders by any column (numbers numerically, rows without a value last; default:
date, oldest first), ``--reverse`` the other way, ``--limit N`` keeps the first N rows, ``--json``
prints the rows as a JSON list. Unfinished runs (``.NAME.partial``) and runs whose
``metrics.json`` cannot be read are skipped and counted in a note on stderr. Exit status 0, or
2 (one line on stderr) when FOLDER is missing or is not a folder.

    python -m models.runs                                    # every run under runs/, oldest first
    python -m models.runs runs/sweep --sort test_acc --reverse --limit 5   # the five best
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.config import ConfigError, display, read_toml

__all__ = ["COLUMNS", "Scan", "scan", "sort_rows", "format_table", "main"]

COLUMNS = ("run", "preset", "model", "dataset", "hidden", "optimizer", "lr", "batch", "epochs", "test_acc",
           "train_s", "date")
_RIGHT = frozenset({"lr", "batch", "epochs", "test_acc", "train_s"})


class Scan:
    """What ``scan`` found: ``rows`` (one dict per run, keys ``COLUMNS``), ``unfinished`` (staging folders)
    and ``unreadable`` (run folders whose ``metrics.json`` could not be read), both as relative paths."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.unfinished: list[str] = []
        self.unreadable: list[str] = []


def _number(x: Any) -> float | int | None:
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _row(folder: Path, name: str) -> dict[str, Any]:
    """The row of the run in ``folder``; ValueError or OSError when its files cannot be read."""
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    if not isinstance(metrics, dict):
        raise ValueError("metrics.json is not a JSON object")
    config = metrics.get("config")
    if not isinstance(config, dict):
        try:
            config = read_toml(folder / "config.toml")
        except ConfigError as e:
            raise ValueError(str(e)) from None
    history = metrics.get("epochs")
    date = metrics.get("date")
    if not isinstance(date, str):
        date = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(metrics_path.stat().st_mtime))
    hidden = config.get("hidden")
    return {
        "run": name, "preset": config.get("preset"), "model": config.get("model"),
        "dataset": metrics.get("dataset") or config.get("dataset"),
        "hidden": list(hidden) if isinstance(hidden, (list, tuple)) else hidden,
        "optimizer": config.get("optimizer"), "lr": _number(config.get("lr")),
        "batch": _number(config.get("batch_size")),
        "epochs": len(history) if isinstance(history, list) else _number(config.get("epochs")),
        "test_acc": _number(metrics.get("test_accuracy")), "train_s": _number(metrics.get("seconds")), "date": date,
    }


def scan(folder: str | os.PathLike) -> Scan:
    """Every run folder under ``folder`` (itself included), in no particular order; FileNotFoundError or
    NotADirectoryError when ``folder`` is not there."""
    root = Path(folder)
    if not root.is_dir():
        raise (NotADirectoryError if root.exists() else FileNotFoundError)(root)
    found = Scan()
    for here, dirs, files in os.walk(root, onerror=None):
        path = Path(here)
        name = "." if path == root else path.relative_to(root).as_posix()
        if "metrics.json" in files and "config.toml" in files:
            dirs[:] = []  # a run's own subfolders (tensorboard/) hold no runs
            try:
                found.rows.append(_row(path, name))
            except (OSError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                found.unreadable.append(name)
            continue
        for d in [d for d in dirs if d.startswith(".")]:
            dirs.remove(d)
            if d.endswith(".partial") and len(d) > len("..partial"):
                found.unfinished.append(d if name == "." else f"{name}/{d}")
        dirs.sort()
    return found


def _key(value: Any) -> tuple:
    """Numbers before text before lists, each compared as such."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, (list, tuple)):
        return (2, tuple(_key(v) for v in value))
    return (1, str(value))


def sort_rows(rows: Sequence[dict[str, Any]], key: str = "date", reverse: bool = False) -> list[dict[str, Any]]:
    """``rows`` ordered by column ``key`` (ties by folder), rows without a value last either way."""
    if key not in COLUMNS:
        raise KeyError(f"unknown column {key!r}; one of {', '.join(COLUMNS)}")
    have = [r for r in rows if r.get(key) is not None]
    missing = sorted((r for r in rows if r.get(key) is None), key=lambda r: r["run"])
    have.sort(key=lambda r: r["run"])
    have.sort(key=lambda r: _key(r[key]), reverse=reverse)
    return have + missing


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "hidden" and isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if key == "batch" and value == 0:
        return "full"
    if key == "test_acc":
        return f"{100 * value:.2f}%"
    if key == "train_s":
        return f"{value:.1f}"
    if key == "lr":
        return f"{value:g}"
    if key == "date":
        return str(value).replace("T", " ")[:16]
    return display(value) if key == "run" else str(value)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as an aligned text table with a header of the column names."""
    cells = [list(COLUMNS)] + [[_cell(k, r.get(k)) for k in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) if k in _RIGHT else c.ljust(w) for k, c, w in zip(COLUMNS, line, widths))
                     .rstrip() for line in cells)


def _note(found: Scan) -> str:
    parts = []
    for items, what in ((found.unfinished, "unfinished (continue with --resume, or delete)"),
                        (found.unreadable, "with an unreadable metrics.json")):
        if items:
            shown = ", ".join(display(p) for p in items[:3]) + (", ..." if len(items) > 3 else "")
            parts.append(f"{len(items)} {what}: {shown}")
    return "note: skipped " + "; ".join(parts) if parts else ""


def _column(text: str) -> str:
    key = text.strip().lower().replace("-", "_")
    if key not in COLUMNS:
        raise argparse.ArgumentTypeError(f"unknown column {text!r}; one of {', '.join(COLUMNS)}")
    return key


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--limit expects a whole number >= 1, got {text!r}")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.runs", description="List the training runs under a folder.")
    p.add_argument("folder", nargs="?", default="runs", help="folder searched for runs, recursively (default runs)")
    p.add_argument("--sort", type=_column, default="date", metavar="KEY",
                   help=f"column to sort by: {', '.join(COLUMNS)} (default date)")
    p.add_argument("--reverse", action="store_true", help="sort in descending order")
    p.add_argument("--limit", type=_positive, metavar="N", help="show only the first N rows")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    args = p.parse_args(argv)
    try:
        found = scan(args.folder)
    except FileNotFoundError:
        print(f"error: no such folder: {display(args.folder)}", file=sys.stderr)
        return 2
    except NotADirectoryError:
        print(f"error: {display(args.folder)} is not a folder", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {display(args.folder)}: {e.strerror or e}", file=sys.stderr)
        return 2
    rows = sort_rows(found.rows, args.sort, args.reverse)[:args.limit]
    note = _note(found)
    if note:
        print(note, file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no runs under {display(args.folder)} (a run's folder holds metrics.json and config.toml; "
              f"python -m models.train --out {display(Path(args.folder) / 'NAME')} makes one)")
    else:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `python -m models.runs | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)

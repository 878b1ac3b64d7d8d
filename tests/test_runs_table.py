"""models.runs: the table of the runs under a folder (found recursively, unfinished and unreadable ones
skipped and counted), sorted by any column, as JSON; clear messages for an empty or missing folder."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models import runs, train

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--dataset", "digits", "--epochs", "1", "--threads", "1", "--quiet", "--no-plots"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """runs/a (hidden 16, sgd), runs/sweep/b (hidden 8), runs/sweep/c (hidden 32, batch 0: full), plus an
    unfinished staging folder, a run with a corrupt metrics.json, a folder of notes and a hidden folder."""
    root = tmp_path_factory.mktemp("t") / "runs"
    for name, flags in (("a", ["--hidden", "16", "--optimizer", "sgd", "--lr", "0.1"]),
                        ("sweep/b", ["--hidden", "8", "--lr", "0.01"]),
                        ("sweep/c", ["--hidden", "32", "--batch-size", "0", "--lr", "0.002"])):
        assert train.main([*FAST, *flags, "--out", str(root / name)]) == 0
    for k, name in enumerate(("sweep/c", "a", "sweep/b")):  # dates: c oldest, b newest
        os.utime(root / name / "metrics.json", (1_700_000_000 + 3600 * k,) * 2)
    (root / "sweep" / ".d.partial").mkdir()
    (root / "sweep" / ".d.partial" / ".unfinished").write_bytes(b"")
    (root / "bad").mkdir()
    (root / "bad" / "metrics.json").write_text('{"test_accuracy": 0.')
    (root / "bad" / "config.toml").write_text('preset = "default"\n')
    (root / "notes").mkdir()
    (root / "notes" / "config.toml").write_text("")  # no metrics.json: not a run
    (root / ".cache" / "x").mkdir(parents=True)
    (root / ".cache" / "x" / "metrics.json").write_text("{}")
    (root / ".cache" / "x" / "config.toml").write_text("")
    return root


def rows_of(capsys, *args):
    assert runs.main([str(a) for a in args]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_json_lists_every_run_with_its_settings_and_results(folder, capsys):
    rows, err = rows_of(capsys, folder, "--json")
    assert [r["run"] for r in rows] == ["sweep/c", "a", "sweep/b"]  # by date, oldest first
    assert all(list(r) == list(runs.COLUMNS) for r in rows)
    for r in rows:
        metrics = json.loads((folder / r["run"] / "metrics.json").read_text())
        c = metrics["config"]
        assert (r["preset"], r["model"], r["dataset"], r["hidden"], r["optimizer"], r["lr"], r["batch"]) == (
            c["preset"], c["model"], "digits", c["hidden"], c["optimizer"], c["lr"], c["batch_size"])
        assert (r["epochs"], r["test_acc"], r["train_s"]) == (1, metrics["test_accuracy"], metrics["seconds"])
    a = rows[1]
    assert (a["hidden"], a["optimizer"], a["lr"]) == ([16], "sgd", 0.1) and rows[0]["batch"] == 0
    assert a["date"] == time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(1_700_000_000 + 3600))  # set above
    assert err == ("note: skipped 1 unfinished (continue with --resume, or delete): sweep/.d.partial; "
                   "1 with an unreadable metrics.json: bad\n")


def test_sort_by_any_column_numbers_as_numbers(folder, capsys):
    order = lambda *args: [r["run"] for r in rows_of(capsys, folder, "--json", *args)[0]]  # noqa: E731
    assert order("--sort", "hidden") == ["sweep/b", "a", "sweep/c"]  # 8 < 16 < 32, not "16" < "32" < "8"
    assert order("--sort", "hidden", "--reverse") == ["sweep/c", "a", "sweep/b"]
    assert order("--sort", "lr") == ["sweep/c", "sweep/b", "a"]
    assert order("--sort", "optimizer") == ["sweep/b", "sweep/c", "a"]  # adam before sgd, ties by folder
    assert order("--sort", "run") == ["a", "sweep/b", "sweep/c"]
    assert order("--reverse", "--limit", "2") == ["sweep/b", "a"]  # the two newest
    assert order("--sort", "Test-Acc", "--limit", "1") == [min(
        rows_of(capsys, folder, "--json")[0], key=lambda r: r["test_acc"])["run"]]


def test_sort_rows_puts_missing_values_last_both_ways():
    rows = [{"run": n, "lr": lr} for n, lr in (("w", None), ("x", 10.0), ("y", 2.0), ("z", 0.001))]
    assert [r["run"] for r in runs.sort_rows(rows, "lr")] == ["z", "y", "x", "w"]
    assert [r["run"] for r in runs.sort_rows(rows, "lr", reverse=True)] == ["x", "y", "z", "w"]
    with pytest.raises(KeyError, match="unknown column 'speed'"):
        runs.sort_rows(rows, "speed")


def test_table(folder, capsys):
    assert runs.main([str(folder), "--sort", "run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == list(runs.COLUMNS)
    assert [line.split()[0] for line in lines[1:]] == ["a", "sweep/b", "sweep/c"]
    a = lines[1].split()
    assert a[1:8] == ["default", "mlp", "digits", "16", "sgd", "0.1", "64"] and a[8] == "1"
    acc = json.loads((folder / "a" / "metrics.json").read_text())["test_accuracy"]
    assert a[9] == f"{100 * acc:.2f}%"
    assert " ".join(a[11:]) == time.strftime("%Y-%m-%d %H:%M", time.localtime(1_700_000_000 + 3600))
    assert lines[3].split()[7] == "full"  # batch 0
    column = lines[0].index("test_acc") + len("test_acc")  # numbers are right-aligned under their header
    assert all(line[column - 1] == "%" for line in lines[1:])


def test_empty_and_missing_folders(tmp_path, capsys):
    assert runs.main([str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"no runs under {tmp_path}") and err == ""
    assert runs.main([str(tmp_path), "--json"]) == 0
    assert capsys.readouterr().out == "[]\n"
    assert runs.main([str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"error: no such folder: {tmp_path / 'nope'}\n"
    (tmp_path / "f").write_text("")
    assert runs.main([str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'f'} is not a folder\n"
    with pytest.raises(SystemExit) as e:
        runs.main([str(tmp_path), "--sort", "speed"])
    assert e.value.code == 2 and "unknown column 'speed'" in capsys.readouterr().err


def test_a_run_folder_itself_and_the_module_cli(folder):
    proc = subprocess.run([sys.executable, "-m", "models.runs", str(folder / "a"), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["run"] == "." and row["hidden"] == [16] and proc.stderr == ""

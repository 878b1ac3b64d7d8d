"""Runs are all or nothing, one at a time: staging and commit, --overwrite, the lock, evaluate's --out, and the
faults a user meets (disk full, read-only folder, a download that drips, Ctrl-C, odd paths), each a one-line
error naming the file or flag, with exit status 2 and the previous results untouched."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from models import evaluate, train
from models import run as run_module
from models.checkpoint import load_checkpoint, save_model
from models.config import ConfigError, TrainConfig
from models.mlp import MLP
from models.rundir import RunDir, RunDirError, RunLock
from tinygrad_lite import data

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--hidden", "16", "--epochs", "1", "--threads", "1", "--quiet", "--no-plots"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def cli(*args) -> int:
    return train.main([str(a) for a in args])


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished run (to copy from)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert cli(*FAST, "--out", out) == 0
    return out


def copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


# ------------------------------------------------------------------ staging, commit, lock
def test_a_run_appears_only_when_finished_and_leaves_nothing_else(tmp_path, monkeypatch):
    seen = []
    real = run_module.train

    def spy(*args, **kwargs):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))  # during training
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "train", spy)
    assert cli(*FAST, "--out", tmp_path / "r") == 0
    assert seen == [[".r.lock", ".r.partial"]]  # the lock and the staging folder, not "r"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_failed_overwrite_keeps_the_old_results(tmp_path, finished, capsys, monkeypatch):
    out = copy_run(finished, tmp_path / "r")
    before = snapshot(out)

    def diverge(*args, **kwargs):
        raise FloatingPointError("training diverged in epoch 1 (loss nan); try a smaller lr than 1 (--lr)")

    monkeypatch.setattr(run_module, "train", diverge)
    assert cli(*FAST, "--out", out, "--overwrite", "--seed", "5") == 2
    assert "training diverged" in capsys.readouterr().err
    assert snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_second_run_into_the_same_out_fails_naming_the_first(tmp_path, capsys):
    out = tmp_path / "r"
    first = subprocess.Popen([sys.executable, "-m", "models.train", "--hidden", "16", "--epochs", "400",
                              "--threads", "1", "--quiet", "--no-plots", "--out", str(out)],
                             cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 30
        while not (tmp_path / ".r.partial" / "config.toml").exists() and time.monotonic() < end:
            time.sleep(0.01)
        assert cli(*FAST, "--out", out) == 2
        err = capsys.readouterr().err
        assert f"--out {out} is in use by another run (PID {first.pid}, started " in err and "models.train" in err
        assert cli(*FAST, "--out", out, "--overwrite") == 2  # --overwrite does not break a live lock
        assert evaluate.main([str(ROOT / "nowhere"), "--out", str(out)]) == 2
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    # killed: its lock file stays, held by no process; the next run takes it over
    assert (tmp_path / ".r.lock").exists() and str(first.pid) in (tmp_path / ".r.lock").read_text()
    assert cli(*FAST, "--out", out, "--overwrite") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_without_flock_a_lock_is_stale_when_its_pid_is_gone(tmp_path):
    path = tmp_path / ".r.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    path.write_text(json.dumps({"pid": int(dead), "started": "then", "command": "old"}))
    lock = RunLock(path, "--out r")
    lock._acquire_exclusive()  # the O_EXCL path: taken over from the dead PID
    assert json.loads(path.read_text())["pid"] == os.getpid()
    with pytest.raises(RunDirError, match=rf"--out r is in use by another run \(PID {os.getpid()}, started"):
        RunLock(path, "--out r")._acquire_exclusive()  # a live PID is not stale
    lock.release()
    assert not path.exists()


def test_an_interrupted_run_is_continued_or_restarted_never_silently_dropped(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    real = run_module.train

    def interrupt_after_the_first_save(*args, save, **kwargs):
        save(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "train", interrupt_after_the_first_save)
    assert cli(*FAST, "--epochs", "2", "--out", out) == 130
    err = capsys.readouterr().err
    assert f"unfinished run is kept in {tmp_path / '.r.partial'}: continue it with --resume --out {out}" in err
    assert not out.exists() and (tmp_path / ".r.partial" / "checkpoint.safetensors").exists()
    monkeypatch.setattr(run_module, "train", real)
    assert cli(*FAST, "--epochs", "2", "--out", out) == 2
    assert "an unfinished run is in" in capsys.readouterr().err
    assert cli("--resume", "--out", out, "--quiet", "--no-plots") == 0
    assert load_checkpoint(out / "checkpoint.safetensors").epoch == 2
    # interrupted before any checkpoint: nothing is kept, nothing to continue
    monkeypatch.setattr(run_module, "train", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert cli(*FAST, "--out", tmp_path / "s") == 130
    assert "(nothing was saved yet)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


# ------------------------------------------------------------------ faults
def _limit_file_size(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_disk_full_is_one_line_and_the_old_results_stay(tmp_path, finished):
    out = copy_run(finished, tmp_path / "r")
    before = snapshot(out)
    proc = subprocess.run([sys.executable, "-m", "models.train", *FAST, "--hidden", "32", "--out", str(out),
                           "--overwrite"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60,
                          preexec_fn=_limit_file_size(200_000))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "error: cannot write " in proc.stderr and "checkpoint.safetensors" in proc.stderr
    assert "larger than this process may write" in proc.stderr
    assert snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@contextmanager
def as_unprivileged():
    """Run the block as a user the file permissions apply to (root ignores them)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_a_read_only_folder_is_one_line_and_changes_nothing(finished, capsys):
    base = Path(tempfile.mkdtemp())
    try:
        base.chmod(0o755)
        ro = base / "ro"
        ro.mkdir()
        out = copy_run(finished, ro / "r")
        before = snapshot(out)
        ro.chmod(0o555)
        with as_unprivileged():
            assert cli(*FAST, "--out", out, "--overwrite") == 2
            err = capsys.readouterr().err
            assert cli(*FAST, "--out", ro / "new") == 2
            err2 = capsys.readouterr().err
        assert f"--out {out}: cannot create the lock file {ro / '.r.lock'}: permission denied" in err
        assert f"--out {ro / 'new'}: cannot create the lock file" in err2 and err2.count("\n") == 1
        assert snapshot(out) == before and sorted(p.name for p in ro.iterdir()) == ["r"]
    finally:
        (base / "ro").chmod(0o755)
        import shutil

        shutil.rmtree(base)


class Drip(BaseHTTPRequestHandler):
    """A mirror that promises a megabyte and sends a byte every 50 ms (for at most 5 s)."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        end = time.monotonic() + 5
        try:
            while time.monotonic() < end:
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_a_dripping_download_stops_at_the_overall_deadline(tmp_path, monkeypatch, capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.delenv(data.ENV_VAR, raising=False)
        spec = dataclasses.replace(data.IDX_DATASETS["mnist"], mirrors=(f"http://127.0.0.1:{server.server_port}/",),
                                   system_dirs=())
        monkeypatch.setitem(data.IDX_DATASETS, "mnist", spec)
        t0 = time.monotonic()
        assert cli(*FAST, "--dataset", "mnist", "--download-timeout", "0.5", "--out", tmp_path / "r") == 2
        assert time.monotonic() - t0 < 5
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert ("error: the download of mnist (train-images-idx3-ubyte.gz) did not finish within 0.5 s "
            "(--download-timeout)") in err and err.count("\n") == 1
    assert list((tmp_path / "cache" / "tinygrad_lite" / "mnist").iterdir()) == []  # no partial file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_a_path_utf8_cannot_hold_is_refused_at_the_start_and_others_round_trip(tmp_path, capsys):
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/data-\xff")
    assert cli(*FAST, "--data-dir", odd, "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert "--data-dir holds bytes that are not UTF-8" in err and "\\xff" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
    # any text UTF-8 can hold goes through config.toml and back
    weird = 'dir with "quotes", \\back\\slashes\\, a\ttab, a\nnewline, \x7f, ünï, 数据, 🙂'
    c = TrainConfig(data_dir=weird, activations=("relu",))
    (tmp_path / "c.toml").write_text(c.to_toml(), encoding="utf-8")
    assert TrainConfig.from_toml(tmp_path / "c.toml") == c
    # and a run folder whose name is not UTF-8 works, its messages printable
    out = os.fsdecode(os.fsencode(str(tmp_path)) + b"/run-\xfe")
    assert cli(*FAST, "--out", out) == 0
    assert TrainConfig.from_toml(Path(out) / "config.toml").hidden == (16,)
    assert cli(*FAST, "--out", out) == 2
    assert "run-\\xfe already holds a run's results" in capsys.readouterr().err


def test_every_flag_error_names_its_flag(tmp_path, capsys):
    for args, flag in [(["--lr", "-1"], "--lr"), (["--dropout", "1.5"], "--dropout"), (["--epochs", "0"], "--epochs"),
                       (["--eval-batch-size", "0"], "--eval-batch-size"), (["--init", "zeros"], "--init"),
                       (["--dtype", "float16"], "--dtype"), (["--schedule", "linear"], "--schedule"),
                       (["--model", "resnet"], "--model"), (["--nesterov"], "--nesterov"),
                       (["--channels", "8,0"], "--channels"), (["--model", "cnn", "--activations", "tanh"],
                                                                "--activations"),
                       (["--model", "cnn", "--channels", "4,4,4,4,4"], "--channels"),
                       (["--augment-shift", "-1"], "--augment-shift"), (["--val-fraction", "1"], "--val-fraction")]:
        assert cli(*args, "--out", tmp_path / "x") == 2, args
        err = capsys.readouterr().err
        assert err.startswith(f"error: {flag} ") and err.count("\n") == 1, err
    for args, flag in [(["--epochs", "x"], "--epochs"), (["--hidden", "1,y"], "--hidden"),
                       (["--download-timeout", "soon"], "--download-timeout")]:
        with pytest.raises(SystemExit):
            cli(*args)
        assert flag in capsys.readouterr().err
    assert cli("--resume") == 2
    assert "--resume needs --out DIR" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert cli(*FAST, "--out", tmp_path / "file") == 2
    assert f"--out {tmp_path / 'file'} exists and is not a folder" in capsys.readouterr().err
    assert cli(*FAST, "--config", tmp_path / "none.toml") == 2
    assert "none.toml does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]


def test_print_config_is_the_toml_a_run_saves(capsys):
    assert cli("--preset", "best", "--lr", "0.05", "--print-config") == 0
    text = capsys.readouterr().out
    assert 'preset = "best"' in text and "lr = 0.05" in text and "hidden = [512, 256]" in text


# ------------------------------------------------------------------ evaluate
def _idx(arr: np.ndarray) -> bytes:
    return gzip.compress(bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())


def _register(monkeypatch, tmp_path, name, classes, side=28, n=20):
    rng = np.random.default_rng(0)
    folder = tmp_path / name
    folder.mkdir()
    arrays = [rng.integers(0, 256, (n, side, side), dtype=np.uint8), np.arange(n, dtype=np.uint8) % len(classes)] * 2
    for fname, a in zip(data.IDX_FILES, arrays):
        (folder / fname).write_bytes(_idx(a))
    spec = data.IdxSpec(classes=classes, md5={}, mirrors=(), n_train=n, n_test=n, image_shape=(side, side))
    monkeypatch.setitem(data.IDX_DATASETS, name, spec)
    return folder


def test_evaluate_checks_the_dataset_and_writes_only_where_asked(tmp_path, finished, capsys, monkeypatch):
    run = copy_run(finished, tmp_path / "run")
    before = snapshot(run)
    assert evaluate.main([str(run), "--out", str(run)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    (tmp_path / "file.txt").write_text("x")
    assert evaluate.main([str(run), "--out", str(tmp_path / "file.txt")]) == 2
    assert "file.txt exists and is not a folder" in capsys.readouterr().err
    assert snapshot(run) == before
    # another dataset: refused when inputs or classes differ, a warning when only the meaning does
    letters = _register(monkeypatch, tmp_path, "letters", tuple("abcdefghij"))
    small = _register(monkeypatch, tmp_path, "small", tuple("0123456789"), side=8)
    assert evaluate.main([str(run), "--dataset", "small", "--data-dir", str(small)]) == 2
    assert "the model (" in (err := capsys.readouterr().err) and "takes 784 inputs" in err and "small has 64" in err
    assert evaluate.main([str(run), "--dataset", "letters", "--data-dir", str(letters), "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning: the model was trained on digits, evaluated here on letters" in captured.err
    assert json.loads(captured.out)["trained_on"] == "digits"
    # asked: into a new folder, or with --overwrite into the run's (its other files kept)
    assert evaluate.main([str(run), "--out", str(tmp_path / "ev")]) == 0
    assert sorted(p.name for p in (tmp_path / "ev").iterdir()) == sorted(evaluate.EVALUATION_FILES)
    assert evaluate.main([str(run), "--out", str(run), "--overwrite"]) == 0
    after = snapshot(run)
    assert {k: v for k, v in after.items() if k in before and k != "report.txt"} == \
        {k: v for k, v in before.items() if k != "report.txt"}
    assert "evaluation.json" in after


def test_resume_of_a_saved_model_says_it_has_no_training_state(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    save_model(out / "checkpoint.safetensors", MLP([784, 16, 10], seed=0), TrainConfig(hidden=(16,)))
    assert cli("--resume", "--out", out, "--quiet") == 2
    err = capsys.readouterr().err
    assert "holds no training state (optimizer state, step, model_rng, train_rng missing)" in err
    assert "written as a saved model" in err and "KeyError" not in err


def test_run_accepts_a_dict_or_a_config_and_refuses_bad_ones(tmp_path):
    m = run_module.run({"hidden": [8], "epochs": 1, "threads": 1}, tmp_path / "a", quiet=True, plots=False)
    assert m["config"]["hidden"] == [8]
    with pytest.raises(ConfigError, match="'epochs' must be >= 1"):
        run_module.run({"epochs": 0}, tmp_path / "b", quiet=True)
    with pytest.raises(RunDirError, match="name a folder of its own"):
        RunDir(".", ())

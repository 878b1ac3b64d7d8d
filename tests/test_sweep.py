"""models.sweep / models.study / models.space / models.sweep_report: sweeps on Optuna end to end — parallel
workers on one SQLite study, a second process joining it, a killed worker's trial failed by its heartbeat and
run again on --resume, Ctrl-C, pruning, the grid, best.toml repeating the best trial exactly, and bad input."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason="the sweep needs Optuna: pip install -e '.[sweep]'")

from models import sweep, sweep_worker, train  # noqa: E402
from models.config import ConfigError  # noqa: E402
from models.space import grid_space, parse_param, parse_space  # noqa: E402
from models.study import NoQueuedTrial, Sweep, open_storage, open_study, work  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
TINY = ["--dataset", "digits", "--hidden", "16", "--epochs", "2", "--sampler-seed", "3"]
SPACE = ["--param", "lr=loguniform:1e-3:1e-1", "--param", "activations=choice:relu|tanh"]
TrialState = optuna.trial.TrialState


def cli(*args):
    """``python -m models.sweep`` in-process; returns the exit code."""
    return sweep.main([str(a) for a in args])


def python(*args):
    """Run ``python ARGS`` in the checkout; returns the finished process (output captured)."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)


def load(out, name="sweep"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


def states(study):
    return [t.state for t in study.get_trials(deepcopy=False)]


def intact(db):
    with sqlite3.connect(db) as con:
        return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# ------------------------------------------------------------------ the search space
def test_param_syntax_gives_optuna_distributions_and_config_values():
    lr = parse_param("lr=loguniform:1e-4:1e-1")
    assert lr.distribution() == optuna.distributions.FloatDistribution(1e-4, 0.1, log=True)
    hidden = parse_param("hidden=choice:128,64|256, 128|512")
    assert hidden.choices == ("128,64", "256,128", "512") and hidden.config_value("256,128") == (256, 128)
    assert parse_param("batch-size=int:16:64:16").grid() == [16, 32, 48, 64]
    assert parse_param("augment=choice:true|false").choices == (True, False)
    assert parse_param("optimizer=choice:sgd|adam").values_to_check() == ["sgd", "adam"]
    assert parse_param("dropout=uniform:0:0.5").spec == "dropout=uniform:0.0:0.5"
    assert parse_param(parse_param("lr=loguniform:1e-4:1e-1").spec) == lr  # the stored text parses back
    assert grid_space(parse_space(["hidden=choice:16|8", "batch_size=int:32:64:32"])) == {
        "hidden": ["16", "8"], "batch_size": [32, 64]}


@pytest.mark.parametrize("text, words", [
    ("lrr=uniform:0:1", "unknown config field 'lrr'"),
    ("lr", "expected NAME=DISTRIBUTION"),
    ("lr=normal:0:1", "unknown distribution 'normal' for field 'lr'"),
    ("lr=uniform:1", "uniform needs LOW:HIGH for field 'lr'"),
    ("lr=uniform:x:1", "LOW 'x' of field 'lr' is not a number"),
    ("lr=uniform:0.2:0.1", "LOW must be <= HIGH for field 'lr'"),
    ("lr=loguniform:0:1", "loguniform needs LOW > 0 for field 'lr'"),
    ("batch_size=uniform:1:2", "field 'batch_size' is an integer"),
    ("batch_size=int:1:10:4", "STEP must be >= 1 and divide HIGH - LOW for field 'batch_size'"),
    ("hidden=choice:16|x", "option 'x' of field 'hidden' is not a comma list of integers"),
    ("shuffle=choice:true|maybe", "option 'maybe' of field 'shuffle' is not true or false"),
    ("dropout=choice:0.1|0.1", "field 'dropout' lists an option twice"),
    ("preset=choice:A|B", "the preset cannot be searched"),
])
def test_a_malformed_param_is_one_line_naming_the_flag_and_field(text, words):
    with pytest.raises(ConfigError, match="^--param ") as e:
        parse_param(text)
    assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("args, words", [
    (["--param", "lrr=uniform:0:1"], "--param lrr=uniform:0:1: unknown config field 'lrr'"),
    (["--param", "dropout=uniform:0:1.5"], "--param dropout=uniform:0.0:1.5: config key 'dropout' must be in [0, 1)"),
    (["--param", "activations=choice:relu|foo"], "config key 'activations' must be one of"),
    (["--param", "lr=uniform:0.1:0.2", "--lr", "0.1"], "--lr is also searched by --param lr="),
    (["--param", "lr=uniform:0.1:0.2", "--sampler", "grid"], "--sampler grid: --param lr=uniform:0.1:0.2 is a "
                                                             "continuous range"),
    (["--param", "hidden=choice:16|8", "--sampler", "grid", "--trials", "3"], "--trials 3: the grid has only 2"),
    (["--param", "lr=uniform:0.1:0.2", "--val-fraction", "0"], "--val-fraction must be > 0 for a sweep"),
    (["--param", "val_fraction=uniform:0:0.2"], "val_fraction must be > 0"),
    (["--param", "lr=uniform:0.1:0.2", "--jobs", "0"], "--jobs must be >= 1"),
    (["--param", "lr=uniform:0.1:0.2", "--overwrite"], "--overwrite is an option of models.train"),
    ([], "give at least one --param"),
    (["--resume"], "--resume needs --out DIR"),
    (["--resume", "--out", "{tmp}/none"], "--resume: --out {tmp}/none holds no study (study.db)"),
    (["--resume", "--out", "{tmp}", "--lr", "0.1"], "--resume continues the study as stored; do not give --lr"),
    (["--param", "lr=uniform:0.1:0.2", "--storage", "sqlite:///{tmp}/no/such/dir/x.db"], "--storage sqlite:///"
     "{tmp}/no/such/dir/x.db: cannot open the database"),
    (["--param", "lr=uniform:0.1:0.2", "--storage", "no url"], "cannot open the database: not a database URL"),
    (["--param", "lr=uniform:0.1:0.2", "--storage", "sqlite:///{tmp}/not-a-db"], "file is not a database"),
    (["--param", "lr=uniform:0.1:0.2", "--storage", "postgresql://me:secret@127.0.0.1:1/db"],
     "--storage postgresql://me:***@127.0.0.1:1/db: cannot open the database"),
])
def test_bad_input_is_one_line_with_status_2_and_nothing_written(tmp_path, capsys, args, words):
    (tmp_path / "not-a-db").write_text("hello\n" * 100)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = tmp_path / "out"
    assert cli(*args, *([] if "--out" in args or "--resume" in args else ["--out", out]), "--quiet") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert words.replace("{tmp}", str(tmp_path)) in err and "secret" not in err
    assert not out.exists()


def test_a_config_without_validation_data_gets_a_split(capsys):
    assert cli("--preset", "B", "--dataset", "digits", "--param", "lr=uniform:0.1:0.2", "--print-config") == 0
    out = capsys.readouterr().out
    assert "val_fraction = 0.1\n" in out and "threads = 1\n" in out and "dataset = \"digits\"" in out


# ------------------------------------------------------------------ sweeps end to end
@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 4-trial sweep by 2 worker processes into one SQLite study (the CLI, as a user runs it)."""
    out = tmp_path_factory.mktemp("sweep") / "s"
    proc = python("-m", "models.sweep", *TINY, *SPACE, "--trials", 4, "--jobs", 2, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_parallel_workers_write_a_consistent_study(swept):
    out, stdout = swept
    assert intact(out / "study.db")
    study = load(out)
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3] and set(states(study)) == {TrialState.COMPLETE}
    assert study.user_attrs["trials"] == 4 and study.user_attrs["sweep"]["space"] == [
        "lr=loguniform:0.001:0.1", "activations=choice:relu|tanh"]
    for t in trials:  # each trial links its run folder, whose metrics are the trial's
        metrics = json.loads((Path(t.user_attrs["run_dir"]) / "metrics.json").read_text())
        assert t.value == sweep_worker.objective_value(metrics) == metrics["epochs"][-1]["val_accuracy"]
        assert t.user_attrs["test_accuracy"] == metrics["test_accuracy"]
        assert metrics["config"]["lr"] == t.params["lr"] and metrics["config"]["activations"] == [
            t.params["activations"]]
        assert sorted(t.intermediate_values) == [1, 2]  # per-epoch validation accuracy, for the pruner
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000", "0001", "0002", "0003"]
    for name in ("history.png", "importance.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    report = (out / "report.txt").read_text()
    assert "4 trials (4 complete)" in report and "best 4 of 4 complete trials" in report and report in stdout


def test_the_best_toml_trains_to_the_best_trials_accuracy(swept, tmp_path):
    out, _ = swept
    best = load(out).best_trial
    assert train.main(["--config", str(out / "best.toml"), "--out", str(tmp_path / "again"), "--quiet",
                       "--no-plots"]) == 0
    metrics = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert metrics["test_accuracy"] == best.user_attrs["test_accuracy"]  # same seed: the same run, exactly
    assert sweep_worker.objective_value(metrics) == best.value


def test_a_second_process_joins_the_study_and_adds_trials(swept, tmp_path, capsys):
    out = tmp_path / "s"
    shutil.copytree(swept[0], out)
    assert cli(*TINY, *SPACE, "--out", out, "--quiet", "--no-plots") == 0  # the same command: nothing left to do
    assert len(load(out).trials) == 4
    assert cli(*TINY, *SPACE, "--out", out, "--trials", 6, "--no-plots") == 0
    study = load(out)
    assert [t.number for t in study.trials] == list(range(6)) and set(states(study)) == {TrialState.COMPLETE}
    assert "2 more trials queued (6 in all)" in capsys.readouterr().out
    # a different search space, or base config, is refused: the study keeps what it searched
    assert cli(*TINY, "--param", "lr=uniform:0.01:0.1", "--out", out, "--quiet") == 2
    assert "it searches lr=loguniform:0.001:0.1 activations=choice:relu|tanh, not lr=uniform:0.01:0.1" in \
        capsys.readouterr().err
    assert cli(*TINY, *SPACE, "--epochs", 3, "--out", out, "--quiet") == 2
    assert "its trials start from epochs = 2, not 3; continue it as stored with --resume" in capsys.readouterr().err
    assert cli("--out", out, "--trials", 5, "--resume", "--quiet") == 2
    assert "a study cannot shrink" in capsys.readouterr().err
    assert len(load(out).trials) == 6 and intact(out / "study.db")


KILLER = """
import os, signal, sys
import models.sweep as s, models.sweep_worker as w
on_epoch = w._Reporter.on_epoch
def killed(self, entry, model):
    on_epoch(self, entry, model)
    if self.trial.number == 1:
        os.kill(os.getpid(), signal.SIGKILL)
w._Reporter.on_epoch = killed
sys.exit(s.main(sys.argv[1:]))
"""


def test_a_killed_workers_trial_fails_by_heartbeat_and_resume_runs_it_again(tmp_path):
    out = tmp_path / "s"
    proc = python("-c", KILLER, *TINY, *SPACE, "--trials", 3, "--heartbeat", 1, "--out", out, "--quiet")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert states(load(out)) == [TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING]
    assert (out / "trials" / ".0001.partial").is_dir()  # what the killed run left
    assert cli("--out", out, "--resume", "--quiet", "--no-plots") == 0
    study = load(out)
    assert states(study) == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    killed, retry = study.trials[1], study.trials[3]
    assert "error" not in killed.user_attrs  # failed by its heartbeat, not by an error of its own
    assert retry.params == killed.params and retry.user_attrs["retry_of"] == 1
    assert Path(retry.user_attrs["run_dir"]).name == "0001"  # it reused the killed trial's folder
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000", "0001", "0002"]
    assert "trial 1: its worker was killed or interrupted (run again as trial 3)" in (out / "report.txt").read_text()
    assert intact(out / "study.db")


def test_ctrl_c_keeps_finished_trials_and_queues_the_running_one(tmp_path, monkeypatch, capsys):
    out = tmp_path / "s"
    on_epoch = sweep_worker._Reporter.on_epoch

    def interrupted(self, entry, model):
        on_epoch(self, entry, model)
        if self.trial.number == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(sweep_worker._Reporter, "on_epoch", interrupted)
    assert cli(*TINY, *SPACE, "--trials", 3, "--out", out, "--quiet") == 130
    assert f"continue with --resume --out {out}" in capsys.readouterr().err
    study = load(out)
    assert states(study) == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING, TrialState.WAITING]
    assert study.trials[3].params == study.trials[1].params and not (out / "report.txt").exists()
    monkeypatch.setattr(sweep_worker._Reporter, "on_epoch", on_epoch)
    assert cli("--out", out, "--resume", "--quiet", "--no-plots") == 0
    assert states(load(out)).count(TrialState.COMPLETE) == 3 and intact(out / "study.db")


INTERRUPTER = """
import os, signal, sys, time
import models.sweep as s, models.sweep_worker as w
on_epoch = w._Reporter.on_epoch
def interrupted(self, entry, model):
    on_epoch(self, entry, model)
    if self.trial.number == 1:
        os.kill(os.getppid(), signal.SIGINT)  # Ctrl-C on the sweep, while this worker is in trial 1
        time.sleep(60)
w._Reporter.on_epoch = interrupted
sys.exit(s.main(sys.argv[1:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the patch reaches forked workers only")
def test_ctrl_c_on_parallel_workers_fails_their_trials_and_exits_130(tmp_path):
    out = tmp_path / "s"
    proc = python("-c", INTERRUPTER, *TINY, *SPACE, "--trials", 4, "--jobs", 2, "--out", out, "--quiet")
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("interrupted; finished trials are kept")
    trials = load(out).trials
    assert TrialState.RUNNING not in [t.state for t in trials] and trials[1].state == TrialState.FAIL
    failed = [t for t in trials if t.state == TrialState.FAIL]
    queued = [t for t in trials if t.state == TrialState.WAITING and "retry_of" in t.user_attrs]
    assert sorted(t.user_attrs["retry_of"] for t in queued) == [t.number for t in failed]  # each queued again
    assert intact(out / "study.db")


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_workers_run_queued_trials_only(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'q.db'}", 5)
    assert storage.state_lock == str(tmp_path / ".q.db.lock")  # SQLite has no row locks: a file lock guards states
    base = train.config_from_args(train.build_parser().parse_args(TINY[:6]))
    study, _ = open_study(storage, "q", Sweep(base, tuple(parse_space(["lr=uniform:0.001:0.01"]))), 1, heartbeat=5,
                          pruner=None, say=lambda msg: None)
    trial = study.ask()  # the queued one
    assert trial.number == 0 and states(study) == [TrialState.RUNNING]
    with pytest.raises(NoQueuedTrial):  # Optuna would create trial 1 here: the plan is 1 trial
        study.ask()
    assert len(study.trials) == 1


def test_pruned_trials_are_recorded_and_leave_no_folder(tmp_path):
    settings = sweep_worker.Settings(str(tmp_path), f"sqlite:///{tmp_path / 'study.db'}", "p", heartbeat=5, quiet=True)
    base = train.config_from_args(train.build_parser().parse_args([*TINY[:6], "--epochs", "3", "--threads", "1"]))
    storage = open_storage(settings.storage, settings.heartbeat)
    always = optuna.pruners.ThresholdPruner(lower=1.01)  # every validation accuracy is too low
    study, swept = open_study(storage, "p", Sweep(base, tuple(parse_space(["lr=uniform:0.001:0.01"]))), 2,
                              heartbeat=5, pruner=always, say=lambda msg: None)
    work(study, storage, sweep_worker.make_objective(swept, settings), heartbeat=5)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    assert [t.user_attrs["pruned_at_epoch"] for t in trials] == [1, 1] and "run_dir" not in trials[0].user_attrs
    assert list((tmp_path / "trials").iterdir()) == []  # the pruned runs' staging folders are gone


def test_the_grid_sampler_runs_every_point_once(tmp_path):
    out = tmp_path / "g"
    assert cli("--dataset", "digits", "--epochs", 2, "--param", "hidden=choice:16|8", "--param",
               "batch_size=int:64:128:64", "--sampler", "grid", "--out", out, "--quiet", "--no-plots") == 0
    trials = load(out).trials
    assert sorted((t.params["hidden"], t.params["batch_size"]) for t in trials) == [
        ("16", 64), ("16", 128), ("8", 64), ("8", 128)]
    assert (out / "best.toml").exists()


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    out = tmp_path / "f"
    # one layer with two activations is refused when the trial builds its config: that trial fails, alone
    assert cli("--dataset", "digits", "--epochs", 1, "--activations", "relu,tanh", "--param", "hidden=choice:16|16,8",
               "--sampler", "grid", "--out", out, "--quiet", "--no-plots") == 0
    trials = load(out).trials
    assert sorted(t.state.name for t in trials) == ["COMPLETE", "FAIL"]
    failed = next(t for t in trials if t.state == TrialState.FAIL)
    assert "must give one activation or one per hidden layer" in failed.user_attrs["error"]
    assert f"trial {failed.number}: config key 'activations'" in (out / "report.txt").read_text()
    # when no trial completes, there is no best config: status 2 and the first error
    assert cli("--dataset", "digits", "--epochs", 1, "--activations", "relu,tanh", "--param", "hidden=choice:16|8",
               "--out", tmp_path / "none", "--trials", 2, "--quiet", "--no-plots") == 2
    assert capsys.readouterr().err.startswith("error: no trial completed; the first error: config key 'activations'")
    assert not (tmp_path / "none" / "best.toml").exists()

"""models.tensorboard and ``models.train --tensorboard``: the event files, read back record by record (CRCs
checked), hold the run's scalars at the right steps, the histograms, the confusion matrix; a resumed run
continues the log; without tensorboardX the flag fails before training."""

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from models import run as train_run
from models import tensorboard as tb
from models import train
from models.checkpoint import load_checkpoint
from models.loop import Observer
from models.presets import resolve_config

tensorboardX = pytest.importorskip("tensorboardX")
from tensorboardX.proto.event_pb2 import Event, SessionLog  # noqa: E402
from tensorboardX.record_writer import masked_crc32c  # noqa: E402

FAST = ["--dataset", "digits", "--hidden", "16", "--epochs", "2", "--threads", "1", "--quiet", "--no-plots"]


# ------------------------------------------------------------------ reading event files
def records(path: Path) -> list[bytes]:
    """The records of a TFRecord file: length (u64), its masked CRC-32C, data, the data's masked CRC-32C."""
    data, i, out = path.read_bytes(), 0, []
    while i < len(data):
        header = data[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == masked_crc32c(header), f"{path}: bad length CRC"
        body = data[i + 12:i + 12 + n]
        assert len(body) == n and struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == masked_crc32c(body)
        out.append(body)
        i += 16 + n
    return out


def event_files(logdir: Path) -> list[list[Event]]:
    """Each event file's events, the files in the order they were started (their first event's time)."""
    files = [[Event.FromString(r) for r in records(p)] for p in logdir.glob("events.out.tfevents.*")]
    return sorted(files, key=lambda events: events[0].wall_time)


def values(logdir: Path, purge: bool = True) -> dict[str, list[tuple[int, object]]]:
    """{tag: [(step, summary value)]} over all files, in order; with ``purge`` as TensorBoard reads them: a
    SessionLog START at step s drops what was logged before it at steps >= s."""
    out: dict[str, list[tuple[int, object]]] = {}
    for events in event_files(logdir):
        for e in events:
            if purge and e.HasField("session_log") and e.session_log.status == SessionLog.START:
                out = {tag: [(s, v) for s, v in items if s < e.step] for tag, items in out.items()}
            for v in e.summary.value:
                out.setdefault(v.tag, []).append((e.step, v))
    return out


def scalars(logdir: Path, purge: bool = True) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(s, v.simple_value) for s, v in items] for tag, items in values(logdir, purge).items()
            if items and items[0][1].WhichOneof("value") == "simple_value"}


# ------------------------------------------------------------------ pieces
def test_confusion_image_colours_each_rows_share_and_encodes_as_png():
    cm = np.array([[8, 2, 0], [0, 10, 0], [5, 0, 5]])
    img = tb.confusion_image(cm, cell=10)
    assert img.shape == (3, 31, 31) and img.dtype == np.uint8
    centre = img[:, 5::10, 5::10].transpose(1, 2, 0)  # (3, 3, RGB): one pixel inside each cell
    assert centre[1, 1].tolist() == [8, 48, 107] and centre[1, 0].tolist() == [255, 255, 255]  # share 1 and 0
    assert (centre[0, 0] < centre[0, 1]).all() and (centre[2, 0] == centre[2, 2]).all()  # 0.8 darker than 0.2
    assert (img[:, 0, :] == 200).all() and (img[:, :, 10] == 200).all()  # grid lines
    png = tb.png_bytes(img)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (31, 31)
    n = struct.unpack(">I", png[33:37])[0]
    assert png[37:41] == b"IDAT"
    rows = np.frombuffer(zlib.decompress(png[41:41 + n]), np.uint8).reshape(31, 1 + 31 * 3)
    assert (rows[:, 0] == 0).all() and np.array_equal(rows[:, 1:].reshape(31, 31, 3), img.transpose(1, 2, 0))
    try:
        from PIL import Image
    except ImportError:
        return
    import io

    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), img.transpose(1, 2, 0))


def test_markdown_table():
    text = tb.markdown_table(np.array([[3, 1], [0, 4]]), ["cat", "a|b"])
    assert text.splitlines() == ["| true \\ predicted | cat | a/b |", "|---|---|---|", "| cat | 3 | 1 |",
                                 "| a/b | 0 | 4 |"]


def test_the_log_folder_is_one_a_run_replaces_and_carries():
    assert tb.LOG_DIR in train_run.LOG_DIRS and tb.LOG_DIR not in train_run.OUTPUT_FILES


def test_histograms_hold_the_gradient_of_the_epochs_last_step(tmp_path):
    import tinygrad_lite.nn as nn
    from tinygrad_lite import optim

    model = nn.Linear(3, 2, rng=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1)
    o = tb.TensorBoardObserver()
    o.on_start(model=model, config=resolve_config(), data=None, out=tmp_path, resumed_step=0)
    grads = {}
    for step in (1, 2):
        for name, p in model.named_parameters():
            p.grad = np.full(p.data.shape, 10.0 * step, p.data.dtype)
            grads[name] = p.grad.copy()
        o.on_step(step, 1.0 / step, 0.5, 0.1, model)
        opt.zero_grad()  # as the loop's next step does first: the grads are gone before on_epoch
    o.on_epoch({"epoch": 1, "train_loss": 0.7, "train_accuracy": 0.5, "val_loss": None, "val_accuracy": None,
                "lr": 0.1, "steps": 2, "seconds": 0.0}, model)
    o.close()
    v = values(tmp_path / tb.LOG_DIR)
    for name, p in model.named_parameters():
        (step, w), = v[f"weights/{name}"]
        (gstep, g), = v[f"grads/{name}"]
        assert step == gstep == 2
        assert w.histo.num == p.data.size and w.histo.sum == pytest.approx(float(p.data.sum()), rel=1e-6)
        assert w.histo.min == pytest.approx(float(p.data.min())) and w.histo.max == pytest.approx(float(p.data.max()))
        assert g.histo.num == p.data.size and g.histo.sum == pytest.approx(float(grads[name].sum()))  # step 2's
        assert len(g.histo.bucket) <= o.HISTOGRAM_BINS
    s = scalars(tmp_path / tb.LOG_DIR)
    assert s["step/loss"] == [(1, 1.0), (2, 0.5)] and s["epoch/train_loss"] == [(2, pytest.approx(0.7))]
    assert "epoch/val_loss" not in s  # no validation split: nothing logged, not a 0


# ------------------------------------------------------------------ the CLI
def test_cli_tensorboard_logs_the_runs_scalars_histograms_and_confusion_matrix(tmp_path):
    out = tmp_path / "run"
    assert train.main([*FAST, "--out", str(out), "--tensorboard"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    logdir = out / tb.LOG_DIR
    (events,) = event_files(logdir)  # one file, in the committed folder
    assert not list(tmp_path.glob(".*"))
    s = scalars(logdir)
    n, bs, steps = metrics["n_train"], metrics["config"]["batch_size"], metrics["steps"]
    assert [st for st, _ in s["step/loss"]] == list(range(1, steps + 1))
    assert [st for st, _ in s["epoch/train_loss"]] == [e["steps"] for e in metrics["epochs"]]
    # each epoch's train loss and accuracy are the batches' (size-weighted) means of what was logged per step
    sizes = np.array(([bs] * (n // bs) + ([n % bs] if n % bs else [])) * len(metrics["epochs"]), np.float64)
    per_epoch = len(sizes) // len(metrics["epochs"])
    for k, entry in enumerate(metrics["epochs"]):
        w = sizes[k * per_epoch:(k + 1) * per_epoch]
        for key in ("loss", "accuracy"):
            batch = np.array([v for _, v in s[f"step/{key}"][k * per_epoch:(k + 1) * per_epoch]])
            assert (batch * w).sum() / w.sum() == pytest.approx(entry[f"train_{key}"], rel=1e-5)
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
            assert s[f"epoch/{key}"][k] == (entry["steps"], pytest.approx(entry[key], rel=1e-6)), key
    lrs = [v for _, v in s["step/lr"]]
    assert lrs[0] == pytest.approx(metrics["config"]["lr"]) and lrs[-1] < lrs[0]  # the cosine schedule
    assert s["test/accuracy"] == [(steps, pytest.approx(metrics["test_accuracy"]))]
    assert s["test/loss"] == [(steps, pytest.approx(metrics["test_loss"], rel=1e-6))]
    v = values(logdir)
    final = load_checkpoint(out / "model.safetensors").params
    for name, array in final.items():
        assert [st for st, _ in v[f"grads/{name}"]] == [e["steps"] for e in metrics["epochs"]]
        last = v[f"weights/{name}"][-1][1].histo
        assert last.num == array.size and last.sum == pytest.approx(float(array.sum(dtype=np.float64)), abs=1e-3)
    (step, image), = v["test/confusion_matrix"]
    expected = tb.confusion_image(np.array(metrics["confusion_matrix"]))
    assert step == steps and image.image.encoded_image_string == tb.png_bytes(expected)
    assert (image.image.height, image.image.width, image.image.colorspace) == (*expected.shape[1:], 3)
    texts = {tag: x[0][1].tensor.string_val[0].decode() for tag, x in v.items() if x[0][1].HasField("tensor")}
    assert "hidden = [16]" in texts["config/text_summary"]
    table = texts["test/confusion_table/text_summary"].splitlines()
    assert len(table) == 12 and table[2].startswith("| 0 | ") and table[2].endswith(" |")
    assert [int(x) for x in table[2].strip("| ").split(" | ")[1:]] == metrics["confusion_matrix"][0]


def test_cli_tensorboard_without_tensorboardx_fails_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX raises ImportError
    assert train.main([*FAST, "--out", str(tmp_path / "r"), "--tensorboard"]) == 2
    assert capsys.readouterr().err == ("error: --tensorboard needs tensorboardX: pip install "
                                       "'tinygrad-lite[tensorboard]'\n")
    assert not list(tmp_path.iterdir())
    assert train.main([*FAST, "--out", str(tmp_path / "r")]) == 0  # without the flag it is not needed


def test_resume_continues_the_log_and_overwrite_replaces_it(tmp_path):
    out = tmp_path / "run"
    assert train.main([*FAST, "--out", str(out), "--tensorboard"]) == 0
    first = sorted((out / tb.LOG_DIR).iterdir())
    s2 = json.loads((out / "metrics.json").read_text())["steps"]
    # resumed without the flag: the log is kept as it was
    assert train.main([*FAST, "--out", str(out), "--resume", "--epochs", "3"]) == 0
    assert sorted((out / tb.LOG_DIR).iterdir()) == [out / tb.LOG_DIR / p.name for p in first]
    s3 = json.loads((out / "metrics.json").read_text())["steps"]
    # resumed with it: a new file, its steps continuing from the checkpoint's
    assert train.main([*FAST, "--out", str(out), "--resume", "--epochs", "4", "--tensorboard"]) == 0
    files = event_files(out / tb.LOG_DIR)
    s4 = json.loads((out / "metrics.json").read_text())["steps"]
    assert len(files) == 2 and s2 < s3 < s4
    assert [st for st, _ in scalars(out / tb.LOG_DIR)["step/loss"]] == [*range(1, s2 + 1), *range(s3 + 1, s4 + 1)]
    assert [e.step for e in files[1] if e.HasField("session_log")] == [s3 + 1]
    # a new run under --overwrite replaces the old log, also when it writes none
    assert train.main([*FAST, "--out", str(out), "--overwrite"]) == 0
    assert not (out / tb.LOG_DIR).exists()


class _StopAt(Observer):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, step, loss, accuracy, lr, model):
        if step == self.step:
            raise KeyboardInterrupt


class _Peek(Observer):
    """Reads the log in ``on_end``, after the TensorBoard observer's: before the folder is committed."""

    def on_end(self, metrics, out):
        self.seen = scalars(Path(out) / tb.LOG_DIR)


def test_an_interrupted_run_resumed_shows_each_step_once(tmp_path):
    out = tmp_path / "run"
    config = resolve_config(overrides={"dataset": "digits", "hidden": [16], "epochs": 3, "threads": 1})
    with pytest.raises(KeyboardInterrupt) as e:  # in epoch 2 (57 steps an epoch), after epoch 1's checkpoint
        train_run.run(config, out, quiet=True, plots=False, observers=[tb.TensorBoardObserver(), _StopAt(70)])
    staging = e.value.unfinished
    assert staging is not None and not out.exists()
    logged = scalars(staging / tb.LOG_DIR)["step/loss"]  # written when the run failed
    assert [st for st, _ in logged] == list(range(1, 71))
    peek = _Peek()
    metrics = train_run.run(config, out, resume=True, quiet=True, plots=False,
                            observers=[tb.TensorBoardObserver(), peek])
    assert peek.seen["test/accuracy"] == [(metrics["steps"], pytest.approx(metrics["test_accuracy"]))]
    per_epoch = metrics["steps"] // 3
    assert per_epoch == 57
    assert len(event_files(out / tb.LOG_DIR)) == 2
    assert [st for st, _ in scalars(out / tb.LOG_DIR)["step/loss"]] == list(range(1, metrics["steps"] + 1))
    raw = [st for st, _ in scalars(out / tb.LOG_DIR, purge=False)["step/loss"]]
    assert len(raw) == metrics["steps"] + 70 - per_epoch  # without the purge event steps 58-70 would show twice

"""TensorBoard event files for a run: ``python -m models.train --tensorboard``.

``TensorBoardObserver`` (a ``models.loop.Observer``) writes event files into the run folder's
``tensorboard/`` (so ``tensorboard --logdir runs/`` shows every run), all against the global step:

- ``config``: the resolved config as TOML (text), at the start;
- ``step/loss``, ``step/accuracy``, ``step/lr``: each optimizer step's batch;
- ``epoch/train_loss``, ``epoch/train_accuracy``, ``epoch/val_loss``, ``epoch/val_accuracy``,
  ``epoch/lr``, ``epoch/epoch`` at each epoch's last step, with the histograms ``weights/<name>``
  and ``grads/<name>`` of every parameter (``model.named_parameters()``; the gradient of that step);
- ``test/accuracy``, ``test/loss``, ``test/confusion_matrix`` (an image; rows: true class, columns:
  predicted, each row's share from white to dark blue) and ``test/confusion_table`` (text), at the end.

A resumed run adds a new event file to the same folder with steps continuing from the
checkpoint's; its first event tells TensorBoard to drop what an interrupted attempt logged past
that step (tensorboardX's ``purge_step``). The events are flushed in ``on_end``, before the run's
folder is committed. Needs tensorboardX (``pip install 'tinygrad-lite[tensorboard]'``); the
image is a PNG made here with ``zlib``, so neither Pillow nor matplotlib is needed.
"""

from __future__ import annotations

import os
import struct
import time
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.config import ConfigError
from models.loop import Observer

__all__ = ["TensorBoardObserver", "LOG_DIR", "INSTALL_HINT", "confusion_image", "png_bytes", "markdown_table"]

#: The run folder's subfolder of event files.
LOG_DIR = "tensorboard"
INSTALL_HINT = "--tensorboard needs tensorboardX: pip install 'tinygrad-lite[tensorboard]'"

_LIGHT = np.array([255, 255, 255], np.float64)
_DARK = np.array([8, 48, 107], np.float64)


def confusion_image(cm: np.ndarray, cell: int | None = None) -> np.ndarray:
    """The confusion matrix ``cm`` (k, k) as an RGB image (3, H, W) uint8: cell (t, p) is ``cell`` px square,
    coloured by cm[t, p] / cm[t].sum() from white (0) to dark blue (1), with 1-px grey lines between cells."""
    cm = np.asarray(cm, np.float64)
    k = len(cm)
    cell = cell or max(8, 320 // max(k, 1))
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    rgb = _LIGHT + share[..., None] * (_DARK - _LIGHT)  # (k, k, 3)
    img = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    img[::cell, :] = img[:, ::cell] = 200  # grid lines
    img = np.pad(img, ((0, 1), (0, 1), (0, 0)), constant_values=200)
    return np.rint(img).astype(np.uint8).transpose(2, 0, 1)


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB image (3, H, W) uint8 as a PNG file (8-bit truecolour, no filter)."""
    rgb = np.ascontiguousarray(np.asarray(image, np.uint8).transpose(1, 2, 0))
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, 3 * w)], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def markdown_table(cm: np.ndarray, classes: Sequence[str]) -> str:
    """The confusion matrix as a Markdown table (TensorBoard's text tab renders it)."""
    names = [str(c).replace("|", "/") for c in classes]
    lines = ["| true \\ predicted | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(int(v)) for v in row) + " |" for name, row in zip(names, cm)]
    return "\n".join(lines)


class TensorBoardObserver(Observer):
    """Writes a run's curves, histograms and confusion matrix as TensorBoard events (see the module docstring).

    ``histograms``: also the per-epoch weight and gradient histograms. ``flush_secs``: how often the
    events reach the disk while the run trains (TensorBoard shows the staging folder live)."""

    #: Steps whose scalars are buffered before they are handed to the writer (and at each epoch's end).
    STEPS_PER_WRITE = 200
    #: Equal-width bins of a histogram (tensorboardX's default, ~1,500 exponential ones, made each event
    #: tens of kB, which its writer thread checksums in pure Python while the next epoch trains).
    HISTOGRAM_BINS = 64

    def __init__(self, *, histograms: bool = True, flush_secs: int = 10) -> None:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise ConfigError(INSTALL_HINT) from None
        self.histograms, self.flush_secs = histograms, flush_secs
        self.writer: Any = None
        self.logdir: Path | None = None
        self._params: list[tuple[str, Any]] = []
        self._grads: list[Any] = []
        self._pending: list[tuple[float, int, float, float, float]] = []

    def on_start(self, *, model: Any, config: Any, data: Any, out: Any, resumed_step: int) -> None:
        from tensorboardX import SummaryWriter

        self.logdir = Path(out) / LOG_DIR
        # a name of its own: tensorboardX names files by the second and opens them with "wb"
        suffix = f".{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.writer = SummaryWriter(str(self.logdir), purge_step=resumed_step + 1 if resumed_step else None,
                                    flush_secs=self.flush_secs, filename_suffix=suffix)
        self._params = list(model.named_parameters())
        self._grads, self._pending = [], []
        toml = config.to_toml() if hasattr(config, "to_toml") else str(config)
        self.writer.add_text("config", "```toml\n" + toml + "```", resumed_step)

    def on_step(self, step: int, loss: float, accuracy: float, lr: float, model: Any) -> None:
        self._pending.append((time.time(), step, loss, accuracy, lr))  # written in bulk: a step stays cheap
        if len(self._pending) >= self.STEPS_PER_WRITE:
            self._write_steps()
        if self.histograms:  # references only: the next zero_grad() drops them, it does not clear them
            self._grads = [p.grad for _, p in self._params]

    def _write_steps(self) -> None:
        """The buffered steps' scalars, one event per step."""
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        add = self.writer.file_writer.add_event
        for wall, step, loss, accuracy, lr in self._pending:
            values = [Summary.Value(tag="step/loss", simple_value=loss),
                      Summary.Value(tag="step/accuracy", simple_value=accuracy),
                      Summary.Value(tag="step/lr", simple_value=lr)]
            add(Event(wall_time=wall, step=step, summary=Summary(value=values)))
        self._pending = []

    def on_epoch(self, entry: dict[str, Any], model: Any) -> None:
        self._write_steps()
        w, step = self.writer, int(entry["steps"])
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "epoch"):
            if entry.get(key) is not None:
                w.add_scalar(f"epoch/{key}", entry[key], step)
        if not self.histograms:
            return
        for (name, p), g in zip(self._params, self._grads or [None] * len(self._params)):
            self._histogram(f"weights/{name}", p.data, step)
            if g is not None:
                self._histogram(f"grads/{name}", g, step)

    def _histogram(self, tag: str, values: Any, step: int) -> None:
        v = np.asarray(values).reshape(-1)
        if not np.isfinite(v).all():
            v = v[np.isfinite(v)]
        if v.size:
            self.writer.add_histogram(tag, v, step, bins=self.HISTOGRAM_BINS)

    def on_end(self, metrics: dict[str, Any], out: Any) -> None:
        from tensorboardX.proto.summary_pb2 import Summary

        self._write_steps()
        w, step = self.writer, int(metrics.get("steps", 0))
        w.add_scalar("test/accuracy", metrics["test_accuracy"], step)
        w.add_scalar("test/loss", metrics["test_loss"], step)
        cm = metrics.get("confusion_matrix")
        if cm is not None:
            cm = np.asarray(cm)
            image = confusion_image(cm)
            png = Summary.Image(height=image.shape[1], width=image.shape[2], colorspace=3,
                                encoded_image_string=png_bytes(image))
            w.file_writer.add_summary(Summary(value=[Summary.Value(tag="test/confusion_matrix", image=png)]), step)
            classes = metrics.get("classes") or [str(i) for i in range(len(cm))]
            w.add_text("test/confusion_table", markdown_table(cm, classes), step)
        self.close()  # everything on disk before the run's folder is committed

    def close(self) -> None:
        if self.writer is not None:
            self._write_steps()  # what a failed run logged before it failed
            self.writer.close()
            self.writer = None
        self._grads = []

"""Checkpoints: one ``.npz`` of plain arrays (loadable with ``allow_pickle=False``), written atomically.

Keys:

- ``param.<name>``: each model parameter (``layers.0.weight``, ...);
- ``optim.<key>``: the optimizer's ``state_dict()`` (``lr``, ``step``, ``m.0``, ...);
- ``best.<name>``: the best-so-far parameters of early stopping (optional);
- ``epoch``: completed epochs (0-d int64);
- ``config_json``: the resolved configuration, a JSON string in a 0-d unicode array;
- ``state_json``: the rest of the training state needed to resume exactly (random generator
  states as ``bit_generator.state``, history, early-stopping counters, time spent), JSON;
- ``format``: the format version.

``save_checkpoint`` writes a temporary file in the target's directory, flushes and fsyncs it,
then ``os.replace``-s it over the target, so a crash leaves either the old or the new file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Checkpoint", "CheckpointError", "FORMAT", "save_checkpoint", "load_checkpoint", "check_architecture",
           "expected_shapes", "atomic_write_text", "remove_stale_temporaries"]

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit the model it is loaded into."""


@dataclass
class Checkpoint:
    """What a checkpoint holds (see the module docstring)."""

    params: dict[str, np.ndarray]
    optim: dict[str, np.ndarray]
    epoch: int
    config: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    best: dict[str, np.ndarray] = field(default_factory=dict)
    path: str = ""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files an interrupted atomic write left in ``directory``
    (never a finished file: those are only ever renamed into place); returns what went."""
    stale = [p for p in Path(directory).glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink()
    return stale


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically (temp file in the same directory, fsync, rename)."""
    _atomic_write(Path(path), lambda f: f.write(text.encode("utf-8")))


def save_checkpoint(path: str | Path, params: dict[str, np.ndarray], optim: dict[str, np.ndarray], epoch: int,
                    config: dict[str, Any], state: dict[str, Any] | None = None,
                    best: dict[str, np.ndarray] | None = None) -> Path:
    """Write a checkpoint atomically; returns its path."""
    arrays: dict[str, np.ndarray] = {"format": np.asarray(FORMAT, dtype=np.int64),
                                     "epoch": np.asarray(int(epoch), dtype=np.int64),
                                     "config_json": np.asarray(json.dumps(config, sort_keys=True)),
                                     "state_json": np.asarray(json.dumps(state or {}, sort_keys=True))}
    for prefix, d in (("param", params), ("optim", optim), ("best", best or {})):
        for k, v in d.items():
            arrays[f"{prefix}.{k}"] = np.asarray(v)
    path = Path(path)
    _atomic_write(path, lambda f: np.savez(f, **arrays))
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint with ``allow_pickle=False``; CheckpointError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist" if not path.exists()
                              else f"checkpoint {path} is not a file")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable .npz checkpoint ({type(e).__name__}: {e})") from None
    except Exception as e:  # zipfile.BadZipFile and friends
        raise CheckpointError(f"{path}: not a readable .npz checkpoint ({type(e).__name__}: {e})") from None
    missing = [k for k in ("format", "epoch", "config_json") if k not in data]
    if missing:
        raise CheckpointError(f"{path}: not a tinygrad_lite checkpoint (missing {', '.join(missing)})")
    for key in ("format", "epoch"):
        value = data[key]
        if value.ndim != 0 or value.dtype.kind not in "iu":
            raise CheckpointError(f"{path}: '{key}' must be one integer, got {value.dtype} of shape {value.shape}")
    if int(data["format"]) != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {int(data['format'])}, this version reads {FORMAT}")
    try:
        config = json.loads(str(data["config_json"]))
        state = json.loads(str(data["state_json"])) if "state_json" in data else {}
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: corrupted config_json/state_json ({e})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: config_json is not a JSON object")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: state_json is not a JSON object")
    groups: dict[str, dict[str, np.ndarray]] = {"param": {}, "optim": {}, "best": {}}
    for k, v in data.items():
        prefix, _, name = k.partition(".")
        if prefix in groups and name:
            groups[prefix][name] = v
    if not groups["param"]:
        raise CheckpointError(f"{path}: holds no parameters (param.* arrays)")
    return Checkpoint(groups["param"], groups["optim"], int(data["epoch"]), config, state, groups["best"], str(path))


def expected_shapes(sizes: list[int]) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of ``models.mlp.MLP(sizes)``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"layers.{l}.weight"] = (n_in, n_out)
        shapes[f"layers.{l}.bias"] = (n_out,)
    return shapes


def check_architecture(ckpt: Checkpoint, sizes: list[int], dtype: str | None = None) -> None:
    """CheckpointError unless the checkpoint's parameters are exactly those of an MLP with ``sizes``."""
    want = expected_shapes(sizes)
    have = {k: tuple(v.shape) for k, v in ckpt.params.items()}
    where = ckpt.path or "checkpoint"
    problems = []
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected {', '.join(extra)}")
    for k, shape in want.items():
        if k in have and have[k] != shape:
            problems.append(f"{k} has shape {have[k]}, expected {shape}")
    if dtype is not None:
        for k, v in ckpt.params.items():
            if v.dtype != np.dtype(dtype):
                problems.append(f"{k} is {v.dtype}, expected {dtype}")
                break
    if problems:
        got = _sizes_of(have)
        raise CheckpointError(f"{where}: checkpoint does not match the architecture {'-'.join(map(str, sizes))}"
                              + (f" (it holds {got})" if got else "") + ": " + "; ".join(problems))


def _sizes_of(shapes: dict[str, tuple[int, ...]]) -> str:
    sizes = []
    l = 0
    while f"layers.{l}.weight" in shapes and len(shapes[f"layers.{l}.weight"]) == 2:
        n_in, n_out = shapes[f"layers.{l}.weight"]
        if not sizes:
            sizes.append(n_in)
        sizes.append(n_out)
        l += 1
    return "-".join(map(str, sizes))

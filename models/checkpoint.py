"""Checkpoints and saved models: safetensors files with the run's config and state in the header.

A training run writes two files (``tinygrad_lite.nn.state`` reads and writes the format):

- ``model.safetensors``: the final (or best) parameters (and buffers) under their ``state_dict()``
  names (``layers.0.weight`` of shape (in, out), ...);
- ``checkpoint.safetensors``: the same parameters, the optimizer's state under ``optimizer.``
  (``optimizer.lr``, ``optimizer.step``, ``optimizer.m.0``, ...), the best-so-far parameters of
  early stopping under ``best.``, and everything else needed to resume exactly.

The header's ``__metadata__`` (string values) holds ``format``, ``kind`` ("checkpoint" or
"model"), ``epoch``, ``run_id``, ``config`` (the run's ``TrainConfig``, JSON), ``state`` (random
generator states, step counter, history, early-stopping counters, JSON) and ``scheduler``
(the learning-rate scheduler's ``state_dict()``, JSON).

``load_checkpoint`` reads the header first, works out every tensor's expected shape and dtype
from the stored config (or, for a plain weights file, from the parameter shapes), checks the
declared sizes against them and a limit, and only then reads the tensors. Checkpoints of
earlier versions (``.npz``) load through the same checks (``models.legacy``).

Loading a saved model::

    from models.checkpoint import load_model
    model = load_model("runs/default-digits-20260101-120000/model.safetensors")
    predictions = model(x).numpy().argmax(axis=1)    # x: float32 (n, 784) in [0, 1]; a CNN's (n, 1, 28, 28)

A CNN's files also hold BatchNorm's buffers under their ``state_dict()`` names
(``bn.0.running_mean``, ``bn.0.running_var``, ``bn.0.num_batches_tracked`` (int64)); the
registry says which entries are buffers, so the optimizer's states index the trainable
parameters only.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from models import registry
from models.config import ConfigError, TrainConfig, display
from models.files import atomic_write
from models.legacy import NPY_HEADER_MAX, NpzError, NpzReader
from tinygrad_lite.nn.state import (
    MAX_BYTES,
    SafetensorsError,
    load_safetensors,
    read_safetensors_header,
    save_safetensors,
)

__all__ = ["Checkpoint", "CheckpointError", "FORMAT", "CHECKPOINT", "MODEL", "save_checkpoint", "save_model",
           "load_checkpoint", "load_model", "find_checkpoint", "check_architecture", "expected_shapes"]

FORMAT = "tinygrad_lite.checkpoint/2"
CHECKPOINT, MODEL = "checkpoint.safetensors", "model.safetensors"
_LEGACY = {CHECKPOINT: "checkpoint.npz", MODEL: "model.npz"}
_METADATA_LIMIT = 1 << 20  # config and small fields of a legacy .npz
_STATE_LIMIT = 64 << 20  # its training state (history grows with the epochs)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit the model it is loaded into."""


@dataclass
class Checkpoint:
    """What a checkpoint or model file holds (see the module docstring)."""

    params: dict[str, np.ndarray]
    optim: dict[str, np.ndarray]
    epoch: int
    config: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    best: dict[str, np.ndarray] = field(default_factory=dict)
    scheduler: dict[str, Any] | None = None
    path: str = ""
    kind: str = "checkpoint"
    run_id: str = ""

    def missing_training_state(self) -> str | None:
        """Why ``--resume`` cannot continue from this file, or None when it can."""
        missing = [k for k in ("step", "model_rng", "train_rng") if k not in self.state]
        if not self.optim:
            missing.insert(0, "optimizer state")
        if not missing:
            return None
        return (f"{self.path} holds no training state ({', '.join(missing)} missing): it was written "
                f"{'as a saved model' if self.kind == 'model' else 'without one'} (save_model, or save_checkpoint "
                f"without optimizer state and state), not by a training run; --resume continues only a "
                f"{CHECKPOINT} that models.train wrote")


def _as_dict(config: TrainConfig | dict[str, Any] | None) -> dict[str, Any]:
    return config.to_dict() if isinstance(config, TrainConfig) else dict(config or {})


def save_checkpoint(path: str | os.PathLike, params: dict[str, np.ndarray], optim: dict[str, np.ndarray] | None = None,
                    epoch: int = 0, config: TrainConfig | dict[str, Any] | None = None,
                    state: dict[str, Any] | None = None, best: dict[str, np.ndarray] | None = None,
                    scheduler: dict[str, Any] | None = None, *, kind: str = "checkpoint", run_id: str = "") -> Path:
    """Write a checkpoint (safetensors) atomically; returns its path."""
    arrays: dict[str, Any] = dict(params)
    arrays.update({f"optimizer.{k}": v for k, v in (optim or {}).items()})
    arrays.update({f"best.{k}": v for k, v in (best or {}).items()})
    metadata = {"format": FORMAT, "kind": kind, "epoch": str(int(epoch)), "run_id": run_id,
                "config": json.dumps(_as_dict(config), sort_keys=True)}
    if state is not None:
        metadata["state"] = json.dumps(state, sort_keys=True)
    if scheduler is not None:
        metadata["scheduler"] = json.dumps(scheduler, sort_keys=True)
    return atomic_write(path, lambda f: save_safetensors(f, arrays, metadata))


def save_model(path: str | os.PathLike, model: Any, config: TrainConfig | dict[str, Any] | None = None,
               epoch: int = 0, *, run_id: str = "") -> Path:
    """Write a model's parameters (a Module or a state dict) and its config, atomically."""
    params = model.state_dict() if hasattr(model, "state_dict") else dict(model)
    return save_checkpoint(path, params, None, epoch, config, kind="model", run_id=run_id)


def find_checkpoint(directory: str | os.PathLike, name: str = CHECKPOINT) -> Path | None:
    """``directory/checkpoint.safetensors``, or the ``.npz`` an earlier version wrote, or None."""
    for candidate in (name, _LEGACY.get(name)):
        if candidate and (Path(directory) / candidate).is_file():
            return Path(directory) / candidate
    return None


def model_file(path: str | os.PathLike) -> Path:
    """The saved model a user points at: a run folder's ``model.safetensors`` (or its ``.npz``
    predecessor), or the file itself."""
    p = Path(path)
    if p.is_dir():
        found = find_checkpoint(p, MODEL)
        if found is None:
            raise CheckpointError(f"{display(p)} holds no {MODEL} (is it a run's folder?)")
        return found
    return p


# ------------------------------------------------------------------ expected contents
def expected_shapes(sizes: list[int], model: str = "mlp", config: TrainConfig | None = None
                    ) -> dict[str, tuple[int, ...]]:
    """State-dict names and shapes (parameters and buffers) of the registry's ``model`` with ``sizes``
    (``config``: the rest of its architecture, e.g. the CNN's channels; not needed for the MLP)."""
    return registry.MODELS[model].shapes(config, list(sizes))


def _layout(model: str, config: TrainConfig | None, sizes: list[int], dtype: np.dtype | None
            ) -> tuple[dict[str, tuple[int, ...]], list[str], dict[str, np.dtype | None]]:
    """(state-dict shapes, trainable names in optimizer order, each entry's dtype (None: any))."""
    entry = registry.MODELS[model]
    shapes, buffers = entry.shapes(config, sizes), entry.buffers(config, sizes)
    dtypes = {k: dtype if buffers.get(k) is None else np.dtype(buffers[k]) for k in shapes}
    return shapes, [k for k in shapes if k not in buffers], dtypes


def _config(stored: dict[str, Any], where: str) -> TrainConfig | None:
    if not stored:
        return None
    try:
        return TrainConfig.from_dict(stored, f"{where}: stored config")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def _architecture(config: TrainConfig | None, shapes: dict[str, tuple[int, ...]], where: str,
                  sizes: list[int] | None) -> tuple[str, list[int]]:
    """(model name, sizes) the file must hold: from ``sizes``, the stored config, or the shapes themselves."""
    model = config.model if config is not None else "mlp"
    if sizes is None and config is not None:
        try:
            info = registry.dataset_info(config.dataset)
        except ValueError as e:
            raise CheckpointError(f"{where}: {e}") from None
        sizes = [info.n_inputs, *config.hidden, len(info.classes)]
    if sizes is None:
        sizes = registry.MODELS[model].sizes(config, {k: v for k, v in shapes.items()
                                                      if not k.startswith(("optimizer.", "best."))})
        if sizes is None:
            raise CheckpointError(f"{where}: holds no {model.upper()} parameters (layers.<l>.weight, "
                                  f"layers.<l>.bias) and no config saying what it should hold")
    return model, list(sizes)


def _specs(keys: list[str], params: dict[str, tuple[int, ...]], order: list[str], dtypes: dict[str, np.dtype],
           where: str, what: str) -> dict[str, Any]:
    """The (dtype, shape) each key of the file must have (``optimizer.lr``: shape None, any of at most 1,024
    values); CheckpointError for a key that has no place in a checkpoint of ``params`` (the state dict;
    ``order``: its trainable entries, which the optimizer's states index)."""
    spec = lambda dt, shape: SimpleNamespace(dtype=np.dtype(dt), shape=shape)
    out, unknown = {}, []
    for k in keys:
        if k in params:
            out[k] = spec(dtypes[k], params[k])
        elif k.startswith("best.") and k[5:] in params:
            out[k] = spec(dtypes[k[5:]], params[k[5:]])
        elif k == "optimizer.lr":
            out[k] = spec(np.float64, None)
        elif k == "optimizer.step":
            out[k] = spec(np.int64, (len(order),))
        elif (m := re.fullmatch(r"optimizer\.(\w+)\.(\d+)", k)) and int(m.group(2)) < len(order):
            name = order[int(m.group(2))]
            out[k] = spec(dtypes[name], params[name])
        else:
            unknown.append(k)
    if unknown:
        raise CheckpointError(f"{where}: unexpected tensors {unknown[:10]} for {what}")
    return out


def _lr_shape(shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    if len(shape) > 1 or int(np.prod(shape)) > 1024:
        raise CheckpointError(f"{where}: 'optimizer.lr' has shape {shape}, expected one value per parameter group")
    return shape


def _param_shapes(header: dict[str, tuple[Any, tuple[int, ...]]]) -> dict[str, tuple[int, ...]]:
    return {k: v[1] for k, v in header.items() if not k.startswith(("optimizer.", "best."))}


def _mismatch(where: str, sizes: list[int], have: dict[str, tuple[int, ...]], dtype: np.dtype | None,
              dtypes: dict[str, Any], model: str = "mlp", config: TrainConfig | None = None) -> None:
    want, _, want_dtypes = _layout(model, config, sizes, dtype)
    problems = []
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected {', '.join(extra)}")
    problems += [f"{k} has shape {have[k]}, expected {shape}" for k, shape in want.items()
                 if k in have and have[k] != shape]
    wrong = [k for k in want if k in have and want_dtypes[k] is not None and np.dtype(dtypes[k]) != want_dtypes[k]]
    problems += [f"{wrong[0]} is {np.dtype(dtypes[wrong[0]])}, expected {want_dtypes[wrong[0]]}"] if wrong else []
    if problems:
        got = registry.MODELS[model].sizes(config, have) if model != "mlp" else registry.mlp_sizes(have)
        name = "" if model == "mlp" else f"{model.upper()} "
        raise CheckpointError(f"{where}: checkpoint does not match the {name}architecture "
                              f"{'-'.join(map(str, sizes))}" + (f" (it holds {'-'.join(map(str, got))})" if got else "")
                              + ": " + "; ".join(problems))


def check_architecture(ckpt: Checkpoint, sizes: list[int], dtype: str | None = None,
                       config: TrainConfig | None = None) -> None:
    """CheckpointError unless the checkpoint's state dict is exactly that of a model with ``sizes`` (the model
    and the rest of its architecture from ``config``; an MLP without one)."""
    _mismatch(ckpt.path or "checkpoint", list(sizes), {k: tuple(v.shape) for k, v in ckpt.params.items()},
              np.dtype(dtype) if dtype else None, {k: v.dtype for k, v in ckpt.params.items()},
              config.model if config is not None else "mlp", config)


# ------------------------------------------------------------------ reading
def _json(text: str, key: str, where: str) -> Any:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
        raise CheckpointError(f"{where}: corrupted {key} ({e})") from None
    return value


def _object(value: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CheckpointError(f"{where}: {key} is not a JSON object")
    return value


def _split(arrays: dict[str, np.ndarray]) -> tuple[dict, dict, dict]:
    params = {k: v for k, v in arrays.items() if not k.startswith(("optimizer.", "best."))}
    optim = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    best = {k[5:]: v for k, v in arrays.items() if k.startswith("best.")}
    return params, optim, best


def load_checkpoint(path: str | os.PathLike, sizes: list[int] | None = None, *,
                    max_bytes: int = MAX_BYTES) -> Checkpoint:
    """Read a checkpoint or model file (safetensors, or an earlier version's ``.npz``), checked before any
    tensor is read against ``sizes`` (default: what its stored config describes); CheckpointError naming
    the file and the problem."""
    where = display(path)
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {where} does not exist" if not p.exists() else
                              f"checkpoint {where} is not a file")
    try:
        with open(p, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise CheckpointError(f"{where}: cannot read it ({e.strerror})") from None
    if magic.startswith(b"PK") or p.suffix == ".npz":
        return _load_npz(p, where, sizes, max_bytes)
    try:
        tensors, meta = read_safetensors_header(p)
    except (SafetensorsError, OSError) as e:
        raise CheckpointError(str(e) if isinstance(e, SafetensorsError) else f"{where}: {e}") from None
    if meta.get("format", FORMAT) != FORMAT:
        raise CheckpointError(f"{where}: checkpoint format {meta['format']!r}, this version reads {FORMAT!r}")
    try:
        epoch = int(meta.get("epoch", "0"))
    except ValueError:
        raise CheckpointError(f"{where}: 'epoch' must be one integer, got {meta['epoch']!r}") from None
    config = _object(_json(meta.get("config", "{}"), "config", where), "config", where)
    state = _object(_json(meta.get("state", "{}"), "state", where), "state", where)
    scheduler = _json(meta.get("scheduler", "null"), "scheduler", where)
    cfg = _config(config, where)
    header = {k: (t.dtype.newbyteorder("="), t.shape) for k, t in tensors.items()}
    model, sizes = _architecture(cfg, _param_shapes(header), where, sizes)
    dtype = np.dtype(cfg.dtype if cfg is not None else header[next(iter(expected_shapes(sizes, model, cfg)))][0])
    params, order, dtypes = _layout(model, cfg, sizes, dtype)
    _mismatch(where, sizes, _param_shapes(header), dtype, {k: v[0] for k, v in header.items()}, model, cfg)
    expected = _specs(list(tensors), params, order, dtypes, where, f"a {'-'.join(map(str, sizes))} {model.upper()}")
    if "optimizer.lr" in expected:
        expected["optimizer.lr"].shape = _lr_shape(header["optimizer.lr"][1], where)
    try:
        arrays = load_safetensors(p, expected, max_bytes=max_bytes)
    except (SafetensorsError, OSError) as e:
        raise CheckpointError(str(e) if isinstance(e, SafetensorsError) else f"{where}: {e}") from None
    params, optim, best = _split(arrays)
    return Checkpoint(params, optim, epoch, config, state, best, scheduler if isinstance(scheduler, dict) else None,
                      where, meta.get("kind", "weights"), meta.get("run_id", ""))


def _load_npz(p: Path, where: str, sizes: list[int] | None, max_bytes: int) -> Checkpoint:
    try:
        with NpzReader(p) as z:
            keys = z.keys()
            missing = [k for k in ("format", "epoch", "config_json") if k not in keys]
            plain = len(missing) == 3 and any(k.startswith(("layers.", "param.layers.")) for k in keys)
            if missing and not plain:
                raise CheckpointError(f"{where}: not a tinygrad_lite checkpoint (missing {', '.join(missing)})")
            small = {k: z.read(k, max_bytes=_STATE_LIMIT if k == "state_json" else _METADATA_LIMIT)
                     for k in ("format", "epoch", "config_json", "state_json") if k in keys}
            if plain:  # a state dict saved with np.savez: weights only
                small = {"format": np.asarray(1), "epoch": np.asarray(0), "config_json": np.asarray("{}")}
            for key in ("format", "epoch"):
                value = small[key]
                if value.ndim != 0 or value.dtype.kind not in "iu":
                    raise CheckpointError(f"{where}: '{key}' must be one integer, got {value.dtype} of shape "
                                          f"{value.shape}")
            if int(small["format"]) != 1:
                raise CheckpointError(f"{where}: checkpoint format {int(small['format'])}, this version reads 1 "
                                      f"(.npz) and {FORMAT!r} (safetensors)")
            config = _object(_json(str(small["config_json"]), "config_json", where), "config_json", where)
            state = _object(_json(str(small.get("state_json", "{}")), "state_json", where), "state_json", where)
            names = {("optimizer." + k[6:] if k.startswith("optim.") else k[6:] if k.startswith("param.") else k): k
                     for k in keys if k not in small}
            cfg = _config(config, where)
            header: dict[str, tuple[Any, tuple[int, ...]]] = {}
            if cfg is None:  # nothing says what to expect: sizes from the members' own .npy headers
                for new, old in names.items():
                    dt, shape, _ = z.header(old, max_bytes)
                    header[new] = (dt.newbyteorder("="), shape)
            model, sizes = _architecture(cfg, _param_shapes(header), where, sizes)
            first = next(iter(expected_shapes(sizes, model, cfg)))
            dtype = np.dtype(cfg.dtype if cfg is not None else header[first][0])
            params, order, dtypes = _layout(model, cfg, sizes, dtype)
            what = f"a {'-'.join(map(str, sizes))} {model.upper()}"
            expected = _specs(list(names), params, order, dtypes, where, what)
            for new, s in expected.items():  # declared sizes first: nothing is decompressed before this
                need = 1024 * 8 if s.shape is None else int(np.prod(s.shape)) * s.dtype.itemsize
                declared = z.members[names[new]].file_size
                if declared > need + NPY_HEADER_MAX:
                    raise CheckpointError(f"{where}: member {names[new] + '.npy'!r} declares {declared:,} bytes, more "
                                          f"than the {need:,} that {s.dtype} {s.shape} needs ({what}); refused "
                                          f"without decompressing it")
            for new, old in names.items():
                dt, shape, _ = z.header(old, max_bytes)
                header[new] = (dt.newbyteorder("="), shape)
            _mismatch(where, sizes, _param_shapes(header), dtype, {k: v[0] for k, v in header.items()}, model, cfg)
            if "optimizer.lr" in expected:
                expected["optimizer.lr"].shape = _lr_shape(header["optimizer.lr"][1], where)
            arrays = {new: z.read(names[new], s.shape, s.dtype, max_bytes=max_bytes) for new, s in expected.items()}
    except NpzError as e:
        raise CheckpointError(str(e)) from None
    params, optim, best = _split(arrays)
    if not params:
        raise CheckpointError(f"{where}: holds no parameters (param.* arrays)")
    return Checkpoint(params, optim, int(small["epoch"]), config, state, best, None, where, "checkpoint")


def load_model(path: str | os.PathLike) -> Any:
    """The model a ``model.safetensors`` (or checkpoint) holds, built from its stored config, in eval mode."""
    ckpt = load_checkpoint(path)
    config = _config(ckpt.config, ckpt.path)
    if config is None:
        raise CheckpointError(f"{ckpt.path}: holds no config to build the model from; build it yourself and "
                              f"model.load_state_dict(tinygrad_lite.nn.state.load_safetensors(path))")
    entry = registry.MODELS[config.model]
    sizes = entry.sizes(config, {k: v.shape for k, v in ckpt.params.items()})
    model = entry.build(config, sizes, np.random.default_rng(config.seed))
    model.load_state_dict(ckpt.params)
    return model.eval()

"""A training run's configuration: ``TrainConfig``, one frozen dataclass, validated once when built.

Every field is a hyper-parameter with its type, default and help; every field is a flag of
``python -m models.train`` (``--batch-size`` for ``batch_size``) and a key of a TOML config
file. Names that choose something (model, activations, init, optimizer, schedule, dataset,
dtype) are checked against ``models.registry``. ``to_toml()`` writes a file that ``from_toml``
(or ``--config``) reads back to an equal config; text that UTF-8 cannot hold (a path with
non-UTF-8 bytes) is refused when the config is built, before anything runs.
``models.presets.resolve_config`` builds one from defaults < preset < TOML file < flags.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from models import registry

__all__ = ["ConfigError", "TrainConfig", "FIELDS", "DEFAULTS", "HELP", "read_toml", "toml_text", "memory_needed",
           "check_memory", "display", "convert_value"]


class ConfigError(ValueError):
    """A configuration problem: unknown key, wrong type or value, unknown preset. ``key`` names the
    config key when there is one, ``detail`` is the message without it."""

    def __init__(self, message: str, key: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.key, self.detail = key, detail if detail is not None else message


def display(path: Any) -> str:
    """A path as printable text: bytes that are not UTF-8 shown as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace") if isinstance(path, (str, bytes, os.PathLike)) \
        else str(path)


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run computes (see the field help or ``--help``)."""

    preset: str = _f("default", "preset the other values start from")
    model: str = _f("mlp", "the model")
    dataset: str = _f("digits", "dataset (digits is bundled; the others are looked up, or downloaded once)")
    data_dir: str = _f("", "directory holding the IDX files ('' = the loader's search path)")
    hidden: tuple[int, ...] = _f((128, 64), "hidden layer widths, e.g. 128,64 (inputs/outputs come from the data; "
                                            "the CNN's fully connected layers after its conv blocks)")
    activations: tuple[str, ...] = _f(("relu",), "one activation, or one per hidden layer (the CNN: relu)")
    channels: tuple[int, ...] = _f((32, 64), "CNN: output channels of each conv block (3×3 conv, BatchNorm, ReLU, "
                                             "2×2 max-pool), e.g. 32,64")
    batchnorm: bool = _f(True, "CNN: BatchNorm after each convolution (which then has no bias)")
    init: str = _f("he_normal", "weight initialiser")
    init_std: float = _f(0.01, "standard deviation for init = normal")
    bias_init: str = _f("zeros", "MLP bias initialiser: zeros, or uniform = U(-0.5, 0.5) drawn after each layer's "
                                 "weights (the classic from-scratch tutorial's rand() - 0.5)")
    optimizer: str = _f("adam", "optimizer")
    lr: float = _f(1e-3, "learning rate (the peak rate for a schedule)")
    momentum: float = _f(0.0, "SGD momentum")
    nesterov: bool = _f(False, "SGD Nesterov momentum")
    beta1: float = _f(0.9, "Adam β1")
    beta2: float = _f(0.999, "Adam β2")
    eps: float = _f(1e-8, "Adam/RMSprop ε")
    alpha: float = _f(0.9, "RMSprop decay of the squared-gradient average")
    weight_decay: float = _f(0.0, "L2 weight decay added to the gradient")
    batch_size: int = _f(64, "mini-batch size (0 = full batch)")
    epochs: int = _f(5, "epochs (passes over the training split)")
    iterations: int = _f(0, "optimizer steps in all; overrides epochs when > 0 (may stop mid-epoch)")
    shuffle: bool = _f(True, "shuffle the training split every epoch")
    schedule: str = _f("constant", "learning-rate schedule, stepped once per optimizer step")
    step_size: int = _f(1, "step schedule: epochs between decays")
    gamma: float = _f(0.5, "step schedule: decay factor")
    min_lr: float = _f(0.0, "cosine schedule: final learning rate")
    warmup_steps: int = _f(0, "linear warm-up steps: the schedule times (t + 1) / warmup_steps at step t")
    dropout: float = _f(0.0, "inverted dropout after each hidden activation")
    augment: bool = _f(False, "random shifts and rotations of training images")
    augment_shift: int = _f(2, "augmentation: largest shift in pixels")
    augment_rotation: float = _f(10.0, "augmentation: largest rotation in degrees")
    val_fraction: float = _f(0.0, "fraction of the training data held out for validation (0 = none)")
    patience: int = _f(0, "early stopping: epochs without a lower validation loss (0 = off)")
    restore_best: bool = _f(True, "early stopping: restore the weights of the best validation loss")
    seed: int = _f(0, "random seed (init, split, shuffling, dropout, augmentation)")
    dtype: str = _f("float32", "floating-point type of the model and data")
    threads: int = _f(0, "BLAS threads (0 = the library's default; 1 is fastest on a busy machine)")
    eval_batch_size: int = _f(5000, "batch size for evaluation (no gradients)")
    log_every: int = _f(1, "print the epoch summary and save a checkpoint every this many epochs (and the last)")

    def __post_init__(self) -> None:
        for key, kind in KINDS.items():
            object.__setattr__(self, key, convert_value(key, getattr(self, key), kind))
        _check_values(self)

    # ------------------------------------------------------------ conversions
    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "config") -> TrainConfig:
        """A config from a mapping of some or all keys (the rest default); errors name ``where``."""
        unknown = [k for k in values if k not in KINDS]
        if unknown:
            raise ConfigError(f"{where}: unknown config key {unknown[0]!r}; valid keys: {', '.join(KINDS)}",
                              unknown[0])
        try:
            return cls(**values)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}", e.key, e.detail) from None

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a config written by ``to_toml`` (or by hand; missing keys take their defaults)."""
        return cls.from_dict(read_toml(path), display(path))

    def to_dict(self) -> dict[str, Any]:
        """Every key, lists for the tuples (JSON- and TOML-ready)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_toml(self) -> str:
        """TOML text of every key; ``from_toml`` reads it back to an equal config."""
        return toml_text(self.to_dict(), "tinygrad_lite training config (pass it back with --config FILE)")

    def __getitem__(self, key: str) -> Any:
        """Read by key, as from the plain dict a config used to be (``config["lr"]``)."""
        if key not in KINDS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in KINDS else default

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes``, validated again."""
        return dataclasses.replace(self, **changes)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
KINDS: dict[str, Any] = get_type_hints(TrainConfig)
DEFAULTS: dict[str, Any] = {f.name: list(f.default) if isinstance(f.default, tuple) else f.default
                             for f in FIELDS.values()}
HELP: dict[str, str] = {k: f.metadata["help"] for k, f in FIELDS.items()}


def _type_name(kind: Any) -> str:
    return {tuple[int, ...]: "list[int]", tuple[str, ...]: "list[str]"}.get(kind, getattr(kind, "__name__", str(kind)))


def convert_value(key: str, value: Any, kind: Any) -> Any:
    """The value in the field's type (int → float, a list or one value → tuple), or ConfigError."""

    def bad() -> ConfigError:
        detail = f"must be {_type_name(kind)}, got {type(value).__name__} {value!r}"
        return ConfigError(f"config key {key!r} {detail}", key, detail)

    if kind is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind is int or kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            raise bad()
        return kind(value)
    if kind is str:
        if not isinstance(value, str):
            raise bad()
        return _utf8(key, value)
    elem = int if kind == tuple[int, ...] else str
    if isinstance(value, elem) and not isinstance(value, bool):
        value = (value,)  # a single value is a one-element list
    if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, elem) for v in value):
        raise bad()
    return tuple(_utf8(key, v) if elem is str else v for v in value)


def _utf8(key: str, text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        detail = (f"holds bytes that are not UTF-8 ({display(text)!r}); a run's config.toml and checkpoints "
                  f"hold UTF-8 text only: rename it, or use a symlink with a UTF-8 name")
        raise ConfigError(f"config key {key!r} {detail}", key, detail) from None
    return text


def _check_values(c: TrainConfig) -> None:
    def fail(key: str, msg: str) -> None:
        value = getattr(c, key)
        detail = f"{msg}, got {list(value) if isinstance(value, tuple) else value!r}"
        raise ConfigError(f"config key {key!r} {detail}", key, detail)

    for key in registry.CHOICE_KEYS:
        valid = registry.choices(key)
        for v in getattr(c, key) if key == "activations" else (getattr(c, key),):
            if v not in valid:
                if key == "dataset":
                    detail = f"names an unknown dataset {v!r}; valid names: {', '.join(valid)}"
                    raise ConfigError(f"config key 'dataset' {detail}", key, detail)
                fail(key, f"must be one of {', '.join(valid)}")
    from models.presets import PRESETS

    if c.preset not in PRESETS:
        fail("preset", f"must be one of {', '.join(PRESETS)}")
    for key in ("epochs", "eval_batch_size", "log_every", "step_size"):
        if getattr(c, key) < 1:
            fail(key, "must be >= 1")
    for key in ("batch_size", "iterations", "patience", "augment_shift", "warmup_steps", "threads", "seed"):
        if getattr(c, key) < 0:
            fail(key, "must be >= 0")
    if not c.hidden or any(h < 1 for h in c.hidden):
        fail("hidden", "must list one or more positive widths")
    if len(c.activations) not in (1, len(c.hidden)):
        fail("activations", f"must give one activation or one per hidden layer ({len(c.hidden)})")
    if not c.channels or any(ch < 1 for ch in c.channels):
        fail("channels", "must list one or more positive channel counts")
    if c.model == "cnn":
        if set(c.activations) != {"relu"}:
            fail("activations", "must be relu for model = 'cnn' (its blocks and head use ReLU)")
        if c.bias_init != "zeros":
            fail("bias_init", "must be zeros for model = 'cnn' (the CNN uses PyTorch's default init)")
        try:
            info = registry.dataset_info(c.dataset)
            registry.cnn_spec(c, [info.n_inputs, *c.hidden, len(info.classes)])
        except ValueError as e:
            fail("channels", f"does not fit dataset {c.dataset!r}: {e}")
    for key in ("lr", "init_std", "eps", "gamma", "min_lr", "weight_decay", "momentum", "augment_rotation"):
        v = getattr(c, key)
        if not (math.isfinite(v) and v >= 0):
            fail(key, "must be a finite number >= 0")
    if c.lr == 0:
        fail("lr", "must be > 0")
    for key in ("beta1", "beta2", "alpha", "dropout", "val_fraction"):
        if not 0.0 <= getattr(c, key) < 1.0:
            fail(key, "must be in [0, 1)")
    if c.patience and not c.val_fraction:
        fail("patience", "needs a validation split (val_fraction > 0) for early stopping")
    if c.nesterov and (c.optimizer != "sgd" or not c.momentum):
        fail("nesterov", "needs optimizer = 'sgd' with momentum > 0")


# ------------------------------------------------------------------ memory
def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def memory_needed(c: TrainConfig, n_inputs: int, n_classes: int) -> tuple[int, int, int]:
    """(parameters, bytes for parameters and their training state, bytes for one batch's activations)."""
    sizes = [n_inputs, *c.hidden, n_classes]
    entry = registry.MODELS[c.model]
    shapes = entry.shapes(c, sizes)
    n_params = sum(math.prod(shapes[k]) for k in entry.parameters(c, sizes))
    itemsize = 4 if c.dtype == "float32" else 8
    buffers = {"sgd": 1 if c.momentum else 0, "adam": 2, "rmsprop": 1}.get(c.optimizer, 2)
    copies = 3 + buffers + (1 if c.patience else 0) + 1 + buffers  # param, grad, work, buffers, best, checkpoint copy
    values = entry.values(c, sizes)  # activations one example's forward pass keeps
    # training keeps them and their gradients (4×: values, gradients, temporaries); evaluation, without a graph, less
    per_batch = max((c.batch_size or 60000) * 4, c.eval_batch_size)
    return n_params, n_params * itemsize * copies, per_batch * values * itemsize


def check_memory(c: TrainConfig, n_inputs: int | None = None, n_classes: int | None = None) -> None:
    """ConfigError (key ``hidden`` or ``batch_size``) when training ``c`` cannot fit in this machine's memory."""
    total = _physical_memory()
    if total is None:
        return
    if n_inputs is None or n_classes is None:
        info = registry.dataset_info(c.dataset)
        n_inputs, n_classes = info.n_inputs, len(info.classes)
    n_params, state, acts = memory_needed(c, n_inputs, n_classes)
    if state + acts <= 0.8 * total:
        return
    sizes = "-".join(map(str, [n_inputs, *c.hidden, n_classes]))
    train, evaluate = (c.batch_size or 60000) * 4, c.eval_batch_size
    per_sample = acts // max(train, evaluate)  # bytes per example of training
    if state + 64 * 4 * per_sample > 0.8 * total:  # too large at any batch size: the model itself
        key = "channels" if c.model == "cnn" and state <= 0.4 * total else "hidden"
    else:
        key = "batch_size" if train >= evaluate else "eval_batch_size"
    detail = (f"is too large: a {sizes} {c.model.upper()} with {n_params:,} parameters needs about "
              f"{_size(state + acts)} to train with {c.optimizer} (parameters, gradients, optimizer state, "
              f"activations), more than this machine's {_size(total)} of memory")
    raise ConfigError(f"config key {key!r} {detail}", key, detail)


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


# ------------------------------------------------------------------ TOML
def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """The keys of a TOML config file (top level, or under a ``[train]`` table); ConfigError on any problem."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError("reading TOML on Python 3.10 needs tomli: pip install 'tinygrad-lite[train]'") from None
    name = display(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {name} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {name} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {name} is not UTF-8 text: {e}") from None
    except OSError as e:
        raise ConfigError(f"config file {name}: {e.strerror or e}") from None
    if set(data) == {"train"} and isinstance(data["train"], dict):
        data = data["train"]
    for key, value in data.items():
        if isinstance(value, dict):
            raise ConfigError(f"{name}: unexpected table [{key}]; put the keys at the top level "
                              f"(valid keys: {', '.join(KINDS)})")
    return data


def toml_text(values: Mapping[str, Any], comment: str = "") -> str:
    """TOML for a flat mapping of str, int, float, bool and lists of them (read back exactly by ``tomllib``)."""
    lines = [f"# {comment}"] if comment else []
    lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")

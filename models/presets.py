"""Training configuration: every hyper-parameter, its type and default, the presets, and how they combine.

A run's configuration is resolved in layers, later ones winning:
``DEFAULTS`` < the preset (``--preset``, or ``preset = ...`` in the TOML file) < the TOML
file (``--config``) < command-line flags. ``resolve_config`` checks every key and type and
returns a plain dict that is saved next to the results (``config.json``, ``config.toml``).

Presets reproduce the five reference systems of ``shared/reference-systems.md`` (A–E) with
this library's API, plus ``default`` (bundled digits, seconds) and ``best`` (our own).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError",
    "DEFAULTS",
    "TYPES",
    "HELP",
    "PRESETS",
    "REFERENCE",
    "preset_names",
    "canonical_preset",
    "read_toml",
    "check_config",
    "resolve_config",
    "to_toml",
]


class ConfigError(ValueError):
    """A configuration problem: unknown key, wrong type or value, unknown preset."""


# key: (type, default, help). Types: int, float, str, bool, "list[int]", "list[str]".
_SCHEMA: dict[str, tuple[Any, Any, str]] = {
    "preset": (str, "default", "preset the other values start from"),
    "dataset": (str, "digits", "dataset name: digits (bundled), mnist, fashion-mnist"),
    "data_dir": (str, "", "directory holding the IDX files ('' = the loader's search path)"),
    "hidden": ("list[int]", [128, 64], "hidden layer widths, e.g. 128,64 (inputs/outputs come from the data)"),
    "activations": ("list[str]", ["relu"], "one activation, or one per hidden layer: relu, tanh, sigmoid"),
    "init": (str, "he_normal", "weight init: xavier_uniform, uniform_fan_in, he_normal, normal, scaled_normal, "
                               "small_random"),
    "init_std": (float, 0.01, "standard deviation for init = normal"),
    "optimizer": (str, "adam", "sgd, adam or rmsprop"),
    "lr": (float, 1e-3, "learning rate (the peak rate for a schedule)"),
    "momentum": (float, 0.0, "SGD momentum"),
    "nesterov": (bool, False, "SGD Nesterov momentum"),
    "beta1": (float, 0.9, "Adam β1"),
    "beta2": (float, 0.999, "Adam β2"),
    "eps": (float, 1e-8, "Adam/RMSprop ε"),
    "alpha": (float, 0.9, "RMSprop decay of the squared-gradient average"),
    "weight_decay": (float, 0.0, "L2 weight decay added to the gradient"),
    "batch_size": (int, 64, "mini-batch size (0 = full batch)"),
    "epochs": (int, 5, "epochs (passes over the training split)"),
    "iterations": (int, 0, "optimizer steps in all; overrides epochs when > 0 (may stop mid-epoch)"),
    "shuffle": (bool, True, "shuffle the training split every epoch"),
    "schedule": (str, "constant", "learning-rate schedule: constant, step or cosine"),
    "step_size": (int, 1, "step schedule: epochs between decays"),
    "gamma": (float, 0.5, "step schedule: decay factor"),
    "min_lr": (float, 0.0, "cosine schedule: final learning rate"),
    "warmup_steps": (int, 0, "linear warm-up steps before the schedule"),
    "dropout": (float, 0.0, "inverted dropout after each hidden activation"),
    "augment": (bool, False, "random shifts and rotations of training images"),
    "augment_shift": (int, 2, "augmentation: largest shift in pixels"),
    "augment_rotation": (float, 10.0, "augmentation: largest rotation in degrees"),
    "val_fraction": (float, 0.0, "fraction of the training data held out for validation (0 = none)"),
    "patience": (int, 0, "early stopping: epochs without a lower validation loss (0 = off)"),
    "restore_best": (bool, True, "early stopping: restore the weights of the best validation loss"),
    "seed": (int, 0, "random seed (init, split, shuffling, dropout, augmentation)"),
    "dtype": (str, "float32", "float32 or float64"),
    "threads": (int, 0, "BLAS threads (0 = the library's default; 1 is fastest on a busy machine)"),
    "eval_batch_size": (int, 5000, "batch size for evaluation (no gradients)"),
    "log_every": (int, 1, "print the epoch summary every this many epochs (and the last)"),
}
TYPES: dict[str, Any] = {k: v[0] for k, v in _SCHEMA.items()}
DEFAULTS: dict[str, Any] = {k: v[1] for k, v in _SCHEMA.items()}
HELP: dict[str, str] = {k: v[2] for k, v in _SCHEMA.items()}

_CHOICES = {
    "optimizer": ("sgd", "adam", "rmsprop"),
    "schedule": ("constant", "step", "cosine"),
    "dtype": ("float32", "float64"),
    "activations": ("relu", "tanh", "sigmoid"),
    "init": ("xavier_uniform", "uniform_fan_in", "he_normal", "kaiming_normal", "normal", "scaled_normal",
             "small_random"),
}

# ------------------------------------------------------------------ presets
PRESETS: dict[str, dict[str, Any]] = {
    # Seconds on 2 cores, bundled data, no download: the first thing a new user runs.
    "default": dict(dataset="digits", hidden=[128, 64], activations=["relu"], init="he_normal", optimizer="adam",
                    lr=2e-3, schedule="cosine", batch_size=64, epochs=10, val_fraction=0.1, threads=1),
    # A "tiny": 784-10-10 ReLU, U(-0.5, 0.5) weights, full-batch gradient descent, lr 0.1, 750 iterations.
    "A": dict(dataset="mnist", hidden=[10], activations=["relu"], init="small_random", optimizer="sgd", lr=0.1,
              batch_size=0, iterations=750, shuffle=False, log_every=50),
    # B "two-hidden SGD": 784-128-64-10 ReLU, U(-1/√n_in, 1/√n_in), SGD batch 50, lr 0.13, 2 epochs.
    "B": dict(dataset="mnist", hidden=[128, 64], activations=["relu"], init="uniform_fan_in", optimizer="sgd",
              lr=0.13, batch_size=50, epochs=2),
    # C "tiny, column-major": the same network and updates as A (the layout is transposed, the math is not).
    "C": dict(dataset="mnist", hidden=[10], activations=["relu"], init="small_random", optimizer="sgd", lr=0.1,
              batch_size=0, iterations=750, shuffle=False, log_every=50),
    # D "one hidden 128": W ~ N(0, 0.01²), b = 0, gradient descent. Rate and length are not given; we use
    # full-batch gradient descent (as the description says), lr 0.5 for 300 iterations.
    "D": dict(dataset="mnist", hidden=[128], activations=["relu"], init="normal", init_std=0.01, optimizer="sgd",
              lr=0.5, batch_size=0, iterations=300, shuffle=False, log_every=25),
    # E "configurable": 784-128-64-10 ReLU then tanh, N(0,1)/√n_in, Adam 1e-3, batch 16, up to 15 epochs,
    # shuffled, early stopping (patience 5, best weights restored) on 25% of the training data.
    "E": dict(dataset="mnist", hidden=[128, 64], activations=["relu", "tanh"], init="scaled_normal",
              optimizer="adam", lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, batch_size=16, epochs=15,
              val_fraction=0.25, patience=5, restore_best=True),
    # Ours: 784-512-256-10 ReLU (He init), SGD with Nesterov momentum 0.9, lr 0.1 with cosine decay to 0 over
    # 15 epochs, batch 256, float32, one BLAS thread (fastest on 2 busy cores). Measured by benchmarks/results.py:
    # 98.3% MNIST, 90.0% Fashion-MNIST, about 30 s each on 2 cores.
    "best": dict(dataset="mnist", hidden=[512, 256], activations=["relu"], init="he_normal", optimizer="sgd",
                 lr=0.1, momentum=0.9, nesterov=True, batch_size=256, epochs=15, schedule="cosine", threads=1),
}
#: What each reference system reported (for the results table).
REFERENCE: dict[str, str] = {
    "default": "—",
    "A": "87.0% (loss 0.437)",
    "B": "97.2% test",
    "C": "~85% train",
    "D": "not stated",
    "E": "97.72% (ReLU+tanh)",
    "best": "target ≥98.0% MNIST, ≥89.5% Fashion",
}
_ALIASES = {
    "tiny": "A", "two-hidden-sgd": "B", "sgd": "B", "column-major": "C", "tiny-column-major": "C",
    "one-hidden": "D", "one-hidden-128": "D", "configurable": "E",
}


def preset_names() -> list[str]:
    return list(PRESETS)


def canonical_preset(name: str) -> str:
    """The preset's canonical name (case-insensitive; aliases such as ``tiny`` → ``A``)."""
    if not isinstance(name, str):
        raise ConfigError(f"preset must be a string, got {type(name).__name__} {name!r}")
    key = name.strip()
    for cand in (key, key.upper(), key.lower()):
        if cand in PRESETS:
            return cand
    if key.lower() in _ALIASES:
        return _ALIASES[key.lower()]
    raise ConfigError(f"unknown preset {name!r}; valid names: {', '.join(PRESETS)} "
                      f"(aliases: {', '.join(f'{a}={p}' for a, p in _ALIASES.items())})")


# ------------------------------------------------------------------ checking
def _type_name(t: Any) -> str:
    return t if isinstance(t, str) else t.__name__


def _check_type(key: str, value: Any, where: str) -> Any:
    """The value converted to the key's type (int → float allowed), or ConfigError naming key and type."""
    t = TYPES[key]

    def bad() -> ConfigError:
        return ConfigError(f"{where}: config key {key!r} must be {_type_name(t)}, got "
                           f"{type(value).__name__} {value!r}")

    if t is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if t is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return int(value)
    if t is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    if t is str:
        if not isinstance(value, str):
            raise bad()
        return value
    elem = int if t == "list[int]" else str
    if isinstance(value, (str if elem is str else int)) and not isinstance(value, bool):
        value = [value]  # a single value is a one-element list
    if not isinstance(value, (list, tuple)) or any(
        isinstance(v, bool) or not isinstance(v, elem) for v in value
    ):
        raise bad()
    return list(value)


def check_config(config: Mapping[str, Any], where: str = "config", *, partial: bool = True) -> dict[str, Any]:
    """Check keys and types (values too, unless ``partial``); returns a converted copy."""
    out = {}
    for key, value in config.items():
        if key not in TYPES:
            raise ConfigError(f"{where}: unknown config key {key!r}; valid keys: {', '.join(TYPES)}")
        out[key] = _check_type(key, value, where)
    if not partial:
        _check_values(out, where)
    return out


def _check_values(c: dict[str, Any], where: str) -> None:
    def fail(key: str, msg: str) -> None:
        raise ConfigError(f"{where}: config key {key!r} {msg}, got {c[key]!r}")

    for key, choices in _CHOICES.items():
        values = c[key] if isinstance(c[key], list) else [c[key]]
        for v in values:
            if v not in choices:
                fail(key, f"must be one of {', '.join(choices)}")
    from tinygrad_lite.data import dataset_names

    if c["dataset"] not in dataset_names():
        raise ConfigError(f"{where}: config key 'dataset': unknown dataset {c['dataset']!r}; valid names: "
                          f"{', '.join(dataset_names())}")
    for key in ("epochs", "eval_batch_size", "log_every", "step_size"):
        if c[key] < 1:
            fail(key, "must be >= 1")
    for key in ("batch_size", "iterations", "patience", "augment_shift", "warmup_steps", "threads"):
        if c[key] < 0:
            fail(key, "must be >= 0")
    if any(h < 1 for h in c["hidden"]):
        fail("hidden", "must list positive widths")
    if len(c["activations"]) not in (1, len(c["hidden"])):
        fail("activations", f"must give one activation or one per hidden layer ({len(c['hidden'])})")
    for key in ("lr", "init_std", "eps", "gamma", "min_lr", "weight_decay", "momentum", "augment_rotation"):
        if not (math.isfinite(c[key]) and c[key] >= 0):
            fail(key, "must be a finite number >= 0")
    if c["lr"] == 0:
        fail("lr", "must be > 0")
    for key in ("beta1", "beta2", "alpha", "dropout"):
        if not 0.0 <= c[key] < 1.0:
            fail(key, "must be in [0, 1)")
    if not 0.0 <= c["val_fraction"] < 1.0:
        fail("val_fraction", "must be in [0, 1)")
    if c["patience"] and not c["val_fraction"]:
        fail("patience", "needs a validation split (val_fraction > 0) for early stopping")
    if c["nesterov"] and (c["optimizer"] != "sgd" or not c["momentum"]):
        fail("nesterov", "needs optimizer = 'sgd' with momentum > 0")


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file (``tomllib``, or ``tomli`` on Python 3.10); ConfigError on any problem."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError("reading TOML on Python 3.10 needs tomli: pip install 'tinygrad-lite[train]'") from None
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text: {e}") from None
    except OSError as e:
        raise ConfigError(f"config file {path}: {e.strerror or e}") from None
    # allow the keys at top level or under a [train] table
    if set(data) == {"train"} and isinstance(data["train"], dict):
        data = data["train"]
    for key, value in data.items():
        if isinstance(value, dict):
            raise ConfigError(f"{path}: unexpected table [{key}]; put the keys at the top level "
                              f"(valid keys: {', '.join(TYPES)})")
    return data


def resolve_config(preset: str | None = None, file_config: Mapping[str, Any] | None = None,
                   overrides: Mapping[str, Any] | None = None, *, file_name: str = "config file") -> dict[str, Any]:
    """DEFAULTS < preset < file < overrides, checked; returns the full config (every key)."""
    file_config = check_config(file_config or {}, file_name)
    overrides = check_config(overrides or {}, "command line")
    name = preset or overrides.get("preset") or file_config.get("preset") or "default"
    name = canonical_preset(name)
    config = dict(DEFAULTS)
    config.update(check_config(PRESETS[name], f"preset {name}"))
    config.update(file_config)
    config.update(overrides)
    config["preset"] = name
    _check_values(config, "config")
    return config


def to_toml(config: Mapping[str, Any]) -> str:
    """A TOML file for a flat config of str, int, float, bool and lists (readable by ``read_toml``)."""
    lines = []
    for key, value in config.items():
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, str)):
        return json.dumps(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")

"""A sweep's search space: ``--param NAME=DISTRIBUTION`` parsed into checked ``Param``s, and sampled by Optuna.

Syntax (``NAME`` is any ``TrainConfig`` field but ``preset``):

- ``NAME=uniform:LOW:HIGH`` and ``NAME=loguniform:LOW:HIGH`` (float fields; ``LOW > 0`` for log);
- ``NAME=int:LOW:HIGH[:STEP]`` (int fields; ``LOW``, ``LOW + STEP``, ..., ``HIGH`` inclusive);
- ``NAME=choice:A|B|...`` (any field): options are separated by ``|``; an option of a list field
  (``hidden``, ``activations``, ``channels``) is itself a comma list (``hidden=choice:128,64|256,128``),
  booleans are ``true``/``false``.

Parsing needs no Optuna; ``Param.distribution()`` and ``Param.suggest(trial)`` import it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from models.config import KINDS, ConfigError, convert_value

__all__ = ["Param", "parse_param", "parse_space", "grid_space", "grid_size", "EXAMPLE", "GRID_LIMIT"]

KINDS_OF_DISTRIBUTION = ("uniform", "loguniform", "int", "choice")
EXAMPLE = "lr=loguniform:1e-4:1e-1"
#: The most points a grid may have (``--sampler grid`` enumerates them all).
GRID_LIMIT = 100_000
_USAGE = "use int:LOW:HIGH[:STEP], uniform:LOW:HIGH, loguniform:LOW:HIGH or choice:A|B|..."


def _list_kind(kind: Any) -> type | None:
    return {tuple[int, ...]: int, tuple[str, ...]: str}.get(kind)


@dataclass(frozen=True)
class Param:
    """One searched config field: ``kind`` is uniform, loguniform, int or choice; ``low``/``high``/``step``
    for the ranges, ``choices`` (Optuna's categorical values: list fields as comma text) for choice."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    step: int = 1
    choices: tuple[Any, ...] = ()

    @property
    def spec(self) -> str:
        """The canonical ``NAME=...`` text (what the study stores and compares)."""
        if self.kind == "choice":
            return f"{self.name}=choice:" + "|".join(_option_text(c) for c in self.choices)
        if self.kind == "int":
            return f"{self.name}=int:{int(self.low)}:{int(self.high)}" + (f":{self.step}" if self.step != 1 else "")
        return f"{self.name}={self.kind}:{self.low!r}:{self.high!r}"

    def config_value(self, value: Any) -> Any:
        """A sampled value (Optuna's) as the config field takes it: comma text → tuple for list fields."""
        elem = _list_kind(KINDS[self.name])
        if elem is not None and isinstance(value, str):
            return tuple(elem(p) for p in value.split(","))
        return value

    def values_to_check(self) -> list[Any]:
        """The config values to validate up front: both ends of a range, every option of a choice."""
        if self.kind == "choice":
            return [self.config_value(c) for c in self.choices]
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]

    def grid(self) -> list[Any] | None:
        """The finite list of values ``--sampler grid`` enumerates (None for a continuous range)."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, self.step))
        return None

    def distribution(self) -> Any:
        """The Optuna distribution."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), step=self.step)
        return FloatDistribution(self.low, self.high, log=self.kind == "loguniform")

    def suggest(self, trial: Any) -> Any:
        """Ask ``trial`` (an ``optuna.Trial``) for a value; returns it as the config takes it."""
        if self.kind == "choice":
            return self.config_value(trial.suggest_categorical(self.name, list(self.choices)))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=self.step)
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "loguniform")


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)


def _number(flag: str, name: str, what: str, text: str, integer: bool) -> float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ConfigError(f"{flag}: {what} {text!r} of field {name!r} is not {'an integer' if integer else 'a number'}",
                          name) from None
    if not math.isfinite(value):
        raise ConfigError(f"{flag}: {what} of field {name!r} must be finite, got {text!r}", name)
    return value


def _option(flag: str, name: str, text: str) -> Any:
    """One option of ``choice:`` in the field's kind (list fields: canonical comma text)."""
    kind, elem = KINDS[name], _list_kind(KINDS[name])
    text = text.strip()
    try:
        if elem is not None:
            parts = [p.strip() for p in text.split(",")]
            if not text or not all(parts):
                raise ValueError
            return ",".join(str(elem(p)) for p in parts)
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if kind is str:
            if not text:
                raise ValueError
            return convert_value(name, text, str)
        value = kind(text)
    except (ValueError, ConfigError):
        want = {bool: "true or false", str: "a name", int: "an integer", float: "a number"}.get(
            kind, f"a comma list of {'integers' if elem is int else 'names'}")
        raise ConfigError(f"{flag}: option {text!r} of field {name!r} is not {want}", name) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{flag}: option {text!r} of field {name!r} must be finite", name)
    return value


def parse_param(text: str) -> Param:
    """``NAME=DISTRIBUTION`` (see the module docstring) as a ``Param``; ConfigError naming the flag and field."""
    flag = f"--param {text}"
    name, sep, spec = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise ConfigError(f"{flag}: expected NAME=DISTRIBUTION, e.g. --param {EXAMPLE}")
    if name not in KINDS:
        raise ConfigError(f"{flag}: unknown config field {name!r}; valid fields: "
                          f"{', '.join(k for k in KINDS if k != 'preset')}", name)
    if name == "preset":
        raise ConfigError(f"{flag}: the preset cannot be searched (it sets the other fields); give --preset for the "
                          f"values the sweep starts from, and search the fields themselves", name)
    kind_text, _, args_text = spec.partition(":")
    kind = kind_text.strip().lower()
    if kind not in KINDS_OF_DISTRIBUTION:
        raise ConfigError(f"{flag}: unknown distribution {kind_text.strip()!r} for field {name!r}; {_USAGE}", name)
    field_kind = KINDS[name]
    if kind == "choice":
        options = [_option(flag, name, o) for o in args_text.split("|")]
        if len(set(options)) != len(options):
            raise ConfigError(f"{flag}: field {name!r} lists an option twice", name)
        return Param(name, kind, choices=tuple(options))
    if kind == "int" and field_kind is not int or kind != "int" and field_kind is not float:
        fits = "int:LOW:HIGH[:STEP] or choice:A|B|..." if field_kind is int else (
            "uniform:LOW:HIGH, loguniform:LOW:HIGH or choice:A|B|..." if field_kind is float else "choice:A|B|...")
        raise ConfigError(f"{flag}: field {name!r} is {_kind_name(field_kind)}, not a range for {kind}: use {fits}",
                          name)
    parts = args_text.split(":")
    if len(parts) not in ((2, 3) if kind == "int" else (2,)):
        form = "LOW:HIGH[:STEP]" if kind == "int" else "LOW:HIGH"
        raise ConfigError(f"{flag}: {kind} needs {form} for field {name!r}, e.g. --param {EXAMPLE}", name)
    low, high = (_number(flag, name, w, p.strip(), kind == "int") for w, p in zip(("LOW", "HIGH"), parts))
    step = int(_number(flag, name, "STEP", parts[2].strip(), True)) if len(parts) == 3 else 1
    if low > high:
        raise ConfigError(f"{flag}: LOW must be <= HIGH for field {name!r}", name)
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{flag}: loguniform needs LOW > 0 for field {name!r}", name)
    if kind == "int" and (step < 1 or (high - low) % step):
        raise ConfigError(f"{flag}: STEP must be >= 1 and divide HIGH - LOW for field {name!r}", name)
    return Param(name, kind, float(low), float(high), step)


def _kind_name(kind: Any) -> str:
    return {tuple[int, ...]: "a list of integers", tuple[str, ...]: "a list of names", bool: "true/false",
            str: "a name", int: "an integer", float: "a number"}[kind]


def parse_space(texts: Iterable[str]) -> list[Param]:
    """Every ``--param`` parsed, each field searched at most once."""
    params: list[Param] = []
    for text in texts:
        p = parse_param(text)
        if any(q.name == p.name for q in params):
            raise ConfigError(f"--param {text}: field {p.name!r} is searched twice", p.name)
        params.append(p)
    return params


def grid_space(params: Sequence[Param]) -> dict[str, list[Any]]:
    """The grid of ``--sampler grid``: each param's values; ConfigError for a continuous range or a huge grid."""
    grid: dict[str, list[Any]] = {}
    for p in params:
        values = p.grid()
        if values is None:
            raise ConfigError(f"--sampler grid: --param {p.spec} is a continuous range; give choice:A|B|... or "
                              f"int:LOW:HIGH[:STEP] for a grid", p.name)
        grid[p.name] = values
    if math.prod(len(v) for v in grid.values()) > GRID_LIMIT:
        raise ConfigError(f"--sampler grid: the grid has more than {GRID_LIMIT:,} points; use tpe or random")
    return grid


def grid_size(params: Sequence[Param]) -> int:
    """The number of points of the grid (ConfigError where ``grid_space`` refuses it)."""
    return math.prod(len(v) for v in grid_space(params).values())

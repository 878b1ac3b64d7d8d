"""Every named choice of the training app, each defined once: models, activations, initialisers,
optimizers, learning-rate schedules and datasets.

The config's validation, the CLI's help, the presets, the checkpoints, the exporter, the
comparison with the hand-derived backprop and the benchmarks all read these tables, so adding
an optimizer (or a schedule, an activation) is one entry here. Only the standard library and
NumPy are imported at the top: builders import ``tinygrad_lite`` when called, so that
``models.manual`` (the independent NumPy reference) can check names here without loading the
autograd engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Activation", "OptimizerEntry", "ScheduleEntry", "ModelEntry", "DatasetInfo", "ACTIVATIONS",
           "OPTIMIZERS", "SCHEDULES", "MODELS", "DTYPES", "init_names", "dataset_names", "dataset_info",
           "make_scheduler", "choices", "CHOICE_KEYS"]

DTYPES = ("float32", "float64")


# ------------------------------------------------------------------ activations
@dataclass(frozen=True)
class Activation:
    """An activation by name: the ``tinygrad_lite.ops`` function, PyTorch's module, and the formula."""

    op: str
    torch: str
    formula: str


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", "ReLU", "max(0, z)"),
    "tanh": Activation("tanh", "Tanh", "tanh(z)"),
    "sigmoid": Activation("sigmoid", "Sigmoid", "1 / (1 + exp(-z))"),
}


# ------------------------------------------------------------------ initialisers
def init_names() -> list[str]:
    """The weight initialisers: the library's registry, ``tinygrad_lite.nn.INITS``."""
    from tinygrad_lite.nn import INITS

    return list(INITS)


# ------------------------------------------------------------------ optimizers
@dataclass(frozen=True)
class OptimizerEntry:
    """``build(named_parameters, config)`` makes the library optimizer; ``manual(params, config)`` its
    hand-written twin in ``models.manual`` (for ``models.compare``; None where there is none); ``keys``
    are the config keys it reads besides ``lr`` and ``weight_decay``."""

    build: Callable[[Any, Any], Any]
    manual: Callable[[Any, Any], Any] | None
    keys: tuple[str, ...]
    help: str


def _sgd(params: Any, c: Any) -> Any:
    from tinygrad_lite import optim

    return optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov, weight_decay=c.weight_decay)


def _adam(params: Any, c: Any) -> Any:
    from tinygrad_lite import optim

    return optim.Adam(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps, weight_decay=c.weight_decay)


def _adamw(params: Any, c: Any) -> Any:
    from tinygrad_lite import optim

    return optim.AdamW(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps, weight_decay=c.weight_decay)


def _rmsprop(params: Any, c: Any) -> Any:
    from tinygrad_lite import optim

    return optim.RMSprop(params, lr=c.lr, alpha=c.alpha, eps=c.eps, weight_decay=c.weight_decay)


def _manual(name: str) -> Callable[[Any, Any], Any]:
    def build(params: Any, c: Any) -> Any:
        from models import manual

        if name == "sgd":
            return manual.ManualSGD(params, c.lr, momentum=c.momentum)
        if name == "adam":
            return manual.ManualAdam(params, c.lr, betas=(c.beta1, c.beta2), eps=c.eps)
        return manual.ManualRMSprop(params, c.lr, alpha=c.alpha, eps=c.eps)

    return build


OPTIMIZERS: dict[str, OptimizerEntry] = {
    "sgd": OptimizerEntry(_sgd, _manual("sgd"), ("momentum", "nesterov"), "SGD, with momentum and Nesterov"),
    "adam": OptimizerEntry(_adam, _manual("adam"), ("beta1", "beta2", "eps"), "Adam"),
    "rmsprop": OptimizerEntry(_rmsprop, _manual("rmsprop"), ("alpha", "eps"), "RMSprop"),
    "adamw": OptimizerEntry(_adamw, None, ("beta1", "beta2", "eps"), "AdamW: Adam with decoupled weight decay"),
}


# ------------------------------------------------------------------ schedules
@dataclass(frozen=True)
class ScheduleEntry:
    """``build(optimizer, config, steps_per_epoch, total_steps)`` makes a ``tinygrad_lite.optim.lr_scheduler``
    stepped once per optimizer step (None: a constant rate); ``keys``: the config keys it reads."""

    build: Callable[[Any, Any, int, int], Any]
    keys: tuple[str, ...]
    help: str


def _step_lr(opt: Any, c: Any, steps_per_epoch: int, total_steps: int) -> Any:
    from tinygrad_lite.optim.lr_scheduler import StepLR

    # lr γ^⌊epoch / step_size⌋, stepped per batch: ⌊⌊t / spe⌋ / k⌋ = ⌊t / (k · spe)⌋
    return StepLR(opt, step_size=c.step_size * steps_per_epoch, gamma=c.gamma)


def _cosine(opt: Any, c: Any, steps_per_epoch: int, total_steps: int) -> Any:
    from tinygrad_lite.optim.lr_scheduler import CosineAnnealingLR

    return CosineAnnealingLR(opt, T_max=total_steps, eta_min=c.min_lr)


SCHEDULES: dict[str, ScheduleEntry] = {
    "constant": ScheduleEntry(lambda opt, c, spe, total: None, (), "lr throughout"),
    "step": ScheduleEntry(_step_lr, ("step_size", "gamma"), "lr · gamma^⌊epoch / step_size⌋"),
    "cosine": ScheduleEntry(_cosine, ("min_lr",), "cosine from lr to min_lr over all steps"),
}


def make_scheduler(opt: Any, config: Any, steps_per_epoch: int, total_steps: int) -> Any:
    """The config's schedule for ``opt`` (None for a constant rate without warm-up).

    A warm-up of w = ``warmup_steps`` steps multiplies the schedule by (t + 1) / w at step t < w
    (``LinearLR`` from 1/w over w − 1 steps, chained with the schedule).
    """
    from tinygrad_lite.optim.lr_scheduler import ChainedScheduler, LinearLR

    main = SCHEDULES[config.schedule].build(opt, config, steps_per_epoch, total_steps)
    w = config.warmup_steps
    if w < 2:
        return main
    warm = LinearLR(opt, start_factor=1.0 / w, end_factor=1.0, total_iters=w - 1)
    return warm if main is None else ChainedScheduler([warm, main])


# ------------------------------------------------------------------ datasets
@dataclass(frozen=True)
class DatasetInfo:
    """What a model trained on a dataset must fit: the number of inputs and the class names."""

    n_inputs: int
    classes: tuple[str, ...]


def dataset_names() -> list[str]:
    """The datasets ``tinygrad_lite.data.load_dataset`` knows (the library's registry)."""
    from tinygrad_lite import data

    return data.dataset_names()


def dataset_info(name: str) -> DatasetInfo:
    """Inputs and classes of a dataset, known without loading it."""
    from tinygrad_lite import data

    if name in data.IDX_DATASETS:
        spec = data.IDX_DATASETS[name]
        return DatasetInfo(math.prod(spec.image_shape), tuple(spec.classes))
    if name in data.BUNDLED:  # the bundled digits: 28 × 28 MNIST images
        return DatasetInfo(784, tuple(data.DIGIT_CLASSES))
    raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(dataset_names())}")


# ------------------------------------------------------------------ models
@dataclass(frozen=True)
class ModelEntry:
    """``build(config, sizes, rng)`` makes the model; ``shapes(sizes)`` its parameter names and shapes;
    ``sizes(shapes)`` reads the sizes back from them (None when they do not form this model);
    ``torch(config, sizes)`` lists PyTorch ``nn.Sequential`` modules of the same architecture and
    ``to_torch(config, sizes, params)`` maps parameters to that Sequential's state dict."""

    build: Callable[[Any, list[int], np.random.Generator], Any]
    shapes: Callable[[list[int]], dict[str, tuple[int, ...]]]
    sizes: Callable[[dict[str, tuple[int, ...]]], list[int] | None]
    torch: Callable[[Any, list[int]], list[str]]
    to_torch: Callable[[Any, list[int], dict[str, np.ndarray]], dict[str, np.ndarray]]
    help: str


def _mlp(c: Any, sizes: list[int], rng: np.random.Generator) -> Any:
    from models.mlp import MLP

    acts = list(c.activations)
    return MLP(sizes, acts[0] if len(acts) == 1 else acts, dropout=c.dropout, init=c.init, seed=rng,
               dtype=np.dtype(c.dtype), std=c.init_std)


def mlp_shapes(sizes: list[int]) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of ``models.mlp.MLP(sizes)``: weights (in, out), biases (out,)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"layers.{l}.weight"] = (n_in, n_out)
        shapes[f"layers.{l}.bias"] = (n_out,)
    return shapes


def mlp_sizes(shapes: dict[str, tuple[int, ...]]) -> list[int] | None:
    """The sizes whose ``mlp_shapes`` are exactly ``shapes``, or None."""
    sizes: list[int] = []
    l = 0
    while len(shapes.get(f"layers.{l}.weight", ())) == 2:
        n_in, n_out = shapes[f"layers.{l}.weight"]
        sizes += [n_in, n_out] if not sizes else [n_out]
        l += 1
    return sizes if sizes and mlp_shapes(sizes) == shapes else None


def _mlp_torch(c: Any, sizes: list[int]) -> list[str]:
    acts = list(c.activations) * (len(sizes) - 2 if len(c.activations) == 1 else 1)
    mods = []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(f"Linear({n_in}, {n_out})")
        if l < len(sizes) - 2:
            mods.append(f"{ACTIVATIONS[acts[l]].torch}()")
            if c.dropout:
                mods.append(f"Dropout({c.dropout!r})")
    return mods


def _mlp_to_torch(c: Any, sizes: list[int], params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    index = [i for i, m in enumerate(_mlp_torch(c, sizes)) if m.startswith("Linear(")]
    for l, i in enumerate(index):
        out[f"{i}.weight"] = np.ascontiguousarray(params[f"layers.{l}.weight"].T)  # torch keeps (out, in)
        out[f"{i}.bias"] = np.ascontiguousarray(params[f"layers.{l}.bias"])
    return out


MODELS: dict[str, ModelEntry] = {
    "mlp": ModelEntry(_mlp, mlp_shapes, mlp_sizes, _mlp_torch, _mlp_to_torch,
                      "fully connected layers with an activation (and dropout) between them"),
}


# ------------------------------------------------------------------ all of them
#: The config keys whose values name entries here.
CHOICE_KEYS = ("model", "activations", "init", "optimizer", "schedule", "dataset", "dtype")


def choices(kind: str) -> list[str]:
    """The valid names of a config key that names a registry entry."""
    tables: dict[str, Callable[[], list[str]]] = {
        "model": lambda: list(MODELS), "activations": lambda: list(ACTIVATIONS), "init": init_names,
        "optimizer": lambda: list(OPTIMIZERS), "schedule": lambda: list(SCHEDULES), "dataset": dataset_names,
        "dtype": lambda: list(DTYPES),
    }
    return tables[kind]()

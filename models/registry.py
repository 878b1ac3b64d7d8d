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
           "OPTIMIZERS", "SCHEDULES", "MODELS", "DTYPES", "BIAS_INITS", "init_names", "dataset_names", "dataset_info",
           "make_scheduler", "choices", "CHOICE_KEYS", "cnn_spec", "image_shape", "mlp_shapes", "mlp_sizes"]

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
#: How the MLP's biases start: ``zeros``, or ``uniform`` = U(−0.5, 0.5), each layer's drawn right after its weights.
BIAS_INITS = ("zeros", "uniform")


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
            return manual.ManualSGD(params, c.lr, momentum=c.momentum, nesterov=c.nesterov,
                                    weight_decay=c.weight_decay)
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


def _onecycle(opt: Any, c: Any, steps_per_epoch: int, total_steps: int) -> Any:
    from tinygrad_lite.optim.lr_scheduler import OneCycleLR

    # PyTorch's defaults; the momentum (SGD's, Adam's β₁) cycles 0.95 → 0.85 → 0.95 where there is one
    cycle = hasattr(opt, "beta1") or bool(getattr(opt, "momentum", 0.0))
    return OneCycleLR(opt, max_lr=c.lr, total_steps=total_steps, cycle_momentum=cycle)


SCHEDULES: dict[str, ScheduleEntry] = {
    "constant": ScheduleEntry(lambda opt, c, spe, total: None, (), "lr throughout"),
    "step": ScheduleEntry(_step_lr, ("step_size", "gamma"), "lr · gamma^⌊epoch / step_size⌋"),
    "cosine": ScheduleEntry(_cosine, ("min_lr",), "cosine from lr to min_lr over all steps"),
    "onecycle": ScheduleEntry(_onecycle, (), "1cycle (OneCycleLR, PyTorch's defaults): lr/25 up to lr over the "
                                             "first 30% of the steps, cosine down to lr/25e4 at the last; the "
                                             "momentum (SGD's, Adam's β₁) cycles 0.95 → 0.85 → 0.95 meanwhile"),
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
    """A model by name. ``sizes`` is [inputs, *hidden, classes] (from the dataset and ``config.hidden``).

    ``build(config, sizes, rng)`` makes the model; ``shapes(config, sizes)`` names every entry of its
    ``state_dict()`` with its shape, in order; ``buffers(config, sizes)`` names those that are not
    trainable parameters, with their dtype (None: the model's ``dtype``); ``sizes(config, shapes)``
    reads the sizes back from a state dict's shapes (None when they do not form this model;
    ``config`` may be None for a plain weights file); ``input_shape(config, sizes)`` is the shape
    of one example as the model takes it (a batch of flat images is reshaped to (m, *input_shape));
    ``values(config, sizes)`` counts the activations one example's forward pass keeps (for the
    memory check); ``describe(config, sizes)`` is one line for the run's log;
    ``torch(config, sizes)`` lists PyTorch ``nn.Sequential`` modules of the same architecture and
    ``to_torch(config, sizes, state)`` maps the state dict onto that Sequential's."""

    build: Callable[[Any, list[int], np.random.Generator], Any]
    shapes: Callable[[Any, list[int]], dict[str, tuple[int, ...]]]
    buffers: Callable[[Any, list[int]], dict[str, Any]]
    sizes: Callable[[Any, dict[str, tuple[int, ...]]], list[int] | None]
    input_shape: Callable[[Any, list[int]], tuple[int, ...]]
    values: Callable[[Any, list[int]], int]
    describe: Callable[[Any, list[int]], str]
    torch: Callable[[Any, list[int]], list[str]]
    to_torch: Callable[[Any, list[int], dict[str, np.ndarray]], dict[str, np.ndarray]]
    help: str

    def parameters(self, config: Any, sizes: list[int]) -> list[str]:
        """The trainable parameters' names, in ``named_parameters()`` order (what optimizer states index)."""
        buffers = self.buffers(config, sizes)
        return [k for k in self.shapes(config, sizes) if k not in buffers]


# ---- the MLP
def _mlp(c: Any, sizes: list[int], rng: np.random.Generator) -> Any:
    from models.mlp import MLP

    acts = list(c.activations)
    return MLP(sizes, acts[0] if len(acts) == 1 else acts, dropout=c.dropout, init=c.init, seed=rng,
               dtype=np.dtype(c.dtype), std=c.init_std, bias_init=c.bias_init)


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


def _mlp_describe(c: Any, sizes: list[int]) -> str:
    return f"MLP {'-'.join(map(str, sizes))} {','.join(c.activations)}"


# ---- the CNN
def image_shape(n_inputs: int) -> tuple[int, int, int]:
    """(1, s, s): the one-channel square image of ``n_inputs`` = s² pixels (every dataset here is one);
    ValueError otherwise."""
    s = math.isqrt(n_inputs)
    if s * s != n_inputs:
        raise ValueError(f"the CNN takes square one-channel images; {n_inputs} inputs are not s × s pixels")
    return (1, s, s)


def cnn_spec(c: Any, sizes: list[int]) -> Any:
    """The ``models.manual_cnn.CNNSpec`` of config ``c`` for ``sizes``: images (1, s, s) of s² = sizes[0]
    pixels, conv blocks of ``c.channels`` (3×3, BatchNorm when ``c.batchnorm``, ReLU, 2×2 max-pool),
    the head's hidden widths sizes[1:-1] (= ``c.hidden``), sizes[-1] classes, ``c.dropout``."""
    from models.manual_cnn import CNNSpec

    return CNNSpec(in_shape=image_shape(sizes[0]), channels=tuple(c.channels), hidden=tuple(sizes[1:-1]),
                   n_classes=sizes[-1], batchnorm=c.batchnorm, dropout=c.dropout)


def _cnn(c: Any, sizes: list[int], rng: np.random.Generator) -> Any:
    from models.cnn import CNN

    return CNN(cnn_spec(c, sizes), init=c.init, seed=rng, dtype=np.dtype(c.dtype), std=c.init_std)


def _cnn_buffers(c: Any, sizes: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for l in range(len(c.channels) if c.batchnorm else 0):
        out[f"bn.{l}.running_mean"] = out[f"bn.{l}.running_var"] = None
        out[f"bn.{l}.num_batches_tracked"] = np.dtype(np.int64)
    return out


def _cnn_sizes(c: Any, shapes: dict[str, tuple[int, ...]]) -> list[int] | None:
    """[inputs, *hidden, classes] of a CNN state dict: hidden and classes from the ``fc.<k>`` biases,
    the inputs from the config's dataset (a CNN's shapes do not fix the image size)."""
    if c is None:
        return None
    widths, k = [], 0
    while len(shapes.get(f"fc.{k}.bias", ())) == 1:
        widths.append(shapes[f"fc.{k}.bias"][0])
        k += 1
    if not widths:
        return None
    try:
        sizes = [dataset_info(c.dataset).n_inputs, *widths]
        return sizes if cnn_spec(c, sizes).shapes() == dict(shapes) else None
    except ValueError:
        return None


def _cnn_values(c: Any, sizes: list[int]) -> int:
    """Per example: each block's conv output, BatchNorm's X̂ and output, the ReLU, the pooled map and the
    im2col columns of its input; then the head's widths."""
    spec = cnn_spec(c, sizes)
    chans, k = (spec.in_shape[0], *spec.channels), spec.kernel_size
    sizes, total = spec.feature_sizes(), 0
    for l, ((h0, w0), (h, w)) in enumerate(zip(sizes[:-1], sizes[1:])):
        conv = (h0 + 2 * spec.padding - k + 1) * (w0 + 2 * spec.padding - k + 1)
        total += chans[l + 1] * conv * (4 if spec.batchnorm else 2) + chans[l + 1] * h * w + chans[l] * k * k * conv
    return total + sum(spec.widths)


def _cnn_torch(c: Any, sizes: list[int]) -> list[str]:
    from models.cnn import torch_modules

    return torch_modules(cnn_spec(c, sizes))


def _cnn_to_torch(c: Any, sizes: list[int], state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from models.cnn import to_torch

    return to_torch(cnn_spec(c, sizes), state)


MODELS: dict[str, ModelEntry] = {
    "mlp": ModelEntry(_mlp, lambda c, sizes: mlp_shapes(sizes), lambda c, sizes: {},
                      lambda c, shapes: mlp_sizes(shapes), lambda c, sizes: (sizes[0],),
                      lambda c, sizes: sum(sizes[1:]), _mlp_describe, _mlp_torch, _mlp_to_torch,
                      "fully connected layers with an activation (and dropout) between them"),
    "cnn": ModelEntry(_cnn, lambda c, sizes: cnn_spec(c, sizes).shapes(), _cnn_buffers, _cnn_sizes,
                      lambda c, sizes: image_shape(sizes[0]), _cnn_values,
                      lambda c, sizes: f"CNN {cnn_spec(c, sizes).describe()}", _cnn_torch, _cnn_to_torch,
                      "conv blocks (3×3 conv [-BatchNorm] -ReLU -2×2 max-pool, one per channels entry), then "
                      "fully connected layers (hidden) with ReLU (and dropout)"),
}


# ------------------------------------------------------------------ all of them
#: The config keys whose values name entries here.
CHOICE_KEYS = ("model", "activations", "init", "bias_init", "optimizer", "schedule", "dataset", "dtype")


def choices(kind: str) -> list[str]:
    """The valid names of a config key that names a registry entry."""
    tables: dict[str, Callable[[], list[str]]] = {
        "model": lambda: list(MODELS), "activations": lambda: list(ACTIVATIONS), "init": init_names,
        "bias_init": lambda: list(BIAS_INITS), "optimizer": lambda: list(OPTIMIZERS),
        "schedule": lambda: list(SCHEDULES), "dataset": dataset_names,
        "dtype": lambda: list(DTYPES),
    }
    return tables[kind]()

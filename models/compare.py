"""Check autograd against hand-derived backprop: ``python -m models.compare``.

Builds (or loads from a checkpoint) an ``MLP`` and its ``ManualMLP`` twin with identical
weights, runs one batch through both and prints, for the loss, the logits and every
gradient, the largest absolute difference, the relative error ‖a − b‖/max(‖a‖, ‖b‖) and the
cosine similarity, in the table format of ``tinygrad_lite.testing.check_backprop``; a row
out of tolerance is explained the same way (worst element, manual vs autograd value, and a
hint such as a missing 1/m or a transpose). ``--steps K`` then trains both side by side with the same optimizer and
compares the parameters and the loss again. Exits 1 if any relative error exceeds the
tolerance for the dtype (0 when all agree, 2 for bad arguments).

``--model cnn`` does the same for ``models.cnn.CNN`` and ``ManualCNN`` (images (m, 1, s, s)),
adding every layer's output (``conv.<l>``, ``bn.<l>``, ``relu.<l>``, ``pool.<l>``, ``flatten``,
``fc.<k>``, ``hidden.<k>``) after the logits, and BatchNorm's buffers (running mean and
variance, batches tracked) after the step and after the K steps.

    python -m models.compare --sizes 784 128 64 10 --activations relu tanh --dtype float64 --steps 5
    python -m models.compare --model cnn --channels 8,16 --hidden 32 --batch 16 --steps 3 --optimizer momentum
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tinygrad_lite.nn as nn
from models import registry
from models.checkpoint import load_checkpoint
from models.cnn import CNN
from models.config import TrainConfig
from models.manual import ManualMLP
from models.manual_cnn import CNNSpec, ManualCNN
from models.mlp import MLP
from tinygrad_lite.testing.backprop import compare_arrays, format_table

__all__ = ["Row", "Report", "TOLERANCE", "difference", "compare", "main"]

#: largest relative error accepted, by dtype
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}

#: The registry's optimizers that have a hand-written twin, plus "momentum" (SGD with momentum 0.9) and
#: "nesterov" (SGD with Nesterov momentum 0.9 and weight decay 5e-4, the cnn preset's).
OPTIMIZERS: dict[str, dict[str, Any]] = {**{name: {"optimizer": name} for name, entry in registry.OPTIMIZERS.items()
                                            if entry.manual is not None},
                                         "momentum": {"optimizer": "sgd", "momentum": 0.9},
                                         "nesterov": {"optimizer": "sgd", "momentum": 0.9, "nesterov": True,
                                                      "weight_decay": 5e-4}}


def _optimizers(name: str, lr: float) -> tuple[Any, Any]:
    """(make(named_parameters), make_manual(params)) for ``OPTIMIZERS[name]`` at rate ``lr``."""
    c = TrainConfig(lr=lr, **OPTIMIZERS[name])
    entry = registry.OPTIMIZERS[c.optimizer]
    return (lambda params: entry.build(params, c)), (lambda params: entry.manual(params, c))


@dataclass
class Row:
    """One compared quantity: autograd value ``a`` vs manual value ``b``."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    rel: float
    cosine: float
    ok: bool
    detail: str = ""  # for a row out of tolerance: its worst element and hints (check_backprop's words)


@dataclass
class Report:
    """All rows of a comparison; ``ok`` when every row is within ``tol``."""

    dtype: np.dtype
    tol: float
    rows: list[Row] = field(default_factory=list)
    batch_sizes: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def add(self, name: str, a: Any, b: Any) -> Row:
        """Compare autograd's ``a`` with the manual ``b``; a row out of tolerance gets check_backprop's diagnosis."""
        row = difference(name, a, b, self.tol)
        if not row.ok:
            row.detail = compare_arrays(name, b, a, rtol=self.tol, atol=0.0, batch_sizes=self.batch_sizes).describe(
                yours="manual", correct="autograd")
        self.rows.append(row)
        return row

    def table(self) -> str:
        rows = [[r.name, "x".join(map(str, r.shape)) or "scalar", f"{r.max_abs:.2e}", f"{r.rel:.2e}",
                 f"{r.cosine:.13f}"] for r in self.rows]
        return format_table(["quantity", "shape", "max|Δ|", "rel err", "cosine"], rows, [not r.ok for r in self.rows],
                            flag="  <-- exceeds tolerance")

    def details(self) -> str:
        """check_backprop's explanation of every row out of tolerance ("yours" is the manual backprop)."""
        return "\n".join(r.detail for r in self.rows if r.detail)


def difference(name: str, a: Any, b: Any, tol: float) -> Row:
    """max |a − b|, ‖a − b‖/max(‖a‖, ‖b‖) and cos(a, b) (1 when both are zero); ok when rel ≤ tol."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return Row(name, a.shape, np.inf, np.inf, np.nan, False)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return Row(name, a.shape, np.inf, np.inf, np.nan, False)  # NaN or inf never agrees
    d = a - b
    max_abs = float(np.abs(d).max()) if d.size else 0.0
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    scale = max(na, nb)
    rel = float(np.linalg.norm(d)) / scale if scale > 0 else 0.0
    cosine = float(np.vdot(a, b)) / (na * nb) if na > 0 and nb > 0 else (1.0 if scale == 0 else 0.0)
    ok = bool(np.isfinite(rel) and rel <= tol)
    return Row(name, a.shape, max_abs, rel, cosine, ok)


def compare(
    model: MLP | CNN, manual: ManualMLP | ManualCNN, X: np.ndarray, y: np.ndarray, *, steps: int = 0,
    optimizer: str = "sgd", lr: float = 0.1, tol: float | None = None, perturb: float = 0.0,
) -> Report:
    """Compare loss, logits and gradients of ``model`` and ``manual`` on (X, y); then ``steps`` updates.

    For a CNN also every layer's output (after the logits) and the buffers after the step (and
    after the ``steps`` updates). ``perturb`` (testing only) adds perturb·‖g‖ to one entry of the
    manual first-layer weight gradient, a planted discrepancy the comparison must catch.
    """
    dtype = np.dtype(model.parameters()[0].dtype)
    if tol is not None and not 0 < tol < math.inf:  # NaN fails too: every comparison would "fail"
        raise ValueError(f"compare: tol must be a finite number > 0, got {tol}")
    report = Report(dtype, TOLERANCE.get(dtype, 1e-4) if tol is None else tol, batch_sizes=(len(X),))
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"compare: unknown optimizer {optimizer!r}; valid names: {', '.join(OPTIMIZERS)}")
    make_opt, make_manual_opt = _optimizers(optimizer, lr)
    opt = make_opt(model.named_parameters()) if steps else None
    manual_opt = make_manual_opt(manual.params) if steps else None

    layers = isinstance(model, CNN)  # a CNN reports its layers' outputs and has buffers

    def buffers(after: str) -> None:
        state = model.state_dict()
        for name, value in getattr(manual, "buffers", {}).items():
            report.add(f"buffer {name}{after}", state[name], value)

    def one_step(record: bool) -> None:
        model.zero_grad()
        outputs: dict[str, Any] = {}
        logits = model(X, outputs) if layers else model(X)
        loss = nn.cross_entropy(logits, y)
        loss.backward()
        manual_logits = manual.forward(X)
        manual_loss = manual.loss(y)
        grads = manual.backward(y)
        if record:
            if perturb:
                g = grads[next(iter(grads))]
                g.flat[0] += perturb * max(float(np.linalg.norm(g)), 1.0)
            report.add("loss", loss.data, manual_loss)
            report.add("logits", logits.data, manual_logits)
            for name, out in outputs.items():
                report.add(f"layer {name}", out.data, manual.cache[name])
            for name, p in model.named_parameters():
                report.add(f"grad {name}", p.grad, grads[name])
        if opt is not None:
            opt.step()
            manual_opt.step(grads)
        if record:
            buffers(" after the step" if opt is not None else "")

    one_step(record=True)
    for _ in range(steps - 1):
        one_step(record=False)
    if steps:
        for name, p in model.named_parameters():
            report.add(f"param {name} after {steps}", p.data, manual.params[name])
        buffers(f" after {steps}")
        with_grad = nn.cross_entropy(model(X), y)
        manual.forward(X)
        report.add(f"loss after {steps} {optimizer} steps", with_grad.data, manual.loss(y))
    return report


# ------------------------------------------------------------------------ CLI
def _ints(tokens: Sequence[str], flag: str = "--sizes") -> list[int]:
    try:
        return [int(t) for tok in tokens for t in tok.split(",") if t]
    except ValueError:
        raise ValueError(f"{flag} expects integers, got {' '.join(tokens)!r}") from None


def _names(tokens: Sequence[str]) -> list[str]:
    return [t for tok in tokens for t in tok.split(",") if t]


def _load_checkpoint(path: str, dtype: np.dtype) -> tuple[list[int], dict[str, np.ndarray], Any]:
    """Layer sizes, {layers.<l>.weight/bias: array} and the saved activations (or None), read by
    ``models.checkpoint.load_checkpoint`` (a run's model or checkpoint, or a plain state dict)."""
    ckpt = load_checkpoint(path)
    sizes = registry.mlp_sizes({k: tuple(v.shape) for k, v in ckpt.params.items()})
    if sizes is None:
        raise ValueError(f"checkpoint {path}: its parameters do not form an MLP")
    return sizes, {k: v.astype(dtype) for k, v in ckpt.params.items()}, ckpt.config.get("activations")


def _load_cnn_checkpoint(path: str, dtype: np.dtype) -> tuple[CNNSpec, dict[str, np.ndarray], str]:
    """The spec, state dict (floats cast to ``dtype``, BatchNorm's counters kept int64) and init of a CNN
    that ``models.train`` saved (its stored config says the architecture)."""
    ckpt = load_checkpoint(path)
    if ckpt.config.get("model") != "cnn":
        raise ValueError(f"checkpoint {path}: holds no CNN (a run of models.train --model cnn writes one)")
    config = TrainConfig.from_dict(ckpt.config, f"{path}: stored config")
    sizes = registry.MODELS["cnn"].sizes(config, {k: tuple(v.shape) for k, v in ckpt.params.items()})
    if sizes is None:  # pragma: no cover - load_checkpoint checked the shapes against the config
        raise ValueError(f"checkpoint {path}: its parameters do not form the CNN its config describes")
    state = {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in ckpt.params.items()}
    return registry.cnn_spec(config, sizes), state, config.init


def _checkpoint_model(path: str) -> str:
    """The model a checkpoint's stored config names ("mlp" for a plain weights file)."""
    return str(load_checkpoint(path).config.get("model", "mlp"))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m models.compare",
        description="Compare tinygrad_lite's MLP (or CNN) against the hand-derived NumPy backprop (loss, logits, "
                    "layer outputs, gradients, buffers; optionally K training steps). Exit 1 when a difference "
                    "exceeds the tolerance.",
    )
    p.add_argument("--model", choices=["mlp", "cnn"], default=None,
                   help="MLP vs ManualMLP, or CNN vs ManualCNN (default: mlp, or the checkpoint's)")
    p.add_argument("--sizes", nargs="+", default=["784", "128", "64", "10"],
                   help="MLP: layer widths, e.g. 784 128 64 10 or 784,128,64,10 (default: %(default)s)")
    p.add_argument("--activations", nargs="+", default=None,
                   help="MLP: one name for all hidden layers or one per layer: relu, tanh, sigmoid (default: relu, "
                        "or the checkpoint's)")
    cnn = p.add_argument_group("CNN (--model cnn; the default is CNNSpec's: conv 32-64 3×3 with BatchNorm, fc 128)")
    cnn.add_argument("--channels", default=None, help="output channels of each conv block, e.g. 8,16 (default 32,64)")
    cnn.add_argument("--hidden", default=None, help="widths of the fully connected layers, e.g. 128 (default 128)")
    cnn.add_argument("--image-size", type=int, default=None, help="images 1×s×s (default 28)")
    cnn.add_argument("--classes", type=int, default=None, help="classes (default 10)")
    cnn.add_argument("--no-batchnorm", action="store_true", help="no BatchNorm (the convolutions get biases)")
    cnn.add_argument("--dropout", type=float, default=None, help="dropout after each hidden ReLU (default 0)")
    p.add_argument("--init", default=None, help=f"weight init: {', '.join(nn.INITS)} (default: xavier_uniform for "
                                                f"the MLP, uniform_fan_in for the CNN's linear layers)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default: %(default)s)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64", help="default: %(default)s")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and drawn data (default: %(default)s)")
    p.add_argument("--steps", type=int, default=0, help="train both models K steps side by side (default: 0)")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd", help="for --steps (default: sgd)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 0.1 for sgd, 1e-3 otherwise)")
    p.add_argument("--tol", type=float, default=None, help="relative-error tolerance (default: 1e-10 for "
                                                            "float64, 1e-4 for float32)")
    p.add_argument("--checkpoint", default=None, help="a run's model/checkpoint .safetensors, or a weights file "
                                                      "(.npz, .safetensors) of an MLP; the architecture is read "
                                                      "from it")
    p.add_argument("--dataset", default=None, help="take the batch from a dataset (tinygrad_lite.data)")
    p.add_argument("--data-dir", default=None, help="where datasets are stored (with --dataset)")
    p.add_argument("--perturb", type=float, default=0.0, help=argparse.SUPPRESS)  # testing: plant a discrepancy
    return p


_CNN_ONLY = ("channels", "hidden", "image_size", "classes", "no_batchnorm", "dropout")


def _mlp_twins(args: argparse.Namespace, dtype: np.dtype) -> tuple[MLP, ManualMLP, tuple[int, ...], int, str]:
    """(model, manual, shape of one example, classes, header line) of the MLP comparison."""
    state, saved_activations = None, None
    sizes = _ints(args.sizes)
    if args.checkpoint:
        sizes, state, saved_activations = _load_checkpoint(args.checkpoint, dtype)
    activations = _names(args.activations or saved_activations or ["relu"])
    if len(activations) == 1:
        activations = activations[0]
    init = args.init or "xavier_uniform"
    model = MLP(sizes, activations, init=init, seed=args.seed, dtype=dtype)
    manual = ManualMLP(sizes, activations, init=init, seed=args.seed, dtype=dtype)
    if state is not None:
        model.load_state_dict(state)
    manual.load_state_dict(model.state_dict())
    header = f"MLP {sizes}, activations {model.activations}, init {init}, {dtype}, seed {args.seed}"
    return model, manual, (sizes[0],), sizes[-1], header


def _cnn_twins(args: argparse.Namespace, dtype: np.dtype) -> tuple[CNN, ManualCNN, tuple[int, ...], int, str]:
    """(model, manual, shape of one example, classes, header line) of the CNN comparison."""
    state, init = None, args.init or "uniform_fan_in"
    if args.checkpoint:
        given = [f"--{k.replace('_', '-')}" for k in _CNN_ONLY if getattr(args, k) not in (None, False)]
        if given:
            raise ValueError(f"{given[0]}: the architecture comes from --checkpoint")
        spec, state, saved_init = _load_cnn_checkpoint(args.checkpoint, dtype)
        init = args.init or saved_init
    else:
        changes: dict[str, Any] = {"batchnorm": not args.no_batchnorm}
        if args.channels is not None:
            changes["channels"] = tuple(_ints([args.channels], "--channels"))
        if args.hidden is not None:
            changes["hidden"] = tuple(_ints([args.hidden], "--hidden"))
        if args.image_size is not None:
            changes["in_shape"] = (1, args.image_size, args.image_size)
        if args.classes is not None:
            changes["n_classes"] = args.classes
        if args.dropout is not None:
            changes["dropout"] = args.dropout
        spec = CNNSpec().replace(**changes)
    model = CNN(spec, init=init, seed=args.seed, dtype=dtype)
    manual = ManualCNN(spec, init=init, seed=args.seed, dtype=dtype)
    if state is not None:
        model.load_state_dict(state)
    manual.load_state_dict(model.state_dict())
    header = f"CNN {spec.describe()}, init {init}, {dtype}, seed {args.seed}"
    return model, manual, spec.in_shape, spec.n_classes, header


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison from command-line arguments; return the exit status."""
    args = _parser().parse_args(argv)
    dtype = np.dtype(args.dtype)
    try:
        if args.batch < 1 or args.steps < 0:
            raise ValueError(f"--batch must be ≥ 1 and --steps ≥ 0, got {args.batch} and {args.steps}")
        kind = args.model or (_checkpoint_model(args.checkpoint) if args.checkpoint else "mlp")
        if kind == "cnn":
            model, manual, shape, n_classes, header = _cnn_twins(args, dtype)
        else:
            given = [f"--{k.replace('_', '-')}" for k in _CNN_ONLY if getattr(args, k) not in (None, False)]
            if given:
                raise ValueError(f"{given[0]} is an option of --model cnn")
            model, manual, shape, n_classes, header = _mlp_twins(args, dtype)
        rng = np.random.default_rng(args.seed + 1)
        if args.dataset:
            from tinygrad_lite.data import load_dataset  # imported only when asked for

            d = load_dataset(args.dataset, data_dir=args.data_dir)
            x_train, y_train = d.x_train, d.y_train
            if args.batch > len(x_train):
                raise ValueError(f"--batch {args.batch} is larger than the dataset ({len(x_train)} examples)")
            if math.prod(x_train.shape[1:]) != math.prod(shape):
                what = f"{shape[0]} inputs" if len(shape) == 1 else f"images of shape {shape}"
                raise ValueError(f"dataset {args.dataset} has examples of shape {x_train.shape[1:]}; the model "
                                 f"takes {what}")
            X = np.asarray(x_train[: args.batch], dtype=dtype).reshape(args.batch, *shape)
            y = np.asarray(y_train[: args.batch])
            source = f"first {args.batch} training examples of {args.dataset}"
        else:
            X = rng.random((args.batch, *shape)).astype(dtype)
            y = rng.integers(0, n_classes, size=args.batch)
            source = f"drawn batch of {args.batch} (uniform pixels, uniform labels)"
        lr = args.lr if args.lr is not None else (0.1 if args.optimizer in ("sgd", "momentum", "nesterov") else 1e-3)
        report = compare(model, manual, X, y, steps=args.steps, optimizer=args.optimizer, lr=lr,
                         tol=args.tol, perturb=args.perturb)
    except (ValueError, OSError, ImportError, KeyError) as exc:
        print(f"models.compare: error: {exc}", file=sys.stderr)
        return 2
    print(header + (f", weights from {args.checkpoint}" if args.checkpoint else ""))
    print(f"batch: {source}" + (f"; {args.steps} {args.optimizer} steps, lr {lr:g}" if args.steps else ""))
    print(report.table())
    worst = max(report.rows, key=lambda r: r.rel if np.isfinite(r.rel) else np.inf)
    if report.ok:
        print(f"OK: all {len(report.rows)} quantities agree (largest relative error {worst.rel:.2e} "
              f"in {worst.name}; tolerance {report.tol:g} for {dtype})")
        return 0
    bad = [r.name for r in report.rows if not r.ok]
    print(f"FAIL: {len(bad)} of {len(report.rows)} quantities differ by more than {report.tol:g} ({dtype}): "
          + ", ".join(bad))
    print(report.details())
    return 1


if __name__ == "__main__":
    sys.exit(main())

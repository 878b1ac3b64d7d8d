"""A catalogue of bad input across the public API.

Each case asserts the exception type and that the message names the offending shape, dtype,
value, name or file; where it matters, that nothing changed (leaf grads, parameters, files).
NaN and Inf in *data* are accepted (NumPy accepts them); in labels and learning rates they
are refused.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import tinygrad_lite as tg
from models import evaluate, train
from models.checkpoint import CheckpointError, check_architecture, load_checkpoint, save_checkpoint
from models.config import ConfigError, TrainConfig, read_toml
from models.manual import ManualMLP
from models.mlp import MLP
from models.presets import resolve_config
from tinygrad_lite import GraphFreedError, Tensor, data, defop, nn, optim
from tinygrad_lite.nn.state import save_safetensors

IMAGES = np.zeros((2, 28, 28), np.uint8)
A23 = r"\(2, 3\)"
B45 = r"\(4, 5\)"


def t(shape, requires_grad=False, dtype=np.float64):
    return Tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad)


class MarkerOnUnpickle:
    """Unpickling this creates a file: proof that a loader ran code it should never run."""

    marker = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


# --------------------------------------------------------------- op and engine cases
# (call, exception type, regex the message must match); each call builds fresh inputs.
def _wrong_count_op():
    @defop
    def two_args(a, b):
        return a + b, (lambda g: g,)

    return two_args(t(3, True), 2.0)


def _not_a_pair_op():
    @defop
    def no_vjp(x):
        return x * 2

    return no_vjp(t(3, True))


def _wrong_shape_vjp():
    @defop
    def too_long(x):
        return x.sum(), lambda g: np.ones(x.size + 1) * g

    return too_long(t(3, True)).backward()


def _two_grads_for_one_argument():
    @defop
    def pair_grad(x):
        return x.sum(), lambda g: (g * np.ones(x.shape), g * np.ones(x.shape))  # one gradient too many

    return pair_grad(t(3, True)).backward()


def _backward_twice():
    x = t(3, True)
    y = (x * 2).sum()
    y.backward()
    y.backward()


ENGINE = [
    # mismatched shapes in every binary op and @
    pytest.param(lambda: tg.add(t((2, 3)), t((4, 5))), ValueError, rf"add.*{A23}.*{B45}", id="add-shapes"),
    pytest.param(lambda: tg.sub(t((2, 3)), t((4, 5))), ValueError, rf"sub.*{A23}.*{B45}", id="sub-shapes"),
    pytest.param(lambda: tg.mul(t((2, 3)), t((4, 5))), ValueError, rf"mul.*{A23}.*{B45}", id="mul-shapes"),
    pytest.param(lambda: tg.div(t((2, 3)), t((4, 5))), ValueError, rf"div.*{A23}.*{B45}", id="div-shapes"),
    pytest.param(lambda: tg.power(t((2, 3)), t((4, 5))), ValueError, rf"pow.*{A23}.*{B45}", id="pow-shapes"),
    pytest.param(lambda: tg.maximum(t((2, 3)), t((4, 5))), ValueError, rf"maximum.*{A23}.*{B45}", id="maximum-shapes"),
    pytest.param(lambda: tg.minimum(t((2, 3)), t((4, 5))), ValueError, rf"minimum.*{A23}.*{B45}", id="minimum-shapes"),
    pytest.param(lambda: tg.where(np.ones(4, bool), t((2, 3)), 0.0), ValueError, rf"where.*\(4,\).*{A23}",
                 id="where-shapes"),
    pytest.param(lambda: np.ones((4, 5)) - t((2, 3), True), ValueError, rf"sub.*{B45}.*{A23}",
                 id="rsub-ndarray-shapes"),
    pytest.param(lambda: t((2, 3)) @ t((4, 5)), ValueError, rf"matmul.*{A23}.*{B45}", id="matmul-shapes"),
    pytest.param(lambda: np.ones((4, 5)) @ t((2, 3)), ValueError, rf"matmul.*{B45}.*{A23}", id="rmatmul-shapes"),
    pytest.param(lambda: t(3) @ t(4), ValueError, r"matmul.*\(3,\).*\(4,\)", id="matmul-vectors"),
    pytest.param(lambda: tg.matmul(t(()), t((2, 3))), ValueError, rf"matmul.*\(\).*{A23}", id="matmul-scalar"),
    pytest.param(lambda: tg.concatenate(t((2, 3)), t((4, 5))), ValueError, rf"concatenate.*{A23}.*{B45}",
                 id="concatenate-shapes"),
    pytest.param(lambda: tg.stack(t((2, 3)), t((4, 5))), ValueError, rf"stack.*{A23}.*{B45}", id="stack-shapes"),
    # bad axes
    pytest.param(lambda: t((2, 3)).sum(axis=5), ValueError, rf"sum: axis 5 .*{A23}", id="sum-axis"),
    pytest.param(lambda: t((2, 3)).max(axis=-3), ValueError, rf"max: axis -3 .*{A23}", id="max-axis"),
    pytest.param(lambda: t((2, 3)).softmax(axis=3), ValueError, rf"softmax: axis 3 .*{A23}", id="softmax-axis"),
    pytest.param(lambda: t((2, 3)).log_softmax(axis=3), ValueError, rf"log_softmax: axis 3 .*{A23}",
                 id="log_softmax-axis"),
    pytest.param(lambda: t((2, 3)).logsumexp(axis=2), ValueError, rf"logsumexp: axis 2 .*{A23}", id="logsumexp-axis"),
    pytest.param(lambda: t((2, 3)).argmax(axis=2), ValueError, rf"argmax: axis 2 .*{A23}", id="argmax-axis"),
    pytest.param(lambda: t((2, 3)).transpose(0, 0), ValueError, rf"transpose: repeated axis.*{A23}",
                 id="transpose-axes"),
    pytest.param(lambda: t((2, 3)).mean(axis=2), ValueError, rf"mean: axis 2 .*{A23}", id="mean-axis"),
    pytest.param(lambda: tg.concatenate(t((2, 3)), t((2, 3)), axis=4), ValueError, rf"concatenate: axis 4 .*{A23}",
                 id="concatenate-axis"),
    # impossible reshape, out-of-range index
    pytest.param(lambda: t((2, 3)).reshape(4, 2), ValueError, rf"reshape: .*size 6 into shape \(4,2\).*{A23}",
                 id="reshape-size"),
    pytest.param(lambda: t((2, 3)).reshape(5, -1), ValueError, rf"reshape: .*size 6.*{A23}", id="reshape-infer"),
    pytest.param(lambda: t((2, 3))[5], IndexError, r"index 5 is out of bounds for axis 0 with size 2", id="index"),
    # non-numeric or object data
    pytest.param(lambda: Tensor(np.array([object(), 1], dtype=object)), TypeError, "unsupported dtype object",
                 id="object-array"),
    pytest.param(lambda: Tensor("abc"), TypeError, "unsupported dtype <U3", id="string"),
    pytest.param(lambda: Tensor(np.array(["1.0", "2.0"])), TypeError, "unsupported dtype <U3", id="string-array"),
    pytest.param(lambda: Tensor(np.ones(2, complex)), TypeError, "unsupported dtype complex128", id="complex"),
    pytest.param(lambda: Tensor([[1.0, 2.0], [3.0]]), TypeError, "from list.*inhomogeneous", id="ragged-list"),
    pytest.param(lambda: Tensor({"a": 1.0}), TypeError, "unsupported dtype object", id="dict"),
    pytest.param(lambda: Tensor([1.0], dtype="float1024"), TypeError, "float1024", id="unknown-dtype"),
    # integer tensors asked for grad
    pytest.param(lambda: Tensor(np.arange(3), requires_grad=True), TypeError, "dtype int64", id="int-requires-grad"),
    pytest.param(lambda: Tensor(np.ones(2, np.uint8)).requires_grad_(), TypeError, "dtype uint8",
                 id="uint8-requires-grad_"),
    pytest.param(lambda: Tensor(np.ones(2, bool), requires_grad=True), TypeError, "dtype bool",
                 id="bool-requires-grad"),
    pytest.param(lambda: setattr(t(2, True) * 2, "requires_grad", False), RuntimeError, "result of 'mul'",
                 id="requires-grad-on-non-leaf"),
    # backward misuse
    pytest.param(_backward_twice, GraphFreedError, r"'sum' \(shape \(\)\).*retain_graph", id="backward-twice"),
    pytest.param(lambda: (t((2, 3), True) * 2).backward(), RuntimeError, rf"one-element output.*{A23}",
                 id="backward-non-scalar"),
    pytest.param(lambda: (t((2, 3), True) * 2).backward(np.ones(3)), ValueError, rf"\(3,\).*{A23}",
                 id="backward-grad-shape"),
    pytest.param(lambda: t(3).sum().backward(), RuntimeError, "does not require grad", id="backward-no-grad"),
    pytest.param(lambda: t(3).item(), ValueError, r"one element.*shape \(3,\)", id="item-non-scalar"),
    # defop VJPs that return the wrong number or shape of gradients
    pytest.param(_wrong_count_op, ValueError, "op 'two_args' returned 1 VJP function.*2 array", id="defop-vjp-count"),
    pytest.param(_not_a_pair_op, TypeError, "op 'no_vjp' must return a pair", id="defop-not-a-pair"),
    pytest.param(_wrong_shape_vjp, ValueError, r"op 'too_long'.*shape \(4,\).*shape \(3,\)", id="defop-vjp-shape"),
    pytest.param(_two_grads_for_one_argument, TypeError, r"VJP of op 'pair_grad' returned a tuple",
                 id="defop-vjp-two-grads"),
    pytest.param(lambda: tg.where(t(1, True), 1.0, 2.0), TypeError, "'where' is not differentiable.*argument 0",
                 id="defop-non-differentiable"),
]


# ------------------------------------------------------------ nn, losses, optimizers
def _param():
    return Tensor(np.zeros(3), requires_grad=True)


LOGITS = lambda: Tensor(np.zeros((3, 4)), requires_grad=True)  # noqa: E731

NN_OPTIM = [
    # labels: NaN/Inf refused, and every other kind of wrong label named
    pytest.param(lambda: nn.cross_entropy(LOGITS(), np.array([0.0, np.nan, 1.0])), ValueError,
                 r"labels contain NaN \(rows \[1\]\)", id="labels-nan"),
    pytest.param(lambda: nn.cross_entropy(LOGITS(), np.array([[np.inf, 0, 0, 0]] * 3)), ValueError,
                 "row 0 sums to inf", id="labels-inf-rows"),
    pytest.param(lambda: nn.nll_loss(LOGITS(), np.array([[-np.inf, 0, 0, 1.0]] * 3)), ValueError,
                 r"negative entries \(min -inf\)", id="labels-minus-inf-rows"),
    pytest.param(lambda: nn.cross_entropy(LOGITS(), np.array([0.0, 1.0, 2.0])), ValueError,
                 r"float labels of shape \(3,\).*astype\(np.int64\)", id="labels-float"),
    pytest.param(lambda: nn.cross_entropy(LOGITS(), np.array([0, 4, 1])), ValueError,
                 r"label 4 at row 1 is outside \[0, 4\)", id="labels-out-of-range"),
    pytest.param(lambda: nn.cross_entropy(LOGITS(), np.array([0, -1, 1])), ValueError,
                 r"label -1 at row 1", id="labels-negative"),
    pytest.param(lambda: nn.cross_entropy(LOGITS(), np.array([0, 1])), ValueError,
                 r"3 rows \(shape \(3, 4\)\), labels have shape \(2,\)", id="labels-batch"),
    pytest.param(lambda: nn.cross_entropy(LOGITS(), np.array(["a", "b", "c"])), ValueError, "dtype <U1",
                 id="labels-string"),
    pytest.param(lambda: nn.cross_entropy(LOGITS(), np.array([0, None, 1], dtype=object)), ValueError,
                 "dtype object", id="labels-object"),
    pytest.param(lambda: nn.cross_entropy(LOGITS(), np.full((3, 4), 0.5)), ValueError, "row 0 sums to 2",
                 id="labels-rows-sum"),
    pytest.param(lambda: nn.cross_entropy(LOGITS(), [0, 1, 2], reduction="avg"), ValueError,
                 "unknown reduction 'avg'", id="unknown-reduction"),
    pytest.param(lambda: nn.cross_entropy(t(4), [0]), ValueError, r"shape \(m, classes\), got \(4,\)",
                 id="logits-1d"),
    # unknown names
    pytest.param(lambda: nn.Linear(2, 3, init="glorot"), ValueError, "unknown init 'glorot'; valid names: xavier",
                 id="linear-init"),
    pytest.param(lambda: nn.init_weight("foo", 2, 3), ValueError, "unknown init 'foo'", id="init_weight-name"),
    pytest.param(lambda: MLP([4, 3, 2], activations="gelu"), ValueError, "unknown activation 'gelu'; valid names: relu",
                 id="mlp-activation"),
    pytest.param(lambda: MLP([4, 3, 2], init="zeros"), ValueError, "unknown init 'zeros'", id="mlp-init"),
    pytest.param(lambda: MLP([4, 3, 3, 2], activations=["relu"]), ValueError, r"1 activations \['relu'\] for 2",
                 id="mlp-activation-count"),
    pytest.param(lambda: MLP([4, 0, 2]), ValueError, r"got \[4, 0, 2\]", id="mlp-sizes"),
    pytest.param(lambda: MLP([4, 3, 2])(np.ones((2, 5))), ValueError, r"\(m, 4\), got \(2, 5\)", id="mlp-input"),
    pytest.param(lambda: nn.Linear(3, 2)(t((4, 5))), ValueError, r"5 features \(shape \(4, 5\)\), expected 3",
                 id="linear-input"),
    pytest.param(lambda: nn.Dropout(float("nan")), ValueError, "p must be in .*got nan", id="dropout-nan"),
    pytest.param(lambda: nn.Sequential(nn.ReLU(), abs), TypeError, "item 1 is a builtin_function_or_method",
                 id="sequential-item"),
    pytest.param(lambda: data.load_dataset("cifar"), ValueError, "unknown dataset 'cifar'; valid names: digits",
                 id="dataset-name"),
    pytest.param(lambda: data.one_hot(np.array([0, 7]), 5), ValueError, r"0\.\.4, found 0\.\.7", id="one_hot-range"),
    pytest.param(lambda: list(data.iterate_minibatches(np.ones(4), np.ones(3), 2)), ValueError, "4 vs 3",
                 id="minibatch-lengths"),
    pytest.param(lambda: data.iterate_minibatches(np.ones(4), np.ones(4), 0), ValueError, "batch_size.*got 0",
                 id="minibatch-size"),
    # sizes and amounts that are not finite numbers, or not integers
    pytest.param(lambda: nn.Linear(2.5, 3), ValueError, "sizes must be positive integers, got 2.5→3",
                 id="linear-float-size"),
    pytest.param(lambda: nn.Linear("3", 2), ValueError, "sizes must be positive integers, got '3'→2",
                 id="linear-string-size"),
    pytest.param(lambda: MLP([4.5, 2]), ValueError, r"positive integers; got \[4.5, 2\]", id="mlp-float-size"),
    pytest.param(lambda: MLP([True, 2]), ValueError, r"got \[True, 2\]", id="mlp-bool-size"),
    pytest.param(lambda: ManualMLP([4, 2.5, 2]), ValueError, r"ManualMLP: .*got \[4, 2.5, 2\]",
                 id="manual-mlp-float-size"),
    pytest.param(lambda: nn.Dropout("0.5"), ValueError, "p must be in .*got 0.5", id="dropout-string"),
    pytest.param(lambda: data.augment(IMAGES, 0, max_rotation=float("nan")), ValueError,
                 "max_shift and max_rotation must be finite numbers >= 0, got 2, nan", id="augment-nan-rotation"),
    pytest.param(lambda: data.augment(IMAGES, 0, max_rotation=float("inf")), ValueError, "got 2, inf",
                 id="augment-inf-rotation"),
    pytest.param(lambda: data.augment(IMAGES, 0, max_shift=float("nan")), ValueError, "got nan, 10.0",
                 id="augment-nan-shift"),
    pytest.param(lambda: data.shift_rotate(IMAGES, [[0, 0], [np.nan, 1]], [0, 0]), ValueError,
                 r"shifts must be finite; image 1 has shifts \[nan, 1.0\]", id="shift_rotate-nan-shift"),
    pytest.param(lambda: data.shift_rotate(IMAGES, np.zeros((2, 2)), [np.inf, 0]), ValueError,
                 r"angles must be finite; image 0 has angles inf", id="shift_rotate-inf-angle"),
    pytest.param(lambda: tg.gradcheck(lambda x: x.sum(), [np.ones(2)], atol=float("inf")), ValueError,
                 "all finite; got 1e-06, inf, 0.001", id="gradcheck-inf-atol"),
    pytest.param(lambda: tg.gradcheck(lambda x: x.sum(), [np.ones(2)], eps=float("nan")), ValueError,
                 "got nan, 1e-05", id="gradcheck-nan-eps"),
    pytest.param(lambda: tg.gradcheck(lambda x: x.sum(), [np.array([1.0, np.nan])]), ValueError,
                 r"input 0 has a non-finite value nan at element \(1,\)", id="gradcheck-nan-input"),
    # optimizers: no parameters, bad learning rates and hyper-parameters
    pytest.param(lambda: optim.SGD([], lr=0.1), ValueError, "SGD: got an empty parameter list", id="optim-empty"),
    pytest.param(lambda: optim.Adam(iter([])), ValueError, "Adam: got an empty parameter list",
                 id="optim-empty-generator"),
    pytest.param(lambda: optim.SGD([_param()], lr=-0.1), ValueError, "SGD: lr must be .*got -0.1", id="lr-negative"),
    pytest.param(lambda: optim.SGD([_param()], lr=float("nan")), ValueError, "lr must be .*got nan", id="lr-nan"),
    pytest.param(lambda: optim.Adam([_param()], lr=float("inf")), ValueError, "Adam: lr must be .*got inf",
                 id="lr-inf"),
    pytest.param(lambda: optim.RMSprop([_param()], lr=-float("inf")), ValueError, "lr must be .*got -inf",
                 id="lr-minus-inf"),
    pytest.param(lambda: optim.SGD([_param()], lr="fast"), ValueError, "lr must be a number, got 'fast'",
                 id="lr-string"),
    pytest.param(lambda: optim.SGD([_param()], lr="0.1"), ValueError, "lr must be a number, got '0.1'",
                 id="lr-numeric-string"),
    pytest.param(lambda: optim.SGD([_param()], lr=0.1, momentum=float("inf")), ValueError,
                 "momentum must be .*got inf", id="momentum-inf"),
    pytest.param(lambda: optim.Adam([_param()], eps=float("inf")), ValueError, "eps must be .*got inf", id="eps-inf"),
    pytest.param(lambda: optim.Adam([_param()], betas=(1.0, 0.9)), ValueError, r"betas\[0\] must be in \[0.0, 1.0\)",
                 id="adam-beta"),
    pytest.param(lambda: optim.RMSprop([_param()], alpha=-0.1), ValueError, "alpha must be in .*got -0.1",
                 id="rmsprop-alpha"),
    pytest.param(lambda: optim.SGD([_param() * 2], lr=0.1), ValueError, r"parameter 0 \(shape \(3,\)\).*'mul'",
                 id="optim-non-leaf"),
    pytest.param(lambda: optim.SGD([Tensor(np.ones(2))], lr=0.1), ValueError, r"\(shape \(2,\)\) does not require",
                 id="optim-no-grad"),
    pytest.param(lambda: optim.SGD([("w", np.ones(2))], lr=0.1), ValueError, "w is a ndarray, not a Tensor",
                 id="optim-ndarray"),
]


# ------------------------------------------------------------------- config files
def _toml(d: Path, text: str | bytes, name: str = "bad-config.toml") -> dict:
    path = d / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return resolve_config(None, read_toml(path), file_name=str(path))


CONFIG = [
    pytest.param(lambda d: resolve_config("nope"), ConfigError, "unknown preset 'nope'; valid names: default",
                 id="preset-name"),
    pytest.param(lambda d: resolve_config(None, {"optimizer": "adamax"}), ConfigError,
                 "'optimizer' must be one of sgd, adam, rmsprop, adamw, got 'adamax'", id="optimizer-name"),
    pytest.param(lambda d: resolve_config(None, {"activations": ["gelu"]}), ConfigError,
                 r"'activations' must be one of relu.*got \['gelu'\]", id="activation-name"),
    pytest.param(lambda d: resolve_config(None, {"init": "zeros"}), ConfigError, "'init' must be one of .*got 'zeros'",
                 id="init-name"),
    pytest.param(lambda d: _toml(d, "learning_rate = 0.1\n"), ConfigError,
                 "bad-config.toml: unknown config key 'learning_rate'", id="toml-unknown-key"),
    pytest.param(lambda d: _toml(d, 'epochs = "ten"\n'), ConfigError,
                 "bad-config.toml: config key 'epochs' must be int, got str 'ten'", id="toml-wrong-type"),
    pytest.param(lambda d: _toml(d, "hidden = 1.5\n"), ConfigError, r"'hidden' must be list\[int\], got float 1.5",
                 id="toml-wrong-list-type"),
    pytest.param(lambda d: _toml(d, "shuffle = 1\n"), ConfigError, "'shuffle' must be bool, got int 1",
                 id="toml-int-for-bool"),
    pytest.param(lambda d: _toml(d, "lr = nan\n"), ConfigError, "'lr' must be a finite number >= 0, got nan",
                 id="toml-lr-nan"),
    pytest.param(lambda d: _toml(d, "lr = -inf\n"), ConfigError, "'lr' must be a finite number >= 0, got -inf",
                 id="toml-lr-minus-inf"),
    pytest.param(lambda d: _toml(d, "epochs = \n"), ConfigError, "bad-config.toml is not valid TOML", id="toml-syntax"),
    pytest.param(lambda d: _toml(d, "[model]\nhidden = [3]\n"), ConfigError,
                 r"bad-config.toml: unexpected table \[model\]", id="toml-table"),
    pytest.param(lambda d: read_toml(d / "missing.toml"), ConfigError, "missing.toml does not exist",
                 id="toml-missing"),
    pytest.param(lambda d: _toml(d, b"lr = 0.1\n\xff\xfe\n"), ConfigError, "bad-config.toml", id="toml-not-utf8"),
    pytest.param(lambda d: read_toml(d), ConfigError, "[Ii]s a directory", id="toml-directory"),
]


# -------------------------------------------------------------------- checkpoints
def _params(sizes=(784, 3, 10)):
    return MLP(list(sizes), seed=0).state_dict()


def _good(d: Path, name: str = "good.safetensors") -> Path:
    return save_checkpoint(d / name, _params(), {}, 1, TrainConfig(hidden=(3,)))


def _truncated(d: Path, fraction: float) -> Path:
    raw = _good(d).read_bytes()
    path = d / "cut.safetensors"
    path.write_bytes(raw[: int(len(raw) * fraction)])
    return path


def _metadata(d: Path, name: str, **fields: str) -> Path:
    """A safetensors checkpoint whose header metadata has ``fields`` changed."""
    meta = {"format": "tinygrad_lite.checkpoint/2", "epoch": "1", "config": '{"hidden": [3]}', **fields}
    save_safetensors(d / name, _params(), meta)
    return d / name


def _fields(d: Path, name: str, **fields) -> Path:
    base = {"format": np.asarray(1), "epoch": np.asarray(1), "config_json": np.asarray("{}"),
            "param.layers.0.weight": np.ones((4, 2), np.float32)}
    np.savez(d / name, **{**base, **fields})
    return d / name


def _not_npz(d: Path) -> Path:
    path = d / "notes.npz"
    path.write_text("these are my notes, not a checkpoint\n")
    return path


def _npy(d: Path) -> Path:
    np.save(d / "array.npy", np.ones(3))
    return d / "array.npy"


CHECKPOINT = [
    pytest.param(lambda d: load_checkpoint(d / "none.npz"), "none.npz does not exist", id="missing"),
    pytest.param(lambda d: load_checkpoint(d), "is not a file", id="directory"),
    pytest.param(lambda d: load_checkpoint(_truncated(d, 0.0)), "cut.safetensors: not a valid safetensors file",
                 id="truncated-empty"),
    pytest.param(lambda d: load_checkpoint(_truncated(d, 0.1)), "cut.safetensors: not a valid safetensors file",
                 id="truncated-10%"),
    pytest.param(lambda d: load_checkpoint(_truncated(d, 0.5)), "cut.safetensors: not a valid safetensors file",
                 id="truncated-50%"),
    pytest.param(lambda d: load_checkpoint(_truncated(d, 0.99)), "cut.safetensors: not a valid safetensors file",
                 id="truncated-99%"),
    pytest.param(lambda d: load_checkpoint(_not_npz(d)), "notes.npz: not a readable .npz", id="text-file"),
    pytest.param(lambda d: load_checkpoint(_npy(d)), "array.npy: not a valid safetensors file", id="npy-file"),
    pytest.param(lambda d: load_checkpoint(_metadata(d, "v.safetensors", format="other/9")),
                 "v.safetensors: checkpoint format 'other/9'", id="safetensors-format"),
    pytest.param(lambda d: load_checkpoint(_metadata(d, "e.safetensors", epoch="three")),
                 "e.safetensors: 'epoch' must be one integer", id="safetensors-epoch"),
    pytest.param(lambda d: load_checkpoint(_metadata(d, "c.safetensors", config="{oops")),
                 "c.safetensors: corrupted config", id="safetensors-config-json"),
    pytest.param(lambda d: load_checkpoint(_metadata(d, "l.safetensors", config="[1]")),
                 "l.safetensors: config is not a JSON object", id="safetensors-config-list"),
    pytest.param(lambda d: load_checkpoint(_metadata(d, "k.safetensors", config='{"hiden": [3]}')),
                 "k.safetensors: stored config: unknown config key 'hiden'", id="safetensors-config-key"),
    pytest.param(lambda d: load_checkpoint(_metadata(d, "s.safetensors", state="[1]")),
                 "s.safetensors: state is not a JSON object", id="safetensors-state"),
    pytest.param(lambda d: load_checkpoint(_fields(d, "other.npz", format=np.asarray(7))),
                 "other.npz: checkpoint format 7", id="format-version"),
    pytest.param(lambda d: load_checkpoint(_fields(d, "cfg.npz", config_json=np.asarray("{oops"))),
                 "cfg.npz: corrupted config_json", id="config-json"),
    pytest.param(lambda d: load_checkpoint(_fields(d, "cfglist.npz", config_json=np.asarray("[1]"))),
                 "cfglist.npz: config_json is not a JSON object", id="config-not-object"),
    pytest.param(lambda d: load_checkpoint(_fields(d, "foreign.npz", **{"param.layers.0.weight": None})),
                 "foreign.npz", id="foreign-object-param"),
    pytest.param(lambda d: check_architecture(load_checkpoint(_good(d, "arch.safetensors")), [784, 5, 10]),
                 r"arch.safetensors: checkpoint does not match the architecture 784-5-10 \(it holds 784-3-10\)",
                 id="other-architecture"),
    pytest.param(lambda d: check_architecture(load_checkpoint(_good(d, "dt.safetensors")), [784, 3, 10], "float64"),
                 "dt.safetensors: .*layers.0.weight is float32, expected float64", id="other-dtype"),
    pytest.param(lambda d: load_checkpoint(_fields(d, "fmt.npz", format=np.asarray("one"))), "fmt.npz",
                 id="format-not-int"),
    pytest.param(lambda d: load_checkpoint(_fields(d, "epochs.npz", epoch=np.arange(3))), "epochs.npz",
                 id="epoch-not-scalar"),
    pytest.param(lambda d: load_checkpoint(_fields(d, "state.npz", state_json=np.asarray("[1, 2]"))),
                 "state.npz: state_json is not a JSON object", id="state-not-object"),
]


# ------------------------------------------------------------------------ the tests
@pytest.mark.parametrize("call, exc, match", ENGINE + NN_OPTIM)
def test_bad_input_is_refused_with_a_message_naming_it(call, exc, match):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way to the error either
        with pytest.raises(exc, match=match):
            call()


@pytest.mark.parametrize("call, exc, match", CONFIG)
def test_bad_config_is_refused_naming_key_value_or_file(tmp_path, call, exc, match):
    with pytest.raises(exc, match=match):
        call(tmp_path)


@pytest.mark.parametrize("call, match", CHECKPOINT)
def test_bad_checkpoint_is_refused_naming_the_file(tmp_path, call, match):
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()} if tmp_path.exists() else {}
    with pytest.raises(CheckpointError, match=match):
        call(tmp_path)
    for name, content in before.items():  # loading never modifies what was there
        assert (tmp_path / name).read_bytes() == content


def test_catalogue_size():
    assert len(ENGINE) + len(NN_OPTIM) + len(CONFIG) + len(CHECKPOINT) >= 60


# --------------------------------------------- refused input leaves the state unchanged
def test_failed_backward_changes_no_leaf_gradient():
    @defop
    def broken(x):
        return x.sum(), lambda g: np.ones(x.size + 1) * g

    x = Tensor(np.arange(3.0), requires_grad=True)
    x.grad = np.full(3, 7.0)
    y = (x * 2).sum() + broken(x)
    with pytest.raises(ValueError, match="op 'broken'"):
        y.backward()
    np.testing.assert_array_equal(x.grad, np.full(3, 7.0))
    z = (x * 2).sum()
    with pytest.raises(ValueError, match=r"\(3,\).*\(\)"):
        z.backward(np.ones(3))
    z.backward()  # the refused call did not consume the graph
    np.testing.assert_array_equal(x.grad, np.full(3, 9.0))


@pytest.mark.parametrize("bad_lr", [-1.0, float("nan"), float("inf"), "0.1"])
def test_optimizer_step_refuses_a_bad_lr_set_later_and_changes_nothing(bad_lr):
    w = Tensor(np.arange(3.0), requires_grad=True)
    for opt in (optim.SGD([w], lr=0.1), optim.SGD([w], lr=0.1, momentum=0.9), optim.Adam([w]), optim.RMSprop([w])):
        w.grad = np.ones(3)
        opt.lr = bad_lr
        with pytest.raises(ValueError, match=f"{type(opt).__name__}: lr must be .*got {re.escape(repr(bad_lr))}"):
            opt.step()
        np.testing.assert_array_equal(w.data, np.arange(3.0))
        assert opt.steps.tolist() == [0]


def test_optimizer_step_refuses_a_gradient_of_the_wrong_shape():
    w = Tensor(np.arange(3.0), requires_grad=True)
    opt = optim.Adam([("w", w)])
    w.grad = np.ones(4)
    with pytest.raises(ValueError, match=r"Adam: w has shape \(3,\) but its grad \(4,\)"):
        opt.step()
    np.testing.assert_array_equal(w.data, np.arange(3.0))
    assert opt.steps.tolist() == [0] and not opt.state["m"][0].any()


@pytest.mark.parametrize("state, match", [
    ({"layers.0.weight": np.ones((5, 3), np.float32)}, r"missing keys .*'layers.0.weight' has shape \(5, 3\)"),
    ("wrong dtype", r"'layers.0.weight' has dtype float64, expected float32"),
    ("extra key", r"unexpected keys \['layers.9.weight'\]"),
])
def test_load_state_dict_refuses_and_changes_no_parameter(state, match):
    m = MLP([4, 3, 2], seed=0)
    before = m.state_dict()
    if state == "wrong dtype":
        state = {**before, "layers.0.weight": before["layers.0.weight"].astype(np.float64)}
    elif state == "extra key":
        state = {**before, "layers.9.weight": np.ones(2)}
    state = {k: (v + 1 if isinstance(v, np.ndarray) and v.dtype == np.float32 and k != "layers.0.weight" else v)
             for k, v in state.items()}  # good entries that would change the model if applied
    with pytest.raises(ValueError, match="MLP.load_state_dict: " + match):
        m.load_state_dict(state)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_optimizer_load_state_dict_refuses_non_finite_values_and_changes_nothing():
    w = Tensor(np.ones(3), requires_grad=True)
    opt = optim.Adam([w], lr=0.01)
    state = opt.state_dict()
    with pytest.raises(ValueError, match="'m.0' holds non-finite values"):
        opt.load_state_dict({**state, "m.0": np.array([0.0, np.nan, 0.0]), "lr": np.asarray(0.5)})
    with pytest.raises(ValueError, match="'lr' holds non-finite values"):
        opt.load_state_dict({**state, "lr": np.asarray(np.inf)})
    assert opt.lr == 0.01 and not opt.state["m"][0].any()


# ------------------------------------------------ pickled objects: refused, never run
def _evil_npz(path: Path, marker: Path) -> None:
    MarkerOnUnpickle.marker = str(marker)
    evil = np.empty(1, dtype=object)
    evil[0] = MarkerOnUnpickle()
    save = {"format": np.asarray(1), "epoch": np.asarray(1), "config_json": np.asarray("{}"),
            "param.layers.0.weight": evil}
    np.savez(path, **save)
    assert not marker.exists()
    # the payload is live: unpickling it (what allow_pickle=True would do) creates the marker
    with np.load(path, allow_pickle=True) as z:
        z["param.layers.0.weight"]
    assert marker.exists()
    marker.unlink()


def test_a_checkpoint_carrying_a_pickled_object_is_refused_and_runs_no_code(tmp_path, capsys):
    path, marker = tmp_path / "evil.npz", tmp_path / "MARKER"
    _evil_npz(path, marker)
    with pytest.raises(CheckpointError, match=r"evil.npz: member .* holds Python objects.*allow_pickle=False"):
        load_checkpoint(path)
    assert evaluate.main([str(path)]) == 2
    assert "evil.npz" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.npz").write_bytes(path.read_bytes())
    assert train.main(["--resume", "--out", str(run), "--quiet", "--no-plots"]) == 2
    assert "checkpoint.npz: member 'param.layers.0.weight.npy' holds Python objects" in capsys.readouterr().err
    assert not marker.exists()


def test_a_plain_pickle_named_npz_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "MARKER"
    MarkerOnUnpickle.marker = str(marker)
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(pickle.dumps({"param.x": MarkerOnUnpickle()}))
    with pytest.raises(CheckpointError, match="checkpoint.npz: not a readable .npz"):
        load_checkpoint(path)
    assert not marker.exists()


# ------------------------------------------- NaN and Inf in data: accepted, as in NumPy
def test_nan_and_inf_in_data_are_accepted_and_propagate():
    raw = np.array([[np.nan, np.inf, -np.inf, 1.0]])
    x = Tensor(raw, requires_grad=True)
    np.testing.assert_array_equal(x.data, raw)
    with np.errstate(invalid="ignore"):
        y = (x * 2 + 1).sum()
        y.backward()
    assert np.isnan(y.item())
    np.testing.assert_array_equal(x.grad, np.full((1, 4), 2.0))  # the gradient of x*2+1 does not depend on x
    assert Tensor([float("nan")]).dtype == np.float32


def test_nan_in_a_model_input_is_accepted():
    m = MLP([4, 3, 2], seed=0)
    with np.errstate(invalid="ignore"):
        out = m(np.array([[np.nan, 0, 0, 0], [1.0, 2, 3, 4]], np.float32))
    assert out.shape == (2, 2) and np.isnan(out.data[0]).all() and np.isfinite(out.data[1]).all()


# ------------------------------------------------------------ anomaly mode catalogue
def _under_anomaly(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with tg.detect_anomaly():
            return fn()


HERE = re.escape(Path(__file__).name) + r":\d+"


@pytest.mark.parametrize("fn, match", [
    pytest.param(lambda: Tensor(np.array([-1.0]), requires_grad=True).log(), rf"op 'log' produced NaN.*{HERE}",
                 id="forward-log-nan"),
    pytest.param(lambda: Tensor(np.array([1000.0])).exp(), rf"op 'exp' produced Inf.*shape \(1,\).*{HERE}",
                 id="forward-exp-inf"),
    pytest.param(lambda: Tensor(np.array([1.0])) / 0.0, rf"op 'div' produced Inf.*{HERE}", id="forward-div-inf"),
    pytest.param(lambda: (Tensor(np.array([0.0]), requires_grad=True).sqrt()).sum().backward(),
                 rf"backward of op 'sqrt' produced Inf in the gradient of its argument 0.*{HERE}",
                 id="backward-sqrt-inf"),
    pytest.param(lambda: (Tensor(np.array([-2.0])) ** Tensor(np.array([2.0]), requires_grad=True)).sum().backward(),
                 rf"backward of op 'pow' produced NaN in the gradient of its argument 1.*{HERE}",
                 id="backward-pow-nan"),
    pytest.param(lambda: tg.log(Tensor(np.array([0.0]), requires_grad=True) * 1.0),
                 rf"op 'log' produced Inf.*{HERE}", id="forward-log-zero"),
])
def test_anomaly_mode_names_the_op_and_the_line(fn, match):
    with pytest.raises(tg.AnomalyError, match=match):
        _under_anomaly(fn)


# --------------------------------------------------------------- models.compare CLI
def _compare_file(d: Path, kind: str) -> str:
    path = d / f"{kind}.npz"
    good = {"layers.0.weight": np.ones((4, 3)), "layers.0.bias": np.ones(3)}
    if kind == "truncated":
        np.savez(d / "whole.npz", **good)
        path.write_bytes((d / "whole.npz").read_bytes()[:100])
    elif kind == "text":
        path.write_text("not an npz")
    elif kind == "object":
        o = np.empty(1, dtype=object)
        o[0] = {"a": 1}
        np.savez(path, **{**good, "layers.0.weight": o})
    elif kind == "flat-weight":
        np.savez(path, **{**good, "layers.0.weight": np.ones(4)})
    elif kind == "bad-json":
        np.savez(path, **{f"param.{k}": v for k, v in good.items()}, config_json=np.asarray("{oops"))
    return str(path)


@pytest.mark.parametrize("kind, args, message", [
    pytest.param(None, ["--sizes", "4.5", "3"], "--sizes expects integers, got '4.5 3'", id="sizes-float"),
    pytest.param(None, ["--sizes", "4", "3", "--tol", "nan"], "tol must be a finite number > 0, got nan", id="tol-nan"),
    pytest.param(None, ["--sizes", "4", "3", "--tol", "-1"], "tol must be a finite number > 0, got -1.0",
                 id="tol-negative"),
    pytest.param(None, ["--sizes", "4", "3", "--steps", "2", "--lr", "inf"],
                 "'lr' must be a finite number >= 0, got inf", id="lr-inf"),
    pytest.param("truncated", [], r"truncated.npz: not a readable .npz.*BadZipFile", id="checkpoint-truncated"),
    pytest.param("text", [], r"text.npz: not a readable .npz.*BadZipFile", id="checkpoint-text"),
    pytest.param("object", [], r"object.npz: member .* holds Python objects.*allow_pickle=False",
                 id="checkpoint-object"),
    pytest.param("flat-weight", [], r"flat-weight.npz: holds no MLP parameters", id="checkpoint-1d-weight"),
    pytest.param("bad-json", [], r"bad-json.npz: not a tinygrad_lite checkpoint \(missing format, epoch\)",
                 id="checkpoint-bad-json"),
    pytest.param("missing", [], r"checkpoint .*missing.npz does not exist", id="checkpoint-missing"),
])
def test_compare_cli_names_the_bad_argument_or_file(tmp_path, capsys, kind, args, message):
    from models import compare

    if kind is not None:
        args = ["--checkpoint", _compare_file(tmp_path, kind), *args]
    assert compare.main(["--batch", "4", *args]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_compare_cli_takes_a_batch_of_a_real_dataset(capsys):
    from models import compare

    assert compare.main(["--sizes", "784", "10", "--dataset", "digits", "--batch", "4"]) == 0
    assert "first 4 training examples of digits" in capsys.readouterr().out


# ------------------------------------------------------- models.train --resume refusals
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    assert train.main(["--hidden", "8", "--epochs", "1", "--val-fraction", "0", "--threads", "1", "--quiet",
                       "--no-plots", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("damage, args, message", [
    pytest.param("truncate", [], r"checkpoint.safetensors: not a valid safetensors file", id="truncated"),
    pytest.param("text", [], r"checkpoint.safetensors: not a valid safetensors file", id="not-safetensors"),
    pytest.param("bomb-header", [], r"checkpoint.safetensors: not a valid safetensors file: declares a "
                                    r"1099511627776-byte header", id="oversized-header"),
    pytest.param("weights-only", [], r"--resume: .*checkpoint.safetensors holds no training state \(optimizer "
                                     r"state, step, model_rng, train_rng missing\)", id="public-api-checkpoint"),
    pytest.param(None, ["--hidden", "16"], r"checkpoint.safetensors: checkpoint does not match the architecture "
                                            r"784-16-10 \(it holds 784-8-10\)", id="other-architecture"),
    pytest.param(None, ["--dtype", "float64"], r"checkpoint.safetensors: .*is float32, expected float64",
                 id="other-dtype"),
    pytest.param(None, ["--optimizer", "sgd"], r"checkpoint.safetensors: optimizer state does not fit optimizer "
                                                r"'sgd'", id="other-optimizer"),
])
def test_resume_refuses_a_bad_checkpoint_and_leaves_the_run_alone(finished_run, tmp_path, capsys, damage, args,
                                                                  message):
    out = tmp_path / "r"
    out.mkdir()
    for f in finished_run.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    ckpt = out / "checkpoint.safetensors"
    if damage == "truncate":
        ckpt.write_bytes(ckpt.read_bytes()[:-200])
    elif damage == "text":
        ckpt.write_text("epoch = 3\n")
    elif damage == "bomb-header":
        ckpt.write_bytes((1 << 40).to_bytes(8, "little") + b"{}")
    elif damage == "weights-only":  # what the public API writes: weights and config, no training state
        c = load_checkpoint(ckpt)
        save_checkpoint(ckpt, c.params, None, c.epoch, c.config)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    assert train.main(["--resume", "--out", str(out), "--epochs", "2", "--quiet", "--no-plots", *args]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no staging folder or lock left beside it

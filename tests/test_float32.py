"""Float32 in, float32 out, at every order: a walk over every op the library exports.

Each case calls one public op (``tinygrad_lite.<op>``, ``ops.<op>``, ``nn.<function>``, a NumPy
function on Tensors, a ``func`` transform) on float32 Tensors and checks that

* every float result is float32 (integer, bool and Python results only for the cases in
  ``NOT_FLOAT``, each with its reason);
* every node of the recorded graph is float32, and each VJP, called on a float32 cotangent,
  returns float32 (the engine casts a gradient to its input's dtype, which would hide a VJP
  that computes in float64);
* the gradients after ``backward()`` are float32, and so are the gradients of the gradient
  (``grad(..., create_graph=True)``, then ``backward()`` again), every node of both gradient
  graphs included.

The same walk in float64 checks that nothing is downcast. The lists are discovered, never
written out: every exported function needs a case (or a reason in ``NOT_OPS``), so does every
entry of ``numpy_api.supported()``, every op made with ``defop`` anywhere in the package must
be reached (forward, or in a gradient's graph), every exported ``nn.Module`` and ``Optimizer``
needs a case: a new one without fails a ``test_every_*`` test that names it.

Scalars and 0-d operands follow PyTorch where NumPy 2 (NEP 50) differs:

* Python numbers never change a float tensor's dtype (``t * 2.0``, ``t + 1``; NumPy agrees);
* NumPy scalars count as numbers: ``t * np.float64(2)``, ``t + np.int64(1)`` stay float32
  (NumPy 2 promotes to float64: its scalars are strongly typed);
* 0-d operands (arrays or Tensors) and integer arrays do not promote a dimensioned float
  operand: ``t * np.array(2.0)``, ``t * Tensor(np.array(2.0))``, ``t * np.arange(3)`` stay
  float32 (NumPy 2: float64);
* dimensioned float operands promote as in both: float32 with float64 gives float64.

The second and third need the engine to convert operands (``graph._operand`` and ``defop``);
until it does, their tests are strict xfails. Numeric options given as NumPy scalars
(``alpha=np.float64(0.5)``, a ``correction``, clip bounds) keep float32: cases ``[np.float64 …]``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import Tensor, func, nn, ops, optim
from tinygrad_lite.graph import OpRecord, defop
from tinygrad_lite.nn import functional as F
from tinygrad_lite.nn import losses

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
DTYPES = [pytest.param(F32, id="float32"), pytest.param(F64, id="float64")]


# ----------------------------------------------------------------------------- the cases
class In(NamedTuple):
    """A float input: its shape and the interval its values are drawn from."""

    shape: tuple[int, ...]
    low: float = -2.0
    high: float = 2.0


class Case(NamedTuple):
    fn: Callable[..., Any]
    inputs: tuple[In, ...]
    twice: bool = True  # differentiable twice: the gradient of the gradient is checked


def C(fn: Callable[..., Any], *inputs: Any, low: float = -2.0, high: float = 2.0, twice: bool = True) -> Case:
    """A case: ``fn`` of Tensors made from ``inputs`` (shapes or `In`; one (2, 3) input by default)."""
    ins = tuple(i if isinstance(i, In) else In(tuple(i), low, high) for i in inputs) or (In((2, 3), low, high),)
    return Case(fn, ins, twice)


def _mask(x: Any) -> np.ndarray:
    return (x.data if isinstance(x, Tensor) else np.asarray(x)) > 0


f64 = np.float64
GATHER = np.array([[0, 2, 1], [2, 2, 0]])  # for (2, 3) inputs along dim 1
SCATTER = np.array([[2, 0], [1, 2]])  # distinct within each row
REPEATED = np.array([[0, 0], [2, 1]])  # a repeated index: reductions meet
NCHW, IMAGE = (1, 2, 4, 4), In((1, 2, 4, 4))

TG_CASES: dict[str, Case] = {
    # basic: arithmetic, elementwise, reductions, shapes
    "tg.absolute": C(tg.absolute),
    "tg.add": C(tg.add, (2, 3), (3,)),
    "tg.argmax": C(lambda x: tg.argmax(x, axis=1)),
    "tg.argmin": C(lambda x: tg.argmin(x, axis=1)),
    "tg.astype": C(lambda x: tg.astype(x, dtype=x.dtype)),
    "tg.broadcast_to": C(lambda x: tg.broadcast_to(x, shape=(2, 2, 3))),
    "tg.clip": C(lambda x: tg.clip(x, low=-1.0, high=1.0)),
    "tg.clip[np.float64 bounds]": C(lambda x: tg.clip(x, low=f64(-1.0), high=f64(1.0))),
    "tg.clip[0-d float64 bounds]": C(lambda x: tg.clip(x, low=np.array(-1.0), high=np.array(1.0))),
    "tg.concatenate": C(lambda a, b: tg.concatenate([a, b], axis=0), (2, 3), (1, 3)),
    "tg.copy": C(tg.copy),
    "tg.eq": C(tg.eq, (2, 3), (3,)),
    "tg.ne": C(tg.ne, (2, 3), (3,)),
    "tg.lt": C(tg.lt, (2, 3), (3,)),
    "tg.le": C(tg.le, (2, 3), (3,)),
    "tg.gt": C(tg.gt, (2, 3), (3,)),
    "tg.ge": C(tg.ge, (2, 3), (3,)),
    "tg.exp": C(tg.exp),
    "tg.expm1": C(tg.expm1),
    "tg.log": C(tg.log, low=0.2, high=3.0),
    "tg.log1p": C(tg.log1p, low=-0.5, high=2.0),
    "ops.getitem": C(lambda x: x[:, np.array([0, 2, 2])]),
    "ops.getitem[basic]": C(lambda x: x[1:, ::2]),
    "ops.index_add": C(lambda g: ops.index_add(g, index=(np.array([0, 1, 0]),), shape=(2, 3)), (3, 3)),
    "tg.linear": C(tg.linear, (4, 3), (3, 2), (2,)),
    "tg.linear[batched]": C(tg.linear, (2, 4, 3), (3, 2), (2,)),
    "tg.log_softmax": C(lambda x: tg.log_softmax(x, axis=1)),
    "tg.logsumexp": C(lambda x: tg.logsumexp(x, axis=1)),
    "tg.matmul": C(tg.matmul, (2, 3), (3, 4)),
    "tg.matmul[batched]": C(tg.matmul, (2, 2, 3), (3, 2)),
    "tg.matmul[vector @ matrix]": C(tg.matmul, (3,), (3, 2)),
    "tg.matmul[matrix @ vector]": C(tg.matmul, (2, 3), (3,)),
    "tg.matmul[vector @ vector]": C(tg.matmul, (3,), (3,)),
    "tg.max": C(lambda x: tg.max(x, axis=1)),
    "tg.min": C(lambda x: tg.min(x)),
    "tg.maximum": C(tg.maximum, (2, 3), (3,)),
    "tg.minimum": C(tg.minimum, (2, 3), (3,)),
    "tg.mean": C(lambda x: tg.mean(x, axis=0)),
    "tg.mul": C(tg.mul, (2, 3), (3,)),
    "tg.neg": C(tg.neg),
    "tg.power": C(tg.power, In((2, 3), 0.5, 2.0), In((3,), -1.5, 1.5)),
    "tg.power[int exponent]": C(lambda x: x**3),
    "tg.power[square]": C(lambda x: x**2),
    "tg.power[number ** x]": C(lambda x: 2.0**x),
    "tg.relu": C(tg.relu),
    "tg.reshape": C(lambda x: tg.reshape(x, shape=(3, 2))),
    "tg.sigmoid": C(tg.sigmoid),
    "tg.sign": C(tg.sign),
    "tg.softmax": C(lambda x: tg.softmax(x, axis=0)),
    "tg.sqrt": C(tg.sqrt, low=0.2, high=3.0),
    "tg.stack": C(lambda a, b: tg.stack([a, b], axis=1), (2, 3), (2, 3)),
    "tg.sub": C(tg.sub, (2, 3), (3,)),
    "tg.sum": C(lambda x: tg.sum(x, axis=1, keepdims=True)),
    "tg.tanh": C(tg.tanh),
    "tg.transpose": C(lambda x: tg.transpose(x, axes=(1, 0))),
    "tg.where": C(lambda a, b: tg.where(_mask(a), a, b), (2, 3), (3,)),
    "tg.where[number]": C(lambda a: tg.where(_mask(a), a, 0.5)),
    # convolutions and pooling
    "tg.conv1d": C(lambda x, w, b: tg.conv1d(x, w, b, padding=1), (2, 2, 5), (3, 2, 3), (3,)),
    "tg.conv2d": C(lambda x, w, b: tg.conv2d(x, w, b, padding=1), NCHW, (3, 2, 3, 3), (3,)),
    "tg.conv2d[strided, grouped]": C(lambda x, w: tg.conv2d(x, w, stride=2, groups=2), NCHW, (2, 1, 2, 2)),
    "tg.conv2d_weight": C(lambda x, g: tg.conv2d_weight(x, g, kernel_size=3, padding=1), NCHW, (1, 3, 4, 4)),
    "tg.conv_transpose2d": C(lambda x, w, b: tg.conv_transpose2d(x, w, b, stride=2), (1, 2, 2, 2), (2, 3, 2, 2),
                             (3,)),
    "tg.max_pool2d": C(lambda x: tg.max_pool2d(x, kernel_size=2), IMAGE),
    "tg.max_pool2d[overlapping, padded]": C(lambda x: tg.max_pool2d(x, kernel_size=3, stride=1, padding=1), IMAGE),
    "tg.avg_pool2d": C(lambda x: tg.avg_pool2d(x, kernel_size=2), IMAGE),
    "tg.avg_pool2d[padded, count_include_pad=False]": C(
        lambda x: tg.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False), IMAGE),
    "tg.avg_pool2d[np.int64 divisor]": C(lambda x: tg.avg_pool2d(x, kernel_size=2, divisor_override=np.int64(3)),
                                         IMAGE),
    "tg.adaptive_avg_pool2d": C(lambda x: tg.adaptive_avg_pool2d(x, output_size=(3, 2)), IMAGE),
    "tg.interpolate": C(lambda x: tg.interpolate(x, size=(6, 5)), IMAGE),
    "tg.interpolate[nearest-exact]": C(lambda x: tg.interpolate(x, scale_factor=1.5, mode="nearest-exact"), IMAGE),
    "tg.interpolate[bilinear]": C(lambda x: tg.interpolate(x, size=(6, 3), mode="bilinear"), IMAGE),
    "tg.interpolate[bilinear, align_corners]": C(
        lambda x: tg.interpolate(x, scale_factor=f64(2.0), mode="bilinear", align_corners=True), IMAGE),
    "tg.interpolate[area]": C(lambda x: tg.interpolate(x, size=(3, 2), mode="area"), IMAGE),
    # elementwise
    "tg.acos": C(tg.acos, low=-0.9, high=0.9),
    "tg.asin": C(tg.asin, low=-0.9, high=0.9),
    "tg.atan": C(tg.atan),
    "tg.atan2": C(tg.atan2, (2, 3), In((3,), 0.5, 2.0)),
    "tg.ceil": C(tg.ceil),
    "tg.copysign": C(tg.copysign, (2, 3), (3,)),
    "tg.cos": C(tg.cos),
    "tg.cosh": C(tg.cosh),
    "tg.div": C(tg.div, (2, 3), In((3,), 0.5, 2.0)),
    "tg.div[trunc]": C(lambda a, b: tg.div(a, b, rounding_mode="trunc"), (2, 3), In((3,), 0.5, 2.0)),
    "tg.div[number / x]": C(lambda x: 1 / x, low=0.5, high=2.0),
    "tg.floor_divide": C(tg.floor_divide, (2, 3), In((3,), 0.5, 2.0)),
    "tg.erf": C(tg.erf),
    "tg.erfc": C(tg.erfc),
    "tg.floor": C(tg.floor),
    "tg.fmod": C(tg.fmod, (2, 3), In((3,), 0.5, 2.0)),
    "tg.remainder": C(tg.remainder, (2, 3), In((3,), 0.5, 2.0)),
    "tg.log2": C(tg.log2, low=0.2, high=3.0),
    "tg.round": C(tg.round),
    "tg.round[decimals]": C(lambda x: tg.round(x, decimals=np.int64(2))),
    "tg.round[negative decimals]": C(lambda x: tg.round(x * 100, decimals=-1)),
    "tg.rsqrt": C(tg.rsqrt, low=0.2, high=3.0),
    "tg.sin": C(tg.sin),
    "tg.sinh": C(tg.sinh),
    "tg.square": C(tg.square),
    "tg.tan": C(tg.tan, low=-1.0, high=1.0),
    "tg.trunc": C(tg.trunc),
    "tg.to": C(lambda x: tg.to(x, x.dtype)),
    "tg.isclose": C(tg.isclose, (2, 3), (3,)),
    "tg.isfinite": C(tg.isfinite),
    "tg.isinf": C(tg.isinf),
    "tg.isnan": C(tg.isnan),
    "tg.allclose": C(tg.allclose, (2, 3), (3,)),
    "tg.equal": C(tg.equal, (2, 3), (2, 3)),
    # activations
    "tg.celu": C(tg.celu),
    "tg.celu[np.float64 alpha]": C(lambda x: tg.celu(x, alpha=f64(0.5))),
    "tg.elu": C(tg.elu),
    "tg.elu[np.float64 alpha]": C(lambda x: tg.elu(x, alpha=f64(0.5))),
    "tg.gelu": C(tg.gelu),
    "tg.gelu[tanh]": C(lambda x: tg.gelu(x, approximate="tanh")),
    "tg.hardsigmoid": C(tg.hardsigmoid, low=-4.0, high=4.0),
    "tg.hardswish": C(tg.hardswish, low=-4.0, high=4.0),
    "tg.hardtanh": C(tg.hardtanh),
    "tg.hardtanh[np.float64 bounds]": C(lambda x: tg.hardtanh(x, min_val=f64(-0.5), max_val=f64(0.5))),
    "tg.leaky_relu": C(tg.leaky_relu),
    "tg.leaky_relu[np.float64 slope]": C(lambda x: tg.leaky_relu(x, negative_slope=f64(0.2))),
    "tg.logsigmoid": C(tg.logsigmoid),
    "tg.mish": C(tg.mish),
    "tg.relu6": C(tg.relu6, low=-2.0, high=8.0),
    "tg.selu": C(tg.selu),
    "tg.silu": C(tg.silu),
    "tg.softplus": C(tg.softplus),
    "tg.softplus[np.float64 beta, threshold]": C(lambda x: tg.softplus(x, beta=f64(2.0), threshold=f64(3.0))),
    "tg.softsign": C(tg.softsign),
    # gather and scatter
    "tg.gather": C(lambda x: tg.gather(x, 1, GATHER)),
    "tg.index_select": C(lambda x: tg.index_select(x, 1, np.array([2, 0, 2]))),
    "tg.scatter": C(lambda x, s: tg.scatter(x, 1, SCATTER, s), (2, 3), (2, 3)),
    "tg.scatter[np.float64 number]": C(lambda x: tg.scatter(x, 1, SCATTER, f64(0.5))),
    "tg.scatter_add": C(lambda x, s: tg.scatter_add(x, 1, REPEATED, s), (2, 3), (2, 2)),
    "tg.scatter_reduce[sum]": C(lambda x, s: tg.scatter_reduce(x, 1, REPEATED, s, "sum"), (2, 3), (2, 2)),
    "tg.scatter_reduce[prod]": C(lambda x, s: tg.scatter_reduce(x, 1, REPEATED, s, "prod"), (2, 3), (2, 2)),
    "tg.scatter_reduce[mean]": C(lambda x, s: tg.scatter_reduce(x, 1, REPEATED, s, "mean"), (2, 3), (2, 2)),
    "tg.scatter_reduce[amax]": C(lambda x, s: tg.scatter_reduce(x, 1, REPEATED, s, "amax"), (2, 3), (2, 2)),
    "tg.scatter_reduce[amin, not include_self]": C(
        lambda x, s: tg.scatter_reduce(x, 1, REPEATED, s, "amin", include_self=False), (2, 3), (2, 2)),
    "tg.take_along_axis": C(lambda x: tg.take_along_axis(x, np.array([[2], [0]]), 1)),
    "tg.take_along_dim": C(lambda x: tg.take_along_dim(x, np.array([5, 0, 3]))),
    # reductions, scans, sorting
    "tg.amax": C(lambda x: tg.amax(x, axis=1)),
    "tg.amin": C(lambda x: tg.amin(x, dim=0, keepdim=True)),
    "tg.argsort": C(lambda x: tg.argsort(x, dim=1)),
    "tg.cummax": C(lambda x: tg.cummax(x, 1)),
    "tg.cummin": C(lambda x: tg.cummin(x, 0)),
    "tg.cumprod": C(lambda x: tg.cumprod(x, axis=1)),
    "tg.cumsum": C(lambda x: tg.cumsum(x, axis=1)),
    "tg.logcumsumexp": C(lambda x: tg.logcumsumexp(x, dim=1)),
    "tg.max_dim": C(lambda x: tg.max_dim(x, 1)),
    "tg.min_dim": C(lambda x: tg.min_dim(x, 0, keepdim=True)),
    "tg.norm": C(lambda x: tg.norm(x, dim=1)),
    "tg.norm[p=1]": C(lambda x: tg.norm(x, p=1)),
    "tg.norm[p=inf]": C(lambda x: tg.norm(x, p=np.inf, dim=1)),
    "tg.norm[p=0]": C(lambda x: tg.norm(x, p=0)),
    "tg.norm[np.float64 p=3]": C(lambda x: tg.norm(x, p=f64(3.0), dim=0)),
    "tg.prod": C(lambda x: tg.prod(x, axis=1)),
    "tg.sort": C(lambda x: tg.sort(x, 1)),
    "tg.std": C(lambda x: tg.std(x, dim=1)),
    "tg.std[np.float64 correction]": C(lambda x: tg.std(x, correction=f64(1.0))),
    "tg.topk": C(lambda x: tg.topk(x, 2, dim=1)),
    "tg.var": C(lambda x: tg.var(x, axis=0)),
    "tg.var[np.int64 ddof]": C(lambda x: tg.var(x, axis=1, ddof=np.int64(1))),
    "tg.var[np.float64 correction]": C(lambda x: tg.var(x, correction=f64(1.0))),
    # shape
    "tg.chunk": C(lambda x: tg.chunk(x, 2, 1)),
    "tg.diagonal": C(lambda x: tg.diagonal(x, 1), (3, 3)),
    "tg.diagonal_scatter": C(lambda x, s: tg.diagonal_scatter(x, s), (3, 3), (3,)),
    "tg.expand": C(lambda x: tg.expand(x, 2, 3), (1, 3)),
    "tg.flatten": C(lambda x: tg.flatten(x), (2, 1, 3)),
    "tg.flip": C(lambda x: tg.flip(x, 1)),
    "tg.movedim": C(lambda x: tg.movedim(x, 0, 2), (2, 3, 1)),
    "tg.narrow": C(lambda x: tg.narrow(x, 1, 1, 2)),
    "tg.pad": C(lambda x: tg.pad(x, (1, 2), value=0.5)),
    "tg.pad[np.float64 value]": C(lambda x: tg.pad(x, (1, 1, 0, 1), value=f64(0.5))),
    "tg.pad[reflect]": C(lambda x: tg.pad(x, (2, 1), mode="reflect")),
    "tg.pad[replicate]": C(lambda x: tg.pad(x, (1, 2), mode="replicate")),
    "tg.pad[circular]": C(lambda x: tg.pad(x, (1, 1, 1, 0), mode="circular")),
    "tg.permute": C(lambda x: tg.permute(x, 1, 0)),
    "tg.repeat": C(lambda x: tg.repeat(x, 2, 1, 2)),
    "tg.repeat_interleave": C(lambda x: tg.repeat_interleave(x, np.array([1, 0, 2]), 1)),
    "tg.roll": C(lambda x: tg.roll(x, 1, 1)),
    "tg.split": C(lambda x: tg.split(x, [1, 2], 1)),
    "tg.squeeze": C(lambda x: tg.squeeze(x), (2, 1, 3)),
    "tg.tile": C(lambda x: tg.tile(x, (2,))),
    "tg.tril": C(lambda x: tg.tril(x), (3, 3)),
    "tg.triu": C(lambda x: tg.triu(x, 1), (3, 3)),
    "tg.unsqueeze": C(lambda x: tg.unsqueeze(x, 1)),
    "tg.view": C(lambda x: tg.view(x, 3, -1)),
    # einsum
    "tg.einsum": C(lambda a, b: tg.einsum("ij,jk->ik", a, b), (2, 3), (3, 4)),
    "tg.einsum[diagonal]": C(lambda x: tg.einsum("ii->i", x), (3, 3)),
    "tg.einsum[summed, broadcast]": C(lambda a, b: tg.einsum("...ij,j->...", a, b), (2, 2, 3), (3,)),
}


def _log_probs(x: Tensor) -> Tensor:
    return tg.log_softmax(x, axis=1)


def _probs(dtype: Any) -> np.ndarray:
    p = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]])
    return p.astype(dtype)


LABELS = np.array([0, 2, 1, 2])
WEIGHT = np.array([0.5, 1.0, 2.0])  # float64 class weights: cast to the input's dtype
LOGITS, UNIT = In((4, 3)), In((4, 3), 0.05, 0.95)


def _grad_after(clip: Callable[[list[Tensor]], Any]) -> Callable[[Tensor], np.ndarray]:
    """A parameter's gradient after ``clip([p])`` (clip_grad_*_ change gradients in place)."""
    def fn(x: Tensor) -> np.ndarray:
        p = Tensor(x.detach().numpy().copy(), requires_grad=True)
        (p * p * 3.0).sum().backward()
        clip([p])
        return p.grad

    return fn


def _masked(x: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    return keep, nn.dropout(x, keep=keep)


NN_CASES: dict[str, Case] = {
    "nn.cross_entropy": C(lambda x: nn.cross_entropy(x, LABELS), LOGITS),
    "nn.cross_entropy[probabilities]": C(lambda x: nn.cross_entropy(x, _probs(x.dtype), reduction="sum"), LOGITS),
    "nn.cross_entropy[float64 probabilities]": C(lambda x: nn.cross_entropy(x, _probs(F64)), LOGITS),
    "nn.cross_entropy[weight, smoothing]": C(
        lambda x: nn.cross_entropy(x, LABELS, weight=WEIGHT, label_smoothing=f64(0.1)), LOGITS),
    "nn.cross_entropy[ignore_index, none]": C(
        lambda x: nn.cross_entropy(x, np.array([0, -1, 1, 2]), ignore_index=-1, reduction="none"), LOGITS),
    "nn.cross_entropy[(N, C, d)]": C(lambda x: nn.cross_entropy(x, np.array([[0, 2], [1, 1]])), (2, 3, 2)),
    "nn.nll_loss": C(lambda x: nn.nll_loss(_log_probs(x), LABELS), LOGITS),
    "nn.nll_loss[probabilities, none]": C(lambda x: nn.nll_loss(_log_probs(x), _probs(x.dtype), reduction="none"),
                                          LOGITS),
    "nn.nll_loss[weight]": C(lambda x: nn.nll_loss(_log_probs(x), LABELS, weight=WEIGHT), LOGITS),
    "nn.dropout": C(lambda x: nn.dropout(x, keep=np.array([2.0, 0.0, 2.0], dtype=x.dtype))),
    "nn.dropout_mask": C(lambda x: _masked(x, F.dropout_mask(shape=x.shape, p=f64(0.25), rng=np.random.default_rng(0),
                                                             dtype=x.dtype))),
    "nn.mse_loss": C(nn.mse_loss, (2, 3), (2, 3)),
    "nn.mse_loss[integer target]": C(lambda x: nn.mse_loss(x, np.array([[1, 0, 2], [0, 1, 1]]), reduction="sum")),
    "nn.l1_loss": C(nn.l1_loss, (2, 3), (2, 3)),
    "nn.huber_loss": C(lambda x, t: nn.huber_loss(x, t, delta=f64(0.5)), (2, 3), (2, 3)),
    "nn.smooth_l1_loss": C(lambda x, t: nn.smooth_l1_loss(x, t, beta=f64(0.5), reduction="none"), (2, 3), (2, 3)),
    "nn.smooth_l1_loss[beta=0]": C(lambda x, t: nn.smooth_l1_loss(x, t, beta=0.0), (2, 3), (2, 3)),
    "nn.binary_cross_entropy": C(lambda x, t: nn.binary_cross_entropy(x, t, weight=WEIGHT), UNIT, UNIT),
    "nn.binary_cross_entropy_with_logits": C(
        lambda x, t: nn.binary_cross_entropy_with_logits(x, t, weight=WEIGHT, pos_weight=WEIGHT), LOGITS, UNIT),
    "nn.kl_div": C(lambda x: nn.kl_div(_log_probs(x), _probs(x.dtype), reduction="batchmean"), LOGITS),
    "nn.kl_div[log_target]": C(lambda x, t: nn.kl_div(_log_probs(x), _log_probs(t), log_target=True), LOGITS,
                               LOGITS),
    "nn.embedding": C(lambda w: nn.embedding(np.array([[0, 3], [3, 1]]), w, padding_idx=1), (4, 2)),
    "nn.normalize": C(lambda x: nn.normalize(x, axis=(0,))),
    "nn.layer_norm": C(lambda x, w, b: nn.layer_norm(x, (3,), w, b), (2, 3), (3,), (3,)),
    "nn.group_norm": C(lambda x, w, b: nn.group_norm(x, 2, w, b), (2, 4, 3), (4,), (4,)),
    "nn.init_weight": C(lambda x: nn.init_weight("he_normal", 3, 2, 0, dtype=x.dtype)),
    "nn.fan_in_uniform": C(lambda x: nn.fan_in_uniform((2, 3), 6, 0, dtype=x.dtype)),
    "nn.clip_grad_norm_": C(_grad_after(lambda ps: nn.clip_grad_norm_(ps, f64(0.5)))),
    "nn.clip_grad_value_": C(_grad_after(lambda ps: nn.clip_grad_value_(ps, f64(0.5)))),
}


def _cube_sum(x: Any) -> Tensor:
    return (x * x * x).sum()


def _compiled_steps(x: Tensor) -> list[Any]:
    """A training step compiled with tg.compile, traced twice then replayed: its losses, the parameters
    and the optimizer's state after the steps."""
    model = nn.Linear(3, 2, rng=0, dtype=x.dtype)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=f64(0.9))

    @tg.compile
    def step(a: np.ndarray) -> Tensor:
        opt.zero_grad()
        loss = (model(a) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    data = x.detach().numpy()
    losses = [step(data).detach() for _ in range(3)]  # their graphs are spent by the step's backward
    return [*losses, *(p.detach() for p in model.parameters()), *opt.state["momentum_buffer"]]


FUNC_CASES: dict[str, Case] = {  # outermost a transform returns arrays; given a Tensor that requires grad, Tensors
    "func.grad": C(lambda x: func.grad(_cube_sum)(x)),
    "func.grad[arrays]": C(lambda x: func.grad(_cube_sum)(x.detach().numpy())),
    "func.value_and_grad": C(lambda x: func.value_and_grad(_cube_sum)(x)),
    "func.vjp": C(lambda x, v: func.vjp(tg.tanh, x)[1](v), (2, 3), (2, 3)),
    "func.jvp": C(lambda x, t: func.jvp(tg.tanh, (x,), (t,)), (2, 3), (2, 3)),
    "func.jacobian": C(lambda x: func.jacobian(tg.tanh)(x), (3,)),
    "func.hessian": C(lambda x: func.hessian(_cube_sum)(x.detach().numpy()), (3,)),
    "func.hvp": C(lambda x, v: func.hvp(_cube_sum, (x,), (v,)), (3,), (3,)),
    "tg.compile": C(_compiled_steps, (4, 3)),
}

NP_CASES: dict[str, Case] = {  # NumPy functions on Tensors (numpy_api.supported())
    "numpy.absolute": C(np.absolute),
    "numpy.fabs": C(np.fabs),
    "numpy.add": C(np.add, (2, 3), (3,)),
    "numpy.subtract": C(np.subtract, (2, 3), (3,)),
    "numpy.multiply": C(np.multiply, (2, 3), (3,)),
    "numpy.divide": C(np.divide, (2, 3), In((3,), 0.5, 2.0)),
    "numpy.power": C(np.power, In((2, 3), 0.5, 2.0), (3,)),
    "numpy.float_power": C(np.float_power, In((2, 3), 0.5, 2.0), (3,)),
    "numpy.negative": C(np.negative),
    "numpy.positive": C(np.positive),
    "numpy.exp": C(np.exp),
    "numpy.expm1": C(np.expm1),
    "numpy.log": C(np.log, low=0.2, high=3.0),
    "numpy.log1p": C(np.log1p, low=-0.5, high=2.0),
    "numpy.log2": C(np.log2, low=0.2, high=3.0),
    "numpy.sqrt": C(np.sqrt, low=0.2, high=3.0),
    "numpy.square": C(np.square),
    "numpy.reciprocal": C(np.reciprocal, low=0.5, high=2.0),
    "numpy.sign": C(np.sign),
    "numpy.tanh": C(np.tanh),
    "numpy.sin": C(np.sin),
    "numpy.cos": C(np.cos),
    "numpy.tan": C(np.tan, low=-1.0, high=1.0),
    "numpy.arcsin": C(np.arcsin, low=-0.9, high=0.9),
    "numpy.arccos": C(np.arccos, low=-0.9, high=0.9),
    "numpy.arctan": C(np.arctan),
    "numpy.arctan2": C(np.arctan2, (2, 3), In((3,), 0.5, 2.0)),
    "numpy.sinh": C(np.sinh),
    "numpy.cosh": C(np.cosh),
    "numpy.floor": C(np.floor),
    "numpy.ceil": C(np.ceil),
    "numpy.trunc": C(np.trunc),
    "numpy.rint": C(np.rint),
    "numpy.round": C(lambda x: np.round(x, 1)),
    "numpy.around": C(lambda x: np.around(x)),
    "numpy.floor_divide": C(np.floor_divide, (2, 3), In((3,), 0.5, 2.0)),
    "numpy.remainder": C(np.remainder, (2, 3), In((3,), 0.5, 2.0)),
    "numpy.fmod": C(np.fmod, (2, 3), In((3,), 0.5, 2.0)),
    "numpy.copysign": C(np.copysign, (2, 3), (3,)),
    "numpy.maximum": C(np.maximum, (2, 3), (3,)),
    "numpy.minimum": C(np.minimum, (2, 3), (3,)),
    "numpy.fmax": C(np.fmax, (2, 3), (3,)),
    "numpy.fmin": C(np.fmin, (2, 3), (3,)),
    "numpy.matmul": C(np.matmul, (2, 3), (3, 2)),
    "numpy.dot": C(np.dot, (2, 3), (3, 2)),
    "numpy.einsum": C(lambda a, b: np.einsum("ij,j->i", a, b), (2, 3), (3,)),
    "numpy.equal": C(np.equal, (2, 3), (3,)),
    "numpy.not_equal": C(np.not_equal, (2, 3), (3,)),
    "numpy.less": C(np.less, (2, 3), (3,)),
    "numpy.less_equal": C(np.less_equal, (2, 3), (3,)),
    "numpy.greater": C(np.greater, (2, 3), (3,)),
    "numpy.greater_equal": C(np.greater_equal, (2, 3), (3,)),
    "numpy.isfinite": C(np.isfinite),
    "numpy.isnan": C(np.isnan),
    "numpy.isinf": C(np.isinf),
    "numpy.signbit": C(np.signbit),
    "numpy.logical_and": C(np.logical_and, (2, 3), (3,)),
    "numpy.logical_or": C(np.logical_or, (2, 3), (3,)),
    "numpy.logical_xor": C(np.logical_xor, (2, 3), (3,)),
    "numpy.logical_not": C(np.logical_not),
    "numpy.add.reduce": C(lambda x: np.add.reduce(x, axis=1)),
    "numpy.maximum.reduce": C(lambda x: np.maximum.reduce(x, axis=0)),
    "numpy.minimum.reduce": C(lambda x: np.minimum.reduce(x, axis=1, keepdims=True)),
    "numpy.sum": C(lambda x: np.sum(x, axis=0)),
    "numpy.mean": C(lambda x: np.mean(x, axis=1)),
    "numpy.max": C(lambda x: np.max(x, axis=1)),
    "numpy.min": C(np.min),
    "numpy.amax": C(lambda x: np.amax(x, axis=0)),
    "numpy.amin": C(lambda x: np.amin(x, axis=0)),
    "numpy.prod": C(lambda x: np.prod(x, axis=1)),
    "numpy.var": C(lambda x: np.var(x, axis=1)),
    "numpy.std": C(lambda x: np.std(x, axis=0, ddof=1)),
    "numpy.norm": C(lambda x: np.linalg.norm(x, axis=1)),
    "numpy.cumsum": C(lambda x: np.cumsum(x, axis=1)),
    "numpy.cumprod": C(lambda x: np.cumprod(x, axis=0)),
    "numpy.sort": C(lambda x: np.sort(x, axis=1)),
    "numpy.argsort": C(lambda x: np.argsort(x, axis=1)),
    "numpy.argmax": C(lambda x: np.argmax(x, axis=1)),
    "numpy.argmin": C(lambda x: np.argmin(x)),
    "numpy.clip": C(lambda x: np.clip(x, -1.0, f64(1.0))),
    "numpy.where": C(lambda a, b: np.where(_mask(a), a, b), (2, 3), (3,)),
    "numpy.take_along_axis": C(lambda x: np.take_along_axis(x, np.array([[1], [0]]), axis=1)),
    "numpy.concatenate": C(lambda a, b: np.concatenate([a, b], axis=1), (2, 3), (2, 1)),
    "numpy.stack": C(lambda a, b: np.stack([a, b]), (2, 3), (2, 3)),
    "numpy.split": C(lambda x: np.split(x, 3, axis=1)),
    "numpy.array_split": C(lambda x: np.array_split(x, 2, axis=1)),
    "numpy.copy": C(np.copy),
    "numpy.reshape": C(lambda x: np.reshape(x, (3, 2))),
    "numpy.transpose": C(np.transpose),
    "numpy.swapaxes": C(lambda x: np.swapaxes(x, 0, 1)),
    "numpy.moveaxis": C(lambda x: np.moveaxis(x, 0, -1)),
    "numpy.squeeze": C(np.squeeze, (2, 1, 3)),
    "numpy.expand_dims": C(lambda x: np.expand_dims(x, 0)),
    "numpy.broadcast_to": C(lambda x: np.broadcast_to(x, (2, 2, 3))),
    "numpy.diagonal": C(np.diagonal, (3, 3)),
    "numpy.flip": C(lambda x: np.flip(x, 1)),
    "numpy.roll": C(lambda x: np.roll(x, 2)),
    "numpy.pad": C(lambda x: np.pad(x, 1, mode="edge")),
    "numpy.repeat": C(lambda x: np.repeat(x, 2, axis=0)),
    "numpy.tile": C(lambda x: np.tile(x, (1, 2))),
    "numpy.tril": C(np.tril, (3, 3)),
    "numpy.triu": C(np.triu, (3, 3)),
    "numpy.zeros_like": C(np.zeros_like),
    "numpy.ones_like": C(np.ones_like),
    "numpy.empty_like": C(np.empty_like),
    "numpy.full_like": C(lambda x: np.full_like(x, f64(0.5))),
    "numpy.result_type": C(lambda x: np.result_type(x)),
    "numpy.isclose": C(np.isclose, (2, 3), (3,)),
    "numpy.allclose": C(np.allclose, (2, 3), (3,)),
    "numpy.array_equal": C(np.array_equal, (2, 3), (2, 3)),
    "numpy.count_nonzero": C(np.count_nonzero),
    "numpy.nonzero": C(np.nonzero),
    "numpy.flatnonzero": C(np.flatnonzero),
    "numpy.unravel_index": C(lambda x: np.unravel_index(np.argmax(x), x.shape)),
    "numpy.any": C(np.any),
    "numpy.all": C(np.all),
    "numpy.iscomplexobj": C(np.iscomplexobj),
    "numpy.isrealobj": C(np.isrealobj),
    "numpy.can_cast": C(lambda x: np.can_cast(x, np.float64)),
    "numpy.may_share_memory": C(np.may_share_memory, (2, 3), (2, 3)),
    "numpy.shares_memory": C(np.shares_memory, (2, 3), (2, 3)),
    "numpy.shape": C(np.shape),
    "numpy.ndim": C(np.ndim),
    "numpy.size": C(np.size),
    "numpy.broadcast_shapes": C(lambda a, b: np.broadcast_shapes(np.shape(a), np.shape(b)), (2, 3), (3,)),
}



@defop
def _cube_once(x):
    """x³, differentiable once: its VJP scatters with np.add.at, which Tensors do not speak, so a
    gradient of it is recorded as the engine's 'first_order_only' op."""
    def vjp(g):
        out = np.zeros(np.shape(x), dtype=g.dtype)
        np.add.at(out, np.arange(out.shape[0]), 3 * g * x * x)
        return out

    return x * x * x, vjp


ENGINE_CASES: dict[str, Case] = {"engine.first_order_only": C(_cube_once, twice=False)}

CASES: dict[str, Case] = {**TG_CASES, **NN_CASES, **FUNC_CASES, **NP_CASES, **ENGINE_CASES}

_BOOL = "a bool result (comparisons and tests are bool in PyTorch and NumPy too)"
_INDEX = "integer indices (argmax/argsort/sort/topk/cummax/max_dim return int64; their values stay float)"
_SHAPE = "a shape, size or count: no values computed"
NOT_FLOAT: dict[str, str] = {  # cases whose results may be integers, bools or Python values, and why
    **dict.fromkeys(["tg.eq", "tg.ne", "tg.lt", "tg.le", "tg.gt", "tg.ge", "tg.isclose", "tg.isfinite", "tg.isinf",
                     "tg.isnan", "tg.allclose", "tg.equal", "numpy.equal", "numpy.not_equal", "numpy.less",
                     "numpy.less_equal", "numpy.greater", "numpy.greater_equal", "numpy.isfinite", "numpy.isnan",
                     "numpy.isinf", "numpy.signbit", "numpy.logical_and", "numpy.logical_or", "numpy.logical_xor",
                     "numpy.logical_not", "numpy.isclose", "numpy.allclose", "numpy.array_equal", "numpy.any",
                     "numpy.all", "numpy.iscomplexobj", "numpy.isrealobj", "numpy.can_cast",
                     "numpy.may_share_memory", "numpy.shares_memory"], _BOOL),
    **dict.fromkeys(["tg.argmax", "tg.argmin", "tg.argsort", "tg.cummax", "tg.cummin", "tg.max_dim", "tg.min_dim",
                     "tg.sort", "tg.topk", "numpy.argmax", "numpy.argmin", "numpy.argsort", "numpy.nonzero",
                     "numpy.flatnonzero", "numpy.unravel_index"], _INDEX),
    **dict.fromkeys(["numpy.shape", "numpy.ndim", "numpy.size", "numpy.count_nonzero", "numpy.broadcast_shapes"],
                    _SHAPE),
}

NOT_OPS: dict[str, str] = {  # exported functions that are not ops, and why they have no case
    "tg.defop": "makes ops: every op it made is walked (test_every_defop_is_reached)",
    "tg.grad": "differentiates other functions (the walk uses it on every case)",
    "tg.gradcheck": "a numerical check, in float64 by design (test_gradcheck)",
    "tg.gradgradcheck": "a numerical check, in float64 by design (test_higher_order)",
    "tg.from_numpy": "wraps an array as it is, dtype included (test_tensor)",
    "tg.is_grad_enabled": "a flag",
    "ops.call_op": "a helper for writing VJPs (inside the ops walked here)",
    "ops.torch_axes": "a helper for reading axis arguments",
    "ops.unreduce": "a helper for writing VJPs (inside the reductions walked here)",
    "nn.save_safetensors": "file I/O: dtypes round-trip (test_safetensors)",
    "nn.load_safetensors": "file I/O: dtypes round-trip (test_safetensors)",
    "nn.read_safetensors_header": "file I/O",
    "optim.param_groups_no_decay": "groups parameters: computes nothing",
}
NAMESPACES = {"tg": tg, "ops": ops, "nn": nn, "func": func, "optim": optim}


# ----------------------------------------------------------------------------- the checks
_COVERED: set[OpRecord] = set()  # every op record met by a case so far (forward or gradient graphs)
_WALKED: set[str] = set()  # the cases run in float32


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _results(out: Any) -> list[Any]:
    """The leaves of what a case returned (Tensors, arrays, NumPy values, Python values)."""
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in _results(o)]
    return [out]


def _graph(roots: list[Any]) -> list[Tensor]:
    """Every node recorded behind ``roots`` (no recursion), each once."""
    seen: dict[int, Tensor] = {}
    stack = [r for r in roots if isinstance(r, Tensor)]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen[id(t)] = t
        if isinstance(t._ctx, list):
            stack.extend(parent for parent, _, _ in t._ctx)
    return list(seen.values())


def _check_graph(nodes: list[Tensor], dtype: np.dtype, where: str) -> None:
    """Each float node has ``dtype``, and each VJP turns a cotangent of ``dtype`` into a gradient of ``dtype``."""
    for t in nodes:
        if t._op is not None:
            _COVERED.add(t._op)
        op = t.op or "a leaf"
        assert t.dtype.kind != "f" or t.dtype == dtype, f"{where}: {op} of shape {t.shape} has dtype {t.dtype}"
        if not isinstance(t._ctx, list) or t.op == "first_order_only":
            continue
        g = np.full(t.shape, 0.75, dtype=dtype)
        for _, vjp, index in t._ctx:
            got = np.asarray(vjp(g))
            assert got.dtype == dtype, f"{where}: the VJP of '{op}' for argument {index} computes in {got.dtype}"


def _check_results(name: str, out: Any, dtype: np.dtype) -> list[Tensor]:
    """The float Tensors ``out`` holds, after checking every value in it has ``dtype`` (or is exempt)."""
    floats, others = [], []
    for r in _results(out):
        kind = getattr(r, "dtype", None)
        if isinstance(r, np.dtype):
            kind = r
        if kind is not None and np.dtype(kind).kind == "f":
            assert np.dtype(kind) == dtype, f"{name}: a result of dtype {np.dtype(kind)}, not {dtype}"
            if isinstance(r, Tensor):
                floats.append(r)
        else:
            others.append(r)
    if others:
        assert name in NOT_FLOAT, f"{name}: non-float results {[type(o).__name__ for o in others]}"
    else:
        assert name not in NOT_FLOAT, f"{name} is listed in NOT_FLOAT but all its results are float"
    return floats


def _check(name: str, fn: Callable[..., Any], xs: list[Tensor], dtype: np.dtype, twice: bool = True) -> None:
    """Run ``fn(*xs)`` and check its results, graphs and gradients of first and second order keep ``dtype``."""
    rng = _rng(name)
    with np.errstate(all="ignore"):
        out = fn(*xs)
        floats = _check_results(name, out, dtype)
        _check_graph(_graph(_results(out)), dtype, f"{name} (forward)")
        diff = [o for o in floats if o.requires_grad]
        if not diff:
            return
        ws = [Tensor(rng.uniform(0.5, 1.5, o.shape).astype(dtype), requires_grad=True) for o in diff]
        g1 = tg.grad(diff, xs, ws, create_graph=True, allow_unused=True)  # a graph in xs and in ws
        assert all(g is None or g.dtype == dtype for g in g1), f"{name}: gradients {[g.dtype for g in g1 if g]}"
        _check_graph(_graph(list(g1)), dtype, f"{name} (gradient)")
        recorded = [g for g in g1 if g is not None and g.requires_grad]

        for o, w in zip(diff, ws):  # first order, as training does it
            o.backward(w, retain_graph=True)
        for i, x in enumerate(xs):
            assert x.grad is None or x.grad.dtype == dtype, f"{name}: input {i} has a gradient of {x.grad.dtype}"
            x.grad = None
        if twice and recorded:  # the gradient of the gradient, with respect to the inputs and the cotangents
            second = sum((g * rng.uniform(0.5, 1.5, g.shape).astype(dtype)).sum() for g in recorded)
            g2 = tg.grad(second, xs + ws, create_graph=True, allow_unused=True)  # its graph: third order
            assert all(g is None or g.dtype == dtype for g in g2), f"{name}: second-order {[g.dtype for g in g2 if g]}"
            _check_graph(_graph(list(g2)), dtype, f"{name} (second gradient)")
            second.backward()
            for i, x in enumerate(xs + ws):
                assert x.grad is None or x.grad.dtype == dtype, f"{name}: input {i}: second-order grad {x.grad.dtype}"


def _inputs(name: str, case: Case, dtype: np.dtype) -> list[Tensor]:
    rng = _rng(name)
    return [Tensor(rng.uniform(i.low, i.high, i.shape).astype(dtype), requires_grad=True) for i in case.inputs]


def _walk(name: str, dtype: np.dtype) -> None:
    case = CASES[name]
    _check(name, case.fn, _inputs(name, case, dtype), dtype, case.twice)
    if dtype == F32:
        _WALKED.add(name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CASES)
def test_op_keeps_dtype(name, dtype):
    _walk(name, dtype)


# ------------------------------------------------------------------ every op has a case
def _defops() -> dict[OpRecord, str]:
    """Every op made with `defop` at the top level of a module of the package: {record: where}."""
    found = {}
    for info in pkgutil.walk_packages(tg.__path__, "tinygrad_lite."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for attr, value in vars(module).items():
            record = getattr(value, "record", None)
            if isinstance(record, OpRecord) and getattr(value, "__module__", None) == info.name:
                found.setdefault(record, f"{info.name}.{attr} (op '{record.name}')")
    return found


def _unreached() -> list[str]:
    """The ops made with `defop` that no case reaches (the float32 walk is run first where this session has not)."""
    for name in CASES:
        if name not in _WALKED:
            _walk(name, F32)
    return sorted(where for record, where in _defops().items() if record not in _COVERED)


_NN_MODULES = (nn, F, losses)


def _resolve(key: str) -> Any:
    """The object a case or NOT_OPS key names ("tg.exp", "nn.mse_loss[variant]", ...)."""
    prefix, name = key.split("[")[0].split(".", 1)
    spaces = _NN_MODULES if prefix == "nn" else (NAMESPACES[prefix],)
    for space in spaces:
        if hasattr(space, name):
            return getattr(space, name)
    raise AssertionError(f"{key!r} names nothing in {prefix}")


def _exported() -> dict[int, list[str]]:
    """Every function the package exports, by identity: {id: its public names}."""
    lists = [("tg", tg, tg.__all__), ("ops", ops, ops.__all__), ("func", func, func.__all__),
             ("optim", optim, optim.__all__)] + [("nn", m, m.__all__) for m in _NN_MODULES]
    found: dict[int, list[str]] = {}
    for prefix, space, names in lists:
        for name in names:
            obj = getattr(space, name)
            if callable(obj) and not inspect.isclass(obj):
                found.setdefault(id(obj), []).append(f"{prefix}.{name}")
    return found


def _uncaught_exports() -> list[str]:
    """Exported functions with neither a case nor a reason in NOT_OPS (by their first public name)."""
    covered = {id(_resolve(key)) for key in CASES if not key.startswith(("numpy.", "engine."))}
    return sorted(names[0] for i, names in _exported().items()
                  if i not in covered and not any(n in NOT_OPS for n in names))


def _uncaught_numpy() -> list[str]:
    """NumPy functions that Tensors support without a case, and cases of functions no longer supported."""
    walked = {key.split("[")[0] for key in NP_CASES}
    return sorted(set(tg.numpy_api.supported()) ^ walked)


def test_every_defop_is_reached():
    missing = _unreached()
    assert not missing, f"ops made with defop that no case reaches: add a case to CASES for {missing}"


def test_every_exported_function_has_a_case():
    missing = _uncaught_exports()
    assert not missing, f"exported functions without a case in CASES (or a reason in NOT_OPS): {missing}"
    public = {n for names in _exported().values() for n in names}
    assert not set(NOT_OPS) - public, f"NOT_OPS names no exported function: {sorted(set(NOT_OPS) - public)}"
    walked = {id(_resolve(key)) for key in CASES if not key.startswith(("numpy.", "engine."))}
    assert not {id(_resolve(k)) for k in NOT_OPS} & walked, "a function is both in NOT_OPS and walked"
    assert not set(NOT_FLOAT) - set(CASES), f"NOT_FLOAT names no case: {sorted(set(NOT_FLOAT) - set(CASES))}"


def test_every_numpy_function_on_tensors_has_a_case():
    assert not _uncaught_numpy(), f"NumPy functions Tensors support without a case in NP_CASES (or cases of " \
                                  f"functions not supported): {_uncaught_numpy()}"


# ------------------------------------------------------------------------------- layers
def _same(layer: Callable[[], nn.Module]) -> Callable[[np.dtype], nn.Module]:
    return lambda dtype: layer()


LAYERS: dict[str, tuple[Callable[[np.dtype], nn.Module], In]] = {
    "Linear": (lambda dt: nn.Linear(3, 2, rng=0, dtype=dt), In((4, 3))),
    "Linear[no bias]": (lambda dt: nn.Linear(3, 2, bias=False, rng=0, dtype=dt), In((4, 3))),
    "Sequential": (lambda dt: nn.Sequential(nn.Linear(3, 4, rng=0, dtype=dt), nn.Tanh(),
                                            nn.Linear(4, 2, rng=1, dtype=dt)), In((4, 3))),
    "Dropout": (_same(lambda: nn.Dropout(0.5, seed=0)), In((4, 3))),
    "Flatten": (_same(nn.Flatten), In((2, 3, 2))),
    "Identity": (_same(nn.Identity), In((2, 3))),
    "Embedding": (lambda dt: nn.Embedding(4, 3, padding_idx=0, rng=0, dtype=dt), In(())),
    "ReLU": (_same(nn.ReLU), In((2, 3))),
    "Tanh": (_same(nn.Tanh), In((2, 3))),
    "Sigmoid": (_same(nn.Sigmoid), In((2, 3))),
    "GELU": (_same(nn.GELU), In((2, 3))),
    "GELU[tanh]": (_same(lambda: nn.GELU("tanh")), In((2, 3))),
    "SiLU": (_same(nn.SiLU), In((2, 3))),
    "Softplus": (_same(lambda: nn.Softplus(beta=f64(2.0))), In((2, 3))),
    "ELU": (_same(lambda: nn.ELU(alpha=f64(0.5))), In((2, 3))),
    "CELU": (_same(lambda: nn.CELU(alpha=f64(0.5))), In((2, 3))),
    "SELU": (_same(nn.SELU), In((2, 3))),
    "LeakyReLU": (_same(lambda: nn.LeakyReLU(f64(0.1))), In((2, 3))),
    "ReLU6": (_same(nn.ReLU6), In((2, 3), -2.0, 8.0)),
    "Hardtanh": (_same(lambda: nn.Hardtanh(f64(-0.5), f64(0.5))), In((2, 3))),
    "Hardswish": (_same(nn.Hardswish), In((2, 3), -4.0, 4.0)),
    "Hardsigmoid": (_same(nn.Hardsigmoid), In((2, 3), -4.0, 4.0)),
    "Mish": (_same(nn.Mish), In((2, 3))),
    "LogSigmoid": (_same(nn.LogSigmoid), In((2, 3))),
    "Softsign": (_same(nn.Softsign), In((2, 3))),
    "Softmax": (_same(lambda: nn.Softmax(dim=1)), In((2, 3))),
    "LogSoftmax": (_same(lambda: nn.LogSoftmax(dim=1)), In((2, 3))),
    "Conv1d": (lambda dt: nn.Conv1d(2, 3, 3, padding="same", padding_mode="reflect", rng=0, dtype=dt),
               In((2, 2, 5))),
    "Conv2d": (lambda dt: nn.Conv2d(2, 3, 3, padding=1, rng=0, dtype=dt), IMAGE),
    "Conv2d[circular, grouped]": (lambda dt: nn.Conv2d(2, 2, 3, padding=1, groups=2, padding_mode="circular",
                                                       rng=0, dtype=dt), IMAGE),
    "ConvTranspose2d": (lambda dt: nn.ConvTranspose2d(2, 3, 2, stride=2, rng=0, dtype=dt), In((1, 2, 2, 2))),
    "MaxPool2d": (_same(lambda: nn.MaxPool2d(2)), IMAGE),
    "AvgPool2d": (_same(lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)), IMAGE),
    "AdaptiveAvgPool2d": (_same(lambda: nn.AdaptiveAvgPool2d((3, None))), IMAGE),
    "BatchNorm1d": (lambda dt: nn.BatchNorm1d(3, momentum=f64(0.2), dtype=dt), In((4, 3))),
    "BatchNorm1d[cumulative average]": (lambda dt: nn.BatchNorm1d(3, momentum=None, dtype=dt), In((4, 3, 2))),
    "BatchNorm2d": (lambda dt: nn.BatchNorm2d(2, dtype=dt), In((2, 2, 3, 3))),
    "LayerNorm": (lambda dt: nn.LayerNorm((2, 3), eps=f64(1e-3), dtype=dt), In((2, 2, 3))),
    "GroupNorm": (lambda dt: nn.GroupNorm(2, 4, dtype=dt), In((2, 4, 3))),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LAYERS)
def test_layer_keeps_dtype(name, dtype):
    make, shape = LAYERS[name]
    layer = make(dtype)
    params = layer.parameters()
    assert all(p.dtype == dtype for p in params), [p.dtype for p in params]
    for mode in ("train", "eval"):
        getattr(layer, mode)()
        if name == "Embedding":  # integer indices in, rows of the table out
            _check(f"nn.{name}", lambda *ps: layer(np.array([[0, 3], [2, 2]])), list(params), dtype)
        else:
            x = Tensor(_rng(name).uniform(shape.low, shape.high, shape.shape).astype(dtype), requires_grad=True)
            _check(f"nn.{name}", lambda x, *ps: layer(x), [x, *params], dtype)
        for key, buffer in layer.named_buffers():
            assert buffer.dtype.kind != "f" or buffer.dtype == dtype, f"{name} ({mode}): buffer {key} is {buffer.dtype}"


def _uncaught(space: Any, base: type, walked: dict[str, Any]) -> list[str]:
    """The subclasses of ``base`` that ``space`` exports (``base`` itself aside) without an entry in ``walked``."""
    classes = {n for n in space.__all__ if inspect.isclass(getattr(space, n)) and issubclass(getattr(space, n), base)}
    return sorted(classes - {base.__name__} - {key.split("[")[0] for key in walked})


def test_every_layer_has_a_case():
    assert not _uncaught(nn, nn.Module, LAYERS), f"layers without a case in LAYERS: {_uncaught(nn, nn.Module, LAYERS)}"


# --------------------------------------------------------------------------- optimizers
OPTIMIZERS: dict[str, Callable[[list[Tensor], Callable[[float], Any]], optim.Optimizer]] = {
    "SGD": lambda ps, h: optim.SGD(ps, lr=h(0.1)),
    "SGD[momentum, weight_decay]": lambda ps, h: optim.SGD(ps, lr=h(0.1), momentum=h(0.9), weight_decay=h(0.01)),
    "SGD[nesterov]": lambda ps, h: optim.SGD(ps, lr=h(0.1), momentum=h(0.9), nesterov=True),
    "Adam": lambda ps, h: optim.Adam(ps, lr=h(0.01), betas=(h(0.9), h(0.999)), eps=h(1e-8), weight_decay=h(0.01)),
    "AdamW": lambda ps, h: optim.AdamW(ps, lr=h(0.01), betas=(h(0.8), h(0.99)), eps=h(1e-6), weight_decay=h(0.1)),
    "RMSprop": lambda ps, h: optim.RMSprop(ps, lr=h(0.01), alpha=h(0.9), eps=h(1e-8), weight_decay=h(0.01)),
}


@pytest.mark.parametrize("hyper", [float, np.float64], ids=["python floats", "np.float64"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_step_keeps_dtype(name, dtype, hyper):
    """After steps with hyperparameters given as Python floats or NumPy float64 scalars (lr changed
    between steps too, as a scheduler does), parameters and every state buffer keep their dtype."""
    model = nn.Sequential(nn.Linear(3, 4, rng=0, dtype=dtype), nn.Tanh(), nn.Linear(4, 2, rng=1, dtype=dtype))
    opt = OPTIMIZERS[name](model.parameters(), hyper)
    rng = _rng(name)
    x, y = rng.standard_normal((5, 3)).astype(dtype), rng.standard_normal((5, 2)).astype(dtype)
    for step in range(3):
        opt.zero_grad()
        nn.mse_loss(model(x), y).backward()
        opt.step()
        opt.param_groups[0]["lr"] = hyper(0.05 / (step + 1))
    for p in model.parameters():
        assert p.dtype == dtype and p.grad.dtype == dtype, (p.dtype, p.grad.dtype)
    for key, arrays in opt.state.items():
        assert all(a.dtype == dtype for a in arrays), f"{name}: state {key} has dtypes {[a.dtype for a in arrays]}"
    for key, a in opt.state_dict().items():
        assert key in ("lr", "step") or a.dtype == dtype, f"{name}: state_dict()[{key!r}] has dtype {a.dtype}"


def test_every_optimizer_has_a_case():
    missing = _uncaught(optim, optim.Optimizer, OPTIMIZERS)
    assert not missing, f"optimizers without a case in OPTIMIZERS: {missing}"


# ------------------------------------------------------------- scalars and 0-d operands
WEAK = {  # Python numbers: float32 stays float32 (NumPy 2 and PyTorch agree)
    "t * 2.0": lambda t: t * 2.0,
    "2.0 * t": lambda t: 2.0 * t,
    "t + 1": lambda t: t + 1,
    "t - True": lambda t: t - True,
    "t / 3": lambda t: t / 3,
    "3 / t": lambda t: 3 / t,
    "t ** 2.5": lambda t: t**2.5,
    "2.5 ** t": lambda t: 2.5**t,
    "t // 0.5": lambda t: t // 0.5,
    "t % 1.5": lambda t: t % 1.5,
    "np.maximum(t, 0.0)": lambda t: np.maximum(t, 0.0),
    "np.minimum(1, t)": lambda t: np.minimum(1, t),
    "tg.where(mask, t, 0.0)": lambda t: tg.where(_mask(t), t, 0.0),
    "tg.atan2(t, 1.0)": lambda t: tg.atan2(t, 1.0),
    "np.clip(t, np.float64(0), np.float64(1))": lambda t: np.clip(t, f64(0.0), f64(1.0)),
}
NUMPY_SCALARS = {  # PyTorch: a NumPy scalar is a number; NumPy 2 (NEP 50) would promote to float64
    "t * np.float64(2)": lambda t: t * f64(2.0),
    "np.float64(2) * t": lambda t: f64(2.0) * t,
    "t + np.int64(1)": lambda t: t + np.int64(1),
    "t / np.float64(3)": lambda t: t / f64(3.0),
    "t ** np.float64(2.5)": lambda t: t ** f64(2.5),
    "np.float64(2.5) ** t": lambda t: f64(2.5) ** t,
    "tg.maximum(t, np.float64(0))": lambda t: tg.maximum(t, f64(0.0)),
    "tg.where(mask, t, np.float64(0))": lambda t: tg.where(_mask(t), t, f64(0.0)),
    "tg.atan2(t, np.float64(1))": lambda t: tg.atan2(t, f64(1.0)),
}
ZERO_D = {  # PyTorch: a 0-d operand does not promote a dimensioned one of its category; NumPy 2 gives float64
    "t * np.array(2.0)": lambda t: t * np.array(2.0),
    "np.array(2.0) * t": lambda t: np.array(2.0) * t,
    "t - np.array(1)": lambda t: t - np.array(1),
    "t + Tensor(np.array(1.0))": lambda t: t + Tensor(np.array(1.0)),
    "tg.maximum(t, np.array(0.0))": lambda t: tg.maximum(t, np.array(0.0)),
    "tg.where(mask, t, np.array(0.0))": lambda t: tg.where(_mask(t), t, np.array(0.0)),
    "t * np.arange(3)": lambda t: t * np.arange(3),  # and an integer array, of a lower category
    "Tensor(np.arange(3)) + t": lambda t: Tensor(np.arange(3)) + t,
}

def _scalar_case(label: str, fn: Callable[[Tensor], Any]) -> None:
    t = Tensor(np.array([[0.5, -1.5, 2.0], [1.25, 0.75, -0.5]], dtype=np.float32), requires_grad=True)
    _check(label, fn, [t], F32)


@pytest.mark.parametrize("label", WEAK)
def test_python_numbers_do_not_promote_float32(label):
    _scalar_case(label, WEAK[label])


@pytest.mark.parametrize("label", NUMPY_SCALARS)
def test_numpy_scalars_do_not_promote_float32(label):
    _scalar_case(label, NUMPY_SCALARS[label])


@pytest.mark.parametrize("label", ZERO_D)
def test_0d_and_integer_operands_do_not_promote_float32(label):
    _scalar_case(label, ZERO_D[label])


def test_a_0d_float64_tensor_keeps_its_own_gradient_dtype():
    t = Tensor(np.array([1.0, -2.0, 3.0], dtype=np.float32), requires_grad=True)
    s = Tensor(np.array(0.5), requires_grad=True)
    out = t * s
    assert out.dtype == F32
    out.sum().backward()
    assert t.grad.dtype == F32 and s.grad.dtype == F64
    np.testing.assert_allclose(s.grad, 2.0)


def test_dimensioned_float64_promotes_and_float64_is_never_downcast():
    t32 = Tensor(np.ones(3, np.float32), requires_grad=True)
    t64 = Tensor(np.ones(3), requires_grad=True)
    assert (t32 * np.ones(3)).dtype == F64 and (np.ones(3) * t32).dtype == F64  # NumPy and PyTorch agree
    for out in (t64 * np.float32(2.0), t64 + np.array(1.0, np.float32), t64 * Tensor(np.array(2.0, np.float32)),
                t64 * t32, np.float32(2.0) ** t64):
        assert out.dtype == F64


# ----------------------------------------------------------------- the checks can fail
@defop
def _vjp_in_float64(x):
    """2x, whose VJP multiplies by a NumPy float64 scalar (the engine casts that gradient back)."""
    return x * 2.0, lambda g: g * np.float64(2.0)


@defop
def _forward_in_float64(x):
    """x times a float64 array of ones."""
    return x * np.ones(np.shape(x)), lambda g: g


@defop
def _second_order_in_float64(x):
    """x², whose VJP goes to float64 on Tensors only (a higher-order re-run)."""
    def vjp(g):
        grad = g * 2.0 * x
        return grad if type(g) is np.ndarray else grad.astype(np.float64)

    return x * x, vjp


@defop
def _integer_result(x):
    """⌊x⌋ as int64, not exempted in NOT_FLOAT."""
    return np.floor(x).astype(np.int64), None


@pytest.mark.parametrize("op, message", [
    (_vjp_in_float64, "the VJP of '_vjp_in_float64' for argument 0 computes in float64"),
    (_forward_in_float64, "a result of dtype float64"),
    (_second_order_in_float64, r"planted \(gradient\): .*float64"),
    (_integer_result, "non-float results"),
])
def test_the_walk_fails_on_an_op_that_leaves_float32(op, message):
    x = Tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    with pytest.raises(AssertionError, match=message):
        _check("planted", op, [x], F32)


def test_the_discovery_names_what_has_no_case(monkeypatch):
    def planted(x):
        """x."""
        return x * 1.0, lambda g: g

    planted.__module__ = "tinygrad_lite.ops.basic"  # as if defined there
    op = defop(planted)
    monkeypatch.setattr(ops.basic, "planted", op, raising=False)
    assert "tinygrad_lite.ops.basic.planted (op 'planted')" in _unreached()
    monkeypatch.setattr(ops, "planted", op, raising=False)
    monkeypatch.setattr(ops, "__all__", [*ops.__all__, "planted"])
    assert "ops.planted" in _uncaught_exports()
    monkeypatch.setitem(tg.numpy_api._FUNCTIONS, np.cross, lambda *args: None)
    assert "numpy.cross" in _uncaught_numpy()

    class Planted(nn.Module):
        """A layer without a case."""

    monkeypatch.setattr(nn, "Planted", Planted, raising=False)
    monkeypatch.setattr(nn, "__all__", [*nn.__all__, "Planted"])
    assert "Planted" in _uncaught(nn, nn.Module, LAYERS)

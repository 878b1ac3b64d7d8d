"""Modules, layers, initialisers and losses built on the autograd engine (PyTorch-style names).

- ``module``: ``Module`` (parameters, buffers and submodules, train/eval, state dicts) and ``Parameter``.
- ``layers``: ``Linear``, ``Dropout``, ``Sequential``, ``Flatten``, ``Identity``, ``Embedding``.
- ``activation``: ``ReLU``, ``Tanh``, ``Sigmoid``, ``GELU``, ``SiLU``, ``Softplus``, ``ELU``, ``CELU``,
  ``SELU``, ``LeakyReLU``, ``ReLU6``, ``Hardtanh``, ``Hardswish``, ``Hardsigmoid``, ``Mish``,
  ``LogSigmoid``, ``Softsign``, ``Softmax``, ``LogSoftmax``.
- ``conv``: ``Conv1d``, ``Conv2d``, ``ConvTranspose2d``;  ``pooling``: ``MaxPool2d``, ``AvgPool2d``,
  ``AdaptiveAvgPool2d``.
- ``normalization``: ``BatchNorm1d``, ``BatchNorm2d``, ``LayerNorm``, ``GroupNorm`` (and ``normalize``).
- ``init``: weight initialisers by name (``INITS``, ``init_weight``, ``fan_in_uniform``).
- ``functional``: ``cross_entropy``, ``nll_loss`` (class weights, ``ignore_index``, label smoothing)
  and the ``dropout`` op;  ``losses``: ``mse_loss``, ``l1_loss``, ``huber_loss``, ``smooth_l1_loss``,
  ``binary_cross_entropy``, ``binary_cross_entropy_with_logits``, ``kl_div``.
- ``state``: safetensors files (``save_safetensors``, ``load_safetensors``: header checked before any data is read).
- ``utils``: ``clip_grad_norm_``, ``clip_grad_value_`` and ``key_problems`` (the state-dict key check).
"""

from . import utils
from .activation import (
    CELU,
    ELU,
    GELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
    Tanh,
)
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .functional import cross_entropy, dropout, dropout_mask, nll_loss
from .init import INITS, fan_in_uniform, init_weight
from .layers import Dropout, Embedding, Flatten, Identity, Linear, Sequential, embedding
from .losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    smooth_l1_loss,
)
from .module import Module, Parameter
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, group_norm, layer_norm, normalize
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .state import SafetensorsError, load_safetensors, read_safetensors_header, save_safetensors
from .utils import clip_grad_norm_, clip_grad_value_

__all__ = [
    "Module", "Parameter",
    "Linear", "Dropout", "Sequential", "Flatten", "Identity", "Embedding",
    "ReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "Softplus", "ELU", "CELU", "SELU", "LeakyReLU", "ReLU6", "Hardtanh",
    "Hardswish", "Hardsigmoid", "Mish", "LogSigmoid", "Softsign", "Softmax", "LogSoftmax",
    "Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm",
    "INITS", "init_weight", "fan_in_uniform",
    "cross_entropy", "nll_loss", "dropout", "dropout_mask", "embedding", "normalize", "layer_norm", "group_norm",
    "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "kl_div",
    "SafetensorsError", "load_safetensors", "read_safetensors_header", "save_safetensors",
    "clip_grad_norm_", "clip_grad_value_", "utils",
]

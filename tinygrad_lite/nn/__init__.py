"""Modules, layers, initialisers and losses built on the autograd engine (PyTorch-style names).

- ``module``: ``Module`` (parameters and submodules found by attribute, state dicts) and ``Parameter``.
- ``layers``: ``Linear``, ``ReLU``, ``Tanh``, ``Sigmoid``, ``Dropout``, ``Sequential``.
- ``init``: weight initialisers by name (``INITS``, ``init_weight``).
- ``functional``: ``cross_entropy``, ``nll_loss`` and the ``dropout`` op.
- ``utils``: ``key_problems``, the state-dict key check modules and optimizers share.
"""

from .functional import cross_entropy, dropout, nll_loss
from .init import INITS, init_weight
from .layers import Dropout, Linear, ReLU, Sequential, Sigmoid, Tanh
from .module import Module, Parameter

__all__ = [
    "Module",
    "Linear",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "Dropout",
    "Sequential",
    "Parameter",
    "INITS",
    "init_weight",
    "cross_entropy",
    "nll_loss",
    "dropout",
]

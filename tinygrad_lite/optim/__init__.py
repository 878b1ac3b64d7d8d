"""Optimizers that update parameter arrays in place (NumPy ``out=`` ops, no graph), and schedulers.

- ``optimizer``: the ``Optimizer`` base (parameter groups, checked steps, state dicts).
- ``sgd``, ``adam``, ``adamw``, ``rmsprop``: ``SGD`` (momentum, Nesterov), ``Adam``, ``AdamW`` (decoupled
  weight decay), ``RMSprop``.
- ``groups``: ``param_groups_no_decay(model, weight_decay)``, groups that exempt biases and norms from decay.
- ``lr_scheduler``: ``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``CosineAnnealingLR``,
  ``LinearLR``, ``OneCycleLR``, ``SequentialLR``, ``ChainedScheduler`` (PyTorch's semantics).
"""

from . import lr_scheduler
from .adam import Adam
from .adamw import AdamW
from .groups import NORM_LAYERS, param_groups_no_decay
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler", "param_groups_no_decay", "NORM_LAYERS"]

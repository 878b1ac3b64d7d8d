"""Optimizers that update parameter arrays in place (NumPy ``out=`` ops, no graph), and schedulers.

- ``optimizer``: the ``Optimizer`` base (parameter groups, checked steps, state dicts).
- ``sgd``, ``adam``, ``rmsprop``: ``SGD`` (momentum, Nesterov), ``Adam``, ``RMSprop``.
- ``lr_scheduler``: ``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``CosineAnnealingLR``,
  ``LinearLR``, ``OneCycleLR``, ``SequentialLR``, ``ChainedScheduler`` (PyTorch's semantics).
"""

from . import lr_scheduler
from .adam import Adam
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "lr_scheduler"]

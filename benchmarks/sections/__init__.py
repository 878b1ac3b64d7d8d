"""The benchmark sections, one module each; every section takes a ``Config`` and returns a ``Result``.

``step``       training step of the 784-128-64-10 ReLU MLP, every framework, several batch sizes
``epoch``      one epoch on the bundled digits (and Fashion-MNIST in a full run): seconds, accuracy
``overhead``   per-op overhead of tiny graphs, and the fixed cost of a training step
``memory``     tracemalloc peak of an epoch; memory and live Tensors after N vs 10N steps
``gradcheck``  cost of full and fast ``gradcheck`` on the MLP
``scaling``    step time vs depth (2-16 hidden layers) and vs batch size
``hvp``        cost of a Hessian-vector product relative to one gradient
``cnn``        training step of the ``cnn`` preset's CNN at batch 64: tinygrad_lite, ManualCNN, PyTorch eager
``profile``    (only when asked for) phases and cProfile of tinygrad_lite's training step
"""

from __future__ import annotations

from collections.abc import Callable

from ..common import Config, Result
from .cnn import section_cnn
from .epoch import section_epoch
from .gradcheck import section_gradcheck
from .hvp import section_hvp
from .memory import section_memory
from .overhead import section_overhead
from .profile import section_profile
from .scaling import section_scaling
from .step import section_step

SECTIONS: dict[str, Callable[[Config], Result]] = {
    "step": section_step,
    "epoch": section_epoch,
    "overhead": section_overhead,
    "memory": section_memory,
    "gradcheck": section_gradcheck,
    "scaling": section_scaling,
    "profile": section_profile,
    "hvp": section_hvp,
    "cnn": section_cnn,
}
#: run when --only is not given (profile is on request only)
DEFAULT = ("step", "epoch", "overhead", "memory", "gradcheck", "scaling", "hvp", "cnn")

__all__ = ["DEFAULT", "SECTIONS", "Config", "Result"]

"""Checks of an MLP's specification shared by ``models.mlp.MLP`` and ``models.manual.ManualMLP``.

Plain Python and NumPy: the hand-derived model stays independent of the autograd engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.registry import ACTIVATIONS

__all__ = ["ACTIVATION_NAMES", "check_sizes", "parse_activations"]

ACTIVATION_NAMES = tuple(ACTIVATIONS)


def check_sizes(sizes: Sequence[int], where: str = "MLP") -> list[int]:
    """Layer widths [inputs, hidden..., outputs]: at least two, all positive integers."""
    sizes = list(sizes)
    if len(sizes) < 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                                 for s in sizes):
        raise ValueError(f"{where}: sizes must list at least inputs and outputs, all positive integers; got {sizes}")
    return [int(s) for s in sizes]


def parse_activations(activations: str | Sequence[str], n_hidden: int, where: str = "MLP") -> list[str]:
    """One activation name per hidden layer (a single name is repeated); ValueError for unknown names."""
    names = [activations] * n_hidden if isinstance(activations, str) else list(activations)
    if len(names) != n_hidden:
        raise ValueError(f"{where}: got {len(names)} activations {names} for {n_hidden} hidden layers")
    for name in names:
        if name not in ACTIVATION_NAMES:
            raise ValueError(f"{where}: unknown activation {name!r}; valid names: {', '.join(ACTIVATION_NAMES)}")
    return names

"""Parameter groups that exempt biases and normalisation parameters from weight decay."""

from __future__ import annotations

from typing import Any

from ..nn.module import Module
from ..nn.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm

__all__ = ["param_groups_no_decay", "NORM_LAYERS"]

#: Layer types whose parameters (scales γ and shifts β) ``param_groups_no_decay`` never decays.
NORM_LAYERS: tuple[type, ...] = (BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm)


def param_groups_no_decay(model: Module, weight_decay: float, *, no_decay_layers: tuple[type, ...] = NORM_LAYERS,
                          **group_options: Any) -> list[dict[str, Any]]:
    """Two parameter groups for an optimizer: ``{"params": [...], "weight_decay": weight_decay}`` for the
    weights, and ``{"params": [...], "weight_decay": 0.0}`` for every bias (a name ending in ``bias``)
    and every parameter of a normalisation layer (``no_decay_layers``). Parameters are given as
    (name, tensor) pairs, so optimizer errors name them; an empty group is left out. Other keyword
    arguments (``lr=...``) go into both groups.

        opt = optim.AdamW(optim.param_groups_no_decay(model, 0.05), lr=1e-3)
    """
    exempt = {id(p) for m in model.modules() if isinstance(m, no_decay_layers) for p in m.parameters()}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.rsplit(".", 1)[-1] == "bias" or id(p) in exempt else decay).append((name, p))
    groups = [{"params": decay, "weight_decay": weight_decay, **group_options},
              {"params": no_decay, "weight_decay": 0.0, **group_options}]
    return [g for g in groups if g["params"]]

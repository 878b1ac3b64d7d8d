"""Section ``hvp``: the cost of a Hessian-vector product relative to one gradient.

Both are taken on the 784-128-64-10 ReLU MLP with mean cross-entropy, with respect to every
parameter: the gradient by one reverse sweep (``autograd.grad``), the Hessian-vector
product Hv by differentiating ⟨∇L, v⟩ once more (``create_graph=True``, then a second
sweep). Timings are interleaved round by round, as everywhere in these benchmarks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..common import MLP_SIZES, Config, Result
from ..table import Table
from ..timing import ratio as rr_ratio
from ..timing import round_robin


def section_hvp(cfg: Config) -> Result:
    import tinygrad_lite.nn as nn
    from models.mlp import MLP
    from tinygrad_lite.autograd import grad

    rng = np.random.default_rng(cfg.seed)
    batches = cfg.batches or ([64] if cfg.quick else [64, 256])
    table = Table("7. Hessian-vector product vs one gradient: 784-128-64-10 ReLU MLP, mean cross-entropy, "
                  "all parameters", ["dtype", "batch", "grad ms", "hvp ms", "x grad"], blas=cfg.blas_tag)
    raw: dict[str, Any] = {}
    for dtype in (np.float32, np.float64):
        model = MLP(MLP_SIZES, "relu", seed=cfg.seed, dtype=dtype)
        params = model.parameters()
        v = [rng.standard_normal(p.shape).astype(dtype) for p in params]
        for batch in batches:
            x = rng.random((batch, MLP_SIZES[0])).astype(dtype)
            y = rng.integers(0, MLP_SIZES[-1], batch)

            def gradient(x: np.ndarray = x, y: np.ndarray = y) -> object:
                return grad(nn.cross_entropy(model(x), y), params)

            def hvp(x: np.ndarray = x, y: np.ndarray = y) -> object:
                g = grad(nn.cross_entropy(model(x), y), params, create_graph=True)
                inner = sum((gi * vi).sum() for gi, vi in zip(g, v))
                return grad(inner, params)

            samples = round_robin({"grad": gradient, "hvp": hvp}, cfg.repeats, cfg.min_time)
            x_grad = rr_ratio(samples, "hvp", "grad")
            name = np.dtype(dtype).name
            raw[f"{name}/{batch}"] = {"grad": samples["grad"].values, "hvp": samples["hvp"].values}
            table.add(name, batch, samples["grad"].median * 1e3, samples["hvp"].median * 1e3, x_grad)
    table.notes.append("goal: hvp <= 4x one gradient (a forward, a recorded backward that re-runs each op on "
                       "Tensors, and a backward through both)")
    return Result([table], raw)

"""Section ``gradcheck``: the cost of full and fast ``gradcheck`` on the MLP, against one forward + backward."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..common import MLP_SIZES, Config, Result, dataset
from ..table import Table
from ..timing import round_robin, timed


def section_gradcheck(cfg: Config) -> Result:
    import tinygrad_lite as tg
    import tinygrad_lite.nn as nn
    from models.mlp import MLP
    from tinygrad_lite import gradcheck

    d = dataset("digits")
    batch = 4
    x, y = d.x_train[:batch].astype(np.float64), d.y_train[:batch]
    plan = [("fast", MLP_SIZES), ("full", [784, 4, 10] if cfg.quick else MLP_SIZES)]
    table = Table(f"5. Gradient check cost: gradcheck of the mean cross-entropy wrt every parameter, float64, "
                  f"batch {batch}",
                  ["mode", "MLP", "params", "fn calls", "seconds", "ms per call", "x one step"], blas=cfg.blas_tag)
    raw: dict[str, Any] = {}
    for mode, sizes in plan:
        model = MLP(sizes, "relu", seed=cfg.seed, dtype=np.float64)
        layers = model.layers
        inputs = [p.data.copy() for p in model.parameters()]
        calls = [0]

        def fn(*params: Any, layers: Any = layers, model: Any = model, calls: list[int] = calls) -> Any:
            calls[0] += 1
            for l, layer in enumerate(layers):
                layer.weight, layer.bias = params[2 * l], params[2 * l + 1]
            return nn.cross_entropy(model(x), y)

        # cost of one plain forward + backward of the same function, for scale
        def one_step(fn: Any = fn, inputs: list[np.ndarray] = inputs) -> None:
            fn(*[tg.Tensor(a, requires_grad=True) for a in inputs]).backward()

        step_s = round_robin({"step": one_step}, 3, 0.02)["step"].median
        reps = 1 if mode == "full" else max(1, min(cfg.repeats, 5))
        times = []
        for _ in range(reps):
            calls[0] = 0
            s, _ = timed(lambda fn=fn, inputs=inputs, fast=(mode == "fast"): gradcheck(fn, inputs, fast=fast, seed=0))
            times.append(s)
        sec = float(np.median(times))
        n_params = sum(a.size for a in inputs)
        raw[f"{mode}/{'-'.join(map(str, sizes))}"] = {"seconds": times, "calls": calls[0], "params": n_params}
        table.add(mode, "-".join(map(str, sizes)), n_params, calls[0], sec, sec / calls[0] * 1e3, sec / step_s)
    if cfg.quick:
        table.notes.append("quick run: full check on a smaller MLP (the full 784-128-64-10 check takes ~2x109k "
                           "forward passes)")
    return Result([table], raw)

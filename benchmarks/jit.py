"""The compiled contenders: ``tinygrad_lite.compile`` of the same step, and JAX's ``jit``.

- ``tg-compiled``: ``tinygrad_lite``'s trainer with its step (zero_grad, forward, loss,
  backward, ``opt.step()``) wrapped in ``tinygrad_lite.compile``: two recorded eager calls,
  then replays.
- ``jax-jit``: ``jax.jit`` of the whole step (``value_and_grad`` of the loss, then the SGD
  update), parameters kept as JAX arrays between steps (CPU, float32). XLA's CPU threads are
  fixed when JAX is first imported: ``XLA_FLAGS`` is set then from the BLAS thread count
  (one thread: ``--xla_cpu_multi_thread_eigen=false``), so a later change of the BLAS thread
  setting in the same process does not reach JAX (the step section says which it used).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import env
from .frameworks import Case, TinygradLite, Trainer, Weights, _named, _pairs

Array = np.ndarray
JAX_THREADS: list[int | None] = []  # the BLAS thread count when JAX was imported (None: the default)


class TinygradCompiled(TinygradLite):
    name = "tg-compiled"

    def __init__(self, weights: Weights, lr: float) -> None:
        import tinygrad_lite as tg

        super().__init__(weights, lr)
        model, opt, cross_entropy = self.model, self.opt, self.cross_entropy

        def step(x: Any, y: Any) -> Any:
            opt.zero_grad()
            loss = cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        self._step = tg.compile(step)

    def step(self, x: Array, y: Array) -> Any:
        return self._step(x, y).data

    @staticmethod
    def tiny(a: Array, b: Array) -> Case:
        import tinygrad_lite as tg

        ta, tb = tg.Tensor(a.copy(), requires_grad=True), tg.Tensor(b.copy(), requires_grad=True)

        def tiny(ta: Any, tb: Any) -> Any:
            loss = (ta + tb).sum()
            loss.backward()
            return loss

        f = tg.compile(tiny)
        return lambda: f(ta, tb)

    @staticmethod
    def dense(x: Array, W: Array, b: Array) -> Case:
        import tinygrad_lite as tg

        tW, tb = tg.Tensor(W.copy(), requires_grad=True), tg.Tensor(b.copy(), requires_grad=True)

        def dense(x: Any) -> Any:
            loss = (x @ tW + tb).relu().sum()
            loss.backward()
            return loss

        f = tg.compile(dense)
        return lambda: f(x)


def import_jax() -> Any:
    """jax, imported once with XLA's CPU threads set from the BLAS thread count at that moment."""
    if not JAX_THREADS:
        threads = env.blas_threads()
        if threads == 1 and "XLA_FLAGS" not in os.environ:
            os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        JAX_THREADS.append(threads)
    import jax

    jax.config.update("jax_platforms", "cpu")
    return jax


class JaxJit(Trainer):
    name = "jax-jit"

    def __init__(self, weights: Weights, lr: float) -> None:
        jax = import_jax()
        jnp = jax.numpy
        self.jax, self.jnp = jax, jnp
        self.params_ = [jnp.asarray(a) for pair in _pairs(weights) for a in pair]
        dtype = next(iter(weights.values())).dtype

        def forward(params: list[Any], x: Any) -> Any:
            a, last = x, len(params) // 2 - 1
            for l in range(last + 1):
                z = a @ params[2 * l] + params[2 * l + 1]
                a = jnp.maximum(z, 0) if l < last else z
            return a

        def loss(params: list[Any], x: Any, y: Any) -> Any:
            logp = jax.nn.log_softmax(forward(params, x), axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        def step(params: list[Any], x: Any, y: Any) -> tuple[Any, list[Any]]:
            value, grads = jax.value_and_grad(loss)(params, x, y)
            return value, [p - dtype.type(lr) * g for p, g in zip(params, grads)]

        self._step = jax.jit(step, donate_argnums=0)
        self._forward = jax.jit(forward)

    def step(self, x: Array, y: Array) -> Any:
        value, self.params_ = self._step(self.params_, x, y)
        value.block_until_ready()  # the step is done when it returns, as for everyone else
        return value

    def loss(self, x: Array, y: Array) -> float:
        return float(self.step(x, y))

    def predict(self, x: Array) -> Array:
        return np.asarray(self._forward(self.params_, x)).argmax(axis=1)

    def params(self) -> Weights:
        return _named([np.asarray(p) for p in self.params_])

    @staticmethod
    def tiny(a: Array, b: Array) -> Case:
        jax = import_jax()
        g = jax.jit(jax.grad(lambda a, b: (a + b).sum(), argnums=(0, 1)))
        ja, jb = jax.numpy.asarray(a), jax.numpy.asarray(b)
        return lambda: jax.block_until_ready(g(ja, jb))

    @staticmethod
    def dense(x: Array, W: Array, b: Array) -> Case:
        jax = import_jax()
        jnp = jax.numpy
        g = jax.jit(jax.grad(lambda W, b, x: jnp.maximum(x @ W + b, 0).sum(), argnums=(0, 1)))
        jW, jb, jx = jnp.asarray(W), jnp.asarray(b), jnp.asarray(x)
        return lambda: jax.block_until_ready(g(jW, jb, jx))

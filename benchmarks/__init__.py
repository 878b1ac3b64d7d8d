"""Benchmarks for tinygrad_lite: ``python -m benchmarks [--quick] [--only SECTION,...] [--json PATH]``.

Sections (``--only`` takes a comma-separated list; one module each under ``benchmarks/sections/``):

- ``step``: one training step (forward, mean cross-entropy, backward, SGD) of the 784-128-64-10
  ReLU MLP in float32, same weights and batches, for tinygrad_lite, the two hand-written NumPy
  baselines (``manual``: ``models.manual``, written to be read; ``numpy-opt``:
  ``benchmarks.fast_numpy``, written to be fast) and, when installed, PyTorch CPU eager, HIPS
  autograd and MyGrad; ms per step and the ratio to each baseline at batch 16, 64, 256, 1024.
  Run with the machine's default BLAS threads and then again with one thread.
- ``epoch``: one epoch on the bundled digits and (full run) Fashion-MNIST: seconds, ratios, test accuracy.
- ``overhead``: forward + backward of ``(a + b).sum()`` on 2x2 and ``relu(x @ W + b).sum()`` at
  64x784x128, in us, against the NumPy work itself; the fixed cost of a training step.
- ``memory``: tracemalloc peak of an epoch; memory and live Tensors after 100 vs 1,000 steps.
- ``gradcheck``: cost of full and fast ``gradcheck`` on the MLP.
- ``scaling``: step time vs depth (2-16 hidden layers) and vs batch size, with the overhead per layer.
- ``hvp``: a Hessian-vector product against one gradient.
- ``cnn``: one training step of the ``cnn`` preset's network (conv 32-64 3×3 with BatchNorm,
  max-pool, fc 128; SGD Nesterov) at batch 64, float32 1×28×28: tinygrad_lite against
  ``ManualCNN`` (``models.manual_cnn``) and, when installed, PyTorch eager (torch threads = BLAS
  threads); ms/step, ratios and GFLOP/s (``CNNSpec.flops``). Like ``step``, with the default
  threads and then one thread. A backward frees ~48 MB at once: run it with and without
  ``--keep-freed-memory`` (``python -m benchmarks --only cnn [--keep-freed-memory]``).
- ``profile`` (only with ``--only profile``): a phase breakdown (zero_grad, forward, loss,
  backward, optimizer) against manual, and cProfile of tinygrad_lite's step at batch 64 and 256.

The contenders are the adapters of ``benchmarks.frameworks``. Every figure is the median of
several rounds in which the frameworks take turns (round-robin), and ratios are medians of
per-round ratios, so noise on a shared machine hits all alike. The machine, library versions
and the BLAS kernel and thread count (threadpoolctl) are printed at the top and a
``BLAS: <kernel>, <n> threads`` tag next to every table.

Nothing is tuned for anyone: the BLAS keeps the machine's default thread count and malloc its
default settings, unless asked. ``--threads N`` limits the BLAS (and torch) to N threads for the
whole run; ``--quick``, a smoke test, runs the sections after ``step`` with one thread;
``--keep-freed-memory`` applies the training CLI's allocator setting to the whole process, so
to every framework alike. Optional frameworks come from the ``bench`` extra; a missing one
shows as "not installed". ``python -m benchmarks.results`` trains the presets for the README's
results table.
"""

"""Benchmarks for tinygrad_lite (issue 6): ``python -m benchmarks [--quick] [--only SECTION,...] [--json PATH]``.

Sections (``--only`` takes a comma-separated list):

- ``step``: one training step (forward, mean cross-entropy, backward, SGD) of the 784-128-64-10
  ReLU MLP in float32, same weights and batches, for tinygrad_lite, the hand-written NumPy
  reference ``models.manual`` and, when installed, PyTorch CPU eager, HIPS autograd and MyGrad;
  ms per step and the ratio to manual at batch 16, 64, 256, 1024.
- ``epoch``: one epoch on the bundled digits and (full run) Fashion-MNIST: seconds, ratio, test accuracy.
- ``overhead``: forward + backward of ``(a + b).sum()`` on 2x2 and ``relu(x @ W + b).sum()`` at
  64x784x128, in us, against the NumPy work itself.
- ``memory``: tracemalloc peak of an epoch; memory and live Tensors after 100 vs 1,000 steps.
- ``gradcheck``: cost of full and fast ``gradcheck`` on the MLP.
- ``scaling``: step time vs depth (2-16 hidden layers) and vs batch size, with the overhead per layer.
- ``profile`` (only with ``--only profile``): a phase breakdown (zero_grad, forward, loss,
  backward, optimizer) against manual, and cProfile of tinygrad_lite's step at batch 64 and 256.

Every figure is the median of several rounds in which the frameworks take turns (round-robin),
and ratios are medians of per-round ratios, so noise on a shared machine hits all alike. The
machine, library versions and the BLAS kernel and thread count (threadpoolctl) are printed at
the top and a ``BLAS: <kernel>, <n> threads`` tag next to every table. ``--threads N`` limits
the BLAS (and torch) to N threads. Optional frameworks come from the ``bench`` extra; a missing
one shows as "not installed".
"""

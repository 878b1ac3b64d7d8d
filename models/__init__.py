"""The training app built on tinygrad_lite, and the models it trains.

- Models: ``mlp`` (``MLP`` on ``tinygrad_lite.nn``), ``manual`` (its hand-derived NumPy twin),
  ``cnn``/``manual_cnn``, ``spec`` (checks both twins share), ``compare`` (autograd vs manual).
- The app: ``registry`` (every named choice, once), ``config`` (``TrainConfig``), ``presets``
  (presets and resolution), ``train`` (the CLI), ``run`` (one run, all or nothing), ``loop``
  (the training loop), ``checkpoint`` (safetensors checkpoints and models; ``legacy`` reads
  earlier ``.npz`` ones), ``rundir`` (staging folders and the lock), ``files`` (atomic writes),
  ``evaluate``, ``export`` (to PyTorch), ``report`` (metrics and plots), ``allocator``.
"""

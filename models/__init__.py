"""Models built on tinygrad_lite (``models.mlp``) and their hand-derived NumPy twin (``models.manual``)."""

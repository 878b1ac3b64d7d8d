"""Hypothesis profiles: `ci` is reproducible (derandomized, fixed counts, no deadline)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def register_idx_dataset(monkeypatch, tmp_path, name, files):
    """Register a 20/10-sample IDX dataset ``name`` whose published MD5s are those of ``files``
    (file name -> bytes), with the environment isolated (no data env var, a private cache)."""
    import hashlib

    from tinygrad_lite import data
    from tinygrad_lite.data import IdxSpec

    spec = IdxSpec(classes=data.DIGIT_CLASSES, md5={k: hashlib.md5(v).hexdigest() for k, v in files.items()},
                   mirrors=("http://127.0.0.1:9/unused/",), n_train=20, n_test=10)
    monkeypatch.setitem(data.IDX_DATASETS, name, spec)
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return spec

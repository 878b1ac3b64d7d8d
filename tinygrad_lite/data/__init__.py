"""Data: datasets by name, the IDX format, downloads into a cache, mini-batches and transforms.

Imported only when used (``import tinygrad_lite`` does not load it, nor its network and
compression modules):

- ``datasets``: ``load_dataset(name)``, ``load_arrays``, ``Dataset``, the registry
  (``IDX_DATASETS``, ``dataset_names()``), ``download_dataset`` and ``train_val_split``.
- ``idx``: ``read_idx``, the IDX file format.
- ``download``: mirrors, MD5 checks, the cache (``default_cache_dir()``) and time limits.
- ``loader``: ``DataLoader`` and ``iterate_minibatches``.
- ``transforms``: ``to_float``, ``one_hot``, ``augment``, ``shift_rotate``.
"""

from .datasets import (
    BUNDLED,
    DIGIT_CLASSES,
    ENV_VAR,
    FASHION_CLASSES,
    IDX_DATASETS,
    IDX_FILES,
    Dataset,
    IdxSpec,
    dataset_names,
    download_dataset,
    load_arrays,
    load_dataset,
    train_val_split,
)
from .download import CACHE_SUBDIR, DatasetNotFoundError, default_cache_dir
from .idx import IDX_DTYPES, MAX_IDX_BYTES, read_idx
from .loader import DataLoader, iterate_minibatches
from .transforms import augment, one_hot, shift_rotate, to_float

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "DataLoader",
    "IdxSpec",
    "IDX_DATASETS",
    "IDX_FILES",
    "IDX_DTYPES",
    "BUNDLED",
    "CACHE_SUBDIR",
    "DIGIT_CLASSES",
    "FASHION_CLASSES",
    "ENV_VAR",
    "MAX_IDX_BYTES",
    "read_idx",
    "dataset_names",
    "default_cache_dir",
    "download_dataset",
    "load_arrays",
    "load_dataset",
    "to_float",
    "one_hot",
    "iterate_minibatches",
    "train_val_split",
    "augment",
    "shift_rotate",
]

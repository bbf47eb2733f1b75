"""Real datasets (MNIST, Fashion-MNIST, CIFAR-10) and batched augmentation on tensors.

:mod:`.datasets` finds, verifies and loads the files (never substituting fake data);
:mod:`.augment` crops, flips and normalizes whole batches at once.
"""

from coursekit.data.augment import normalize
from coursekit.data.datasets import (
    DATA_ENV,
    SUBSET_SEED,
    DatasetInfo,
    DatasetNotFoundError,
    TensorData,
    TensorLoader,
    check_files,
    data_root,
    expected_files,
    load,
    loaders,
    tensors,
)

__all__ = [
    "DATA_ENV",
    "SUBSET_SEED",
    "DatasetInfo",
    "DatasetNotFoundError",
    "TensorData",
    "TensorLoader",
    "check_files",
    "data_root",
    "expected_files",
    "load",
    "loaders",
    "normalize",
    "tensors",
]

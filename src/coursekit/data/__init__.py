"""Real datasets (MNIST, Fashion-MNIST, CIFAR-10) and batched augmentation on tensors.

:mod:`.datasets` finds, verifies and loads the files (never substituting fake data), with
:mod:`.integrity` (checksums of archives and extracted files) and :mod:`.fetch` (downloads
that fail fast offline and leave nothing behind);
:mod:`.augment` crops, flips and normalizes whole batches at once.
"""

from coursekit.data.augment import normalize
from coursekit.data.datasets import (
    DATA_ENV,
    SUBSET_SEED,
    DatasetCorruptError,
    DatasetInfo,
    DatasetNotFoundError,
    Problem,
    TensorData,
    TensorLoader,
    check_files,
    data_root,
    expected_files,
    load,
    loaders,
    problems,
    root_origin,
    tensors,
)

__all__ = [
    "DATA_ENV",
    "SUBSET_SEED",
    "DatasetCorruptError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "Problem",
    "TensorData",
    "TensorLoader",
    "check_files",
    "data_root",
    "expected_files",
    "load",
    "loaders",
    "normalize",
    "problems",
    "root_origin",
    "tensors",
]

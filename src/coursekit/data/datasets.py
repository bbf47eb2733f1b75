"""Datasets: MNIST, Fashion-MNIST and CIFAR-10 through torchvision, plus a fast in-memory path.

Where the files live: ``$COURSEKIT_DATA`` if set, otherwise a per-user cache directory.
Online, missing files are downloaded and checked against torchvision's md5 table. Offline
with missing or corrupt files, :class:`DatasetNotFoundError` says what is missing, where we
looked and how to fix it. Nothing is ever replaced by made-up data.

For speed, :func:`tensors` returns a whole split as one ``uint8`` tensor (N×C×H×W) and
:class:`TensorLoader` batches it without per-image PIL work.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import torch
from torchvision import datasets

from coursekit.data.augment import normalize

DATA_ENV = "COURSEKIT_DATA"
SUBSET_SEED = 20240917  # fixed, so a profile's subset is the same whatever the notebook seed


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    cls: type
    folder: str  # where torchvision keeps it below the root
    mean: tuple[float, ...]
    std: tuple[float, ...]


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", datasets.MNIST, "MNIST/raw", (0.1307,), (0.3081,)),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", datasets.FashionMNIST, "FashionMNIST/raw", (0.2860,), (0.3530,)
    ),
    "cifar10": DatasetInfo(
        "cifar10", datasets.CIFAR10, "cifar-10-batches-py",
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
    ),
}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing or corrupt and could not be downloaded."""


def data_root() -> Path:
    """``$COURSEKIT_DATA`` if set, else the per-user cache (e.g. ``~/.cache/coursekit/data``)."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("coursekit")) / "data"


def _info(name: str) -> DatasetInfo:
    key = name.lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)}.")
    return DATASETS[key]


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def expected_files(name: str) -> list[tuple[str, str]]:
    """(file name, md5) pairs that make a complete copy, from torchvision's own tables."""
    info = _info(name)
    if info.cls is datasets.CIFAR10:
        return [(f, md5) for f, md5 in info.cls.train_list + info.cls.test_list]
    return list(info.cls.resources)


def check_files(name: str, root: Path) -> list[str]:
    """Problems with the local copy (empty list when complete and intact).

    MNIST-style sets count as present when either the ``.gz`` archive (md5-checked) or its
    extracted file exists; CIFAR-10's batch files are md5-checked as torchvision does.
    """
    info = _info(name)
    folder = root / info.folder
    problems = []
    for filename, md5 in expected_files(name):
        path = folder / filename
        extracted = folder / filename.removesuffix(".gz")
        if path.exists():
            if _md5(path) != md5:
                problems.append(f"{path} is corrupt (md5 {_md5(path)}, expected {md5})")
        elif not (filename.endswith(".gz") and extracted.exists()):
            problems.append(f"{path} is missing")
    return problems


def load(name: str, split: str = "train", root: str | Path | None = None,
         download: bool = True, transform: Callable | None = None):
    """The torchvision dataset object (for chapters that teach DataLoader + transforms)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    info = _info(name)
    root = Path(root) if root is not None else data_root()
    if root.resolve() != data_root().resolve():
        origin = "the root argument"
    else:
        origin = f"${DATA_ENV}" if os.environ.get(DATA_ENV) else "the per-user cache"
    problems = check_files(name, root)
    if problems:
        if not download:
            raise _not_found(info, root, origin, problems, reason="download=False")
        try:
            info.cls(root, train=split == "train", download=True)
        except Exception as error:  # offline, unwritable root, server trouble, ...
            reason = f"{type(error).__name__}: {error}"
            raise _not_found(info, root, origin, problems, reason=reason) from error
        still = check_files(name, root)
        if still:
            raise _not_found(info, root, origin, still,
                             reason="the download did not produce valid files")
    try:
        # download=True here only extracts verified local archives; it fetches nothing.
        return info.cls(root, train=split == "train", download=True, transform=transform)
    except Exception as error:
        raise _not_found(info, root, origin, [f"{type(error).__name__}: {error}"],
                         reason="the files could not be read or extracted") from error


def _not_found(info: DatasetInfo, root: Path, origin: str, problems: list[str],
               reason: str) -> DatasetNotFoundError:
    listing = "\n  - ".join(problems)
    return DatasetNotFoundError(
        f"{info.name}: the dataset is not available under {root / info.folder}.\n"
        f"  - {listing}\n"
        f"Could not fetch it ({reason}).\n"
        f"Fix: connect to the internet and run `coursekit data download {info.name}`, or set "
        f"{DATA_ENV} to a writable folder that holds {info.folder}/ with torchvision's files "
        f"(looked in {root}, given by {origin})."
    )


@dataclass
class TensorData:
    """A whole split in memory: ``images`` uint8 N×C×H×W, ``labels`` int64 N."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def mean(self) -> tuple[float, ...]:
        return _info(self.name).mean

    @property
    def std(self) -> tuple[float, ...]:
        return _info(self.name).std

    def subset(self, size: int | None, seed: int = SUBSET_SEED) -> TensorData:
        """A deterministic random subset of ``size`` examples (``None``: everything)."""
        if size is None or size >= len(self):
            return self
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:size]
        order, _ = order.sort()
        return TensorData(self.name, self.images[order], self.labels[order], self.classes)

    def to(self, device: torch.device | str) -> TensorData:
        return TensorData(self.name, self.images.to(device), self.labels.to(device), self.classes)

    def normalized(self) -> torch.Tensor:
        """Float images scaled to [0, 1] and standardised with the dataset's mean and std."""
        return normalize(self.images, self.mean, self.std)


def tensors(name: str, split: str = "train", root: str | Path | None = None,
            size: int | None = None) -> TensorData:
    """A split as uint8 tensors, read once per process and cached."""
    root = Path(root) if root is not None else data_root()
    return _tensors_cached(_info(name).name, split, str(root.resolve())).subset(size)


@functools.lru_cache(maxsize=8)
def _tensors_cached(name: str, split: str, root: str) -> TensorData:
    dataset = load(name, split, root)
    images = dataset.data
    if isinstance(images, np.ndarray):  # CIFAR: N×H×W×C numpy
        images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    else:  # MNIST-style: N×H×W tensor
        images = images.unsqueeze(1).contiguous()
    labels = torch.as_tensor(dataset.targets, dtype=torch.long)
    return TensorData(name, images, labels, list(dataset.classes))


class TensorLoader:
    """Mini-batches straight from in-memory tensors: shuffling, normalising, augmenting.

    Iterating yields ``(x, y)`` with ``x`` float and normalised. Shuffling is seeded by
    ``seed + epoch`` so a resumed run sees the same order; call :meth:`set_epoch` (the
    trainer does). ``augment`` takes and returns a float batch (see ``coursekit.data.augment``).
    """

    def __init__(self, data: TensorData, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, device: torch.device | str | None = None,
                 augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                 drop_last: bool = False, normalize: bool = True):
        self.data = data.to(device) if device is not None else data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment
        self.drop_last = drop_last
        self.normalize = normalize
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def dataset_size(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        n = len(self.data)
        if self.shuffle:
            order = torch.randperm(n, generator=generator).to(self.data.labels.device)
        else:
            order = None
        for i in range(len(self)):
            index = slice(i * self.batch_size, (i + 1) * self.batch_size)
            if order is not None:  # index_select copies whole rows, cheaper than images[idx]
                images = self.data.images.index_select(0, order[index])
                labels = self.data.labels.index_select(0, order[index])
            else:
                images, labels = self.data.images[index], self.data.labels[index]
            if self.normalize:
                x = normalize(images, self.data.mean, self.data.std)
            else:
                x = images.float().div_(255)
            if self.augment is not None:
                x = self.augment(x, generator)
            yield x, labels


def loaders(profile, name: str | None = None, *, seed: int = 0,
            device: torch.device | str | None = None, root: str | Path | None = None,
            augment=None) -> tuple[TensorLoader, TensorLoader]:
    """Train and test loaders sized by a :class:`~coursekit.book.profiles.Profile`."""
    name = name or profile.dataset
    train = tensors(name, "train", root, size=profile.train_size)
    test = tensors(name, "test", root, size=profile.test_size)
    return (
        TensorLoader(train, profile.batch_size, shuffle=True, seed=seed, device=device,
                     augment=augment),
        TensorLoader(test, profile.eval_batch_size, device=device),
    )

"""Datasets: MNIST, Fashion-MNIST and CIFAR-10 through torchvision, plus a fast in-memory path.

Where the files live: ``$COURSEKIT_DATA`` if set, otherwise a per-user cache directory.
Every file is verified before it is read: the archives against torchvision's md5 table,
the files extracted from them by size and sha256 (:mod:`.integrity`). Missing files are
downloaded when a mirror answers (:mod:`.fetch` gives up within a second when offline).
Otherwise :class:`DatasetNotFoundError` (or :class:`DatasetCorruptError`) names each bad
file, says where we looked and what to do. Nothing is ever replaced by made-up data, and a
corrupt file is never replaced behind your back.

For speed, :func:`tensors` returns a whole split as one ``uint8`` tensor (N×C×H×W) and
:class:`TensorLoader` batches it without per-image PIL work.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import torch
from torchvision import datasets

from coursekit.data import fetch, integrity
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


class DatasetCorruptError(DatasetNotFoundError):
    """A dataset file exists but is not what it should be (nothing is replaced on its own)."""


@dataclass(frozen=True)
class Problem:
    """What is wrong with one file: ``kind`` is ``"missing"`` or ``"corrupt"``."""

    path: Path
    kind: str
    detail: str = ""
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.path} is {self.kind}" + (f" ({self.detail})" if self.detail else "")


def data_root() -> Path:
    """``$COURSEKIT_DATA`` if set, else the per-user cache (e.g. ``~/.cache/coursekit/data``)."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("coursekit")) / "data"


def root_origin(root: Path | None = None) -> str:
    """Where ``root`` came from, for messages: the environment, the default, or an argument."""
    if root is not None and Path(root).resolve() != data_root().resolve():
        return "the root argument"
    return f"${DATA_ENV}" if os.environ.get(DATA_ENV) else "the per-user cache"


def _info(name: str) -> DatasetInfo:
    key = name.lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)}.")
    return DATASETS[key]


def expected_files(name: str) -> list[tuple[str, str]]:
    """(file name, md5) pairs that make a complete copy, from torchvision's own tables."""
    info = _info(name)
    if info.cls is datasets.CIFAR10:
        meta = info.cls.meta
        return [(f, md5) for f, md5 in info.cls.train_list + info.cls.test_list] + [
            (meta["filename"], meta["md5"])]
    return list(info.cls.resources)


def _mnist_style(info: DatasetInfo) -> bool:
    return info.cls is not datasets.CIFAR10


def problems(name: str, root: str | Path | None = None) -> list[Problem]:
    """What is missing or corrupt in the local copy of ``name`` (empty list: complete, intact).

    MNIST-style sets are read from the files extracted from the ``.gz`` archives. Each pair
    counts as present when the archive (md5 from torchvision's table) or the extracted file
    exists; every file present is verified: archives by md5, extracted files by size and
    sha256 against what the verified archive holds. CIFAR-10's batches are md5-checked.
    """
    info = _info(name)
    root = Path(root) if root is not None else data_root()
    folder = root / info.folder
    cache = integrity.DigestCache(folder)
    found = []
    command = f"`coursekit data download {info.name}`"
    for filename, md5 in expected_files(name):
        path = folder / filename
        extracted = folder / filename.removesuffix(".gz")
        has_extracted = _mnist_style(info) and extracted.is_file()
        has_archive = path.is_file()
        actual = cache.digest(path, "md5") if has_archive else None
        archive_ok = actual == md5
        why = (integrity.extracted_problem(extracted, md5, cache, archive_ok)
               if has_extracted else None)
        if has_archive and not archive_ok:
            if has_extracted and not why:
                fix = (f"delete {path}; the {extracted.name} extracted from it is intact, "
                       "so nothing needs downloading")
            else:
                fix = f"delete {path}, then run {command} to download it again"
            found.append(Problem(path, "corrupt", f"md5 {actual}, expected {md5}", fix))
        elif not has_archive and not has_extracted:
            found.append(Problem(path, "missing", "", f"run {command}"))
        if why:
            fix = (f"delete {extracted}; it is extracted again from the verified {path.name} "
                   "(no download)" if archive_ok
                   else f"delete {extracted}, then run {command} to download it again")
            found.append(Problem(extracted, "corrupt", why, fix))
    cache.save()
    return found


def check_files(name: str, root: Path) -> list[str]:
    """:func:`problems` as sentences (empty list when complete and intact)."""
    return [str(problem) for problem in problems(name, root)]


def load(name: str, split: str = "train", root: str | Path | None = None,
         download: bool = True, transform: Callable | None = None):
    """The torchvision dataset object (for chapters that teach DataLoader + transforms).

    Every file is verified first (see :func:`problems`). Corrupt files are never replaced
    behind your back: :class:`DatasetCorruptError` names them and says what to delete.
    Missing files are extracted from verified archives, or downloaded when ``download`` is
    true and a mirror answers; otherwise :class:`DatasetNotFoundError` says what is missing,
    where we looked and how to fix it.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    info = _info(name)
    root = Path(root) if root is not None else data_root()
    origin = root_origin(root)
    found = problems(name, root)
    corrupt = [p for p in found if p.kind == "corrupt"]
    if corrupt:
        raise _error(info, root, origin, corrupt, "nothing was downloaded or replaced: "
                     "corrupt files are only ever removed by you", DatasetCorruptError)
    if found:
        _download(info, root, origin, found, download)
    if _mnist_style(info):
        _extract_missing(info, root, origin)
    try:
        return info.cls(root, train=split == "train", download=False, transform=transform)
    except Exception as error:
        raise _error(info, root, origin, [f"{type(error).__name__}: {error}"],
                     "the files passed their checks but could not be read") from error


def _download(info: DatasetInfo, root: Path, origin: str, missing: list[Problem],
              download: bool) -> None:
    """Fetch what is missing, or explain why nothing was fetched."""
    if not download:
        raise _error(info, root, origin, missing, "download=False, so nothing was downloaded")
    if info.cls is datasets.CIFAR10:
        urls, landing = [info.cls.url], root
    else:
        urls = [m + f for f, _ in info.cls.resources for m in info.cls.mirrors]
        landing = root / info.folder
    targets = fetch.endpoints(urls)
    timeout = fetch.probe_timeout()
    if not fetch.reachable(targets, timeout):
        hosts = ", ".join(f"{host}:{port}" for host, port in targets)
        raise _error(info, root, origin, missing,
                     f"offline: no answer from {hosts} within {timeout:g} s, so no download "
                     f"was attempted; on a slow network raise ${fetch.PROBE_TIMEOUT_ENV}")
    try:
        with (fetch.leave_no_trace(landing, keep=lambda path: _intact(info, path)),
              fetch.socket_timeout(fetch.DOWNLOAD_TIMEOUT_S)):
            info.cls(root, train=True, download=True)  # fetches (and extracts) every file
    except Exception as error:  # server trouble, unwritable root, a bad transfer, ...
        reason = (f"the download failed, and its partial files were removed: "
                  f"{type(error).__name__}: {error}")
        raise _error(info, root, origin, missing, reason) from error
    still = problems(info.name, root)
    if still:
        raise _error(info, root, origin, still, f"downloaded from {urls[0]} and its mirrors, "
                     "but the files still fail their checks", DatasetCorruptError)


def _intact(info: DatasetInfo, path: Path) -> bool:
    """Whether ``path`` is a whole file of ``info``: a verified archive or extracted file."""
    table = dict(expected_files(info.name))
    if info.cls is datasets.CIFAR10:
        table[info.cls.filename] = info.cls.tgz_md5
    if path.name in table:
        return integrity.hash_file(path, "md5") == table[path.name]
    archive_md5 = table.get(path.name + ".gz")
    return archive_md5 in integrity.EXTRACTED and integrity.extracted_problem(
        path, archive_md5, integrity.DigestCache(path.parent)) is None


def _extract_missing(info: DatasetInfo, root: Path, origin: str) -> None:
    """Extract verified archives whose extracted file is absent (atomically, then checked)."""
    folder = root / info.folder
    for filename, md5 in info.cls.resources:
        archive = folder / filename
        if archive.is_file() and not (folder / filename.removesuffix(".gz")).is_file():
            if not integrity.writable(folder):
                raise _error(info, root, origin, [f"{folder} is read-only"],
                             f"the verified {filename} must be extracted next to itself, "
                             f"and {folder} is read-only; copy {root} to a writable place "
                             f"and point {DATA_ENV} at the copy")
            try:
                integrity.extract(archive, md5)
            except OSError as error:
                target = folder / filename.removesuffix(".gz")
                cache = integrity.DigestCache(folder)
                if target.is_file() and not integrity.extracted_problem(target, md5, cache):
                    continue  # another process extracted it at the same moment
                raise _error(info, root, origin, [str(error)],
                             f"{archive.name} could not be extracted") from error


def _error(info: DatasetInfo, root: Path, origin: str, found: list, reason: str,
           kind: type[DatasetNotFoundError] = DatasetNotFoundError) -> DatasetNotFoundError:
    listing = "\n  - ".join(str(p) for p in found)
    fixes = [p.fix for p in found if isinstance(p, Problem) and p.fix]
    if kind is DatasetCorruptError and fixes:
        state = "is damaged"
        fix = "\n     ".join(dict.fromkeys(fixes))
    else:
        state = "is not available"
        fix = (f"connect to the internet and run `coursekit data download {info.name}`, or "
               f"set {DATA_ENV} to a writable folder that holds {info.folder}/ with "
               "torchvision's files.")
    return kind(
        f"{info.name}: the dataset {state} under {root / info.folder} "
        f"(data folder {root}, given by {origin}).\n"
        f"  - {listing}\n"
        f"Why: {reason}.\n"
        f"Fix: {fix}"
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

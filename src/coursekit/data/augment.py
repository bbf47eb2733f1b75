"""Batched data augmentation on tensors: one call per batch instead of one PIL image at a time.

Every transform is a callable ``t(x, generator) -> x`` on an N×C×H×W batch (``uint8`` or
float, CPU or GPU), which is what :class:`coursekit.data.TensorLoader` expects for its
``augment`` argument. The random choices come from the given CPU ``torch.Generator``
(or torch's global one when it is ``None``), so a seeded loader replays exactly the same
augmentations: that is what lets a resumed run continue bit for bit.

The semantics follow ``torchvision.transforms``: :class:`RandomCrop` pads and then picks
an offset uniformly, :class:`RandomHorizontalFlip` mirrors each image with probability
``p`` and :class:`Normalize` standardises per channel. Note that ``TensorLoader``
normalises *before* it augments, so ``fill=0`` there pads with the dataset mean;
``padding_mode="reflect"`` does not depend on the order, and a loader built with
``normalize=False`` followed by ``Normalize`` reproduces torchvision's black padding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

Transform = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]
PADDING_MODES = ("constant", "reflect", "replicate")


def _check_batch(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(
            f"{name} expects a batch shaped N×C×H×W, got {shape}; add a batch dimension "
            "with x.unsqueeze(0) for a single image."
        )


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def _padding_map(length: int, padding: int, mode: str) -> torch.Tensor:
    """Source index of every padded position for ``reflect``/``replicate`` padding."""
    pos = torch.arange(-padding, length + padding)
    if mode == "reflect":  # torchvision/numpy "reflect": the edge pixel is not repeated
        pos = pos.abs()
        pos = torch.where(pos > length - 1, 2 * (length - 1) - pos, pos)
    return pos.clamp(0, length - 1)


def random_crop(x: torch.Tensor, size: int | Sequence[int] | None = None, padding: int = 4,
                generator: torch.Generator | None = None, *, padding_mode: str = "constant",
                fill: float = 0.0) -> torch.Tensor:
    """Pad each image by ``padding`` and cut a ``size`` crop at a random offset (per image).

    The whole batch is padded once; ``unfold`` then views every possible crop without
    copying, and one indexing operation picks each image's crop.
    """
    _check_batch(x, "random_crop")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, not {padding_mode!r}")
    n, _, h, w = x.shape
    th, tw = _pair(size) if size is not None else (h, w)
    if padding < 0:
        raise ValueError(f"padding must be ≥ 0, got {padding}")
    if padding_mode == "reflect" and padding >= min(h, w):
        raise ValueError(f"reflect padding {padding} needs images larger than it ({h}×{w})")
    if th > h + 2 * padding or tw > w + 2 * padding:
        raise ValueError(
            f"crop {th}×{tw} is larger than the padded image {h + 2 * padding}×{w + 2 * padding}; "
            "increase padding or reduce size"
        )
    top = torch.randint(0, h + 2 * padding - th + 1, (n,), generator=generator)
    left = torch.randint(0, w + 2 * padding - tw + 1, (n,), generator=generator)
    if padding == 0:
        padded = x
    elif padding_mode == "constant":
        padded = F.pad(x, (padding, padding, padding, padding), value=fill)
    else:
        rows = _padding_map(h, padding, padding_mode).to(x.device)
        cols = _padding_map(w, padding, padding_mode).to(x.device)
        padded = x.index_select(2, rows).index_select(3, cols)
    windows = padded.unfold(2, th, 1).unfold(3, tw, 1)  # N×C×(offsets)×(offsets)×th×tw, a view
    index = [t.to(x.device, non_blocking=True) for t in (torch.arange(n), top, left)]
    return windows[index[0], :, index[1], index[2]]


def random_hflip(x: torch.Tensor, p: float = 0.5,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left–right with probability ``p``."""
    _check_batch(x, "random_hflip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    chosen = torch.nonzero(torch.rand(len(x), generator=generator) < p).squeeze(1)
    chosen = chosen.to(x.device, non_blocking=True)
    out = x.clone()  # then overwrite only the flipped images: cheaper than a masked select
    return out.index_copy_(0, chosen, x.index_select(0, chosen).flip(3))


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Per-channel ``(x - mean) / std``; ``uint8`` input is first scaled to [0, 1]."""
    _check_batch(x, "normalize")
    if len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise ValueError(
            f"mean/std have {len(mean)}/{len(std)} values but the batch has {x.shape[1]} channels"
        )
    x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
    mean_t = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x - mean_t).div_(std_t)


class RandomCrop:
    """Batched ``torchvision.transforms.RandomCrop(size, padding)``."""

    def __init__(self, size: int | Sequence[int] | None = None, padding: int = 4, *,
                 padding_mode: str = "constant", fill: float = 0.0):
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, not {padding_mode!r}")
        self.size, self.padding, self.padding_mode, self.fill = size, padding, padding_mode, fill

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return random_crop(x, self.size, self.padding, generator,
                           padding_mode=self.padding_mode, fill=self.fill)

    def __repr__(self) -> str:
        return (f"RandomCrop(size={self.size}, padding={self.padding}, "
                f"padding_mode={self.padding_mode!r})")


class RandomHorizontalFlip:
    """Batched ``torchvision.transforms.RandomHorizontalFlip(p)``."""

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p}")
        self.p = p

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return random_hflip(x, self.p, generator)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize:
    """Batched ``ToTensor()`` + ``Normalize(mean, std)`` (``uint8`` is scaled to [0, 1] first)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return normalize(x, self.mean, self.std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Compose:
    """Apply transforms in order, passing the same generator to each."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for transform in self.transforms:
            x = transform(x, generator)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.transforms))
        return f"Compose([{inner}])"

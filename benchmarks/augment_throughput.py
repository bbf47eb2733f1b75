"""Benchmark 3: random crop + flip + normalise, batched on tensors vs DataLoader + PIL transforms.

The same Fashion-MNIST training images (flips make sense for clothes) go through
* the per-image path the chapters teach: torchvision dataset → PIL image →
  ``RandomCrop(28, padding=4)``, ``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize`` →
  ``DataLoader(batch_size=256, shuffle=True, num_workers=2)``;
* coursekit's path: the split as one uint8 tensor → ``TensorLoader`` (shuffle, batch 256) with
  ``augment.RandomCrop(28, padding=4)``, ``augment.RandomHorizontalFlip()``,
  ``augment.Normalize`` applied to whole batches.
Both yield normalised float batches of shape 256×1×28×28. The DataLoader's clock starts at
its first batch (worker start-up is not charged to it); the tensor path is timed over whole
epochs. Printed: images per second of each and their ratio.

    python benchmarks/augment_throughput.py [--workers 2] [--pil-images 20480] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from _common import parse, write_json
from torch.utils.data import DataLoader
from torchvision import transforms

from coursekit import data
from coursekit.data import augment

MIN_RATIO = 25.0
BATCH = 256


def pil_path(info, workers: int, images: int) -> float:
    pipeline = transforms.Compose([
        transforms.RandomCrop(28, padding=4), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(info.mean, info.std),
    ])
    dataset = data.load("fashion_mnist", "train", transform=pipeline)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers)
    batches = iter(loader)
    x, _ = next(batches)  # workers are up: start the clock
    assert x.shape == (BATCH, 1, 28, 28) and x.dtype == torch.float32
    start, seen = time.perf_counter(), 0
    for x, _ in batches:
        seen += len(x)
        if seen >= images:
            break
    return seen / (time.perf_counter() - start)


def tensor_path(split, epochs: int) -> float:
    pipeline = augment.Compose([
        augment.RandomCrop(28, padding=4), augment.RandomHorizontalFlip(),
        augment.Normalize(split.mean, split.std),
    ])
    loader = data.TensorLoader(split, BATCH, shuffle=True, seed=0, normalize=False,
                               augment=pipeline)
    x, _ = next(iter(loader))
    assert x.shape == (BATCH, 1, 28, 28) and x.dtype == torch.float32
    start, seen = time.perf_counter(), 0
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for x, _ in loader:
            seen += len(x)
    return seen / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--pil-images", type=int, default=20480,
                        help="images timed on the PIL path")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed on the tensor path")
    args, info = parse(parser)

    split = data.tensors("fashion_mnist", "train")
    tensor_rate = tensor_path(split, args.epochs)
    pil_rate = pil_path(split, args.workers, args.pil_images)
    ratio = tensor_rate / pil_rate
    print(f"DataLoader + PIL transforms ({args.workers} workers): {pil_rate:12,.0f} images/s")
    print(f"batched tensor augmentation:              {tensor_rate:12,.0f} images/s")
    print(f"ratio: {ratio:.1f}x")
    ok = ratio >= MIN_RATIO
    print(f"criterion  ratio ≥ {MIN_RATIO:.0f}x: {'met' if ok else 'NOT met'}")
    write_json(args.json, {"machine": info, "pil_images_per_s": pil_rate,
                           "tensor_images_per_s": tensor_rate, "ratio": ratio,
                           "workers": args.workers})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

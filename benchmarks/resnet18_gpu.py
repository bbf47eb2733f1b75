"""Benchmark 4 (needs a GPU): ResNet-18 on 32×32 images, coursekit's fast path vs the plain path.

plain  torchvision dataset + PIL transforms (random crop with padding 4, flip, ToTensor,
       Normalize) + DataLoader(num_workers, pin_memory), fp32, NCHW;
fast   the whole split as a uint8 tensor on the GPU, batched GPU augmentation
       (coursekit.data.augment), bf16 autocast, channels_last, optionally torch.compile.
Both train the same CIFAR-style ResNet-18 (coursekit.models.resnet.resnet18) with the same
initial weights, optimizer (SGD + Nesterov, one-cycle, label smoothing), batch size and
epochs through coursekit.train.fit. Printed: training throughput in images/s (second epoch,
so start-up and compilation are excluded) and wall time to a fixed test accuracy (clock
starts before the data are read).

The dataset is CIFAR-10 when its files are present, otherwise Fashion-MNIST padded to 32×32
(same network with one input channel); the script says which. Without CUDA it prints that
it was skipped and exits 0; ``--device cpu --smoke`` runs a seconds-long version to check
the code paths.

    python benchmarks/resnet18_gpu.py [--epochs 15] [--target 0.90] [--compile] [--json out]
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import torch
from _common import Clock, print_machine, write_json
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

from coursekit import data
from coursekit.data import augment
from coursekit.models.resnet import resnet18
from coursekit.train import Callback, fit, param_groups
from coursekit.util.repro import seed_everything, set_deterministic

TARGETS = {"cifar10": 0.90, "fashion_mnist": 0.93}


def pick_dataset(requested: str) -> str:
    if requested != "auto":
        return requested
    if not data.check_files("cifar10", data.data_root()):
        return "cifar10"
    print("CIFAR-10 is not available here: using Fashion-MNIST padded to 32×32 instead.\n")
    return "fashion_mnist"


class EpochClock(Callback):
    """Wall time at every epoch end; optionally stop once test accuracy reaches ``target``."""

    def __init__(self, clock: Clock, label: str, target: float | None = None):
        self.clock, self.label, self.target = clock, label, target
        self.ends: list[float] = []
        self.reached_at = math.nan

    def on_epoch_end(self, epoch, history, model):
        self.ends.append(self.clock())
        accuracy = f", test accuracy {history.val_acc[-1]:.2%}" if history.val_acc else ""
        print(f"  {self.label:<5} epoch {epoch}: {self.ends[-1]:.1f} s{accuracy}", flush=True)
        if self.target is not None and history.val_acc and history.val_acc[-1] >= self.target:
            self.reached_at = self.ends[-1]
            return True
        return False


def fast_loaders(name: str, batch: int, device, size: int | None):
    train_split = data.tensors(name, "train", size=size)
    test_split = data.tensors(name, "test", size=size)
    norm = augment.Normalize(train_split.mean, train_split.std)
    if name == "cifar10":
        train_aug = augment.Compose([augment.RandomCrop(32, padding=4),
                                     augment.RandomHorizontalFlip(), norm])
        test_aug = norm
    else:  # 28×28 → 32×32: crop 32 from the image padded by 4 (train), pad by 2 (test)
        train_aug = augment.Compose([augment.RandomCrop(32, padding=4),
                                     augment.RandomHorizontalFlip(), norm])
        test_aug = augment.Compose([augment.RandomCrop(32, padding=2), norm])
    train = data.TensorLoader(train_split, batch, shuffle=True, seed=0, device=device,
                              augment=train_aug, normalize=False, drop_last=True)
    test = data.TensorLoader(test_split, 1000, device=device, augment=test_aug, normalize=False)
    return train, test


def plain_loaders(name: str, batch: int, workers: int, size: int | None):
    info = data.DATASETS[name]
    norm = [transforms.ToTensor(), transforms.Normalize(info.mean, info.std)]
    train_tf = transforms.Compose([transforms.RandomCrop(32, padding=4),
                                   transforms.RandomHorizontalFlip(), *norm])
    test_tf = transforms.Compose(([] if name == "cifar10" else [transforms.Pad(2)]) + norm)
    train_set = data.load(name, "train", transform=train_tf)
    test_set = data.load(name, "test", transform=test_tf)
    if size is not None:
        train_set, test_set = Subset(train_set, range(size)), Subset(test_set, range(size))
    pin = torch.cuda.is_available()
    common = {"num_workers": workers, "pin_memory": pin, "persistent_workers": workers > 0}
    return (DataLoader(train_set, batch, shuffle=True, drop_last=True, **common),
            DataLoader(test_set, 1000, **common))


def run(path: str, name: str, args, device, *, target: float | None, epochs: int) -> dict:
    clock = Clock()
    if path == "fast":
        train, test = fast_loaders(name, args.batch_size, device, args.size)
        switches = {"amp": "bf16", "channels_last": True, "compile": args.compile}
    else:
        train, test = plain_loaders(name, args.batch_size, args.workers, args.size)
        switches = {"amp": None, "channels_last": False, "compile": False}
    seed_everything(0)
    model = resnet18(10, in_channels=3 if name == "cifar10" else 1).to(device)
    optimizer = torch.optim.SGD(param_groups(model, 5e-4), lr=0.2, momentum=0.9, nesterov=True)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.2, pct_start=0.25,
                                                    total_steps=epochs * len(train))
    timer = EpochClock(clock, path, target)
    history = fit(model, train, test if target is not None else None, epochs=epochs,
                  optimizer=optimizer, scheduler=scheduler, device=device,
                  loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1), callbacks=[timer],
                  progress=False, **switches)
    seen = len(train) * args.batch_size
    second = timer.ends[1] - timer.ends[0] if len(timer.ends) > 1 else timer.ends[0]
    starts = [0.0] + timer.ends[:-1]
    return {"images_per_s": seen / second,
            "epoch_seconds": [end - start for start, end in zip(starts, timer.ends, strict=True)],
            "reached_at": timer.reached_at, "val_acc": history.val_acc}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="auto", choices=["auto", "cifar10", "fashion_mnist"])
    parser.add_argument("--epochs", type=int, default=15, help="cap for the accuracy runs")
    parser.add_argument("--target", type=float, default=None,
                        help="test accuracy to reach (default: 0.90 CIFAR-10, 0.93 Fashion-MNIST)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--compile", action="store_true", help="also torch.compile the model")
    parser.add_argument("--device", default=None, help="default: cuda, else skip")
    parser.add_argument("--smoke", action="store_true", help="tiny subset, to check the script")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.device is None and not torch.cuda.is_available():
        print("benchmark 4 skipped: no CUDA device here (run it where a GPU is available; "
              "--device cpu --smoke checks the code paths on a CPU).")
        return 0
    device = torch.device(args.device or "cuda")
    args.size = 512 if args.smoke else None
    if args.smoke:
        args.batch_size, args.epochs, args.workers = 64, 2, 0
    set_deterministic(False)  # benchmark speed, as a practitioner would; cudnn picks kernels
    info = print_machine()
    name = pick_dataset(args.dataset)
    target = args.target if args.target is not None else TARGETS[name]
    print(f"dataset {name}, batch {args.batch_size}, device {device}\n")

    print("throughput (2 epochs without evaluation; the second is timed)")
    throughput = {path: run(path, name, args, device, target=None, epochs=2)["images_per_s"]
                  for path in ("plain", "fast")}
    print(f"time to {target:.1%} test accuracy (at most {args.epochs} epochs)")
    accuracy = {path: run(path, name, args, device, target=target, epochs=args.epochs)
                for path in ("plain", "fast")}

    print()
    for path in ("plain", "fast"):
        reached = accuracy[path]["reached_at"]
        when = (f"{reached:.1f} s" if not math.isnan(reached) else
                f"not reached (best {max(accuracy[path]['val_acc']):.2%})")
        print(f"{path:<5} {throughput[path]:10,.0f} images/s   time to {target:.0%}: {when}")
    print(f"throughput ratio fast/plain: {throughput['fast'] / throughput['plain']:.2f}x")
    if not any(math.isnan(accuracy[p]["reached_at"]) for p in accuracy):
        ratio = accuracy["plain"]["reached_at"] / accuracy["fast"]["reached_at"]
        print(f"time-to-accuracy ratio plain/fast: {ratio:.2f}x")
    write_json(args.json, {"machine": info, "dataset": name, "target": target,
                           "batch_size": args.batch_size, "compile": args.compile,
                           "throughput": throughput, "accuracy": accuracy})
    return 0


if __name__ == "__main__":
    sys.exit(main())

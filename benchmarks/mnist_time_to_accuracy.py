"""Benchmark 2: wall time to 99.0 % MNIST test accuracy on the CPU, coursekit vs the tutorial.

reference  The common PyTorch MNIST recipe (pytorch/examples, mnist/main.py): torchvision
           dataset + DataLoader with ToTensor/Normalize, the 2-conv/2-linear CNN with dropout,
           Adadelta lr 1.0, batch 64, StepLR(step_size=1, gamma=0.7), its own training loop.
coursekit  Whole-split uint8 tensors in memory (coursekit.data.TensorLoader), a small CNN with
           BatchNorm, SGD with Nesterov momentum under a one-cycle schedule, label smoothing,
           bf16 autocast + channels_last (the CPU equivalents of the GPU fast path), trained
           by coursekit.train.fit.

Both clocks start before the data are read and include every evaluation; both evaluate the
full 10,000-image test set after every epoch and stop at the first evaluation at or above the
target. The reference gets a time budget: if it would run past it, it stops and the speed-up
is reported as a lower bound.

    python benchmarks/mnist_time_to_accuracy.py [--threads 2] [--budget 900] [--json out.json]
"""

from __future__ import annotations

import argparse
import math
import sys

import torch
from _common import Clock, parse, write_json
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torchvision import transforms

from coursekit import data
from coursekit.train import Callback, fit
from coursekit.util.repro import seed_everything

MAX_SECONDS = 60.0
MIN_SPEEDUP = 5.0


# ---------------------------------------------------------------- the tutorial's recipe
class TutorialNet(nn.Module):
    """pytorch/examples mnist/main.py ``Net``, unchanged."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def reference(target: float, budget: float, max_epochs: int = 14) -> dict:
    clock = Clock()
    seed_everything(1)  # the tutorial's default seed
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_loader = DataLoader(data.load("mnist", "train", transform=tf), batch_size=64,
                              shuffle=True)
    test_loader = DataLoader(data.load("mnist", "test", transform=tf), batch_size=1000)
    model = TutorialNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    accuracies, previous = [], 0.0
    for epoch in range(1, max_epochs + 1):
        started = clock()
        if epoch > 1 and started + previous > budget:
            print(f"  reference: stopping, epoch {epoch} would end past the {budget:.0f} s budget")
            break
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.nll_loss(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test_loader:
                correct += (model(x).argmax(1) == y).sum().item()
        scheduler.step()
        accuracies.append(correct / len(test_loader.dataset))
        epoch_end = clock()
        previous = epoch_end - started
        print(f"  reference  epoch {epoch}: test accuracy {accuracies[-1]:.2%} "
              f"at {epoch_end:.1f} s", flush=True)
        if accuracies[-1] >= target:
            return {"reached": True, "seconds": epoch_end, "epochs": epoch,
                    "accuracy": accuracies}
    return {"reached": False, "seconds": clock(), "epochs": len(accuracies),
            "accuracy": accuracies}


# ---------------------------------------------------------------- coursekit's recipe
def small_cnn(widths=(16, 32, 64)) -> nn.Sequential:
    """Three conv–BN–ReLU–max-pool stages (28→14→7→3) and a linear classifier."""
    layers, channels = [], 1
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        channels = width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 9, 10))


class StopAtTarget(Callback):
    def __init__(self, clock: Clock, target: float):
        self.clock, self.target, self.seconds = clock, target, math.nan

    def on_epoch_end(self, epoch, history, model):
        now = self.clock()
        print(f"  coursekit  epoch {epoch}: test accuracy {history.val_acc[-1]:.2%} at {now:.1f} s",
              flush=True)
        if history.val_acc[-1] >= self.target:
            self.seconds = now
            return True
        return False


def coursekit_recipe(target: float, epochs: int = 2) -> dict:
    clock = Clock()
    seed_everything(0)
    train = data.TensorLoader(data.tensors("mnist", "train"), 128, shuffle=True, seed=0,
                              drop_last=True)
    test = data.TensorLoader(data.tensors("mnist", "test"), 2000)
    model = small_cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.2, pct_start=0.25,
                                                    total_steps=epochs * len(train))
    stop = StopAtTarget(clock, target)
    history = fit(model, train, test, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                  loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1), amp="bf16",
                  channels_last=True, callbacks=[stop], progress=False)
    reached = not math.isnan(stop.seconds)
    return {"reached": reached, "seconds": stop.seconds if reached else clock(),
            "epochs": len(history), "accuracy": history.val_acc}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--budget", type=float, default=900.0,
                        help="seconds the reference may run (default 900)")
    args, info = parse(parser)

    print("coursekit recipe")
    ours = coursekit_recipe(args.target)
    print("reference recipe (pytorch/examples mnist)")
    ref = reference(args.target, args.budget)

    print()
    for name, result in (("coursekit", ours), ("reference", ref)):
        best = max(result["accuracy"]) if result["accuracy"] else math.nan
        epochs = f"{result['epochs']} epoch{'s' if result['epochs'] != 1 else ''}"
        status = (f"reached {args.target:.1%} in {result['seconds']:.1f} s ({epochs})"
                  if result["reached"] else
                  f"did NOT reach {args.target:.1%} in {result['seconds']:.1f} s "
                  f"(best {best:.2%}, {epochs})")
        print(f"{name:<10} {status}")
    speedup = ref["seconds"] / ours["seconds"]
    bound = "" if ref["reached"] else " (lower bound: the reference did not reach the target)"
    print(f"speed-up   {speedup:.1f}x{bound}")
    ok_time = ours["reached"] and ours["seconds"] <= MAX_SECONDS
    ok_speed = ours["reached"] and speedup >= MIN_SPEEDUP
    print(f"criteria   coursekit ≤ {MAX_SECONDS:.0f} s: {'met' if ok_time else 'NOT met'}; "
          f"speed-up ≥ {MIN_SPEEDUP:.0f}x: {'met' if ok_speed else 'NOT met'}")
    write_json(args.json, {"machine": info, "coursekit": ours, "reference": ref,
                           "speedup": speedup, "speedup_is_lower_bound": not ref["reached"]})
    return 0 if ok_time and ok_speed else 1


if __name__ == "__main__":
    sys.exit(main())

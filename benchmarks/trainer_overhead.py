"""Benchmark 1: what coursekit.train.fit costs on top of a bare hand-written PyTorch loop.

Same model (same initial weights), same in-memory MNIST batches in the same order, same
optimizer and number of steps. The bare loop does forward, loss, zero_grad, backward, step
and nothing else; fit adds its bookkeeping (loss/accuracy sums, callbacks, progress bar,
scheduler hooks). Both runs end with bit-identical weights, which the script checks, so the
comparison is like for like. Runs alternate (bare, fit, fit without a progress bar, bare, ...)
and the ratio is taken on the fastest of the repeats, the usual way to strip interference
from other processes on a shared machine; the medians are printed too.

    python benchmarks/trainer_overhead.py [--repeats 5] [--steps 150] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch
from _common import parse, write_json
from torch import nn
from torch.nn import functional as F

from coursekit import data
from coursekit.train import fit

MAX_RATIO = 1.03


def model_under_test() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 49, 10),
    )


def bare_loop(model, loader, optimizer) -> None:
    model.train()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def trainer(progress: bool):
    def run(model, loader, optimizer) -> None:
        fit(model, loader, epochs=1, optimizer=optimizer, progress=progress)
    return run


def timed(run, initial, loader) -> tuple[float, dict]:
    model = copy.deepcopy(initial)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    loader.set_epoch(0)
    start = time.perf_counter()
    run(model, loader, optimizer)
    return time.perf_counter() - start, model.state_dict()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps per run")
    parser.add_argument("--batch-size", type=int, default=128)
    args, info = parse(parser)

    torch.manual_seed(0)
    images = data.tensors("mnist", "train", size=args.steps * args.batch_size)
    loader = data.TensorLoader(images, args.batch_size, shuffle=True, seed=0)
    initial = model_under_test()
    runs = {"bare loop": bare_loop, "fit": trainer(progress=True),
            "fit, progress=False": trainer(progress=False)}
    timed(bare_loop, initial, loader)  # warm-up: allocator, oneDNN kernels, page cache
    times = {name: [] for name in runs}
    weights = {}
    for repeat in range(args.repeats):
        for name, run in runs.items():
            seconds, weights[name] = timed(run, initial, loader)
            times[name].append(seconds)
        print(f"repeat {repeat + 1}: " + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()),
              file=sys.stderr, flush=True)
    for name in runs:
        same = all(torch.equal(weights[name][k], v) for k, v in weights["bare loop"].items())
        assert same, f"{name} did not reproduce the bare loop's weights"

    print(f"{len(loader)} steps of batch {args.batch_size}, {args.repeats} repeats; "
          "final weights bit-identical across all three")
    best, median = ({n: f(t) for n, t in times.items()} for f in (min, statistics.median))
    for name in runs:
        print(f"{name:<20} fastest {best[name]:.3f} s   median {median[name]:.3f} s")
    ratios = {name: best[name] / best["bare loop"] for name in runs if name != "bare loop"}
    for name, ratio in ratios.items():
        print(f"ratio {name} / bare loop: {ratio:.3f} (fastest), "
              f"{median[name] / median['bare loop']:.3f} (median)")
    ok = ratios["fit"] <= MAX_RATIO
    print(f"criterion  fit / bare loop ≤ {MAX_RATIO}: {'met' if ok else 'NOT met'}")
    write_json(args.json, {"machine": info, "steps": len(loader), "times": times,
                           "ratios_fastest": ratios})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

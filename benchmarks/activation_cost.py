"""Benchmark 5: forward + backward time of the four activations and of a linear layer.

Chapter 2 compares the activations' cost by counting (``activations.forward_backward_cost``:
matrix FLOPs and elements kept for backward) because times depend on the machine. This
script measures the times: ``fn(x).backward(g)`` on one float32 tensor of ``--elements``
elements, for sigmoid, tanh, ReLU, leaky ReLU and ``nn.Linear(256, 256)`` (applied to the
same elements as rows of 256), with ``torch.utils.benchmark`` (fastest of repeated runs,
the one least disturbed by other processes). The contenders alternate round by round, so
a change in the machine's load hits all of them; printed: the fastest time of each and its
ratio to ReLU, and the median over rounds.

The chapter's reading predicts: the four activations within a small factor of each other
on a large tensor (element-wise work is bound by memory traffic), the linear layer many
times slower. The script exits with status 1 when the linear layer is not at least twice
as slow as ReLU (criterion ``--min-linear-ratio``).

    python benchmarks/activation_cost.py [--elements 4194304] [--threads 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys

import torch
from _common import parse, write_json
from torch import nn

from coursekit.scratch import activations


def contenders() -> dict:
    fns = {name: act.function for name, act in activations.ACTIVATIONS.items()}
    fns["Linear(256, 256)"] = nn.Linear(256, 256)
    return fns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=2**22)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--min-linear-ratio", type=float, default=2.0)
    args, info = parse(parser, threads=1)
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # a CUDA notice
    from torch.utils import benchmark

    torch.manual_seed(0)
    x = torch.randn(args.elements // 256, 256, requires_grad=True)
    upstream = torch.randn_like(x)
    fns = contenders()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            timer = benchmark.Timer(stmt="x.grad = None; fn(x).backward(g)",
                                    globals={"fn": fn, "x": x, "g": upstream},
                                    num_threads=args.threads)
            times[name].append(min(timer.blocked_autorange(min_run_time=args.min_run_time).times))

    best = {name: min(t) for name, t in times.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"{x.numel():,} float32 elements, forward + backward, {args.threads} thread(s), "
          f"{args.rounds} rounds")
    print(f"{'':>16} {'fastest':>10} {'x ReLU':>7} {'median':>10} {'x ReLU':>7}")
    for name in fns:
        print(f"{name:>16} {best[name] * 1e3:>8.2f}ms {best[name] / best['relu']:>7.2f} "
              f"{median[name] * 1e3:>8.2f}ms {median[name] / median['relu']:>7.2f}")
    ratio = best["Linear(256, 256)"] / best["relu"]
    met = ratio >= args.min_linear_ratio
    print(f"linear / ReLU = {ratio:.1f} (criterion >= {args.min_linear_ratio}): "
          f"{'met' if met else 'NOT met'}")
    write_json(args.json, {"machine": info, "elements": x.numel(), "threads": args.threads,
                           "fastest_s": best, "median_s": median,
                           "ratio_to_relu": {n: best[n] / best["relu"] for n in fns}})
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

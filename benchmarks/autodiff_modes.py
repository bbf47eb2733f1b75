"""Benchmark 5: what chapter 1's operation counts look like in wall-clock time.

Chapter 1 checks every cost claim on exact counts (the engine's operations, multiply-adds of
a Jacobian chain, FLOPs from ``FlopCounterMode``), never on time, so that it passes on a busy
machine. This script times the same computations side by side and prints each time ratio
next to the count ratio it illustrates:

1. our engine's gradient of ``sum(tanh(x_i x_(i+1)))``: forward mode (n dual passes) vs
   reverse mode (one trace + one backward), for growing n;
2. the Jacobian chains of an MLP classifier + loss (widths shrink) and of a decoder (widths
   grow), multiplied in forward and in reverse order;
3. ``torch.func.jacfwd`` vs ``jacrev`` on the same two networks;
4. a gradient (forward + backward) vs the forward pass alone, for the MLP and LeNet5.

Criterion: in every comparison the faster side is the one with fewer counted operations, and
a gradient takes at most 5 forward passes of time (the rule of thumb chapter 1 quotes).

    python benchmarks/autodiff_modes.py [--min-run-time 0.5] [--threads 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from itertools import pairwise

import torch
from _common import parse, write_json
from torch.func import jacfwd, jacrev
from torch.nn import functional as F

from coursekit import data
from coursekit.autodiff import chain, counting, forward_gradient, gradient, tanh
from coursekit.autodiff.autograd import flops, layer_jacobians
from coursekit.models import lenet
from coursekit.models.mlp import mlp
from coursekit.util.timing import seconds

MAX_GRADIENT_FORWARDS = 5.0
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # a CUDA-toolkit notice
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated")  # jacfwd, once


def tanh_chain(*xs):
    return sum(tanh(u * v) for u, v in pairwise(xs))


def row(name: str, slow: str, fast: str, count_ratio: float, time_ratio: float) -> dict:
    print(f"{name:<28} {slow + ' / ' + fast:<30} {count_ratio:>10.1f} {time_ratio:>10.1f}")
    return {"name": name, "ratio of": f"{slow} / {fast}", "count": count_ratio,
            "time": time_ratio}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--min-run-time", type=float, default=0.5,
                        help="seconds each timing repeats for (median taken)")
    args, info = parse(parser)
    t = args.min_run_time
    rows = []
    print(f"{'comparison':<28} {'ratio of':<30} {'counted':>10} {'timed':>10}")

    # 1. our engine, forward vs reverse mode
    generator = torch.Generator().manual_seed(0)
    for n in (10, 40, 160):
        point = torch.randn(n, generator=generator, dtype=torch.float64).tolist()
        with counting() as fw:
            forward_gradient(tanh_chain, *point)
        with counting() as rv:
            gradient(tanh_chain, *point)
        rows.append(row(f"engine gradient, n = {n}", "forward mode", "reverse mode",
                        fw.total / rv.total,
                        seconds(lambda p=point: forward_gradient(tanh_chain, *p), t)
                        / seconds(lambda p=point: gradient(tanh_chain, *p), t)))

    # 2. and 3. Jacobian chains and whole-network Jacobians
    test_set = data.tensors("mnist", "test", size=256)
    images, labels = test_set.images.float() / 255, test_set.labels
    torch.manual_seed(0)
    classifier, decoder = mlp([784, 512, 256, 10]), mlp([10, 256, 512, 784])
    image, label, code = images[0].flatten(), labels[0], torch.randn(10)
    networks = {
        "classifier + loss": (
            [classifier.block1, classifier.block2, classifier.head,
             lambda logits: F.cross_entropy(logits, label).reshape(1)], image,
            lambda v: F.cross_entropy(classifier(v[None]), label[None])),
        "decoder": ([decoder.block1, decoder.block2, decoder.head], code,
                    lambda z: decoder(z[None])[0]),
    }
    for name, (layers, point, fn) in networks.items():
        jacobians = layer_jacobians(layers, point)
        macs = {o: chain.multiply(jacobians, o)[1] for o in chain.ORDERS}
        times = {o: seconds(lambda o=o, j=jacobians: chain.multiply(j, o), t)
                 for o in chain.ORDERS}
        slow, fast = sorted(chain.ORDERS, key=macs.get, reverse=True)
        rows.append(row(f"chain, {name}", f"{slow} order", f"{fast} order",
                        macs[slow] / macs[fast], times[slow] / times[fast]))
        modes = {m.__name__: (lambda m=m, fn=fn, p=point: m(fn)(p)) for m in (jacfwd, jacrev)}
        counts = {m: flops(run) for m, run in modes.items()}
        times = {m: seconds(run, t) for m, run in modes.items()}
        slow, fast = sorted(counts, key=counts.get, reverse=True)
        rows.append(row(f"Jacobian, {name}", slow, fast, counts[slow] / counts[fast],
                        times[slow] / times[fast]))

    # 4. a gradient against the forward pass
    torch.manual_seed(0)
    for name, model in [("MLP 784-512-256-10", classifier), ("LeNet5", lenet.lenet5("modern"))]:
        def loss(model=model):
            return F.cross_entropy(model(images), labels)

        forward = flops(loss)
        both = flops(lambda loss=loss: loss().backward())
        rows.append(row(f"gradient, {name}", "forward + backward", "forward",
                        both / forward,
                        seconds(lambda loss=loss: loss().backward(), t) / seconds(loss, t)))

    agree = all((r["count"] >= 1) == (r["time"] >= 1) for r in rows)
    cheap = all(r["time"] <= MAX_GRADIENT_FORWARDS for r in rows
                if r["name"].startswith("gradient"))
    print(f"\nfaster side = fewer counted operations everywhere: {'yes' if agree else 'no'}")
    print(f"a gradient within {MAX_GRADIENT_FORWARDS:g} forward passes of time: "
          f"{'yes' if cheap else 'no'}")
    write_json(args.json, {"machine": info, "min_run_time": t, "rows": rows})
    return 0 if agree and cheap else 1


if __name__ == "__main__":
    sys.exit(main())

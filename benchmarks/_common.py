"""Shared helpers for the benchmark scripts: machine description and a plain timer."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """What the numbers were measured on (printed by every benchmark, kept in RESULTS.md)."""
    info = {
        "cpu": f"{cpu_model()} ({os.cpu_count()} logical cores)",
        "torch threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}",
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def print_machine() -> dict[str, str]:
    info = machine()
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    print()
    return info


def parse(parser: argparse.ArgumentParser, threads: int | None = None
          ) -> tuple[argparse.Namespace, dict[str, str]]:
    """Add the options every benchmark has (``--threads``, ``--json``), parse, set the torch
    thread count and print the machine; return the arguments and the machine description."""
    parser.add_argument("--threads", type=int, default=threads,
                        help=f"torch threads (default: {threads or 'all'})")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args, print_machine()


def write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {path}")


class Clock:
    """Wall time since creation."""

    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start

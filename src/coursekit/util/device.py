"""Which device to compute on: one rule, so chapters, the trainer and DDP agree."""

from __future__ import annotations

import torch


def select_device(prefer: str | None = None) -> torch.device:
    """CUDA if present, then Apple's MPS, else the CPU. ``prefer`` forces a device."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")

"""The GPU fast path: bf16 mixed precision, channels_last, torch.compile, async copies.

Each switch has a CPU equivalent, so the same code path runs (and is tested) without a GPU;
``"auto"``/``None`` turn a switch on only where it pays off, on CUDA.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

AMP_CHOICES = ("auto", "bf16", None)


@dataclass(frozen=True)
class FastPath:
    """Resolved settings for one run."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    compile: dict[str, Any] | None  # keyword arguments for torch.compile, None: eager

    def autocast(self):
        """Mixed-precision context for the forward pass (a no-op when AMP is off)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Move a batch to the device (asynchronously from pinned memory) in the right layout."""
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def describe(self) -> str:
        amp = str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else "off"
        return (f"device={self.device}, amp={amp}, channels_last={self.channels_last}, "
                f"compile={'on' if self.compile is not None else 'off'}")


def resolve(device: torch.device, model: nn.Module, amp: str | None = "auto",
            channels_last: bool | None = None,
            compile: bool | dict[str, Any] = False) -> FastPath:
    """Turn the user's switches into concrete settings (``"auto"``/``None``: on for CUDA)."""
    if amp is False:
        amp = None
    if amp not in AMP_CHOICES:
        raise ValueError(
            f"amp must be one of {AMP_CHOICES}, not {amp!r}. Only bf16 is offered: it needs no "
            "loss scaling, unlike fp16."
        )
    on_cuda = device.type == "cuda"
    if amp == "auto":
        amp = "bf16" if on_cuda and torch.cuda.is_bf16_supported() else None
    if channels_last is None:
        channels_last = on_cuda and any(isinstance(m, nn.Conv2d) for m in model.modules())
    if compile is True:
        compile = {}
    elif compile is False or compile is None:
        compile = None
    elif not isinstance(compile, dict):
        raise ValueError(f"compile must be True, False or a dict of torch.compile options, "
                         f"not {compile!r}")
    return FastPath(device, torch.bfloat16 if amp == "bf16" else None, bool(channels_last),
                    compile)

"""Weight decay done the usual way: decay weights, not biases or normalisation parameters."""

from __future__ import annotations

from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two optimizer parameter groups: matrices/kernels decayed, 1-d tensors not.

    Biases and BatchNorm/LayerNorm scales are 1-d; shrinking them towards zero only hurts.
    Use as ``torch.optim.SGD(param_groups(model, 5e-4), lr=0.1, momentum=0.9)``.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be ≥ 0, got {weight_decay}")
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.dim() > 1 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]

"""Looking inside PyTorch's autograd: what it saves for backward, and a chain's Jacobians.

:func:`saved_tensors` records, through ``torch.autograd.graph.saved_tensors_hooks``, every
tensor the operations of a forward pass keep alive for the backward pass (the memory price of
reverse mode). :func:`layer_jacobians` evaluates ``J_1, ..., J_L`` of a composition of layers
along a forward pass, the input of :func:`.chain.multiply`. :func:`flops` counts the
floating-point operations of the matrix products a function runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch.func import jacrev
from torch.utils.flop_counter import FlopCounterMode


def saved_tensors(fn: Callable[[], object], exclude: Iterable[torch.Tensor] = ()):
    """Run ``fn()``; return its result and the tensors autograd saved for backward.

    Tensors sharing storage with one of ``exclude`` (e.g. ``model.parameters()``, in
    memory anyway) are left out; a tensor saved by two operations is listed once.
    Under ``torch.no_grad()`` nothing is recorded, so the list is empty.
    """
    skip = {t.data_ptr() for t in exclude}
    saved: dict[int, torch.Tensor] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.data_ptr() not in skip:
            saved.setdefault(tensor.data_ptr(), tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = fn()
    return result, list(saved.values())


def nbytes(tensors: Iterable[torch.Tensor]) -> int:
    """Total bytes of the tensors' elements."""
    return sum(t.numel() * t.element_size() for t in tensors)


def layer_jacobians(layers: Sequence[Callable], h: torch.Tensor) -> list[torch.Tensor]:
    """``[J_1, ..., J_L]`` of ``layers`` applied in turn to ``h``, each ``n_l × n_{l-1}``.

    ``J_l`` is evaluated at the input the forward pass gives layer ``l``; every layer maps a
    single example (no batch dimension), and its Jacobian is flattened to a matrix.
    """
    if not layers:
        raise ValueError("layer_jacobians needs at least one layer.")
    jacobians = []
    for layer in layers:
        jacobians.append(jacrev(layer)(h).reshape(-1, h.numel()))
        h = layer(h)
    return jacobians


def flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matrix products and convolutions ``fn()`` runs (``FlopCounterMode``).

    Two per multiply-add; element-wise operations and pooling count as zero.
    """
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()

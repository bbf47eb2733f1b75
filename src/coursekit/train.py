"""The training loop every chapter and lab shares: ``fit`` and ``evaluate``.

Chapters never carry their own loops: they build a model, an optimizer and loaders, call
:func:`fit`, and read the returned :class:`History` (plain data: lists of numbers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm


@dataclass
class History:
    """Per-epoch metrics as plain lists, ready for plotting or asserting."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return {k: list(v) for k, v in self.__dict__.items()}


def evaluate(model: nn.Module, loader: Iterable, *, device: torch.device | str | None = None,
             loss_fn: Callable | None = None) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over ``loader`` (no gradients, eval mode)."""
    loss_fn = loss_fn or nn.functional.cross_entropy
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss_sum += loss_fn(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            total += len(y)
    model.train(was_training)
    return {"loss": loss_sum / total, "acc": correct / total}


def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable | None = None, *,
        epochs: int, optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        loss_fn: Callable | None = None, device: torch.device | str | None = None,
        progress: bool = True) -> History:
    """Train ``model`` for ``epochs`` and return its :class:`History`.

    ``scheduler`` is stepped once per epoch. ``train_loader`` may be a
    :class:`~coursekit.data.TensorLoader` or a torch ``DataLoader``.
    """
    loss_fn = loss_fn or nn.functional.cross_entropy
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    history = History()
    for epoch in range(epochs):
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch)
        model.train()
        start = time.perf_counter()
        total, correct, loss_sum = 0, 0, 0.0
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                   disable=not progress)
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            total += len(y)
        history.lr.append(optimizer.param_groups[0]["lr"])
        if scheduler is not None:
            scheduler.step()
        history.epoch.append(epoch + 1)
        history.train_loss.append(loss_sum / total)
        history.train_acc.append(correct / total)
        if val_loader is not None:
            metrics = evaluate(model, val_loader, device=device, loss_fn=loss_fn)
            history.val_loss.append(metrics["loss"])
            history.val_acc.append(metrics["acc"])
        history.seconds.append(time.perf_counter() - start)
    return history

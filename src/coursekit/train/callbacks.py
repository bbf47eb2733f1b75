"""Callbacks: the few hooks :func:`~coursekit.train.fit` calls, kept deliberately minimal.

Subclass :class:`Callback` and override what you need. ``on_epoch_end`` may return ``True``
to stop training. Callbacks that keep state implement ``state_dict``/``load_state_dict``
so that a checkpoint restores them too.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .history import History


class Callback:
    """Base class: every hook is a no-op."""

    def on_batch_end(self, step: int, loss: torch.Tensor) -> None:
        """After each optimizer step; ``step`` counts steps since the start of training."""

    def on_epoch_end(self, epoch: int, history: History, model: nn.Module) -> bool | None:
        """After each epoch (``epoch`` is 1-based, ``history`` already holds it)."""

    def on_fit_end(self, history: History, model: nn.Module) -> None:
        """Once, when training ends (also after an early stop)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best weights.

    ``mode="auto"`` minimises metrics whose name contains ``loss`` and maximises the others.
    An improvement must beat the best value by more than ``min_delta``.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "auto", restore_best: bool = True):
        if patience < 1:
            raise ValueError(f"patience must be ≥ 1, got {patience}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', not {mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = ("min" if "loss" in monitor else "max") if mode == "auto" else mode
        self.restore_best = restore_best
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, history: History, model: nn.Module) -> bool:
        try:
            value = history[self.monitor][-1]
        except (KeyError, IndexError):
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which this run does not record "
                f"(it has {history.names()}). Pass a val_loader to fit, or monitor='train_loss'."
            ) from None
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_state = {k: v.detach().to("cpu", copy=True)
                                   for k, v in model.state_dict().items()}
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_fit_end(self, history: History, model: nn.Module) -> None:
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best_state = state["best_state"]

"""Metrics measured at the end of every epoch on data other than the validation set.

``fit`` records ``train_loss`` as the mean of the batch losses over an epoch, while the
model is still changing; the validation loss is measured once, with the weights at the
epoch's end. :class:`EvaluateEachEpoch` measures any loader the second way, so that, for
instance, the training set can be compared with the test set on equal terms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from torch import nn

from .callbacks import Callback
from .history import History
from .loop import evaluate


class EvaluateEachEpoch(Callback):
    """After each epoch, evaluate the model on ``loader`` as ``fit`` evaluates ``val_loader``.

    The results accumulate in ``loss`` and ``acc`` (one entry per epoch). Evaluation runs
    without gradients and draws no random numbers, so it does not change the training run.
    """

    def __init__(self, loader: Iterable, *, loss_fn: Callable | None = None):
        self.loader = loader
        self.loss_fn = loss_fn
        self.loss: list[float] = []
        self.acc: list[float] = []

    def on_epoch_end(self, epoch: int, history: History, model: nn.Module) -> None:
        metrics = evaluate(model, self.loader, loss_fn=self.loss_fn)
        self.loss.append(metrics["loss"])
        self.acc.append(metrics["acc"])

    def state_dict(self) -> dict[str, Any]:
        return {"loss": list(self.loss), "acc": list(self.acc)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loss, self.acc = list(state["loss"]), list(state["acc"])

"""What a training run measured, epoch by epoch, kept as plain data (lists of numbers)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SCALARS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


@dataclass
class History:
    """Per-epoch metrics as plain lists, ready for plotting, asserting or ``json.dump``.

    ``lr`` is the learning rate at the epoch's first step, ``seconds`` the epoch's wall time
    (training plus evaluation). ``val_topk[k]`` holds top-``k`` validation accuracy when
    :func:`~coursekit.train.fit` was asked for it (``topk=(5,)``); it is also reachable as
    ``history["val_top5"]``. ``train_acc``/``val_acc`` are NaN when the task is not
    classification (targets that are not class indices).
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    val_topk: dict[int, list[float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.epoch)

    def __getitem__(self, name: str) -> list:
        """``history["val_loss"]``, ``history["val_top5"]``: a metric by name."""
        if name in SCALARS:
            return getattr(self, name)
        if name.startswith("val_top") and name[7:].isdigit() and int(name[7:]) in self.val_topk:
            return self.val_topk[int(name[7:])]
        raise KeyError(f"History has no metric {name!r}; available: {self.names()}")

    def names(self) -> list[str]:
        """Metrics that hold values (empty lists, e.g. ``val_loss`` without validation, omitted)."""
        present = [name for name in SCALARS if getattr(self, name)]
        return present + [f"val_top{k}" for k in sorted(self.val_topk)]

    def as_dict(self) -> dict[str, list]:
        """Flat ``{name: list}`` including ``val_top{k}`` entries (JSON-ready)."""
        flat = {name: list(getattr(self, name)) for name in SCALARS}
        flat.update({f"val_top{k}": list(v) for k, v in sorted(self.val_topk.items())})
        return flat

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> History:
        """Inverse of :meth:`as_dict`."""
        history = cls(**{name: list(values.get(name, [])) for name in SCALARS})
        history.val_topk = {int(key[7:]): list(v) for key, v in values.items()
                            if key.startswith("val_top")}
        return history

    def best(self, metric: str = "val_loss") -> tuple[int, float]:
        """``(epoch, value)`` of the best entry: lowest for losses, highest otherwise."""
        values = self[metric]
        finite = [(v, e) for e, v in zip(self.epoch, values, strict=False) if not math.isnan(v)]
        if not finite:
            raise ValueError(f"{metric!r} has no values yet")
        value, epoch = min(finite) if "loss" in metric else max(finite, key=lambda t: t[0])
        return epoch, value

"""The training loop every chapter and lab shares: ``fit`` and ``evaluate``.

Chapters never carry their own loops: they build a model, an optimizer and loaders, call
:func:`fit`, and read the returned :class:`History` (plain data: lists of numbers).
Checkpoints live in :mod:`coursekit.checkpoint`, multi-process training in
:mod:`coursekit.distributed`, batched augmentation in :mod:`coursekit.augment` and plots in
:mod:`coursekit.plots`.
"""

from .callbacks import Callback, EarlyStopping
from .fastpath import FastPath
from .history import History
from .loop import evaluate, fit
from .optim import param_groups

__all__ = ["Callback", "EarlyStopping", "FastPath", "History", "evaluate", "fit", "param_groups"]

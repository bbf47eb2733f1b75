"""The training loop every chapter and lab shares: ``fit`` and ``evaluate``.

Chapters never carry their own loops: they build a model, an optimizer and loaders, call
:func:`fit`, and read the returned :class:`History` (plain data: lists of numbers).
The package also holds what a run needs around the loop: atomic checkpoints with exact
resume (:mod:`.checkpoint`), DDP under ``torchrun`` (:mod:`.distributed`), the GPU fast path
(:mod:`.fastpath`) and live curves in notebooks (:mod:`.live`).
"""

from .callbacks import Callback, EarlyStopping
from .fastpath import FastPath
from .history import History
from .loop import evaluate, fit
from .optim import param_groups

__all__ = ["Callback", "EarlyStopping", "FastPath", "History", "evaluate", "fit", "param_groups"]

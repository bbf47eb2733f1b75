"""Pictures of a training run: loss and accuracy curves from a ``History``.

:func:`plot_history` returns a ``matplotlib.figure.Figure`` that pyplot no longer tracks,
so a notebook shows it exactly once (as a cell's last expression or through ``display``)
and ``fig.savefig`` works anywhere. It reads the history by duck typing, so this layer
never imports :mod:`coursekit.train` (whose ``LivePlot`` callback redraws it in place).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from coursekit.viz.style import figsize, new_figure

PANELS = {"loss": ("train_loss", "val_loss"), "accuracy": ("train_acc", "val_acc")}


def plot_history(history: Any, *, axes: Sequence[Axes] | None = None,
                 title: str | None = None) -> Figure:
    """Loss and (for classification) accuracy per epoch, training and validation curves.

    ``axes``: draw into existing axes (one per panel) instead of a new figure.
    """
    if not len(history):
        raise ValueError("The history is empty: train for at least one epoch before plotting.")
    panels = ["loss"]
    if any(not math.isnan(v) for v in history.train_acc):
        panels.append("accuracy")
    if axes is None:
        fig = new_figure(figsize(len(panels)))
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
    elif len(axes) < len(panels):
        raise ValueError(f"plot_history needs {len(panels)} axes ({', '.join(panels)}), "
                         f"got {len(axes)}")
    for ax, panel in zip(axes, panels, strict=False):
        for name in PANELS[panel]:
            values = history[name]
            if values:
                ax.plot(history.epoch[:len(values)], values, marker="o", markersize=3,
                        label=name.split("_")[0])
        if panel == "accuracy":
            for k, values in sorted(history.val_topk.items()):
                ax.plot(history.epoch[:len(values)], values, marker="o", markersize=3,
                        linestyle="--", label=f"val top-{k}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(panel)
        ax.grid(alpha=0.3)
        ax.legend()
    figure = axes[0].figure
    if title:
        figure.suptitle(title)
    return figure

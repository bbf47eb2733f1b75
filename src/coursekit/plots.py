"""Pictures of a training run: a static figure for the book and a live one for notebooks.

:func:`plot_history` returns a ``matplotlib.figure.Figure`` that pyplot no longer tracks,
so a notebook shows it exactly once (as a cell's last expression or through ``display``)
and ``fig.savefig`` works anywhere. :class:`LivePlot` (what
``fit(..., live_plot=True)`` uses) redraws that figure in place after every epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from coursekit.train import Callback, History

PANELS = {"loss": ("train_loss", "val_loss"), "accuracy": ("train_acc", "val_acc")}


def plot_history(history: History, *, axes: Sequence[Axes] | None = None,
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
        # made through pyplot so a notebook's inline backend is active (it displays Figures),
        # then closed so pyplot does not show it a second time at the end of the cell
        fig = plt.figure(figsize=(4.2 * len(panels), 3.2), layout="constrained")
        plt.close(fig)
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


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class LivePlot(Callback):
    """Redraw :func:`plot_history` in place after every epoch (notebooks only; else a no-op)."""

    def __init__(self):
        self._handle = None
        self._figure: Figure | None = None

    def on_epoch_end(self, epoch: int, history: History, model) -> None:
        if not _in_notebook():
            return None
        from IPython.display import display

        if self._figure is None:
            self._figure = plot_history(history)
            self._handle = display(self._figure, display_id=True)
        else:
            for ax in self._figure.axes:
                ax.clear()
            plot_history(history, axes=self._figure.axes)
            self._handle.update(self._figure)
        return None

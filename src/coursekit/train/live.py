"""Live training curves in a notebook: a callback that redraws the history after each epoch.

``fit(..., live_plot=True)`` adds it. Outside a notebook it does nothing, so scripts and CI
runs are unaffected.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from coursekit.viz.plots import plot_history

from .callbacks import Callback
from .history import History


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

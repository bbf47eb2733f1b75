"""One look for every figure in the book: sizes and fonts chosen for the page, not the screen.

The book's text column shows a figure at about 750 px. A figure saved at ``DPI`` dots per inch
and at most ``MAX_WIDTH_INCHES`` wide is shown at (nearly) its natural size, so a tick label of
``TICK_POINTS`` points is ``TICK_POINTS * DPI / 72`` px tall on the page: above 9 px with room
to spare. :func:`figsize` gives the size of an ``nrows`` × ``ncols`` grid of panels that keeps
to that width; multi-panel figures wrap onto more rows instead of shrinking their text.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
from cycler import cycler

DPI = 100
MAX_WIDTH_INCHES = 7.5
TICK_POINTS = 10
# Okabe–Ito: distinguishable with every common form of colour blindness.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
LINESTYLES = ("-", "--", "-.", ":")

RC = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.figsize": (6.0, 3.8),
    "figure.constrained_layout.use": True,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": TICK_POINTS,
    "ytick.labelsize": TICK_POINTS,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.prop_cycle": cycler(color=COLORS),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 2.0,
    "image.cmap": "viridis",
}


def use_book_style() -> None:
    """Apply the book's style to every figure drawn from now on (``session.start`` calls it)."""
    mpl.rcParams.update(RC)


def figsize(ncols: int = 1, nrows: int = 1, *, panel_height: float = 2.8) -> tuple[float, float]:
    """Size of a grid of panels that fits the text column at full size.

    Up to three panels per row share ``MAX_WIDTH_INCHES``; more columns than that would make
    every label too small to read, so asking for them is an error that says what to do.
    """
    if ncols < 1 or nrows < 1:
        raise ValueError(f"need at least one row and one column, got {nrows}x{ncols}")
    if ncols > 3:
        raise ValueError(f"{ncols} panels side by side would shrink their text below 9 px "
                         "on the page; use more rows (e.g. ncols=3, nrows=2)")
    width = min(MAX_WIDTH_INCHES, 3.2 * ncols)
    return (width, panel_height * nrows)


def tick_pixels(fig) -> float:
    """Height in page pixels of the smallest tick label of ``fig`` (in the text column)."""
    width_px = fig.get_figwidth() * fig.dpi
    shrink = min(1.0, MAX_WIDTH_INCHES * DPI / width_px)
    sizes = [label.get_fontsize() for ax in fig.axes
             for label in (*ax.get_xticklabels(), *ax.get_yticklabels())]
    if not sizes:
        raise ValueError("the figure has no tick labels to measure")
    return min(sizes) * fig.dpi / 72 * shrink


def new_figure(size: tuple[float, float]):
    """A constrained-layout Figure made through pyplot (so a notebook's inline backend shows
    it) and closed there at once (so it shows once: as the returned value, not again at the end
    of the cell). Every drawing function in :mod:`coursekit.viz` starts from one."""
    fig = plt.figure(figsize=size, layout="constrained")
    plt.close(fig)
    return fig

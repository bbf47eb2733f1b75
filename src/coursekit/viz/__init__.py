"""Drawing only: training curves, computation graphs and (later) the visualizers.

Functions here take plain data (a ``History``, a traced graph) and return a figure; they
never train or run a model. Other layers' data reach this layer by duck typing.
"""

from coursekit.viz.graph import draw, draw_torch, has_graphviz
from coursekit.viz.images import image_grid
from coursekit.viz.plots import plot_history
from coursekit.viz.style import figsize, use_book_style

__all__ = ["draw", "draw_torch", "figsize", "has_graphviz", "image_grid", "plot_history",
           "use_book_style"]

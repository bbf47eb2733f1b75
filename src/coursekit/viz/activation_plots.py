"""Pictures of non-linearities and of what they do inside a network, drawn from plain data.

* :func:`plot_functions` draws activation functions (top row) and their derivatives (bottom
  row), a few per panel, told apart by line style; an optional extra column magnifies a
  region where two curves would otherwise lie on top of each other (ReLU and leaky ReLU
  for ``x < 0``).
* :func:`plot_per_layer` draws one quantity per layer (a gradient norm, an activation's
  standard deviation) for several networks, one panel per quantity.
* :func:`plot_activity` draws, per network, the histogram of how often each unit is active.

Every function returns a Figure already closed in pyplot, sized with :func:`figsize`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from coursekit.viz.style import LINESTYLES, figsize, new_figure

MARKERS = ("o", "s", "^", "D", "v", "P")


def _figure(ncols: int, nrows: int, **kwargs) -> tuple[Figure, np.ndarray]:
    fig = new_figure(figsize(ncols, nrows, **kwargs))
    return fig, fig.subplots(nrows, ncols, squeeze=False)


@dataclass(frozen=True)
class Zoom:
    """A magnified view for :func:`plot_functions`: group ``group`` redrawn over ``x``.

    ``f`` and ``df`` are the vertical limits of the function and of the derivative panel.
    """

    group: int
    x: tuple[float, float]
    f: tuple[float, float]
    df: tuple[float, float]


def plot_functions(x: Sequence[float], values: Mapping[str, Sequence[float]],
                   derivatives: Mapping[str, Sequence[float]], groups: Sequence[Sequence[str]],
                   *, titles: Sequence[str] | None = None,
                   labels: Mapping[str, str] | None = None,
                   magnify: Zoom | None = None) -> Figure:
    """Functions (row 0) and derivatives (row 1); column ``j`` holds the curves of ``groups[j]``.

    Each function keeps one colour and line style in every panel (in the order of
    ``groups``, as in :func:`plot_per_layer`), named in one legend below the panels.
    ``magnify=Zoom(group=j, x=..., f=..., df=...)`` adds a last column that redraws group
    ``j`` over ``x``, where curves that coincide at full scale come apart.
    """
    labels = dict(labels or {})
    columns = [(group, None) for group in groups]
    if magnify is not None:
        columns.append((groups[magnify.group], (magnify.x, (magnify.f, magnify.df))))
    fig, axes = _figure(len(columns), 2, panel_height=2.5)
    order = {name: k for k, name in enumerate(dict.fromkeys(n for g in groups for n in g))}
    rows = [("$f(x)$", values), ("$f'(x)$", derivatives)]
    x = np.asarray(x)
    for col, (group, zoom) in enumerate(columns):
        for row, (ylabel, curves) in enumerate(rows):
            ax = axes[row, col]
            for name in group:
                k = order[name]
                ax.plot(x, np.asarray(curves[name]), color=f"C{k}",
                        linestyle=LINESTYLES[k % 4], label=labels.get(name, name))
            ax.axhline(0, color="0.5", lw=0.6)
            ax.axvline(0, color="0.5", lw=0.6)
            ax.set_ylabel(ylabel)
            if zoom is not None:
                xlim, ylims = zoom
                ax.set(xlim=xlim, ylim=ylims[row])
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.yaxis.set_major_locator(MaxNLocator(5))
            if row == 1:
                ax.set_xlabel("$x$")
            if row == 0 and titles is not None and col < len(titles):
                ax.set_title(titles[col])
    handles = {label: h for ax in axes[1, :len(groups)]
               for h, label in zip(*ax.get_legend_handles_labels(), strict=True)}
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=4)
    return fig


@dataclass
class LayerPanel:
    """One panel of :func:`plot_per_layer`: a quantity per layer for several networks."""

    title: str
    ylabel: str
    series: Mapping[str, Sequence[float]] = field(default_factory=dict)
    log: bool = True
    first_layer: int = 1


def plot_per_layer(panels: Sequence[LayerPanel], *, ncols: int | None = None,
                   xlabel: str = "layer (1 = input side)") -> Figure:
    """One panel per quantity, one line per network; panels wrap onto rows of ``ncols``.

    The series of every panel share line styles by position, so the legend (below the
    panels, from the panel with the most series) applies to all of them.
    """
    ncols = ncols or min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = _figure(ncols, nrows, panel_height=2.6)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for k, (name, values) in enumerate(panel.series.items()):
            layers = np.arange(panel.first_layer, panel.first_layer + len(values))
            ax.plot(layers, values, color=f"C{k}", linestyle=LINESTYLES[k % 4],
                    marker=MARKERS[k % len(MARKERS)], markersize=4, label=name)
        if panel.log:
            ax.set_yscale("log")
        ax.set(title=panel.title, xlabel=xlabel, ylabel=panel.ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    richest = max(range(len(panels)), key=lambda i: len(panels[i].series))
    handles, names = axes.flat[richest].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(4, len(names)))
    return fig


def plot_activity(rates: Mapping[str, Sequence[float]], *, bins: int = 40) -> Figure:
    """Per network, a histogram of the fraction of inputs on which each unit is active.

    Units active on no input at all (rate exactly 0) get their own hatched bar.
    """
    fig, axes = _figure(len(rates), 1, panel_height=2.8)
    edges = np.linspace(0, 1, bins + 1)
    for ax, (name, values) in zip(axes[0], rates.items(), strict=True):
        values = np.asarray(values, dtype=float)
        ax.hist(values[values > 0], bins=edges, color="C0", label="active on some inputs")
        ax.hist(values[values == 0], bins=edges, color="C1", hatch="//",
                label="never active")
        ax.set(title=name, xlabel="fraction of inputs\non which a unit is active",
               ylabel="hidden units")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=2)
    return fig

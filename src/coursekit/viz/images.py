"""Images and small matrices side by side: inputs, filters, feature maps, gradient maps.

Convolution is taught with pictures of 2D arrays, and every such picture is the same grid:
one panel per array, a title above it, no ticks (pixel indices carry no information), a
colour scale chosen per panel, and for small matrices the values written into their cells.
:func:`image_grid` draws that grid from plain arrays (tensors or NumPy) and returns a
``Figure`` closed in pyplot, so a notebook shows it exactly once. It computes nothing:
what is drawn comes from the caller's cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from coursekit.viz.style import MAX_WIDTH_INCHES, new_figure

Limits = None | str | tuple[float, float]
LIMITS = "None (each panel's own range), 'symmetric' (centred on 0) or a (vmin, vmax) pair"


def image_grid(images: Sequence[Any], *, titles: Sequence[str] | None = None,
               ncols: int | None = None, row_labels: Sequence[str] | None = None,
               cmap: str | Sequence[str] = "gray", limits: Limits | Sequence[Limits] = None,
               annotate: bool = False, fmt: str = "{:.0f}", fontsize: float = 9,
               proportional: bool = False, panel_width: float = 1.9,
               suptitle: str | None = None) -> Figure:
    """A grid of 2D arrays, one panel each, filled row by row (``ncols`` per row).

    ``images``: 2D arrays, or ``None`` for an empty slot. ``cmap`` and ``limits`` are either
    one setting for all panels or one per panel; ``limits`` is ``None`` (the panel's own
    range), ``"symmetric"`` (``±max|a|``, so zero sits in the middle of a diverging map) or
    ``(vmin, vmax)``. ``annotate`` writes each entry with ``fmt`` into its cell, in black or
    white, whichever reads better on the cell's colour. ``proportional`` sizes the columns
    by the arrays' widths, so a 3×3 filter is drawn at the scale of the 7×7 image beside it.
    """
    arrays = [None if image is None else _as_2d(image) for image in images]
    if not arrays or all(a is None for a in arrays):
        raise ValueError("image_grid needs at least one image")
    n = len(arrays)
    ncols = n if ncols is None else ncols
    if ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    nrows = -(-n // ncols)
    titles = _per_panel(titles, n, "titles", default="")
    cmaps = _per_panel(cmap, n, "cmap")
    all_limits = _per_panel(limits, n, "limits")
    if row_labels is not None and len(row_labels) != nrows:
        raise ValueError(f"row_labels needs one label per row ({nrows}), got {len(row_labels)}")

    widths = [1.0] * ncols
    if proportional:
        widths = [max((a.shape[1] for a in arrays[c::ncols] if a is not None), default=1)
                  for c in range(ncols)]
    label_room = 0.3 if row_labels is not None else 0.0
    available = MAX_WIDTH_INCHES - label_room
    scale = min(panel_width, available / ncols) * ncols / sum(widths)
    heights = [max((a.shape[0] * scale * w / a.shape[1]
                    for a, w in zip(arrays[r * ncols:(r + 1) * ncols], widths, strict=False)
                    if a is not None), default=0.5) for r in range(nrows)]
    title_room = 0.35 if any(titles) else 0.1
    size = (scale * sum(widths) + label_room,
            sum(heights) + title_room * nrows + (0.35 if suptitle else 0.0))
    fig = new_figure(size)
    axes = fig.subplots(nrows, ncols, squeeze=False,
                        gridspec_kw={"width_ratios": widths, "height_ratios": heights})
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for spine in ax.spines.values():  # a thin frame on all four sides
            spine.set(visible=True, linewidth=0.8, color="0.6")
        if k >= n or arrays[k] is None:
            ax.set_axis_off()
            continue
        array, norm = arrays[k], _norm(arrays[k], all_limits[k])
        ax.imshow(array, cmap=cmaps[k], norm=norm)
        if titles[k]:
            ax.set_title(titles[k], fontsize=10)
        if annotate:
            colormap = plt.get_cmap(cmaps[k])
            for (r, c), value in np.ndenumerate(array):
                red, green, blue, _ = colormap(norm(value))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                ax.text(c, r, _format(fmt, value), ha="center", va="center", fontsize=fontsize,
                        color="white" if dark else "black")
    if row_labels is not None:
        for ax, label in zip(axes[:, 0], row_labels, strict=True):
            ax.set_ylabel(label)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig


def _format(fmt: str, value: float) -> str:
    """``fmt.format(value)``, without the minus sign of a value that rounds to zero."""
    text = fmt.format(value)
    if text.startswith("-") and not text.strip("-0.,"):
        return text[1:]
    return text


def _as_2d(image: Any) -> np.ndarray:
    if hasattr(image, "detach"):  # a torch tensor, without importing torch here
        image = image.detach().cpu().numpy()
    array = np.asarray(image, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"each image must be a 2D array (H x W), got shape {array.shape}; "
                         "index the batch and channel first, e.g. x[0, 0]")
    return array


def _per_panel(value: Any, n: int, name: str, default: Any = None) -> list:
    if value is None:
        return [default] * n
    if isinstance(value, str) or (name == "limits" and _is_pair(value)):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"{name} needs one entry per image ({n}) or one for all, "
                         f"got {len(values)}")
    return values


def _is_pair(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(v, int | float) for v in value))


def _norm(array: np.ndarray, limits: Limits) -> Normalize:
    if limits is None:
        return Normalize(float(array.min()), float(array.max()))
    if limits == "symmetric":
        top = float(np.abs(array).max()) or 1.0
        return Normalize(-top, top)
    if _is_pair(limits):
        return Normalize(*map(float, limits))
    raise ValueError(f"limits must be {LIMITS}, got {limits!r}")

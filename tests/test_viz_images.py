"""coursekit.viz.images: a grid of images drawn from plain arrays, closed in pyplot."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from coursekit import viz
from coursekit.viz.style import MAX_WIDTH_INCHES


def test_image_grid_draws_one_titled_panel_per_image_without_ticks():
    before = plt.get_fignums()
    fig = viz.image_grid([torch.rand(28, 28), np.eye(5), None, torch.zeros(3, 3)],
                         titles=["digit", "identity", "", "zeros"], ncols=2,
                         row_labels=["a", "b"], cmap=["gray", "RdBu_r", "gray", "gray"],
                         limits=[None, "symmetric", None, (0, 1)])
    assert isinstance(fig, Figure) and plt.get_fignums() == before  # closed in pyplot
    axes = fig.axes
    assert len(axes) == 4 and not axes[2].axison  # the None slot stays empty
    assert [ax.get_title() for ax in axes] == ["digit", "identity", "", "zeros"]
    assert all(not ax.get_xticks().size and not ax.get_yticks().size for ax in axes)
    assert axes[0].get_ylabel() == "a" and axes[2].get_ylabel() == "b"
    assert axes[1].images[0].norm.vmin == -1 and axes[1].images[0].norm.vmax == 1
    assert fig.get_figwidth() <= MAX_WIDTH_INCHES


def test_image_grid_annotates_values_in_readable_colours():
    matrix = torch.tensor([[0.0, 9.0], [4.0, 1.0]])
    fig = viz.image_grid([matrix], annotate=True, cmap="gray", limits=(0, 9))
    texts = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert texts == {"0": "white", "9": "black", "4": "white", "1": "white"}
    tiny = viz.image_grid([np.array([[-0.0004, -0.5]])], annotate=True, fmt="{:.2f}")
    assert [t.get_text() for t in tiny.axes[0].texts] == ["0.00", "-0.50"]


def test_image_grid_proportional_columns_follow_the_array_widths():
    fig = viz.image_grid([np.zeros((7, 7)), np.zeros((3, 3)), np.zeros((5, 5))],
                         proportional=True)
    widths = [ax.get_position().width for ax in fig.axes]
    assert widths[0] > widths[2] > widths[1]
    fig.canvas.draw()  # renders without error


@pytest.mark.parametrize("call, message", [
    (lambda: viz.image_grid([]), "at least one image"),
    (lambda: viz.image_grid([np.zeros((2, 2, 2))]), "2D array"),
    (lambda: viz.image_grid([np.zeros((2, 2))] * 2, titles=["one"]), "one entry per image"),
    (lambda: viz.image_grid([np.zeros((2, 2))], limits="tight"), "limits must be"),
    (lambda: viz.image_grid([np.zeros((2, 2))] * 2, ncols=1, row_labels=["x"]), "one label"),
])
def test_image_grid_errors_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()

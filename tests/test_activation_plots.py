"""Chapter 2's drawings return closed Figures that fit the page (numbers are tested elsewhere)."""

import matplotlib
import numpy as np
import pytest

from coursekit.viz import activation_plots, style

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def book_style():
    with matplotlib.rc_context(style.RC):
        yield


def _fits_the_page(fig):
    assert fig.get_figwidth() <= style.MAX_WIDTH_INCHES
    assert style.tick_pixels(fig) >= 9


def test_plot_functions_draws_rows_of_functions_and_derivatives_with_a_magnified_column():
    x = np.linspace(-3, 3, 61)
    values = {"a": np.maximum(x, 0), "b": np.maximum(0.1 * x, x), "c": np.tanh(x)}
    slopes = {"a": (x > 0) * 1.0, "b": np.where(x > 0, 1.0, 0.1), "c": 1 - np.tanh(x) ** 2}
    fig = activation_plots.plot_functions(x, values, slopes, [("c",), ("a", "b")],
                                          titles=["one", "two", "zoom"],
                                          magnify=activation_plots.Zoom(
                                              group=1, x=(-3, 0), f=(-0.4, 0.1), df=(-0.1, 0.2)))
    axes = fig.axes
    assert len(axes) == 6
    assert axes[2].get_xlim() == (-3, 0) and axes[5].get_ylim() == (-0.1, 0.2)
    styles = {line.get_label(): line.get_linestyle() for line in axes[4].lines}
    assert styles["a"] != styles["b"], "overlapping curves differ by line style"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["c", "a", "b"]
    _fits_the_page(fig)


def test_plot_per_layer_wraps_panels_onto_rows_and_labels_every_axis():
    panel = activation_plots.LayerPanel("t", "y", {"glorot": [1.0, 0.5, 0.25], "he": [1, 1, 1]})
    fig = activation_plots.plot_per_layer([panel, panel, panel], ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3 and len(fig.axes) == 4
    assert all(ax.get_ylabel() == "y" and ax.get_xlabel() for ax in visible)
    assert visible[0].get_yscale() == "log"
    _fits_the_page(fig)


def test_plot_activity_labels_every_panel():
    fig = activation_plots.plot_activity({"x": [0.0, 0.0, 0.5, 1.0], "y": [0.2, 0.3]})
    assert [ax.get_title() for ax in fig.axes] == ["x", "y"]
    assert all(ax.get_ylabel() == "hidden units" for ax in fig.axes)
    _fits_the_page(fig)


def test_too_many_panels_in_a_row_is_refused():
    panel = activation_plots.LayerPanel("t", "y", {"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="more rows"):
        activation_plots.plot_per_layer([panel] * 5, ncols=5)

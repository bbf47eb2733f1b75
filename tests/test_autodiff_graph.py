"""Graph drawings: graphviz when `dot` is installed, matplotlib otherwise, and PyTorch graphs."""

from __future__ import annotations

import io

import pytest
import torch
from matplotlib.figure import Figure

from coursekit.autodiff import Value, log, sqrt
from coursekit.viz.graph import draw, draw_torch, has_graphviz, render, torch_drawing, value_drawing


def worked_example():
    x, y = Value(3.0, "x"), Value(2.0, "y")
    s = (y * log(x)).named("b")
    out = (sqrt(s) + s).named("f")
    out.backward()
    return out


def test_value_drawing_numbers_nodes_in_topological_order():
    drawing = value_drawing(worked_example())
    step = {
        node_id: int(label.split(".")[0])
        for node_id, (label, shape, _) in drawing.nodes.items()
        if shape == "box"
    }
    assert sorted(step.values()) == list(range(1, 7))
    # every arrow path value -> op -> value goes from an earlier step to a later one
    produced_by = {a: b for a, b in drawing.edges if b in step}  # op id -> value id
    for a, b in drawing.edges:
        if a in step:
            assert step[a] < step[produced_by[b]]
    labels = " ".join(label for label, _, _ in drawing.nodes.values())
    assert "grad 0.8915" in labels and "sqrt" in labels and "6. f" in labels


def test_matplotlib_fallback_is_used_without_dot(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert not has_graphviz()
    figure = draw(worked_example())
    assert isinstance(figure, Figure)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert any(t.startswith("6. f") for t in texts)
    png = io.BytesIO()
    figure.savefig(png, format="png")
    assert png.getvalue().startswith(b"\x89PNG")
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        draw(worked_example(), backend="graphviz")


@pytest.mark.skipif(not has_graphviz(),
                    reason="graphviz's dot program is not installed (apt-get install graphviz)")
def test_graphviz_renders_svg_for_the_book():
    graph = draw(worked_example())
    assert "6. f\ndata 3.68\ngrad 1" in graph.source
    svg = graph._repr_image_svg_xml()
    assert "<svg" in svg and "sqrt" in svg


def test_torch_graph_walks_grad_fn_to_the_leaves():
    x = torch.tensor(3.0, requires_grad=True)
    w = torch.ones(2, 3, requires_grad=True)
    out = (w * x.log()).sqrt().sum()
    drawing = torch_drawing(out, names={"x": x, "w": w})
    labels = [label for label, _, _ in drawing.nodes.values()]
    for name in ("SumBackward0", "SqrtBackward0", "MulBackward0", "LogBackward0"):
        assert name in labels
    assert "x\nscalar" in labels and "w\nshape (2, 3)" in labels
    assert len(drawing.edges) == 6  # x->log->mul, w->mul, mul->sqrt->sum->output
    assert isinstance(draw_torch(out, backend="matplotlib"), Figure)


def test_drawing_errors_name_the_problem():
    with torch.no_grad():
        out = torch.ones(2, requires_grad=True) * 2
    with pytest.raises(ValueError, match="no grad_fn"):
        draw_torch(out)
    with pytest.raises(ValueError, match="Unknown backend"):
        render(value_drawing(worked_example()), backend="svg")

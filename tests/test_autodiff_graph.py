"""Graph drawings: graphviz when `dot` is installed, matplotlib otherwise, and PyTorch graphs."""

from __future__ import annotations

import io

import pytest
import torch
from matplotlib.figure import Figure

from coursekit.autodiff import Value, backward_table, log, sqrt
from coursekit.viz.graph import draw, draw_torch, has_graphviz, render, torch_drawing, value_drawing


def worked_example():
    x, y = Value(3.0, "x"), Value(2.0, "y")
    s = (y * log(x)).named("b")
    out = (sqrt(s) + s).named("f")
    out.backward()
    return out


def test_value_drawing_numbers_nodes_like_the_step_tables():
    out = worked_example()
    drawing = value_drawing(out)
    boxes = {node_id: label for node_id, (label, shape, _) in drawing.nodes.items()
             if shape == "box"}
    step = {node_id: int(label.split("(step ")[1].split(",")[0])
            for node_id, label in boxes.items()}
    assert sorted(step.values()) == [0, 0, 1, 2, 3, 4]  # inputs at 0, as in forward_table
    # the primed step is the row of backward_table where that node's gradient is complete
    table = backward_table(out)
    rows = {name: k for k, name, *_ in table.rows}
    for label in boxes.values():
        name, steps = label.split("\n")[0].split("  (step ")
        assert steps.split(", ")[1].rstrip(")") == rows[name], label
    # every arrow path value -> op -> value goes from an earlier step to a later one
    produced_by = {a: b for a, b in drawing.edges if b in step}  # op id -> value id
    for a, b in drawing.edges:
        if a in step:
            assert step[a] < step[produced_by[b]]
    labels = " ".join(boxes.values())
    assert "grad 0.8915" in labels and "f  (step 4, 0')" in labels
    assert any(label == "sqrt" for label, _, _ in drawing.nodes.values())
    forward_only = value_drawing(out, grads=False)
    assert any(label.startswith("f  (step 4)\n") for label, _, _ in forward_only.nodes.values())


def test_matplotlib_fallback_is_used_without_dot(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert not has_graphviz()
    figure = draw(worked_example())
    assert isinstance(figure, Figure)
    assert isinstance(draw(worked_example(), direction="LR"), Figure)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert any(t.startswith("f  (step 4, 0')") for t in texts)
    png = io.BytesIO()
    figure.savefig(png, format="png")
    assert png.getvalue().startswith(b"\x89PNG")
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        draw(worked_example(), backend="graphviz")


@pytest.mark.skipif(not has_graphviz(),
                    reason="graphviz's dot program is not installed (apt-get install graphviz)")
def test_graphviz_renders_svg_for_the_book():
    graph = draw(worked_example())
    assert "f  (step 4, 0')\ndata 3.68\ngrad 1" in graph.source
    assert "rankdir=TB" in graph.source  # top to bottom: narrow enough for the page
    assert "rankdir=LR" in draw(worked_example(), direction="LR").source
    svg = graph._repr_image_svg_xml()
    assert "<svg" in svg and "sqrt" in svg


def test_torch_graph_walks_grad_fn_to_the_leaves():
    x = torch.tensor(3.0, requires_grad=True)
    w = torch.ones(2, 3, requires_grad=True)
    out = (w * x.log()).sqrt().sum()
    drawing = torch_drawing(out, names={"x": x, "w": w})
    labels = [label for label, _, _ in drawing.nodes.values()]
    for name in ("1' SumBackward0", "2' SqrtBackward0", "3' MulBackward0"):
        assert name in labels
    assert "0' output\nscalar" in labels
    assert any(label.endswith(" LogBackward0") for label in labels)
    assert any(label.endswith(" x\nscalar") for label in labels)
    assert any(label.endswith(" w\nshape (2, 3)") for label in labels)
    assert len(drawing.edges) == 6  # x->log->mul, w->mul, mul->sqrt->sum->output
    assert drawing.direction == "TB"
    assert isinstance(draw_torch(out, backend="matplotlib"), Figure)
    assert isinstance(draw_torch(out, backend="matplotlib", direction="LR"), Figure)


def test_torch_graph_numbers_each_node_after_every_node_that_sends_it_a_gradient():
    x = torch.tensor(2.0, requires_grad=True)
    y = x.exp()
    out = (y * y.sin() + y).sum()  # y's backward node receives from two nodes
    drawing = torch_drawing(out)
    number = {node_id: int(label.split("'")[0]) for node_id, (label, _, _) in
              drawing.nodes.items()}
    assert sorted(number.values()) == list(range(len(drawing.nodes)))
    for a, b in drawing.edges:  # the gradient flows from b back to a: b runs first
        assert number[b] < number[a] or b == "output"
    assert number["output"] == 0


def test_drawing_errors_name_the_problem():
    with torch.no_grad():
        out = torch.ones(2, requires_grad=True) * 2
    with pytest.raises(ValueError, match="no grad_fn"):
        draw_torch(out)
    with pytest.raises(ValueError, match="Unknown direction"):
        draw(worked_example(), direction="RL")
    with pytest.raises(ValueError, match="Unknown backend"):
        render(value_drawing(worked_example()), backend="svg")

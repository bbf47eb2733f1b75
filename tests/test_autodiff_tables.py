"""Step tables: the chapter's running example, and tables that agree with the passes they show."""

from __future__ import annotations

import math

import pytest

from coursekit.autodiff import (
    Dual,
    Value,
    backward_table,
    forward_table,
    log,
    sqrt,
    tangent_table,
)


def worked_example():
    x, y = Value(3.0, "x"), Value(2.0, "y")
    a = log(x).named("a")
    b = (a * y).named("b")
    c = sqrt(b).named("c")
    return x, y, (c + b).named("f")


def test_forward_table_numbers_the_steps_of_the_running_example():
    x, y, f = worked_example()
    table = forward_table(f)
    assert table.column("step") == [0, 0, 1, 2, 3, 4]
    assert table.column("node") == ["x", "y", "a", "b", "c", "f"]
    assert table.column("computed as") == ["input", "input", "log(x)", "a * y", "sqrt(b)", "c + b"]
    log3 = math.log(3)
    expected = [3, 2, log3, 2 * log3, math.sqrt(2 * log3), math.sqrt(2 * log3) + 2 * log3]
    assert all(math.isclose(v, e) for v, e in zip(table.column("value"), expected, strict=True))
    assert table.rows[3][-1] == f"∂b/∂a = 2, ∂b/∂y = {log3:.4g}"


def test_backward_table_runs_backward_and_sums_the_shares():
    x, y, f = worked_example()
    table = backward_table(f)
    assert table.column("step") == ["0'", "1'", "2'", "3'", "4'", "4'"]
    assert table.column("node") == ["f", "c", "b", "a", "x", "y"]
    gradients = dict(zip(table.column("node"), table.column("gradient"), strict=True))
    assert gradients["x"] == x.grad and gradients["y"] == y.grad and gradients["f"] == 1.0
    chain_rule = table.column("chain rule")
    assert chain_rule[0] == "f\u0304 = seed"
    # b feeds both c and f; adjoints carry a bar, so ∂f/∂b is only ever the local derivative
    assert chain_rule[2] == "b\u0304 = f\u0304·∂f/∂b + c\u0304·∂c/∂b"
    assert chain_rule[3] == "a\u0304 = b\u0304·∂b/∂a"
    assert table.column("numbers")[3] == f"{gradients['b']:.4g}·2"


def test_backward_table_with_a_seed_and_repeated_use():
    x = Value(2.0, "x")
    table = backward_table((x * x * x).named("g"), seed=0.5)
    assert table.rows[0][3:] == ("0.5", 0.5)
    *_, (step, node, chain_rule, numbers, gradient) = table.rows
    assert (step, node, numbers) == ("2'", "x", "0.5·4 + 1·2 + 1·2")
    assert chain_rule == "x\u0304 = g\u0304·∂g/∂x + v1\u0304·∂v1/∂x + v1\u0304·∂v1/∂x"
    assert gradient == x.grad == 0.5 * 3 * 2.0**2


def test_tangent_table_equals_dual_numbers_and_reverse_mode():
    x, y, f = worked_example()
    table = tangent_table(f, wrt=[x, y])
    f.backward()
    *_, last = table.rows
    assert math.isclose(last[-2], x.grad, rel_tol=1e-14)
    assert math.isclose(last[-1], y.grad, rel_tol=1e-14)
    # the c row, seeded along x, is what a dual-number evaluation carries at c
    a = Dual(3.0, 1.0).log() * Dual(2.0, 0.0)
    assert math.isclose(table.rows[4][-2], a.sqrt().tangent, rel_tol=1e-14)
    assert table.rows[0][-2:] == (1.0, 0.0) and table.rows[1][-2:] == (0.0, 1.0)


def test_unnamed_nodes_and_constants_get_names():
    x = Value(2.0, "x")
    out = (x * 3).exp() + 1
    nodes = forward_table(out).column("node")
    assert nodes == ["x", "3", "1", "v1", "v2", "v3"]
    assert forward_table(out).column("computed as")[3:] == ["x * 3", "exp(v1)", "v2 + 1"]


def test_backward_table_matches_grad_on_shared_graphs():
    x, y = Value(0.3, "x"), Value(-1.1, "y")
    s = x * y
    out = (s * s + s.tanh() - x**2).named("out")
    table = backward_table(out)
    by_name = dict(zip(table.column("node"), table.column("gradient"), strict=True))
    assert by_name["x"] == x.grad and by_name["y"] == y.grad


def test_tables_render_as_text_html_and_markdown():
    x, y, f = worked_example()
    table = backward_table(f)
    text = str(table)
    assert text.splitlines()[0] == "Backward pass of f"
    assert "x\u0304 = a\u0304·∂a/∂x" in text
    html = table._repr_html_()
    assert html.startswith("<table>") and "<caption>Backward pass of f</caption>" in html
    assert html.count("<tr>") == 1 + len(table.rows)
    markdown = table.to_markdown()
    assert markdown.count("\n| ") == 1 + len(table.rows)
    # text columns line up even with combining dots (ẋ is two code points, one column)
    lines = str(tangent_table(f, wrt=[x])).splitlines()[1:]
    assert len({len(line.rstrip()) - line.count("\u0307") for line in lines[:1]}) == 1


def test_bad_table_requests_are_explained():
    x, y, f = worked_example()
    with pytest.raises(ValueError, match="not a leaf"):
        tangent_table(f, wrt=[f.parents[0]])
    with pytest.raises(KeyError, match="no column"):
        forward_table(f).column("gradient")

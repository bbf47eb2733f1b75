"""Step tables: the forward, tangent and backward passes written out node by node.

Each pass becomes a numbered list of steps, as one would work it out on paper (leaves at step
0, then every node in topological order; primed steps for the backward pass). A
:class:`StepTable` shows itself as an HTML table in a notebook and as aligned text in a
terminal; its ``rows`` keep the raw numbers, so they can be checked by code.
"""

from __future__ import annotations

import html
import unicodedata
from collections import defaultdict
from collections.abc import Sequence

from coursekit.autodiff.value import Value, backprop

INFIX = ("+", "-", "*", "/", "**")


class StepTable:
    """A titled table whose cells are numbers (shown to 4 significant digits) or text."""

    def __init__(self, title: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        self.title = title
        self.columns = tuple(columns)
        self.rows = [tuple(row) for row in rows]

    def column(self, name: str) -> list:
        """The raw cells of one column, e.g. ``table.column("value")``."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; the columns are {self.columns}.")
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def _cells(self) -> list[list[str]]:
        return [[_fmt(cell) for cell in row] for row in self.rows]

    def __str__(self) -> str:
        cells = [list(self.columns), *self._cells()]
        widths = [max(_width(row[j]) for row in cells) for j in range(len(self.columns))]
        pad = lambda text, width: text + " " * (width - _width(text))
        lines = ["  ".join(map(pad, row, widths)) for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join([self.title, *lines])

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(row) + " |" for row in self._cells()]
        return f"**{self.title}**\n\n" + "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self._cells()
        )
        return (
            f"<table><caption>{html.escape(self.title)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    def __repr__(self) -> str:
        return str(self)


def node_names(output: Value) -> dict[Value, str]:
    """Each node's label, or ``v1``, ``v2``, ... (in topological order) for unnamed ones."""
    names, unnamed = {}, 0
    for node in output.topological_order():
        if not node.label:
            unnamed += 1
        names[node] = node.label or f"v{unnamed}"
    return names


def formula(node: Value, names: dict[Value, str]) -> str:
    """How a node was computed from its parents, e.g. ``a * y`` or ``log(x)``."""
    args = [names[p] for p in node.parents]
    if not node.op:
        return "input"
    if node.op in INFIX:
        return f"{args[0]} {node.op} {args[1]}"
    if node.op.startswith("**"):
        return f"{args[0]}{node.op}"
    if node.op == "neg":
        return f"-{args[0]}"
    return f"{node.op}({', '.join(args)})"


def steps(output: Value) -> list[list[Value]]:
    """The forward steps: all leaves at step 0, then one node per step in topological order."""
    order = output.topological_order()
    return [[n for n in order if not n.parents]] + [[n] for n in order if n.parents]


def forward_table(output: Value) -> StepTable:
    """The forward pass: each node's value and the local derivatives backward will need."""
    names = node_names(output)
    rows = []
    for k, group in enumerate(steps(output)):
        for node in group:
            local = ", ".join(
                f"∂{names[node]}/∂{names[p]} = {_fmt(d)}"
                for p, d in zip(node.parents, node.local_grads, strict=True)
            )
            rows.append((k, names[node], formula(node, names), node.data, local))
    columns = ("step", "node", "computed as", "value", "local derivatives")
    return StepTable(f"Forward pass of {names[output]}", columns, rows)


def tangent_table(output: Value, wrt: Sequence[Value]) -> StepTable:
    """Forward mode over the graph: every node's derivative with respect to each of ``wrt``.

    Column ``∂/∂x`` is the tangent pass seeded with ṫ[x] = 1 and 0 for the other leaves, i.e.
    what a dual-number evaluation seeded that way carries along, node by node.
    """
    names = node_names(output)
    for leaf in wrt:
        if leaf not in names or leaf.parents:
            raise ValueError(f"{leaf!r} is not a leaf of the graph of {names[output]}.")
    tangents = {}  # node -> its derivative with respect to each leaf of wrt
    rows = []
    for k, group in enumerate(steps(output)):
        for node in group:
            if node.parents:
                edges = list(zip(node.parents, node.local_grads, strict=True))
                tangents[node] = [
                    sum(d * tangents[p][j] for p, d in edges) for j in range(len(wrt))
                ]
                rule = " + ".join(
                    f"∂{names[node]}/∂{names[p]}·{_dot(names[p])}" for p in node.parents
                )
            else:
                tangents[node] = [float(node is leaf) for leaf in wrt]
                rule = "seed"
            rows.append(
                (k, names[node], node.data, f"{_dot(names[node])} = {rule}", *tangents[node])
            )
    columns = ("step", "node", "value", "tangent", *(f"∂/∂{names[leaf]}" for leaf in wrt))
    return StepTable(f"Forward-mode (tangent) pass of {names[output]}", columns, rows)


def backward_table(output: Value, seed: float = 1.0) -> StepTable:
    """Run the backward pass (as ``output.backward()`` does) and return its steps.

    Row k' is reached once every node that uses this one has pushed its share
    ``g[child] · ∂child/∂node``; the gradient column is their sum. The chain-rule column
    writes adjoints with a bar (``b̄ = f̄·∂f/∂b + c̄·∂c/∂b``), so that ``∂child/∂node`` always
    means a local derivative, never a node's adjoint, even when the output has a name.
    """
    names = node_names(output)
    shares = defaultdict(list)  # node -> [(child, g[child], ∂child/∂node), ...] in pass order
    for step in backprop(output, seed):
        shares[step.parent].append((step.node, step.node_grad, step.local_grad))
    out = names[output]
    rows = [("0'", out, f"{_bar(out)} = seed", _fmt(float(seed)), float(seed))]
    order = output.topological_order()
    inner = [[n] for n in reversed(order) if n.parents and n is not output]  # one per step
    leaves = [n for n in order if not n.parents]  # all in the last step
    for k, group in enumerate([*inner, leaves], start=1):
        for node in group:
            if node is output:
                continue
            chain = " + ".join(
                f"{_bar(names[c])}·∂{names[c]}/∂{names[node]}" for c, _, _ in shares[node]
            )
            numbers = " + ".join(f"{_fmt(g)}·{_fmt(d)}" for _, g, d in shares[node])
            total = sum(g * d for _, g, d in shares[node])
            rows.append((f"{k}'", names[node], f"{_bar(names[node])} = {chain}", numbers, total))
    columns = ("step", "node", "chain rule", "numbers", "gradient")
    return StepTable(f"Backward pass of {out}", columns, rows)


def _fmt(cell: object) -> str:
    return f"{cell:.4g}" if isinstance(cell, float) else str(cell)


def _dot(name: str) -> str:
    """The tangent of a node, written with a dot: ḃ."""
    return name + "\u0307"


def _bar(name: str) -> str:
    """The adjoint of a node, written with a bar: b̄ (∂output/∂b)."""
    return name + "\u0304"


def _width(text: str) -> int:
    return sum(not unicodedata.combining(ch) for ch in text)

"""Drawing computation graphs: ours (values, gradients, ops) and PyTorch's (``grad_fn``).

Both drawings are built as a small neutral description (:class:`Drawing`: labelled boxes and
arrows) and then rendered by graphviz when its ``dot`` program is installed (an SVG in the
notebook and the book), or else by matplotlib (a PNG), so the graph always shows up.
Value nodes carry the step numbers of the step tables (:mod:`coursekit.autodiff.tables`):
inputs at step 0, then one node per step in topological order, and, once gradients are drawn,
the primed step at which the backward pass completes the node's gradient. PyTorch's backward
nodes are numbered ``1'``, ``2'``, ... in an order the backward pass can run them (each after
every node that sends it a gradient), below the output's seed ``0'``. Graphs are drawn top to
bottom by default (``direction="TB"``), which keeps them narrow enough for a page; pass
``direction="LR"`` for left to right.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from coursekit.autodiff.tables import node_names, steps
from coursekit.autodiff.value import Value

BACKENDS = ("auto", "graphviz", "matplotlib")
DIRECTIONS = ("LR", "TB")
_FIRST, _LAST = (0xF7, 0xFB, 0xFF), (0x9E, 0xCA, 0xE1)  # light to mid blue
_OP_COLOR, _LEAF_COLOR = "#fdf2d0", "#e5f5e0"


@dataclass
class Drawing:
    """Boxes (``id -> (label, shape, fill colour)``) and arrows (``(from_id, to_id)``).

    ``direction`` is where the arrows point: ``"LR"`` left to right, ``"TB"`` top to bottom.
    """

    title: str = ""
    direction: str = "TB"
    nodes: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)


def has_graphviz() -> bool:
    """Whether the graphviz Python package and its ``dot`` program are both available."""
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


def draw(output: Value, backend: str = "auto", grads: bool = True, direction: str = "TB"):
    """Draw the graph that computed ``output``: a ``graphviz.Digraph`` or a matplotlib Figure."""
    return render(value_drawing(output, grads=grads, direction=direction), backend)


def draw_torch(tensor, backend: str = "auto", names: dict | None = None,
               direction: str = "TB"):
    """Draw PyTorch's autograd graph behind ``tensor`` by walking its ``grad_fn`` links.

    ``names`` maps a name to a leaf tensor (e.g. ``dict(model.named_parameters())``) to label
    the leaves; unnamed leaves show their shape.
    """
    return render(torch_drawing(tensor, names=names, direction=direction), backend)


def value_drawing(output: Value, grads: bool = True, direction: str = "TB") -> Drawing:
    """Value boxes (name, table steps, data, grad) with a small op node before each result.

    A node at forward step ``k`` of :func:`~coursekit.autodiff.tables.forward_table` gets its
    gradient at backward step ``(L - k)'`` of ``backward_table``, ``L`` being the output's step.
    """
    _check_direction(direction)
    names = node_names(output)
    groups = steps(output)
    last = len(groups) - 1
    drawing = Drawing(title=f"computation graph of {names[output]}", direction=direction)
    for k, group in enumerate(groups):
        for node in group:
            step = f"step {k}, {last - k}'" if grads else f"step {k}"
            lines = [f"{names[node]}  ({step})", f"data {node.data:.4g}"]
            if grads:
                lines.append(f"grad {node.grad:.4g}")
            drawing.nodes[f"v{id(node)}"] = ("\n".join(lines), "box", _shade(k / max(last, 1)))
        if node.parents:
            op_id = f"op{id(node)}"
            drawing.nodes[op_id] = (node.op, "ellipse", _OP_COLOR)
            drawing.edges.append((op_id, f"v{id(node)}"))
            drawing.edges.extend((f"v{id(p)}", op_id) for p in node.parents)
    return drawing


def torch_drawing(tensor, names: dict | None = None, direction: str = "TB") -> Drawing:
    """The backward graph of a tensor: one box per ``grad_fn`` node, leaves at the inputs.

    Nodes are numbered ``1'``, ``2'``, ... in an order the backward pass can run them, each
    after every node that sends it a gradient (the output's seed is ``0'``).
    """
    _check_direction(direction)
    if getattr(tensor, "grad_fn", None) is None:
        raise ValueError(
            "This tensor has no grad_fn: it was not computed from tensors that require grad "
            "(or it was computed under torch.no_grad()), so there is no graph to draw."
        )
    leaf_names = {id(t): name for name, t in (names or {}).items()}
    drawing = Drawing(title="PyTorch autograd graph", direction=direction)
    drawing.nodes["output"] = (f"0' output\n{_shape(tensor)}", "box", _LEAF_COLOR)
    drawing.edges.append((f"f{id(tensor.grad_fn)}", "output"))
    functions, senders, stack = {}, {}, [tensor.grad_fn]  # id -> fn; id -> #nodes feeding it
    senders[id(tensor.grad_fn)] = 0
    while stack:
        fn = stack.pop()
        if id(fn) in functions:
            continue
        functions[id(fn)] = fn
        for next_fn, _ in fn.next_functions:
            if next_fn is not None:  # None: an input that needs no gradient
                drawing.edges.append((f"f{id(next_fn)}", f"f{id(fn)}"))
                senders[id(next_fn)] = senders.get(id(next_fn), 0) + 1
                stack.append(next_fn)
    ready, k = [tensor.grad_fn], 0
    while ready:  # Kahn's algorithm from the output: a node runs once all its senders have
        fn = ready.pop(0)
        k += 1
        variable = getattr(fn, "variable", None)  # AccumulateGrad holds a leaf tensor
        if variable is not None:
            name = leaf_names.get(id(variable), "leaf")
            label, shape, colour = f"{k}' {name}\n{_shape(variable)}", "box", _LEAF_COLOR
        else:
            label, shape, colour = f"{k}' {type(fn).__name__}", "ellipse", _OP_COLOR
        drawing.nodes[f"f{id(fn)}"] = (label, shape, colour)
        for next_fn, _ in fn.next_functions:
            if next_fn is not None:
                senders[id(next_fn)] -= 1
                if senders[id(next_fn)] == 0:
                    ready.append(next_fn)
    return drawing


def render(drawing: Drawing, backend: str = "auto"):
    """Render with graphviz (``backend="graphviz"``), matplotlib, or the first available."""
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; choose one of {BACKENDS}.")
    if backend == "graphviz" and not has_graphviz():
        raise RuntimeError(
            "graphviz is not available: install the `dot` program (e.g. `apt-get install "
            "graphviz`) and the `graphviz` Python package, or use backend='matplotlib'."
        )
    if backend == "graphviz" or (backend == "auto" and has_graphviz()):
        return to_graphviz(drawing)
    return to_matplotlib(drawing)


def to_graphviz(drawing: Drawing):
    import graphviz

    dot = graphviz.Digraph(
        graph_attr={"rankdir": drawing.direction, "label": drawing.title,
                    "fontname": "Helvetica", "ranksep": "0.3", "nodesep": "0.3"}
    )
    for node_id, (label, shape, colour) in drawing.nodes.items():
        style = "rounded,filled" if shape == "box" else "filled"
        dot.node(node_id, label, shape=shape, style=style, fillcolor=colour, fontname="Helvetica")
    for a, b in drawing.edges:
        dot.edge(a, b)
    return dot


def to_matplotlib(drawing: Drawing):
    """A layered layout (left to right, or top to bottom) drawn on a matplotlib Figure."""
    from matplotlib.figure import Figure

    positions = _layout(drawing)
    depth = round(max(x for x, _ in positions.values()))
    if drawing.direction == "TB":  # layers become rows, from the top down
        positions = {n: (y, float(depth) - x) for n, (x, y) in positions.items()}
    columns = round(max(x for x, _ in positions.values())) + 1
    rows = round(max(y for _, y in positions.values())) + 1
    fig = Figure(figsize=(min(2.0 + 1.6 * columns, 16), min(1.0 + 1.1 * rows, 12)))
    ax = fig.add_axes((0, 0, 1, 1 if not drawing.title else 0.92))
    ax.set_axis_off()
    boxes = {}
    for node_id, (label, shape, colour) in drawing.nodes.items():
        style = "circle,pad=0.2" if shape != "box" and len(label) <= 4 else "round,pad=0.4"
        boxes[node_id] = ax.text(
            *positions[node_id], label, ha="center", va="center", fontsize=9,
            bbox={"boxstyle": style, "facecolor": colour, "edgecolor": "0.3"},
        )
    for a, b in drawing.edges:
        skips = (positions[b][0] - positions[a][0] > 1 if drawing.direction == "LR"
                 else positions[a][1] - positions[b][1] > 1)  # bend long arrows around boxes
        ax.annotate(
            "", xy=positions[b], xytext=positions[a],
            arrowprops={"arrowstyle": "-|>", "color": "0.3", "patchA": boxes[a].get_bbox_patch(),
                        "patchB": boxes[b].get_bbox_patch(), "shrinkA": 2, "shrinkB": 2,
                        "connectionstyle": f"arc3,rad={-0.3 if skips else 0}"},
        )
    ax.set_xlim(-0.6, columns - 0.4)
    ax.set_ylim(-0.7, rows - 0.3)
    if drawing.title:
        fig.suptitle(drawing.title, fontsize=10)
    return fig


def _layout(drawing: Drawing) -> dict[str, tuple[float, float]]:
    """Columns in topological order with short arrows; within a column, follow the parents."""
    incoming: dict[str, list[str]] = {n: [] for n in drawing.nodes}
    outgoing: dict[str, list[str]] = {n: [] for n in drawing.nodes}
    for a, b in drawing.edges:
        incoming[b].append(a)
        outgoing[a].append(b)
    waiting = {n: len(incoming[n]) for n in drawing.nodes}
    ready = [n for n, k in waiting.items() if k == 0]
    order: list[str] = []
    while ready:  # Kahn's algorithm: a node comes after all of its parents
        n = ready.pop(0)
        order.append(n)
        for m in outgoing[n]:
            waiting[m] -= 1
            if waiting[m] == 0:
                ready.append(m)
    column: dict[str, int] = {}
    for n in order:  # as early as the parents allow ...
        column[n] = 1 + max((column[p] for p in incoming[n]), default=-1)
    for n in reversed(order):  # ... then as late as the children allow, so arrows are short
        if outgoing[n]:
            column[n] = min(column[m] for m in outgoing[n]) - 1
    height = max(list(column.values()).count(k) for k in set(column.values()))
    positions: dict[str, tuple[float, float]] = {}
    for k in sorted(set(column.values())):
        layer = [n for n in drawing.nodes if column[n] == k]
        layer.sort(key=lambda n: -sum(positions[p][1] for p in incoming[n])
                   / max(len(incoming[n]), 1))
        offset = (height - len(layer)) / 2
        for j, n in enumerate(layer):
            positions[n] = (float(k), height - 1 - (offset + j))
    return positions


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction {direction!r}; choose one of {DIRECTIONS}.")


def _shade(t: float) -> str:
    r, g, b = (round(a + (z - a) * t) for a, z in zip(_FIRST, _LAST, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _shape(tensor) -> str:
    return "shape (" + ", ".join(map(str, tensor.shape)) + ")" if tensor.dim() else "scalar"

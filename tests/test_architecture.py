"""The package's layers, as CONTRIBUTING.md draws them: who may import whom, and no cycles.

Imports are found statically (module level and inside functions alike; ``if TYPE_CHECKING``
blocks are skipped), so a lazy import cannot hide a dependency that breaks the layering.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "coursekit"

# A layer may import itself and any layer with a smaller number; nothing else.
LAYERS = {
    "util": 0,
    "autodiff": 1,
    "scratch": 1,
    "data": 1,
    "viz": 2,
    "models": 2,
    "train": 3,
    "book": 4,
    "grading": 5,
    "cli": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            continue
        yield child
        yield from _walk(child)


def imports_of(name: str) -> set[str]:
    """The coursekit modules ``name`` imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def layer_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


GRAPH = {name: imports_of(name) for name in MODULES}


def test_every_subpackage_has_a_layer_and_says_what_lives_there():
    for path in PACKAGE.iterdir():
        if path.name.startswith(("_", ".")) or path.suffix not in {"", ".py"}:
            continue
        if path.is_dir() and not (path / "__init__.py").exists():
            continue
        assert path.stem in LAYERS, f"{path.stem} has no layer in LAYERS/CONTRIBUTING.md"
        if path.is_dir():
            doc = ast.get_docstring(ast.parse((path / "__init__.py").read_text()))
            assert doc and len(doc) > 40, f"coursekit.{path.stem}/__init__.py needs a docstring"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer_of(n)))
def test_imports_go_only_down_the_layers(name):
    here = layer_of(name)
    for target in GRAPH[name]:
        there = layer_of(target)
        if there is None or there == here:
            continue
        assert LAYERS[there] < LAYERS[here], (
            f"{name} (layer {here}) imports {target} (layer {there}): move the shared code "
            f"down to a lower layer, or the importing code up")


def test_the_import_graph_has_no_cycle():
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycle = stack[stack.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, stack + [target])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_the_checker_sees_a_violation_and_a_cycle():
    """The rules above can fail: a fake upward edge and a fake cycle are both caught."""
    assert "coursekit.viz.graph" in GRAPH["coursekit.viz"]
    assert "coursekit.util.atomic" in GRAPH["coursekit.train.checkpoint"]
    assert LAYERS["book"] > LAYERS["train"]  # so train importing book would fail above
    GRAPH["coursekit.util.atomic"].add("coursekit.train.checkpoint")
    try:
        with pytest.raises(pytest.fail.Exception, match="import cycle"):
            test_the_import_graph_has_no_cycle()
        with pytest.raises(AssertionError, match="imports coursekit.train.checkpoint"):
            test_imports_go_only_down_the_layers("coursekit.util.atomic")
    finally:
        GRAPH["coursekit.util.atomic"].discard("coursekit.train.checkpoint")

"""Fingerprints that tie a notebook's committed outputs to the code that produced them.

A fingerprint hashes (1) the notebook's code cells, (2) its outputs, and (3) every coursekit
module the notebook imports, followed transitively through the package's own imports (found
statically, so checking needs no kernel). Editing a cell, hand-editing an output or changing
a module that the notebook uses makes the stored fingerprint disagree with a fresh one: the
notebook is stale and must be re-executed. Changing a module it does not use does not.
"""

from __future__ import annotations

import ast
import hashlib
import json
from importlib import util
from pathlib import Path

import nbformat

PACKAGE = "coursekit"
METADATA_KEY = "coursekit"
INJECTED_TAG = "injected-parameters"  # papermill's cell; it depends on the run, not the code


def _sha(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:16]


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [
        c for c in nb.cells
        if c.cell_type == "code" and INJECTED_TAG not in c.get("metadata", {}).get("tags", [])
    ]


def code_digest(nb: nbformat.NotebookNode) -> str:
    return _sha(json.dumps([c.source.rstrip() for c in code_cells(nb)]))


def outputs_digest(nb: nbformat.NotebookNode) -> str:
    """Hash of every code cell's outputs (the injected parameters cell included)."""
    outputs = [c.get("outputs", []) for c in nb.cells if c.cell_type == "code"]
    return _sha(json.dumps(outputs, sort_keys=True, default=str))


def _python_lines(source: str) -> str:
    """Turn IPython magics and shell escapes into ``pass`` so the cell parses as Python."""
    return "\n".join(
        line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
        else line
        for line in source.splitlines()
    )


def _module_file(name: str) -> Path | None:
    """The source file of a coursekit module, found on disk without importing anything
    (``find_spec`` of ``a.b`` imports ``a``: here that would import torch for nothing)."""
    top = util.find_spec(PACKAGE)
    if top is None or not top.submodule_search_locations:
        return None
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    for folder in top.submodule_search_locations:
        base = Path(folder).joinpath(*parts[1:])
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
    return None


def _imports(tree: ast.AST, current: str | None = None, is_package: bool = False) -> set[str]:
    """coursekit module names imported anywhere in ``tree`` (function bodies included)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and current:
                parts = current.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {
        name for name in found
        if (name == PACKAGE or name.startswith(PACKAGE + ".")) and _module_file(name)
    }


def _with_parents(names: set[str]) -> set[str]:
    out = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def module_closure(roots: set[str]) -> set[str]:
    """All coursekit modules reachable from ``roots`` through imports."""
    seen: set[str] = set()
    todo = list(_with_parents(roots))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None or path.suffix != ".py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        todo.extend(_with_parents(_imports(tree, name, path.name == "__init__.py")) - seen)
    return seen


def notebook_modules(nb: nbformat.NotebookNode) -> set[str]:
    roots: set[str] = set()
    for cell in code_cells(nb):
        try:
            roots |= _imports(ast.parse(_python_lines(cell.source)))
        except SyntaxError:
            continue  # a broken cell fails execution; the fingerprint need not
    return module_closure(roots)


def compute(nb: nbformat.NotebookNode) -> dict:
    """The fingerprint of ``nb`` as it is now."""
    modules = sorted(notebook_modules(nb))
    return {
        "code": code_digest(nb),
        "outputs": outputs_digest(nb),
        "modules": {name: _sha(_module_file(name).read_bytes()) for name in modules},
    }


def stamp(nb: nbformat.NotebookNode, profile: str, wall_time: float) -> None:
    """Record the fingerprint and how the notebook was executed in its metadata."""
    nb.metadata[METADATA_KEY] = {
        "profile": profile,
        "wall_time_s": round(wall_time, 1),
        "fingerprint": compute(nb),
    }


def stale_reasons(path: str | Path, expected_profile: str = "cpu") -> list[str]:
    """Why the committed outputs of ``path`` cannot be trusted (empty list: they can)."""
    nb = nbformat.read(path, as_version=4)
    record = nb.metadata.get(METADATA_KEY)
    if not record or "fingerprint" not in record:
        return ["it has never been executed with `coursekit execute` (no fingerprint)"]
    reasons = []
    if record.get("profile") != expected_profile:
        reasons.append(f"it was executed in the {record.get('profile')!r} profile, "
                       f"not {expected_profile!r}")
    stored, now = record["fingerprint"], compute(nb)
    if stored.get("code") != now["code"]:
        reasons.append("its code cells changed after it was executed")
    if stored.get("outputs") != now["outputs"]:
        reasons.append("its outputs were edited after it was executed")
    old, new = stored.get("modules", {}), now["modules"]
    for name in sorted(set(old) | set(new)):
        if name not in new:
            reasons.append(f"it no longer imports {name}")
        elif name not in old:
            reasons.append(f"it now imports {name}, which it did not when executed")
        elif old[name] != new[name]:
            reasons.append(f"{name} changed after it was executed")
    return reasons

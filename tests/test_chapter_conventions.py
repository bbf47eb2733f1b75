"""Every chapter follows the book's conventions (CONTRIBUTING.md), checked mechanically."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from coursekit.book.execute import chapters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = chapters(ROOT)
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")
CITE_ROLE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")


def _load(path):
    return nbformat.read(path, as_version=4)


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"
            and "injected-parameters" not in c.metadata.get("tags", [])]


def _glued_names(nb):
    names = set()
    for cell in _code(nb):
        for output in cell.get("outputs", []):
            scrap = output.get("metadata", {}).get("scrapbook", {})
            if "name" in scrap:
                names.add(scrap["name"])
    return names


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_opens_with_parameters_and_session_and_ends_with_wall_time(path):
    code = _code(_load(path))
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged"
    assert re.search(r'^profile = "auto"', code[0].source, re.M), code[0].source
    assert re.search(r"^seed = \d+", code[0].source, re.M), code[0].source
    assert "session.start(profile, seed)" in code[1].source
    assert 'find_spec("coursekit") is None' in code[1].source, "Colab needs the install guard"
    assert "%pip install" in code[1].source
    assert code[-1].source.strip() == "run.finish()"
    assert "Wall time:" in "".join(o.get("text", "") for o in code[-1].outputs)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_has_a_title_figures_and_exercises(path):
    nb = _load(path)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"^## Exercises", markdown, re.M), "a chapter ends with exercises"
    images = sum("image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {})
                 for c in _code(nb) for o in c.outputs)
    assert images >= 1, "a chapter shows at least one figure"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_glued_number_in_the_prose_exists(path):
    nb = _load(path)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    used = set(GLUE_ROLE.findall(markdown))
    missing = used - _glued_names(nb)
    assert not missing, f"prose uses glue names never glued by an output: {sorted(missing)}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_citations_exist_in_the_bibliography(path):
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    markdown = "\n".join(c.source for c in _load(path).cells if c.cell_type == "markdown")
    cited = {k.strip() for group in CITE_ROLE.findall(markdown) for k in group.split(",")}
    assert cited, "a chapter cites its sources"
    assert cited <= keys, f"unknown citation keys: {sorted(cited - keys)}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_no_errors_and_no_hand_written_training_loops(path):
    nb = _load(path)
    for cell in _code(nb):
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:80]
        loop = re.search(r"^\s*(for|while) ", cell.source, re.M)
        steps = ".backward()" in cell.source and re.search(r"\.step\(\)", cell.source)
        assert not (loop and steps), "training goes through coursekit.train.fit, not a loop"
    assert len(json.dumps(nb)) < 3_000_000, "keep executed notebooks small (figures as PNG)"

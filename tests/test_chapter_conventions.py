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


# --- What a reader sees (CONTRIBUTING.md, "The page a reader sees") -------------------------

REMOVED = {"remove-cell"}
NO_INPUT = {"remove-cell", "remove-input"}
NO_OUTPUT = {"remove-cell", "remove-output"}
MAX_LINE = 88
MAX_FIGURE_PX = 800  # the text column shows about 750 px; wider figures shrink their text
BOOKKEEPING = re.compile(r"\bglue\(|NBVAL|filterwarnings|find_spec\(|simplefilter\(")
REF_ROLE = re.compile(r"\{(numref|ref)\}`(?:[^`<]*<)?([^`>]+)>?`")
DOC_ROLE = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`")
PLAIN_CHAPTER = re.compile(r"\b[Cc]hapters? \d+")
GLUE_FIGURE = re.compile(r"```\{glue:figure\}\s*(\S+)\n((?::\w+:.*\n)*)(.*?)```", re.S)


def _tags(cell):
    return set(cell.metadata.get("tags", []))


def _markdown(nb):
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def _images(cell):
    """Displayed image outputs (glued ones carry scrapbook metadata and are shown elsewhere)."""
    return [o for o in cell.get("outputs", [])
            if {"image/png", "image/svg+xml"} & set(o.get("data", {}))
            and "scrapbook" not in o.get("metadata", {})]


def _labels(path):
    """Every label a chapter defines: figure names in cell metadata, `:name:` options and
    ``(label)=`` targets in its markdown."""
    nb = _load(path)
    names = {c.metadata.get("mystnb", {}).get("figure", {}).get("name") for c in nb.cells}
    markdown = _markdown(nb)
    names |= set(re.findall(r"^:name:\s*(\S+)", markdown, re.M))
    names |= set(re.findall(r"^\(([\w-]+)\)=", markdown, re.M))
    return names - {None}


ALL_LABELS = set().union(*(_labels(p) for p in CHAPTERS)) if CHAPTERS else set()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_bookkeeping_cells_are_hidden_from_the_page(path):
    nb = _load(path)
    for cell in nb.cells:
        if "injected-parameters" in _tags(cell):
            assert "remove-cell" in _tags(cell), (
                "papermill's injected parameters show on the page: re-run coursekit execute")
    code = _code(nb)
    assert REMOVED <= _tags(code[0]), "the parameters cell is tagged remove-cell"
    assert "remove-input" in _tags(code[1]), "the session cell shows its record, not its code"
    assert "remove-input" in _tags(code[-1]), "run.finish() shows the wall time, not the code"
    for cell in code:
        if not _tags(cell) & NO_INPUT:
            found = BOOKKEEPING.search(cell.source)
            assert not found, (f"a visible cell shows bookkeeping ({found.group(0)!r}): move it "
                               f"to a cell tagged remove-cell:\n{cell.source[:200]}")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_visible_code_and_outputs_fit_the_text_column(path):
    for cell in _code(_load(path)):
        tags = _tags(cell)
        if not tags & NO_INPUT:
            for line in cell.source.splitlines():
                assert len(line) <= MAX_LINE, f"code line over {MAX_LINE} characters: {line!r}"
        if tags & NO_OUTPUT:
            continue
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                raise AssertionError(f"readers would see stderr: {output['text'][:200]!r}")
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            if output.get("output_type") != "stream" and set(output.get("data", {})) - {
                    "text/plain"}:
                continue  # shown as HTML or an image, not as text
            for line in "".join(text).splitlines():
                assert len(line) <= MAX_LINE, f"output line over {MAX_LINE} characters: {line!r}"


def _png_width(data: str) -> int:
    import base64
    return int.from_bytes(base64.b64decode(data[:64])[16:20], "big")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_figure_is_numbered_captioned_legible_and_referenced(path):
    nb = _load(path)
    markdown = _markdown(nb)
    referenced = {label for _, label in REF_ROLE.findall(markdown)}
    figures = []
    for cell in _code(nb):
        if _tags(cell) & NO_OUTPUT or not _images(cell):
            continue
        assert len(_images(cell)) == 1, "one figure per cell, so each gets its own number"
        meta = cell.metadata.get("mystnb", {})
        figure, image = meta.get("figure", {}), meta.get("image", {})
        assert figure.get("caption", "").strip(), f"figure without a caption:\n{cell.source[:120]}"
        assert figure.get("name", "").startswith("fig-"), "name figures fig-…, for {numref}"
        assert image.get("alt", "").strip(), f"figure without alt text: {figure['name']}"
        figures.append(figure["name"])
        png = _images(cell)[0].get("data", {}).get("image/png")
        if png:
            assert _png_width(png) <= MAX_FIGURE_PX, (
                f"{figure['name']} is {_png_width(png)} px wide: the page would shrink its "
                f"text; use coursekit.viz.figsize")
    for name, options, caption in GLUE_FIGURE.findall(markdown):
        assert re.search(r"^:name:\s*fig-", options, re.M), f"glue:figure {name} needs :name:"
        assert re.search(r"^:alt:\s*\S", options, re.M), f"glue:figure {name} needs :alt:"
        assert caption.strip(), f"glue:figure {name} needs a caption"
        figures.append(re.search(r"^:name:\s*(\S+)", options, re.M).group(1))
    assert figures, "a chapter shows at least one numbered figure"
    unreferenced = [f for f in figures if f not in referenced]
    assert not unreferenced, f"figures the prose never refers to with {{numref}}: {unreferenced}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_cross_references_resolve(path):
    markdown = _markdown(_load(path))
    for _, label in REF_ROLE.findall(markdown):
        assert label in ALL_LABELS, f"dangling cross-reference: {label}"
    for target in DOC_ROLE.findall(markdown):
        base = (path.parent / target).with_suffix("")
        assert any(base.with_suffix(s).exists() for s in (".ipynb", ".md")), (
            f"{{doc}} link to a page that does not exist: {target}")
    without_links = DOC_ROLE.sub("", markdown)
    plain = PLAIN_CHAPTER.findall(without_links)
    assert not plain, (f"{plain}: refer to an existing chapter with a {{doc}} link, and to a "
                       "future one without a number")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_sections_are_numbered_like_every_other_chapter(path):
    number = int(path.name[:2])
    headings = re.findall(r"^(#{1,2}) (.+)$", _markdown(_load(path)), re.M)
    assert headings[0] == ("#", headings[0][1]) and headings[0][1].startswith(f"{number}. ")
    sections = [text for level, text in headings[1:] if level == "##"]
    numbered = [s for s in sections if s not in ("Summary", "Exercises")]
    expected = [f"{number}.{k} " for k in range(1, len(numbered) + 1)]
    assert [s[:len(e)] for s, e in zip(numbered, expected, strict=True)] == expected, numbered
    assert sections[-1] == "Exercises"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_exercises_have_a_difficulty_and_a_worked_answer(path):
    markdown = _markdown(_load(path))
    exercises = markdown.split("\n## Exercises", 1)[1]
    items = re.findall(r"^\d+\. (.*)$", exercises, re.M)
    assert len(items) >= 3, "at least three exercises"
    for item in items:
        assert re.match(r"\*\*\[(★|★★|★★★)\]\*\*", item), (
            f"start each exercise with its difficulty, **[★]** to **[★★★]**: {item[:60]}")
    answers = re.findall(r"^\s*:::\{dropdown\} Answer", exercises, re.M)
    assert len(answers) == len(items), "each exercise has a worked answer in a dropdown"

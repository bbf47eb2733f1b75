"""`coursekit execute` replaces a committed notebook only with a complete run it was asked for.

A run in the committed profile (cpu) replaces the notebook; a run in another profile goes to
``_build/executed/PROFILE/NAME`` unless ``--in-place``; a failing run replaces nothing and is
kept in ``_build/failed/NAME``. Each test runs a tiny notebook (no torch) in a tiny project.
"""

import os
from pathlib import Path

import nbformat
import pytest
from _notebooks import tiny_notebook

from coursekit import cli
from coursekit.book import execute, fingerprint


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A folder laid out like the textbook: _toc.yml, pyproject.toml and book/."""
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'tiny'\n")
    (tmp_path / "book").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _chapter(folder: Path, body: str = "print('ran in', profile)") -> Path:
    return tiny_notebook(folder / "book" / "01_tiny.ipynb", "x = 41", body)


def _printed(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))


def test_where_each_run_is_written(project):
    path = _chapter(project)
    elsewhere = project / "_build" / "executed" / "smoke" / path.name
    assert execute.destination(path, "smoke") == elsewhere
    assert execute.destination(path, "full") == project / "_build/executed/full" / path.name
    assert execute.destination(path, "smoke", in_place=True) == path
    assert execute.destination(path, execute.COMMITTED_PROFILE) == path
    assert execute.destination(path, "smoke", output="out.ipynb") == project / "out.ipynb"


def test_cli_smoke_run_leaves_the_committed_notebook_byte_identical(project, capsys):
    path = _chapter(project)
    before = path.read_bytes()
    cli.main(["execute", "book/01_tiny.ipynb", "--profile", "smoke"])
    assert path.read_bytes() == before
    written = project / "_build" / "executed" / "smoke" / path.name
    assert "ran in smoke" in _printed(written)
    assert nbformat.read(written, as_version=4).metadata["coursekit"]["profile"] == "smoke"
    assert fingerprint.stale_reasons(written, "smoke") == []
    printed = capsys.readouterr().out
    assert "written to _build/executed/smoke/01_tiny.ipynb" in printed
    assert "book/01_tiny.ipynb is unchanged" in printed and "--in-place" in printed


def test_in_place_flag_overwrites_in_another_profile(project):
    path = _chapter(project)
    cli.main(["execute", str(path), "--profile", "smoke", "--in-place"])
    assert "ran in smoke" in _printed(path)
    assert fingerprint.stale_reasons(path, "smoke") == []
    assert not (project / "_build" / "executed").exists()


def test_committed_profile_writes_in_place(project):
    path = _chapter(project)
    result = execute.execute(path, execute.COMMITTED_PROFILE)
    assert result.path == path and result.source == path
    assert "ran in cpu" in _printed(path)
    assert fingerprint.stale_reasons(path, "cpu") == []


def test_output_and_in_place_are_exclusive(project, capsys):
    path = _chapter(project)
    with pytest.raises(SystemExit):
        cli.main(["execute", str(path), "--in-place", "--output", "x.ipynb"])
    assert "not allowed with" in capsys.readouterr().err


@pytest.mark.parametrize("profile", ["cpu", "smoke"])
def test_a_failing_run_replaces_nothing_and_is_kept_in_build_failed(project, profile):
    path = _chapter(project, body="y = x + 1\nraise ValueError('boom')")
    before = path.read_bytes()
    with pytest.raises(execute.NotebookExecutionError) as info:
        execute.execute(path, profile)
    assert path.read_bytes() == before
    assert not (project / "_build" / "executed").exists()
    kept = project / "_build" / "failed" / path.name
    message = str(info.value)
    assert message.startswith("01_tiny.ipynb: code cell 3 ")
    assert "ValueError: boom" in message and "cell starts: y = x + 1" in message
    assert f"notebook: {path} (unchanged)" in message
    assert "failed run, with the error: _build/failed/01_tiny.ipynb" in message
    failed = nbformat.read(kept, as_version=4)
    assert any(o.get("ename") == "ValueError" for c in failed.cells if c.cell_type == "code"
               for o in c.get("outputs", []))
    _chapter(project)  # fixed: the next successful run removes the failed copy
    execute.execute(path, profile, in_place=True)
    assert not kept.exists() and "ran in" in _printed(path)


def test_cli_reports_a_failure_without_touching_the_notebook(project):
    path = _chapter(project, body="1 / 0")
    before = path.read_bytes()
    with pytest.raises(SystemExit) as info:
        cli.main(["execute", str(path)])
    assert "ZeroDivisionError" in str(info.value) and "_build/failed/" in str(info.value)
    assert path.read_bytes() == before


def test_an_unknown_profile_is_refused_before_anything_runs(project):
    path = _chapter(project)
    before = path.read_bytes()
    with pytest.raises(SystemExit) as info:
        cli.main(["execute", str(path), "--profile", "fast"])
    assert "Unknown profile 'fast'" in str(info.value)
    assert path.read_bytes() == before and not (project / "_build").exists()


def test_injected_parameters_are_hidden_and_figures_survive_a_non_interactive_backend(
        project, monkeypatch):
    """CI exports MPLBACKEND=Agg; the executed chapter must still hold its figures, and
    papermill's injected cell must not show on the page."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = _chapter(project, "import matplotlib.pyplot as plt\nplt.plot([0, 1])\nplt.show()")
    execute.execute(path, "smoke", in_place=True)
    nb = nbformat.read(path, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and all("remove-cell" in c.metadata.tags for c in injected)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) == 1
    assert os.environ["MPLBACKEND"] == "Agg"  # restored for the caller

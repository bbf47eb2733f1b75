"""The fingerprint ties committed outputs to the code and the modules that produced them."""

import nbformat
import pytest
from _notebooks import tiny_notebook

from coursekit.book import execute, fingerprint


def _notebook(path, body="print(run.profile.name)"):
    return tiny_notebook(
        path, "from coursekit.book import session\n\nrun = session.start(profile, seed)", body,
        "run.finish()")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    path = _notebook(tmp_path_factory.mktemp("nb") / "chapter.ipynb")
    result = execute.execute(path, "smoke")
    return result.path


def test_execution_stamps_a_fresh_fingerprint(executed):
    nb = nbformat.read(executed, as_version=4)
    record = nb.metadata["coursekit"]
    assert record["profile"] == "smoke" and record["wall_time_s"] > 0
    assert fingerprint.stale_reasons(executed, "smoke") == []
    assert fingerprint.stale_reasons(executed, "cpu") == [
        "it was executed in the 'smoke' profile, not 'cpu'"]
    assert "smoke" in nb.cells[-2].outputs[0].text  # the injected parameter reached the kernel


def test_editing_a_code_cell_makes_it_stale(executed, tmp_path):
    nb = nbformat.read(executed, as_version=4)
    nb.cells[-2].source = "print(run.profile.name.upper())"
    nbformat.write(nb, tmp_path / "edited.ipynb")
    assert fingerprint.stale_reasons(tmp_path / "edited.ipynb", "smoke") == [
        "its code cells changed after it was executed"]


def test_editing_an_output_by_hand_makes_it_stale(executed, tmp_path):
    nb = nbformat.read(executed, as_version=4)
    nb.cells[-2].outputs[0].text = "99.9 % accuracy\n"
    nbformat.write(nb, tmp_path / "faked.ipynb")
    assert fingerprint.stale_reasons(tmp_path / "faked.ipynb", "smoke") == [
        "its outputs were edited after it was executed"]


def test_a_changed_module_is_named(executed, tmp_path):
    nb = nbformat.read(executed, as_version=4)
    nb.metadata["coursekit"]["fingerprint"]["modules"]["coursekit.util.repro"] = "0" * 16
    nbformat.write(nb, tmp_path / "old.ipynb")
    assert fingerprint.stale_reasons(tmp_path / "old.ipynb", "smoke") == [
        "coursekit.util.repro changed after it was executed"]


def test_markdown_edits_do_not_require_reexecution(executed, tmp_path):
    nb = nbformat.read(executed, as_version=4)
    nb.cells[0].source = "# A chapter, retitled"
    nbformat.write(nb, tmp_path / "prose.ipynb")
    assert fingerprint.stale_reasons(tmp_path / "prose.ipynb", "smoke") == []


def test_module_closure_is_transitive_and_only_what_is_used(tmp_path):
    nb = nbformat.read(_notebook(tmp_path / "a.ipynb"), as_version=4)
    used = fingerprint.notebook_modules(nb)
    # session imports profiles and repro; nothing imports data or train.
    assert {"coursekit", "coursekit.book.session", "coursekit.book.profiles",
            "coursekit.util.repro"} <= used
    assert "coursekit.data" not in used and "coursekit.train" not in used
    nb.cells[3].source = "%matplotlib inline\nfrom coursekit.data import tensors\n!ls"
    assert "coursekit.data" in fingerprint.notebook_modules(nb)
    nb.cells[3].source = "if True:\n    %pip install x\n\nfrom coursekit import train"
    assert "coursekit.train" in fingerprint.notebook_modules(nb)  # a magic inside a block


def test_a_failing_cell_is_named(tmp_path):
    path = _notebook(tmp_path / "broken.ipynb", body="x = 1\n1 / 0")
    with pytest.raises(execute.NotebookExecutionError) as info:
        execute.execute(path, "smoke", output=tmp_path / "out.ipynb")
    message = str(info.value)
    assert message.startswith("broken.ipynb: code cell 3 ")
    assert "ZeroDivisionError" in message and "cell starts: x = 1" in message


def test_relative_imports_are_followed_in_modules_and_packages():
    import ast

    # coursekit.train (a package) reaches its modules only through relative imports:
    # `from .loop import fit` in __init__, `from . import checkpoint` and `from .callbacks
    # import Callback` in loop.py, `from .history import History` in callbacks.py.
    closure = fingerprint.module_closure({"coursekit.train"})
    assert {"coursekit.train.loop", "coursekit.train.checkpoint", "coursekit.train.callbacks",
            "coursekit.train.history", "coursekit.train.fastpath"} <= closure
    assert "coursekit.util.atomic" in closure  # checkpoint.py imports it absolutely
    # The resolution itself: level 1 and 2, from a module and from a package's __init__.
    tree = ast.parse("from . import fetch\nfrom .integrity import extract\n"
                     "from ..util import atomic\n")
    assert fingerprint._imports(tree, "coursekit.data.datasets") == {
        "coursekit.data", "coursekit.data.fetch", "coursekit.data.integrity",
        "coursekit.util", "coursekit.util.atomic"}
    tree = ast.parse("from .loop import fit\nfrom . import distributed\n")
    assert fingerprint._imports(tree, "coursekit.train", is_package=True) == {
        "coursekit.train", "coursekit.train.loop", "coursekit.train.distributed"}

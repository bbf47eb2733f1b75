"""A tiny chapter-shaped notebook for the tests of execution and fingerprints."""

from pathlib import Path

import nbformat


def tiny_notebook(path: Path, *code: str) -> Path:
    """Write a notebook: a title, the papermill ``parameters`` cell, then ``code`` cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A chapter"),
        nbformat.v4.new_code_cell('profile = "auto"\nseed = 0', metadata={"tags": ["parameters"]}),
        *(nbformat.v4.new_code_cell(source) for source in code),
    ]
    nbformat.write(nb, path)
    return path

"""Build the HTML book with Jupyter Book 1 from the committed, executed notebooks.

The book never executes code while building (``execute_notebooks: "off"``): what readers see
is exactly what was committed and fingerprinted. Warnings are errors, so a broken reference,
citation or glue fails the build instead of shipping.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from coursekit.book import fingerprint
from coursekit.book.execute import chapters, execute_all, project_root


def build_html(root: Path | None = None, *, strict: bool = True, fresh: bool = False) -> Path:
    """Run ``jupyter-book build`` on the project; return the HTML folder."""
    root = root or project_root()
    command = [_jupyter_book(), "build", str(root), "--builder", "html"]
    if strict:
        command += ["--warningiserror", "--keep-going"]
    if fresh:
        command.append("--all")
    subprocess.run(command, cwd=root, check=True)
    return root / "_build" / "html"


def _jupyter_book() -> str:
    """The ``jupyter-book`` script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "jupyter-book"
    found = str(beside) if beside.exists() else shutil.which("jupyter-book")
    if not found:
        raise FileNotFoundError(
            "jupyter-book is not installed here. Install the project's requirements: "
            "python -m pip install -r requirements.txt"
        )
    return found


def main(execute_first: bool, profile: str, fresh: bool) -> None:
    root = project_root()
    if execute_first:
        execute_all(chapters(root), profile)
    else:
        stale = [p.relative_to(root) for p in chapters(root) if fingerprint.stale_reasons(p)]
        if stale:
            print(f"warning: stale outputs in {', '.join(map(str, stale))}; the book shows them "
                  "as committed (see `coursekit stale`)", file=sys.stderr)
    start = time.perf_counter()
    html = build_html(root, fresh=fresh)
    print(f"Book built in {time.perf_counter() - start:.0f} s: {html / 'index.html'}")

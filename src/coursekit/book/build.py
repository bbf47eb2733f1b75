"""Build the HTML book with Jupyter Book 1 from the committed, executed notebooks.

The book never executes code while building (``execute_notebooks: "off"``): what readers see
is exactly what was committed and fingerprinted. Warnings are errors, so a broken reference,
citation or glue fails the build instead of shipping.

The build's own chatter (Sphinx's progress lines, myst's configuration dumps, colour codes)
goes to ``_build/build.log``; the terminal shows one line per problem and one line of result.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from coursekit.book import fingerprint
from coursekit.book.execute import chapters, execute_all, project_root

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROBLEM = re.compile(r"\b(WARNING|ERROR|SEVERE|CRITICAL)\b|^\s*(\w+\.)*\w*(Error|Exception)\b")


def plain(log: str) -> str:
    """The log without terminal colour codes."""
    return ANSI.sub("", log)


def problems(log: str) -> list[str]:
    """One line per warning or error of a build log, in order, each once."""
    found: list[str] = []
    for line in plain(log).splitlines():
        line = line.strip()
        if PROBLEM.search(line) and line not in found:
            found.append(line)
    return found


def build_html(root: Path | None = None, *, strict: bool = True, fresh: bool = False) -> Path:
    """Run ``jupyter-book build`` on the project; return the HTML folder.

    The full log is written to ``_build/build.log``; problems are printed, one line each,
    and a failed build raises :class:`RuntimeError`.
    """
    root = root or project_root()
    command = [_jupyter_book(), "build", str(root), "--builder", "html"]
    if strict:
        command += ["--warningiserror", "--keep-going"]
    if fresh:
        command.append("--all")
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    log_file = root / "_build" / "build.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log = plain(result.stdout)
    log_file.write_text(log, encoding="utf-8")
    found = problems(log)
    for line in found:
        print(line, file=sys.stderr)
    if result.returncode != 0:
        tail = "" if found else "\n" + "\n".join(log.splitlines()[-15:])
        raise RuntimeError(
            f"the book did not build ({len(found)} problems above; full log in "
            f"{log_file.relative_to(root)}){tail}")
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
    print(f"Book built in {time.perf_counter() - start:.0f} s: {html / 'index.html'} "
          "(log: _build/build.log)")

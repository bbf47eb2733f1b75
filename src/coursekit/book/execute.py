"""Execute notebooks with papermill in a chosen profile and stamp their fingerprint.

``coursekit execute`` is how committed outputs are made; ``coursekit build --execute`` uses it
too. A failing cell raises :class:`NotebookExecutionError` naming the notebook and the cell.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import papermill

from coursekit.book import fingerprint
from coursekit.book.profiles import PROFILE_ENV, resolve_name

ROOT_MARKERS = ("_toc.yml", "pyproject.toml")
CELL_METADATA_NOISE = ("papermill", "execution")  # per-cell timestamps: pure diff noise


class NotebookExecutionError(RuntimeError):
    """A cell failed; the message names the notebook, the cell and the error."""


@dataclass
class Result:
    path: Path
    profile: str
    seconds: float


def project_root(start: Path | None = None) -> Path:
    """The folder with ``_toc.yml`` (the book's root), searching upwards from ``start``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    raise FileNotFoundError(
        f"No project root (a folder with {' and '.join(ROOT_MARKERS)}) above {here}. "
        "Run coursekit from inside the textbook's repository."
    )


def chapters(root: Path) -> list[Path]:
    """Every chapter notebook under ``book/``, in file-name order."""
    return sorted((root / "book").glob("*.ipynb"))


@contextlib.contextmanager
def _profile_env(profile: str) -> Iterator[None]:
    """The kernel inherits our environment; make the profile override agree with ``profile``."""
    previous = os.environ.get(PROFILE_ENV)
    os.environ[PROFILE_ENV] = profile
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(PROFILE_ENV, None)
        else:
            os.environ[PROFILE_ENV] = previous


def execute(path: str | Path, profile: str = "cpu", output: str | Path | None = None,
            timeout: int | None = None) -> Result:
    """Run ``path`` top to bottom in ``profile``; write it (or ``output``) with a fingerprint."""
    path = Path(path).resolve()
    output = Path(output).resolve() if output else path
    profile = resolve_name(profile, use_env=False)
    start = time.perf_counter()
    with _profile_env(profile):
        try:
            nb = papermill.execute_notebook(
                str(path), str(output), parameters={"profile": profile},
                cwd=str(path.parent), kernel_name="python3", progress_bar=False,
                execution_timeout=timeout, report_mode=False,
            )
        except papermill.PapermillExecutionError as error:
            raise NotebookExecutionError(_describe_failure(path, output, error)) from None
    seconds = time.perf_counter() - start
    _strip_noise(nb)
    fingerprint.stamp(nb, profile, seconds)
    nbformat.write(nb, str(output))
    return Result(output, profile, seconds)


def execute_all(paths: list[Path], profile: str = "cpu",
                output: str | Path | None = None) -> float:
    """Execute each notebook in turn, printing its time; return the total in seconds."""
    total = 0.0
    for path in paths:
        result = execute(path, profile, output=output)
        total += result.seconds
        print(f"executed {path} in {result.seconds:6.1f} s ({result.profile} profile)",
              flush=True)
    return total


def _describe_failure(path: Path, output: Path, error: papermill.PapermillExecutionError) -> str:
    nb = nbformat.read(str(output), as_version=4)
    # Count like a reader does: code cells only, papermill's injected parameters excluded.
    # (Papermill also inserts an error banner cell, so match by source, not by index.)
    code = fingerprint.code_cells(nb)
    number, cell = next(
        ((i + 1, c) for i, c in enumerate(code) if c.source == error.source), (None, None))
    cell_id = cell.get("id", "?") if cell is not None else "?"
    first_line = (error.source or "").strip().splitlines()[:1]
    return (
        f"{path.name}: code cell {number} (cell id {cell_id}) failed with "
        f"{error.ename}: {error.evalue}\n"
        f"  cell starts: {first_line[0] if first_line else '<empty>'}\n"
        f"  notebook: {path}"
    )


def _strip_noise(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        for key in CELL_METADATA_NOISE:
            cell.metadata.pop(key, None)
    nb.metadata.get("papermill", {}).pop("start_time", None)
    nb.metadata.get("papermill", {}).pop("end_time", None)
    nb.metadata.get("papermill", {}).pop("duration", None)
    nb.metadata.get("papermill", {}).pop("input_path", None)
    nb.metadata.get("papermill", {}).pop("output_path", None)

"""Execute notebooks with papermill in a chosen profile and stamp their fingerprint.

``coursekit execute`` is how committed outputs are made; ``coursekit build --execute`` uses it
too. Committed notebooks are only ever replaced by a complete, successful run:

- papermill saves its work in progress in a temporary folder, never over the notebook;
- a successful run is written atomically, over the notebook itself when it ran in the committed
  profile (``cpu``) or when asked (``in_place``), else to ``_build/executed/PROFILE/NAME``;
- a failing cell raises :class:`NotebookExecutionError` naming the notebook and the cell, and
  the failed run (error banner included) is kept in ``_build/failed/NAME`` for inspection.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import papermill

from coursekit.book import fingerprint
from coursekit.book.profiles import PROFILE_ENV, resolve_name
from coursekit.util.atomic import write_atomic

ROOT_MARKERS = ("_toc.yml", "pyproject.toml")
COMMITTED_PROFILE = "cpu"  # the profile of the committed outputs (tests/test_stale_outputs.py)
BUILD_DIR = "_build"
CELL_METADATA_NOISE = ("papermill", "execution")  # per-cell timestamps: pure diff noise


class NotebookExecutionError(RuntimeError):
    """A cell failed; the message names the notebook, the cell, the error and the failed copy."""


@dataclass
class Result:
    path: Path  # where the executed notebook was written
    profile: str
    seconds: float
    source: Path | None = None  # the notebook that ran (None: the same as ``path``)


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
def _kernel_env(profile: str) -> Iterator[None]:
    """The kernel inherits our environment: make the profile override agree with ``profile``,
    and drop ``MPLBACKEND`` (a non-interactive backend such as Agg, as CI sets, would stop the
    kernel's inline backend from putting any figure into the notebook)."""
    wanted = {PROFILE_ENV: profile, "MPLBACKEND": None}
    previous = {name: os.environ.get(name) for name in wanted}
    _set_env(wanted)
    try:
        yield
    finally:
        _set_env(previous)


def _set_env(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def build_dir(path: Path) -> Path:
    """``_build`` of the project holding ``path`` (of its folder, outside any project)."""
    try:
        return project_root(path.parent) / BUILD_DIR
    except FileNotFoundError:
        return path.parent / BUILD_DIR


def destination(path: str | Path, profile: str, output: str | Path | None = None,
                in_place: bool = False) -> Path:
    """Where :func:`execute` writes the run of ``path`` in the (resolved) ``profile``.

    ``output`` if given; the notebook itself in the committed profile or with ``in_place``;
    otherwise ``_build/executed/PROFILE/NAME``, so that a quick run never replaces the
    committed outputs.
    """
    path = Path(path).resolve()
    if output:
        return Path(output).resolve()
    if in_place or profile == COMMITTED_PROFILE:
        return path
    return build_dir(path) / "executed" / profile / path.name


def execute(path: str | Path, profile: str = COMMITTED_PROFILE,
            output: str | Path | None = None, timeout: int | None = None, *,
            in_place: bool = False) -> Result:
    """Run ``path`` top to bottom in ``profile``; write it with a fingerprint (see
    :func:`destination` for where). On failure nothing is written there."""
    path = Path(path).resolve()
    profile = resolve_name(profile, use_env=False)
    target = destination(path, profile, output, in_place)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="coursekit-execute-") as scratch:
        running = Path(scratch) / path.name  # papermill saves here after every cell
        with _kernel_env(profile):
            try:
                nb = papermill.execute_notebook(
                    str(path), str(running), parameters={"profile": profile},
                    cwd=str(path.parent), kernel_name="python3", progress_bar=False,
                    execution_timeout=timeout, report_mode=False,
                )
            except papermill.PapermillExecutionError as error:
                kept = _keep_failed(running, path)
                raise NotebookExecutionError(_describe_failure(path, kept, error)) from None
            except BaseException:
                _keep_failed(running, path)
                raise
    seconds = time.perf_counter() - start
    _strip_noise(nb)
    fingerprint.stamp(nb, profile, seconds)
    write_atomic(target, _notebook_text(nb))
    _failed_copy(path).unlink(missing_ok=True)  # an earlier failure, now fixed
    return Result(target, profile, seconds, source=path)


def execute_all(paths: list[Path], profile: str = COMMITTED_PROFILE,
                output: str | Path | None = None, in_place: bool = True) -> float:
    """Execute each notebook in turn, printing its time; return the total in seconds.

    ``in_place`` defaults to True here because ``coursekit build --execute`` builds the book
    from the notebooks it has just executed, whatever the profile; ``coursekit execute``
    passes its ``--in-place`` flag instead.
    """
    total = 0.0
    for path in paths:
        result = execute(path, profile, output=output, in_place=in_place)
        total += result.seconds
        line = f"executed {path} in {result.seconds:6.1f} s ({result.profile} profile)"
        if result.path != Path(path).resolve():
            line += f"\n  written to {_shown(result.path)}"
            if not output:
                line += (f"\n  {path} is unchanged (it keeps the {COMMITTED_PROFILE} "
                         "profile's outputs; --in-place overwrites it)")
        print(line, flush=True)
    return total


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it is below it."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd().resolve()))
    return str(path)


def _notebook_text(nb: nbformat.NotebookNode) -> str:
    """Exactly what ``nbformat.write`` would put in the file."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def _failed_copy(path: Path) -> Path:
    return build_dir(path) / "failed" / path.name


def _keep_failed(running: Path, path: Path) -> Path | None:
    """Move papermill's copy of a failed run to ``_build/failed/NAME``; return it (or None)."""
    if not running.exists():
        return None
    kept = _failed_copy(path)
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(running), str(kept))
    return kept


def _describe_failure(path: Path, kept: Path | None,
                      error: papermill.PapermillExecutionError) -> str:
    number, cell_id = None, "?"
    if kept is not None:
        nb = nbformat.read(str(kept), as_version=4)
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
        f"  notebook: {path} (unchanged)\n"
        f"  failed run, with the error: {_shown(kept) if kept else '(not saved)'}"
    )


def _strip_noise(nb: nbformat.NotebookNode) -> None:
    """Drop per-run timestamps, and keep papermill's injected parameters off the page."""
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if fingerprint.INJECTED_TAG in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
        for key in CELL_METADATA_NOISE:
            cell.metadata.pop(key, None)
    nb.metadata.get("papermill", {}).pop("start_time", None)
    nb.metadata.get("papermill", {}).pop("end_time", None)
    nb.metadata.get("papermill", {}).pop("duration", None)
    nb.metadata.get("papermill", {}).pop("input_path", None)
    nb.metadata.get("papermill", {}).pop("output_path", None)

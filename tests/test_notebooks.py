"""Every chapter runs top to bottom in the smoke profile, on real data, via papermill."""

import time
from pathlib import Path

import pytest

from coursekit.book.execute import NotebookExecutionError, chapters, execute

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.notebooks
@pytest.mark.parametrize("path", chapters(ROOT), ids=lambda p: p.name)
def test_chapter_executes_in_smoke_profile(path, tmp_path, request):
    start = time.perf_counter()
    try:
        execute(path, "smoke", output=tmp_path / path.name)
    except NotebookExecutionError as error:
        pytest.fail(str(error), pytrace=False)
    finally:
        times = request.config.__dict__.setdefault("_coursekit_notebook_times", {})
        times[f"{path.relative_to(ROOT)} (papermill)"] = time.perf_counter() - start

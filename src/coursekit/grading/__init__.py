"""Labs from one source, student self-checks, and a grader that survives hostile submissions.

* :mod:`.authoring` — the solution-notebook format (``# ANSWER q1 [3 points]``, tests cells);
* :mod:`.generate` — ``labs/`` from ``solutions/``, byte-for-byte reproducible;
* :mod:`.selfcheck` — ``check("q1")`` inside a lab;
* :mod:`.judge`, :mod:`.sandbox`, :mod:`.zygote`, :mod:`.wire` — grading in isolated processes;
* :mod:`.batch` — a folder of submissions to a gradebook and reports;
* :mod:`.validate` — the CI checks: labs in sync, solutions pass, blank labs fail.

What a lab notebook imports is kept light: ``check`` and the ``expect_*`` helpers.
"""

from coursekit.grading.expect import (
    StudentError,
    TestFailure,
    expect_close,
    expect_equal,
    expect_from_scratch,
    expect_raises,
    randn,
    seeded,
)
from coursekit.grading.selfcheck import check

__all__ = [
    "StudentError",
    "TestFailure",
    "check",
    "expect_close",
    "expect_equal",
    "expect_from_scratch",
    "expect_raises",
    "randn",
    "seeded",
]

"""``check("q1")``: a student runs a question's public tests in the lab and reads why they fail.

Called at the end of a ``# TESTS q1`` cell, it runs the ``test_*`` functions defined in that
same cell against the notebook's current definitions, through the same data channel the
grader uses, and prints one line per test: a tick, or what was expected, what came back,
and the test's hint. Nothing beyond the lab's requirements is needed, and nothing leaves
the notebook. The grader runs these tests again (with hidden ones) in a sandbox.
"""

from __future__ import annotations

import contextvars
import linecache
import sys

from coursekit.grading.expect import StudentError, TestFailure
from coursekit.grading.student import LocalStudent

# True while the grader executes tests cells to collect their functions: check() is a no-op.
collecting = contextvars.ContextVar("collecting", default=False)


def _answer_sources(namespace: dict) -> dict[str, str]:
    """Answer cells as last executed, from IPython's input history when there is one."""
    from coursekit.grading.authoring import ANSWER_ANYWHERE

    sources: dict[str, str] = {}
    for cell in namespace.get("In", []) or []:
        if isinstance(cell, str) and (m := ANSWER_ANYWHERE.search(cell)):
            sources[m["id"]] = cell
    return sources


def check(question: str, tests: list | None = None) -> None:
    """Run the public tests of ``question`` on your current code and explain each failure.

    ``tests`` defaults to the ``test_*`` functions defined in the calling cell. It prints
    its verdict and returns nothing, so the cell shows only the report.
    """
    if collecting.get():
        return
    caller = sys._getframe(1)
    namespace = caller.f_globals
    if tests is None:
        cell = caller.f_code.co_filename
        tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)
                 and getattr(getattr(f, "__code__", None), "co_filename", None) == cell]
    if not tests:
        raise ValueError(f"check({question!r}) found no test_* functions in this cell: call it "
                         "at the end of the cell that defines the tests, or pass tests=[...].")
    student = LocalStudent(namespace, _answer_sources(namespace))
    passed = 0
    for test in tests:
        hint = " ".join((test.__doc__ or "").split())
        student.last_call = ""
        try:
            test(student)
        except TestFailure as failure:
            _report(test.__name__, failure.summary, failure.details, hint, student.last_call)
        except StudentError as error:
            _report(test.__name__, f"your code raised {error.kind}: {error.message}", "", hint,
                    student.last_call)
        else:
            passed += 1
            print(f"  ✓ {test.__name__}")
    total = len(tests)
    verdict = "all passed" if passed == total else f"{total - passed} failed"
    hidden = "HIDDEN TESTS" in linecache.getline(caller.f_code.co_filename, 1)
    print(f"{question}: {passed}/{total} {'hidden' if hidden else 'public'} tests passed "
          f"({verdict})." + ("" if hidden else " The grader also runs hidden tests."))


def _report(name: str, summary: str, details: str, hint: str, call: str) -> None:
    print(f"  ✗ {name}: {summary}")
    if call:
        print(f"      in: {call}")
    for line in details.splitlines():
        print(f"      {line}")
    if hint:
        print(f"      hint: {hint}")

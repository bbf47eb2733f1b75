"""The checks CI runs on every lab: in sync, solved by its solution, failed by its blank.

* ``labs/`` is byte-for-byte what ``solutions/`` generates;
* the solution, graded like any submission (same sandbox, same tests), passes every public
  and hidden test — so the tests are satisfiable and the reference is right;
* the generated lab, graded as it is (no answers), passes *no* test — so every test
  actually checks the student's work.
"""

from __future__ import annotations

from pathlib import Path

from coursekit.grading import sandbox
from coursekit.grading.authoring import Lab, extract_answers, load_lab
from coursekit.grading.generate import load_generated, out_of_sync, solution_notebooks
from coursekit.grading.judge import Pool, grade_question, secret_paths


def run_checks(pool: Pool, lab: Lab, limits: sandbox.Limits) -> list[str]:
    """Problems with ``lab``'s tests (empty when the solution passes and the blank fails)."""
    problems = []
    solved = extract_answers(lab.notebook, lab)
    blank = extract_answers(load_generated(lab), lab)
    for qid in lab.questions:
        result = grade_question(pool, lab, solved, qid, limits)
        for test in result.tests:
            if test.status != "passed":
                problems.append(f"{lab.name} {qid}: the solution fails {test.visibility} test "
                                f"{test.name}: {test.status}: {test.summary}")
        for error in result.load_errors:
            problems.append(f"{lab.name} {qid}: the solution raised while loading: {error}")
        result = grade_question(pool, lab, blank, qid, limits)
        for test in result.tests:
            if test.status == "passed":
                problems.append(f"{lab.name} {qid}: the blank lab passes {test.visibility} test "
                                f"{test.name}, so it checks nothing the student writes")
    return problems


def check_all(solutions_dir: Path, labs_dir: Path, *, run: bool = True,
              limits: sandbox.Limits | None = None, isolation: str = "auto",
              progress=print) -> list[str]:
    """Every problem found in every lab (sync first, then the tests if ``run``)."""
    problems = out_of_sync(solutions_dir, labs_dir)
    if problems:
        problems.append("regenerate with: coursekit labs generate")
    if not run:
        return problems
    limits = limits or sandbox.Limits()
    for path in solution_notebooks(solutions_dir):
        lab = load_lab(path)
        with Pool(lab.preload_modules(), secret_paths(lab), isolation) as pool:
            found = run_checks(pool, lab, limits)
        progress(f"{lab.name}: {len(lab.questions)} questions, "
                 f"{sum(len(q.public_tests) + len(q.hidden_tests) for q in lab.questions.values())}"
                 f" tests cells: " + ("ok" if not found else f"{len(found)} problem(s)"))
        problems += found
    return problems

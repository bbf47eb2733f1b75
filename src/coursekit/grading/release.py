"""``coursekit labs release DIR``: the student bundle, with nothing of the solutions in it.

``solutions/`` (answers and hidden tests) stays the single source of every lab. What
students get is built from it here: the generated lab notebooks (answers stubbed, hidden
tests removed, public tests kept), and a README with the install and data instructions.
Before anything is left on disk, every file of the bundle is checked against the
solutions: no hidden-test cell or test name, no solution marker, and no line of a solution
region. A bundle that fails the check is removed and the command fails.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from coursekit.grading.authoring import BEGIN, END, INLINE, load_lab, test_names
from coursekit.grading.generate import generate, solution_notebooks
from coursekit.util.atomic import write_atomic

README = """# Labs

Lab notebooks for the course, one per topic. Open one in Jupyter (or upload it to Colab),
work in the cells marked `# ANSWER qN`, and run the tests cell under each answer: it
prints a tick for each public test that passes, or what was expected, what your code
returned, and a hint. Your instructor grades the notebook you hand in with more (hidden)
tests, in a sandbox, with a CPU-time limit per question.

## Install

```bash
pip install "coursekit[notebooks] @ git+https://github.com/dl-foundations/deep-learning-foundations"
```

The first code cell of every lab does this for you on Colab.

## Data

The labs need no dataset. The chapters do: `coursekit data download` fetches MNIST,
Fashion-MNIST and CIFAR-10 into `$COURSEKIT_DATA` (default `~/.cache/coursekit`), and
`coursekit data check` verifies them.

## Handing in

Hand in the `.ipynb` file itself, named after you or as your instructor asks. Keep each
`# ANSWER qN` line; put everything an answer needs inside its answer cell.

Labs: {labs}
"""


class LeakError(RuntimeError):
    """The bundle would contain part of a solution or a hidden test."""


def secrets_of(solution: Path) -> list[str]:
    """Text that must never reach students: hidden tests' names and cells, solution lines."""
    lab = load_lab(solution)
    found = ["HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION"]
    for question in lab.questions.values():
        for cell in question.hidden_tests:
            found += [f"def {name}(" for name in test_names(cell)]
        inside = False
        for line in question.answer.splitlines():
            if BEGIN.match(line):
                inside = True
            elif END.match(line):
                inside = False
            elif (inside or INLINE.match(line)) and len(line.strip()) >= 24:
                code = INLINE.match(line)["code"] if INLINE.match(line) else line
                if len(code.strip()) >= 24:
                    found.append(code.strip())
    return found


def verify(bundle: Path, solutions_dir: Path) -> list[str]:
    """Problems found in ``bundle`` (empty when nothing of the solutions is in it)."""
    secrets = {s for path in solution_notebooks(solutions_dir) for s in secrets_of(path)}
    problems = []
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":  # compare with the cells' text, not its JSON escaping
            cells = json.loads(text).get("cells", [])
            text += "\n".join("".join(c.get("source", "")) for c in cells)
        for secret in sorted(secrets):
            if secret in text:
                problems.append(f"{path.relative_to(bundle)} contains {secret[:60]!r}")
    return problems


def release(solutions_dir: Path, target: Path) -> list[Path]:
    """Write the student bundle to ``target`` (a new or empty folder) and verify it."""
    solutions_dir, target = Path(solutions_dir).resolve(), Path(target).resolve()
    if target == solutions_dir or solutions_dir in target.parents:
        raise ValueError("write the student bundle outside solutions/")
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"{target} is not empty: release into a new or empty folder")
    solutions = solution_notebooks(solutions_dir)
    if not solutions:
        raise FileNotFoundError(f"no solution notebooks in {solutions_dir}")
    written = generate(solutions_dir, target / "labs")  # the labs exactly as `labs generate`
    names = ", ".join(f"`labs/{p.name}`" for p in solutions)
    written.append(write_atomic(target / "README.md", README.format(labs=names)))
    problems = verify(target, solutions_dir)
    if problems:
        shutil.rmtree(target, ignore_errors=True)
        raise LeakError("the bundle would leak solutions; nothing was released:\n"
                        + "\n".join(problems))
    return written

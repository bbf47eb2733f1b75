"""The authoring format: one instructor notebook in ``solutions/`` describes a whole lab.

Code cells are recognised by a marker on their first non-blank line:

``# SETUP``
    Given code (imports, helpers). Shown to students and run by the grader before answers.
``# ANSWER q1 [3 points]`` (optionally ``requires q2, q3``)
    The cell a student edits. Lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` (and
    any line ending in ``# SOLUTION``) are the instructor's answer; the generated lab keeps the
    rest and puts a ``# YOUR CODE HERE`` stub in their place. ``requires`` lists questions
    whose answers this one builds on: the grader runs their answer cells first.
``# TESTS q1``
    Public tests: functions ``test_*(student)``, usually followed by ``check("q1")``. Kept in
    the lab, so students can run them.
``# HIDDEN TESTS q1``
    More tests of the same form, used only for grading; removed from the lab.

Any other cell is prose or demo code: copied to the lab, never run by the grader. In a
student's notebook only the ``# ANSWER qN`` line matters; the grader takes everything
else (setup, tests, points) from the solution.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from coursekit.grading import parsing

ANSWER = re.compile(
    r"^#\s*ANSWER\s+(?P<id>[A-Za-z]\w*)\s*"
    r"(?:\[\s*(?P<points>\d+(?:\.\d+)?)\s*points?\s*\])?\s*"
    r"(?:requires\s+(?P<requires>[A-Za-z]\w*(?:\s*,?\s*[A-Za-z]\w*)*))?\s*$")
# ``[ \t]*``, not ``\s*``: ``\s`` also matches newlines, and a cell of blank lines would make
# a multi-line search quadratic. Students' cells are searched one line at a time anyway.
ANSWER_ANYWHERE = re.compile(r"^[ \t]*#[ \t]*ANSWER[ \t]+(?P<id>[A-Za-z]\w*)\b", re.MULTILINE)
TESTS = re.compile(r"^#\s*(?P<hidden>HIDDEN\s+)?TESTS\s+(?P<id>[A-Za-z]\w*)\s*$")
SETUP = re.compile(r"^#\s*SETUP\b")
BEGIN, END = re.compile(r"^\s*#\s*BEGIN SOLUTION\s*$"), re.compile(r"^\s*#\s*END SOLUTION\s*$")
INLINE = re.compile(r"^(?P<indent>\s*)(?P<code>.*?)\s*#\s*SOLUTION\s*$")


class AuthoringError(ValueError):
    """The solution notebook does not follow the format; the message says where and how."""


@dataclass
class Question:
    id: str
    points: float
    requires: tuple[str, ...]
    title: str
    answer: str  # the instructor's answer cell
    answer_index: int
    public_tests: list[str] = field(default_factory=list)
    hidden_tests: list[str] = field(default_factory=list)


@dataclass
class Lab:
    name: str
    path: Path
    notebook: nbformat.NotebookNode
    setup: list[str]
    questions: dict[str, Question]

    @property
    def total_points(self) -> float:
        return sum(q.points for q in self.questions.values())

    def run_order(self, question: str) -> list[str]:
        """``question`` after everything it requires (transitively), in lab order."""
        needed, stack = set(), [question]
        while stack:
            q = stack.pop()
            if q not in needed:
                needed.add(q)
                stack.extend(self.questions[q].requires)
        return [q for q in self.questions if q in needed]

    def preload_modules(self) -> list[str]:
        """Top-level modules the setup cells import (worth importing once, before forking)."""
        names = []
        for source in self.setup:
            for node in ast.walk(parsing.parse(source)):
                if isinstance(node, ast.Import):
                    names += [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.append(node.module)
        return sorted(set(names))


def first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()
    return ""


def cell_kind(cell) -> tuple[str, str | None]:
    """``("answer"|"tests"|"hidden"|"setup"|"markdown"|"other", question id or None)``."""
    if cell.cell_type != "code":
        return ("markdown" if cell.cell_type == "markdown" else "other"), None
    line = first_line(cell.source)
    if m := ANSWER.match(line):
        return "answer", m["id"]
    if ANSWER_ANYWHERE.match(line):
        return "answer", ANSWER_ANYWHERE.match(line)["id"]
    if m := TESTS.match(line):
        return ("hidden" if m["hidden"] else "tests"), m["id"]
    if SETUP.match(line):
        return "setup", None
    return "other", None


def read_notebook(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:
        raise AuthoringError(f"{path}: not a readable notebook ({error})") from None


def load_lab(path: str | Path) -> Lab:
    """Parse and validate a solution notebook."""
    path = Path(path)
    nb = read_notebook(path)
    setup, questions, tests = [], {}, []
    title = ""
    for index, cell in enumerate(nb.cells):
        kind, qid = cell_kind(cell)
        where = f"{path.name}, cell {index + 1}"
        if kind == "markdown":
            heading = next((ln.lstrip("#").strip() for ln in cell.source.splitlines()
                            if ln.startswith("#")), "")
            title = heading or title
        elif kind == "setup":
            setup.append(cell.source)
        elif kind == "answer":
            m = ANSWER.match(first_line(cell.source))
            if not m or m["points"] is None:
                raise AuthoringError(
                    f"{where}: write the answer header as '# ANSWER {qid} [N points]' "
                    f"(optionally followed by 'requires q1, q2').")
            if qid in questions:
                raise AuthoringError(f"{where}: a second answer cell for {qid}; "
                                     "each question has exactly one.")
            if not _has_solution(cell.source):
                raise AuthoringError(
                    f"{where}: answer cell {qid} has no '# BEGIN SOLUTION' region or "
                    "'# SOLUTION' line, so the lab would contain the answer.")
            requires = tuple(re.findall(r"[A-Za-z]\w*", m["requires"] or ""))
            questions[qid] = Question(qid, float(m["points"]), requires, title,
                                      cell.source, index)
        elif kind in ("tests", "hidden"):
            tests.append((kind, qid, cell.source, where))
        for line in cell.source.splitlines() if cell.cell_type == "code" else ():
            if kind != "answer" and (BEGIN.match(line) or END.match(line)
                                     or INLINE.match(line)):
                raise AuthoringError(f"{where}: solution markers belong in '# ANSWER' cells.")
    for kind, qid, source, where in tests:
        if qid not in questions:
            raise AuthoringError(f"{where}: tests for {qid}, which has no '# ANSWER {qid}' cell.")
        names = test_names(source)
        if not names:
            raise AuthoringError(f"{where}: no 'def test_*(student):' functions in this cell.")
        q = questions[qid]
        (q.hidden_tests if kind == "hidden" else q.public_tests).append(source)
    for q in questions.values():
        if not q.public_tests and not q.hidden_tests:
            raise AuthoringError(f"{path.name}: question {q.id} has no tests.")
        unknown = [r for r in q.requires if r not in questions]
        if unknown:
            raise AuthoringError(f"{path.name}: {q.id} requires unknown question(s) {unknown}.")
    lab = Lab(path.stem, path, nb, setup, questions)
    for q in questions:  # reject cycles: q must not be reachable from what it requires
        for r in questions[q].requires:
            if q in lab.run_order(r):
                raise AuthoringError(f"{path.name}: {q} and {r} require each other.")
    if not questions:
        raise AuthoringError(f"{path.name}: no '# ANSWER qN [N points]' cells.")
    return lab


def _has_solution(source: str) -> bool:
    lines = source.splitlines()
    return any(BEGIN.match(ln) for ln in lines) or any(INLINE.match(ln) for ln in lines)


def test_names(source: str) -> list[str]:
    """Names of the top-level ``test_*`` functions of a tests cell, in order."""
    try:
        tree = parsing.parse(source)
    except SyntaxError as error:
        raise AuthoringError(f"a tests cell does not parse: {error}") from None
    return [node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]


test_names.__test__ = False  # not a pytest test


MAX_CELL_CHARS = 256 * 1024  # one answer cell; far above any real answer
MAX_ANSWER_CELLS = 32  # cells marked for one question


@dataclass
class Answers:
    """What the grader takes from one student notebook: the answer cells, by question.

    ``sources`` joins a question's cells (what the from-scratch rule reads); ``cells`` keeps
    them apart, so the sandbox runs them one by one like "Run All" and a broken duplicate
    costs only what depends on it. ``problems`` are questions refused outright (a cell over
    the size cap), with the reason.
    """

    sources: dict[str, str]
    notes: list[str]
    cells: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def cells_of(self, question: str) -> list[str]:
        return self.cells.get(question) or ([self.sources[question]]
                                            if question in self.sources else [])


def _first_marker(source: str) -> str | None:
    """The question id of the first ``# ANSWER qN`` line, scanning lines (linear time)."""
    for line in source.splitlines():
        if "ANSWER" in line and (m := ANSWER_ANYWHERE.match(line)):
            return m["id"]
    return None


_MAGIC_CELL_KEEP = ("%%time", "%%timeit", "%%capture", "%%prun")
_MAGIC_ASSIGN = re.compile(r"^(?P<indent>[ \t]*)(?P<lhs>[A-Za-z_][\w., \t]*?)[ \t]*=[ \t]*[!%]")


def strip_magics(source: str, label: str) -> tuple[str, list[str]]:
    """IPython syntax (``%timeit``, ``!pip``, ``%%time``) made plain Python, with notes.

    Only a cell that does not compile is touched, so valid Python is never rewritten. Line
    magics and shell lines become ``pass`` (an assignment from one becomes ``None``); a
    timing or capture cell magic keeps its body; any other cell magic (``%%bash``) drops
    the cell. The notes say what was removed, for the report.
    """
    try:
        parsing.compile_source(source, "<cell>")
        return source, []
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass  # deep nesting is refused quickly by the compiler, never a crash of the grader
    lines = source.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith(
        "#")), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].split()[0]
        if magic not in _MAGIC_CELL_KEEP:
            return "", [f"{label}: the cell magic {magic} is not Python; the grader skipped "
                        "this cell"]
        lines[first] = ""
        removed = [magic]
    else:
        removed = []
    for i, line in enumerate(lines):
        body = line.lstrip()
        if body.startswith(("%", "!")):
            indent = line[: len(line) - len(body)]
            lines[i] = f"{indent}pass"
            removed.append(body.split()[0] if body.split() else body[:1])
        elif (m := _MAGIC_ASSIGN.match(line)) and "==" not in line.split("=", 1)[0]:
            lines[i] = f"{m['indent']}{m['lhs'].strip()} = None"
            removed.append(line[m.end() - 1:].split()[0])
    if not removed:
        return source, []
    shown = ", ".join(sorted(set(r[:30] for r in removed)))
    return "\n".join(lines), [f"{label}: IPython syntax removed before grading ({shown}); "
                              "the grader runs plain Python"]


def extract_answers(nb: dict, lab: Lab) -> Answers:
    """Find each question's answer cells by their ``# ANSWER qN`` line.

    Robust to reordered, duplicated or re-identified cells: cells are matched by marker,
    not by position or id. Duplicates are kept in notebook order, as "Run All" would run
    them. A cell whose marker was deleted falls back to the lab's cell id. Fields of the
    wrong JSON type are skipped or coerced with a note; a cell over ``MAX_CELL_CHARS`` is
    refused with a reason. Every step is linear in the size of the notebook.
    """
    by_question: dict[str, list[str]] = {}
    notes: list[str] = []
    problems: dict[str, str] = {}
    ids = {lab.notebook.cells[q.answer_index].get("id"): q.id for q in lab.questions.values()}
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    odd = 0
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            odd += not isinstance(cell, dict)
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            if not all(isinstance(s, str) for s in source):
                odd += 1
            source = "".join(s if isinstance(s, str) else "" for s in source)
        if not isinstance(source, str):
            odd += 1
            continue
        qid = _first_marker(source)
        cell_id = cell.get("id")
        if qid is None and isinstance(cell_id, str) and cell_id in ids:
            qid = ids[cell_id]
            notes.append(f"{qid}: the '# ANSWER {qid}' line was deleted; "
                         "matched the cell by its id")
        if qid is None:
            continue
        if qid not in lab.questions:
            notes.append(f"a cell is marked '# ANSWER {qid[:40]}', but the lab has no such "
                         "question; ignored")
            continue
        if len(source) > MAX_CELL_CHARS:
            problems[qid] = (f"an answer cell for {qid} has {len(source)} characters "
                             f"(limit {MAX_CELL_CHARS}); not graded")
            continue
        by_question.setdefault(qid, []).append(source)
    if odd:
        notes.append(f"{odd} cell(s) had fields of the wrong type (not a cell object, or a "
                     "source that is not text); they were skipped")
    sources, kept = {}, {}
    for qid, parts in by_question.items():
        if qid in problems:
            continue
        if len(parts) > MAX_ANSWER_CELLS:
            problems[qid] = (f"{len(parts)} cells are marked '# ANSWER {qid}' "
                             f"(limit {MAX_ANSWER_CELLS}); not graded")
            continue
        if len(parts) > 1:
            notes.append(f"{qid}: {len(parts)} cells are marked '# ANSWER {qid}'; "
                         "ran them one by one, in notebook order")
        plain = []
        for n, part in enumerate(parts):
            label = f"{qid}" + (f" (cell {n + 1})" if len(parts) > 1 else "")
            code, magic_notes = strip_magics(part, label)
            notes += magic_notes
            plain.append(code)
        kept[qid] = plain
        sources[qid] = "\n\n".join(plain)
    return Answers(sources, notes, kept, problems)

"""``coursekit grade``: a folder of submissions to a gradebook CSV and one report per student.

Whatever a submission is or does, the batch goes on: an unreadable notebook scores 0 with
the reason in its report; a question that loops, crashes or runs out of memory scores what
its tests earned before that. Submissions are only read (never written), and the sandboxes
cannot see them. The gradebook and reports contain no timings or dates, so grading the same
folder twice gives the same files; each is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from coursekit.grading import sandbox
from coursekit.grading.authoring import Answers, Lab, extract_answers
from coursekit.grading.judge import Pool, QuestionResult, grade_question, secret_paths
from coursekit.util.atomic import write_atomic

MAX_SUBMISSION_MB = 100


@dataclass
class Submission:
    student: str
    path: Path | None
    problem: str = ""  # why there is nothing to grade (empty when there is)
    note: str = ""


@dataclass
class SubmissionResult:
    student: str
    file: str
    sha256: str
    status: str  # graded | invalid
    reason: str
    total: float = 0.0
    questions: list[QuestionResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _student_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "student"


def discover(folder: Path, lab: Lab) -> list[Submission]:
    """``folder/<student>.ipynb`` files and ``folder/<student>/`` directories, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of submissions")
    found: list[Submission] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            found.append(Submission(_student_id(entry.stem), entry))
        elif entry.is_dir():
            notebooks = sorted(p for p in entry.rglob("*.ipynb")
                               if ".ipynb_checkpoints" not in p.parts and p.is_file())
            if not notebooks:
                found.append(Submission(_student_id(entry.name), None,
                                        "no .ipynb file in the student's folder"))
                continue
            named = [p for p in notebooks if p.name == lab.path.name]
            chosen = (named or notebooks)[0]
            note = (f"{len(notebooks)} notebooks in the folder; graded "
                    f"{chosen.relative_to(entry)}" if len(notebooks) > 1 else "")
            found.append(Submission(_student_id(entry.name), chosen, note=note))
    seen: dict[str, int] = {}
    for sub in found:  # two entries for one student name: keep both, distinctly
        seen[sub.student] = seen.get(sub.student, 0) + 1
        if seen[sub.student] > 1:
            sub.student = f"{sub.student}-{seen[sub.student]}"
    return found


def read_submission(path: Path) -> tuple[dict | None, bytes, str]:
    """``(notebook, raw bytes, problem)``; the notebook is None when it cannot be graded."""
    try:
        size = path.stat().st_size
        if size > MAX_SUBMISSION_MB * 2**20:
            return None, b"", f"the file is {size / 2**20:.0f} MB (limit {MAX_SUBMISSION_MB} MB)"
        raw = path.read_bytes()
    except OSError as error:
        return None, b"", f"cannot read the file: {error.strerror or error}"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as error:
        return None, raw, f"not a notebook: invalid JSON ({str(error)[:200]})"
    if not isinstance(data, dict):
        return None, raw, "not a notebook: the JSON is not an object"
    if "cells" not in data and "worksheets" in data:
        try:
            data = nbformat.reads(raw.decode("utf-8", "replace"), as_version=4)
        except Exception as error:
            return None, raw, f"not a readable notebook: {str(error)[:200]}"
    if not isinstance(data.get("cells"), list):
        return None, raw, "not a notebook: it has no list of cells"
    return data, raw, ""


def grade_submission(pool: Pool, lab: Lab, sub: Submission, limits: sandbox.Limits,
                     slot: int = 0) -> SubmissionResult:
    name = sub.path.name if sub.path else ""
    if sub.path is None:
        return _invalid(lab, sub.student, name, "", sub.problem)
    nb, raw, problem = read_submission(sub.path)
    digest = hashlib.sha256(raw).hexdigest() if raw else ""
    if nb is None:
        return _invalid(lab, sub.student, name, digest, problem)
    answers: Answers = extract_answers(nb, lab)
    result = SubmissionResult(sub.student, name, digest, "graded", "", notes=list(answers.notes))
    if sub.note:
        result.notes.insert(0, sub.note)
    for qid in lab.questions:
        try:
            result.questions.append(grade_question(pool, lab, answers, qid, limits, slot))
        except Exception as error:  # a grader bug must cost this question, not the batch
            result.questions.append(QuestionResult(
                qid, lab.questions[qid].points, 0.0, "crashed",
                f"grader error ({type(error).__name__}: {error}); please report it"))
    result.total = round(sum(q.score for q in result.questions), 2)
    return result


def _invalid(lab: Lab, student: str, name: str, digest: str, reason: str) -> SubmissionResult:
    questions = [QuestionResult(q.id, q.points, 0.0, "missing", reason)
                 for q in lab.questions.values()]
    return SubmissionResult(student, name, digest, "invalid", reason, 0.0, questions)


def fmt(score: float) -> str:
    text = f"{score:.2f}".rstrip("0").rstrip(".")
    return text if text != "-0" else "0"


def gradebook(lab: Lab, results: list[SubmissionResult]) -> str:
    lines = [",".join(["student", *lab.questions, "total"])]
    for r in sorted(results, key=lambda r: r.student):
        scores = {q.id: q.score for q in r.questions}
        lines.append(",".join([r.student, *(fmt(scores.get(q, 0.0)) for q in lab.questions),
                               fmt(r.total)]))
    return "\n".join(lines) + "\n"


_MARK = {"passed": "✓", "failed": "✗", "error": "✗", "timeout": "⏱", "crashed": "☠",
         "not run": "·"}


def report(lab: Lab, r: SubmissionResult, isolation: str) -> str:
    out = [f"# {lab.name}: {r.student}", "",
           f"**Total: {fmt(r.total)} / {fmt(lab.total_points)}**", "",
           f"- submission: `{r.file or '(none)'}`" + (f" (sha256 {r.sha256[:16]})"
                                                      if r.sha256 else ""),
           f"- isolation: {isolation}"]
    if r.status == "invalid":
        out += ["", f"Not graded: {r.reason}. Every question scores 0.", ""]
        return "\n".join(out)
    out += [f"- note: {note}" for note in r.notes]
    out += ["", "| question | score | result |", "|---|---|---|"]
    for q in r.questions:
        out.append(f"| {q.id} | {fmt(q.score)} / {fmt(q.points)} | {q.status}: {q.reason} |")
    for q in r.questions:
        out += ["", f"## {q.id}: {fmt(q.score)} / {fmt(q.points)} ({q.status})", "",
                q.reason + "."]
        for error in q.load_errors:
            out.append(f"- while running your answer cells: {error}")
        for t in q.tests:
            line = f"- {_MARK.get(t.status, '?')} {t.visibility} `{t.name}`: {t.status}"
            if t.status != "passed":
                line += f": {t.summary}"
                if t.visibility == "public" and t.details:
                    line += "\n" + "\n".join(f"    {d}" for d in t.details.splitlines()[:6])
                if t.hint:
                    line += f"\n    hint: {t.hint}"
            out.append(line)
        if q.output:
            shown = q.output.replace("```", "'''")
            out += ["", "Output printed by your code (first lines):", "", "```", shown, "```"]
    return "\n".join(out) + "\n"


@dataclass
class BatchResult:
    results: list[SubmissionResult]
    isolation: str
    seconds: float


def grade_folder(lab: Lab, folder: Path, out: Path, *, jobs: int = 1,
                 limits: sandbox.Limits | None = None, isolation: str = "auto",
                 pool: Pool | None = None, progress=print) -> BatchResult:
    """Grade every submission in ``folder``; write ``out/gradebook.csv`` and ``out/reports/``."""
    limits = limits or sandbox.Limits()
    folder, out = Path(folder).resolve(), Path(out).resolve()
    if out == folder or folder in out.parents:
        raise ValueError(f"write the grades outside the submissions folder, not to {out}")
    submissions = discover(folder, lab)
    start = time.monotonic()
    own_pool = pool is None
    if own_pool:
        pool = Pool(lab.preload_modules(), secret_paths(lab, folder, out), isolation)
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(max(1, jobs)):
        slots.put(slot)

    def one(sub: Submission) -> SubmissionResult:
        slot = slots.get()
        t0 = time.monotonic()
        try:
            result = grade_submission(pool, lab, sub, limits, slot)
        finally:
            slots.put(slot)
        write_atomic(out / "reports" / f"{result.student}.md",
                     report(lab, result, pool.description))
        progress(f"{result.student}: {fmt(result.total)}/{fmt(lab.total_points)} "
                 f"({time.monotonic() - t0:.1f} s)")
        return result

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as executor:
            results = list(executor.map(one, submissions))
        isolation_text = pool.description
    finally:
        if own_pool:
            pool.close()
    write_atomic(out / "gradebook.csv", gradebook(lab, results))
    write_atomic(out / "results.json", json.dumps(
        {"lab": lab.name, "isolation": isolation_text,
         "results": [asdict(r) for r in sorted(results, key=lambda r: r.student)]},
        indent=1, sort_keys=True, default=str) + "\n")
    return BatchResult(results, isolation_text, time.monotonic() - start)

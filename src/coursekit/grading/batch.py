"""``coursekit grade``: a folder of submissions to a gradebook CSV and one report per student.

Whatever a submission is or does, the batch goes on: an unreadable notebook scores 0 with
the reason in its report; a question that loops, crashes or runs out of memory scores what
its tests earned before that. Submissions are only read (never written), and the sandboxes
cannot see them. The gradebook and reports contain no timings or dates, so grading the same
folder twice gives the same files; each is written atomically.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import queue
import re
import stat
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError
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
    root: Path | None = None  # the submissions folder: the file is opened beneath it only


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


_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def student_id(name: str) -> str:
    """A deterministic, collision-free id (and report file name) for a file or folder name.

    A name made only of ``A-Z a-z 0-9 . _ -`` (and at most 80 long) is its own id. Any other
    name keeps a readable, shortened form plus ``~`` and a hash of the exact name, so
    ``bob!`` never becomes ``bob``, ``carol `` never becomes ``carol-2``, and a name long
    enough to overflow a file name is cut; ``~`` cannot occur in an unchanged id.
    """
    if _SAFE_ID.fullmatch(name) and not name.endswith("."):
        return name
    raw = os.fsencode(name)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:40] or "student"
    return f"{readable}~{hashlib.sha256(raw).hexdigest()[:10]}"


def _is_notebook(name: str) -> bool:
    return name.lower().endswith(".ipynb")


def _stem(name: str) -> str:
    return name[: -len(".ipynb")] if _is_notebook(name) else name


def discover(folder: Path, lab: Lab, roster: dict[str, str] | None = None) -> list[Submission]:
    """``folder/<student>.ipynb`` files and ``folder/<student>/`` directories, sorted.

    Symbolic links are refused with a reason (they could point at the solutions); names
    are compared case-insensitively, so two entries that would share a report file are
    both kept, with distinct ids, and reported as duplicates. With a ``roster`` (student
    id -> file or folder name in ``folder``), exactly the roster's students are graded.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of submissions")
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    by_name = {e.name: e for e in entries}
    found: list[Submission] = []
    if roster is not None:
        for sid, name in roster.items():
            entry = by_name.get(name)
            if entry is None:
                found.append(Submission(sid, None, f"no file or folder {name!r} in the "
                                                   "submissions folder (from the roster)"))
            else:
                found.append(_submission(entry, folder, lab, sid))
    else:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink() or entry.is_dir(follow_symlinks=False) or _is_notebook(
                    entry.name):
                found.append(_submission(entry, folder, lab, student_id(_stem(entry.name))))
    seen: dict[str, Submission] = {}
    for sub in found:  # two entries for one id (or one report file): keep both, distinctly
        key = sub.student.lower()
        if key in seen:
            first = seen[key]
            where = str(sub.path.relative_to(folder)) if sub.path else sub.problem
            tag = hashlib.sha256(os.fsencode(where)).hexdigest()[:6]  # same wherever it moves
            sub.student = f"{sub.student}~dup-{tag}"
            for one in (first, sub):
                one.note = ((one.note + "; ") if one.note else "") + (
                    f"duplicate: another entry of the submissions folder has the id "
                    f"{first.student}; both were graded, check which one counts")
        seen[sub.student.lower()] = sub
    return found


def unlisted(folder: Path, roster: dict[str, str]) -> list[str]:
    """Entries of the submissions folder that the roster does not name (not graded)."""
    listed = set(roster.values())
    return sorted(_printable(n) for n in os.listdir(folder)
                  if n not in listed and not n.startswith("."))


def _submission(entry: os.DirEntry, folder: Path, lab: Lab, sid: str) -> Submission:
    shown = _printable(entry.name)
    if entry.is_symlink():
        return Submission(sid, None, f"{shown} is a symbolic link; submissions must be plain "
                                     "files or folders (refused, nothing was read)")
    if entry.is_file(follow_symlinks=False):
        if not _is_notebook(entry.name):
            return Submission(sid, None, f"{shown} is not a .ipynb file")
        return Submission(sid, Path(entry.path), root=folder)
    if not entry.is_dir(follow_symlinks=False):
        return Submission(sid, None, f"{shown} is not a regular file or folder")
    notebooks, links = [], 0
    for dirpath, dirnames, filenames in os.walk(entry.path, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != ".ipynb_checkpoints")
        links += sum(os.path.islink(os.path.join(dirpath, d)) for d in dirnames)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not _is_notebook(name):
                continue
            if path.is_symlink():
                links += 1
            elif path.is_file():
                notebooks.append(path)
        if len(notebooks) > 1000:
            break
    note = (f"{links} symbolic link(s) in the folder were ignored" if links else "")
    if not notebooks:
        return Submission(sid, None, "no .ipynb file in the student's folder" + (
            f" ({note})" if note else ""))
    named = [p for p in notebooks if p.name == lab.path.name]
    chosen = (named or notebooks)[0]
    if len(notebooks) > 1:
        where = _printable(str(chosen.relative_to(entry.path)))
        note = "; ".join(filter(None, [note, f"{len(notebooks)} notebooks in the folder; "
                                             f"graded {where}"]))
    return Submission(sid, chosen, note=note, root=folder)


def _printable(text: str) -> str:
    """Student-controlled text made safe to store and show: no lone surrogates, no control
    characters (escaped as ``\\x..``/``\\udc..``), always valid UTF-8."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def read_roster(path: Path) -> dict[str, str]:
    """A CSV with a ``student`` (or ``id``) column and an optional ``file`` column."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    roster: dict[str, str] = {}
    for n, row in enumerate(rows, start=2):
        sid = (row.get("student") or row.get("id") or "").strip()
        if not sid:
            raise ValueError(f"{path}, line {n}: no student id (columns: student, file)")
        if student_id(sid) != sid:
            raise ValueError(f"{path}, line {n}: the id {sid!r} must use only letters, "
                             "digits, '.', '_' and '-'")
        if sid.lower() in {k.lower() for k in roster}:
            raise ValueError(f"{path}, line {n}: the id {sid!r} appears twice")
        name = (row.get("file") or "").strip() or f"{sid}.ipynb"
        if "/" in name or name in (".", ".."):
            raise ValueError(f"{path}, line {n}: {name!r} must be a name inside the "
                             "submissions folder")
        roster[sid] = name
    return roster


def _open_beneath(root: Path, path: Path) -> int:
    """Open ``path`` read-only, refusing a symbolic link at any step below ``root``.

    Each component is opened relative to the previous one with ``O_NOFOLLOW``, so a link
    swapped in after discovery cannot lead outside the submissions folder; ``O_NONBLOCK``
    keeps a FIFO from blocking, and only a regular file is accepted.
    """
    parts = path.relative_to(root).parts
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=fd)
            os.close(fd)
            fd = nxt
        leaf = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                       dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(leaf).st_mode):
        os.close(leaf)
        raise OSError(errno.EINVAL, "not a regular file")
    return leaf


def read_submission(path: Path, root: Path | None = None) -> tuple[dict | None, bytes, str]:
    """``(notebook, raw bytes, problem)``; the notebook is None when it cannot be graded."""
    try:
        fd = _open_beneath(root, path) if root is not None else os.open(
            path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_SUBMISSION_MB * 2**20:
                return None, b"", (f"the file is {size / 2**20:.0f} MB "
                                   f"(limit {MAX_SUBMISSION_MB} MB)")
            raw = handle.read(MAX_SUBMISSION_MB * 2**20 + 1)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return None, b"", "the file is a symbolic link (refused, nothing was read)"
        return None, b"", f"cannot read the file: {error.strerror or error}"
    if len(raw) > MAX_SUBMISSION_MB * 2**20:
        return None, b"", f"the file is over {MAX_SUBMISSION_MB} MB"
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


PREPARE_SECONDS = 60.0  # reading, parsing and extracting one submission (linear, capped)


def _prepare(sub: Submission, lab: Lab) -> tuple[str, Answers | None, str]:
    nb, raw, problem = read_submission(sub.path, sub.root)
    digest = hashlib.sha256(raw).hexdigest() if raw else ""
    if nb is None:
        return digest, None, problem
    return digest, extract_answers(nb, lab), ""


def grade_submission(pool: Pool, lab: Lab, sub: Submission, limits: sandbox.Limits,
                     slot: int = 0) -> SubmissionResult:
    """Grade one submission; whatever happens, a result comes back (never an exception)."""
    name = _printable(sub.path.name) if sub.path else ""
    try:
        return _grade_submission(pool, lab, sub, limits, slot, name)
    except Exception as error:  # a grader bug must cost this submission, not the batch
        return _invalid(lab, sub.student, name, "", f"the grader failed on this submission "
                        f"({type(error).__name__}: {_printable(str(error))[:300]}); "
                        "please report it")


def _grade_submission(pool: Pool, lab: Lab, sub: Submission, limits: sandbox.Limits,
                      slot: int, name: str) -> SubmissionResult:
    if sub.path is None:
        return _invalid(lab, sub.student, name, "", sub.problem)
    with ThreadPoolExecutor(max_workers=1) as prep:  # a deadline of its own
        future = prep.submit(_prepare, sub, lab)
        try:
            digest, answers, problem = future.result(timeout=PREPARE_SECONDS)
        except TimeoutError:
            prep.shutdown(wait=False, cancel_futures=True)
            return _invalid(lab, sub.student, name, "", f"reading the notebook took over "
                            f"{PREPARE_SECONDS:g} s; not graded")
    if answers is None:
        return _invalid(lab, sub.student, name, digest, problem)
    result = SubmissionResult(sub.student, name, digest, "graded", "", notes=list(answers.notes))
    if sub.note:
        result.notes.insert(0, sub.note)
    result.notes += list(answers.problems.values())
    for qid in lab.questions:
        try:
            result.questions.append(grade_question(pool, lab, answers, qid, limits, slot))
        except Exception as error:  # a grader bug must cost this question, not the batch
            result.questions.append(QuestionResult(
                qid, lab.questions[qid].points, 0.0, "crashed",
                f"grader error ({type(error).__name__}: {_printable(str(error))[:300]}); "
                "please report it"))
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


_MARKDOWN = re.compile(r"([\\`*_\[\]<>#|~!])")


def _md(text: object) -> str:
    """Student-influenced text as one inert line of Markdown: newlines shown as ⏎, and every
    character that could start emphasis, a heading, a link, HTML or a table cell escaped."""
    flat = re.sub(r"[ \t]*(?:\r\n|\r|\n)[ \t]*", " ⏎ ", _printable(str(text)))
    return _MARKDOWN.sub(r"\\\1", flat)


def report(lab: Lab, r: SubmissionResult, isolation: str) -> str:
    out = [f"# {lab.name}: {_md(r.student)}", "",
           f"**Total: {fmt(r.total)} / {fmt(lab.total_points)}**", "",
           f"- submission: {_md(r.file or '(none)')}" + (f" (sha256 {r.sha256[:16]})"
                                                        if r.sha256 else ""),
           f"- isolation: {isolation}"]
    if r.status == "invalid":
        out += ["", f"Not graded: {_md(r.reason)}. Every question scores 0.", ""]
        return "\n".join(out)
    out += [f"- note: {_md(note)}" for note in r.notes]
    out += ["", "| question | score | result |", "|---|---|---|"]
    for q in r.questions:
        out.append(f"| {q.id} | {fmt(q.score)} / {fmt(q.points)} | {q.status}: {_md(q.reason)} |")
    for q in r.questions:
        out += ["", f"## {q.id}: {fmt(q.score)} / {fmt(q.points)} ({q.status})", "",
                _md(q.reason) + "."]
        for error in q.load_errors:
            out.append(f"- while running your answer cells: {_md(error)}")
        for t in q.tests:
            line = f"- {_MARK.get(t.status, '?')} {t.visibility} `{t.name}`: {t.status}"
            if t.status != "passed":
                line += f": {_md(t.summary)}"
                if t.visibility == "public" and t.details:
                    line += "\n" + "\n".join(f"    {_md(d)}" for d in t.details.splitlines()[:6])
                if t.hint:
                    line += f"\n    hint: {_md(t.hint)}"
            out.append(line)
        if q.output:  # an indented code block: no line of it can close it or start anything
            shown = _printable(q.output).splitlines()
            out += ["", "Output printed by your code (first lines):", ""]
            out += [f"    {line}" for line in shown]
    return "\n".join(out) + "\n"


@dataclass
class BatchResult:
    results: list[SubmissionResult]
    isolation: str
    seconds: float


def grade_folder(lab: Lab, folder: Path, out: Path, *, jobs: int = 1,
                 limits: sandbox.Limits | None = None, isolation: str = "auto",
                 pool: Pool | None = None, progress=print,
                 roster: dict[str, str] | None = None) -> BatchResult:
    """Grade every submission in ``folder``; write ``out/gradebook.csv`` and ``out/reports/``.

    Raises ValueError for nonsense settings and for a folder with nothing to grade.
    """
    limits = limits or sandbox.Limits()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 64:
        raise ValueError(f"jobs must be an integer from 1 to 64, got {jobs!r}")
    folder, out = Path(folder).resolve(), Path(out).resolve()
    if out == folder or folder in out.parents:
        raise ValueError(f"write the grades outside the submissions folder, not to {out}")
    submissions = discover(folder, lab, roster)
    if not submissions:
        raise ValueError(f"no submissions in {folder} (expected <student>.ipynb files or "
                         "<student>/ folders)")
    if roster is not None:
        ignored = unlisted(folder, roster)
        if ignored:
            progress(f"warning: not in the roster, not graded: {', '.join(ignored)[:2000]}")
    for sub in submissions:
        if "duplicate" in sub.note:
            progress(f"warning: {sub.student}: {sub.note}")
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

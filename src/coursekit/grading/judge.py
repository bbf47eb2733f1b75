"""Grading one submission: each question in a fresh sandbox, judged from outside.

For every question the grader forks a sandbox (:mod:`.zygote`), sends it the lab's setup
cells and the student's answer cells, and then runs that question's tests *here*, in the
grader's process: each ``student.f(...)`` in a test becomes a request to the sandbox, whose
reply is plain data (:mod:`.wire`). The tests, the expected values and the comparison never
enter the student's process, so patching ``assert``, ``torch.allclose``, doctest or the
grader's modules there changes nothing. A question's deadline covers its loading and all
its tests; when it passes, or the sandbox dies, the sandbox's whole process tree is killed
and the remaining tests of that question are reported as not run. Other questions are not
affected.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from coursekit.grading import cgroups, parsing, sandbox, wire, zygote
from coursekit.grading.authoring import Answers, Lab, test_names
from coursekit.grading.expect import StudentError, TestFailure
from coursekit.grading.selfcheck import collecting
from coursekit.grading.student import Student


class SandboxGone(Exception):
    """The sandbox stopped answering: timeout, crash, or a malformed reply."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class TestResult:
    name: str
    visibility: str  # "public" | "hidden"
    status: str  # passed | failed | error | timeout | crashed | not run
    summary: str = ""
    details: str = ""
    hint: str = ""


@dataclass
class QuestionResult:
    id: str
    points: float
    score: float
    status: str  # passed | partial | failed | missing | timeout | crashed
    reason: str
    tests: list[TestResult] = field(default_factory=list)
    load_errors: list[str] = field(default_factory=list)
    output: str = ""


class RemoteStudent(Student):
    """``student`` in the grader: every call is a request to the sandbox."""

    def __init__(self, handle: zygote.Handle, deadline: float, sources: dict[str, str],
                 cpu_limit: float | None = None, idle_limit: float | None = None) -> None:
        super().__init__()
        self._handle, self._deadline, self._sources = handle, deadline, sources
        self._cpu_limit = cpu_limit
        self._idle_limit = idle_limit
        self.operators: set[str] = set()  # torch operators the student's code ran
        self.idle = 0.0  # seconds the question's tasks neither ran nor waited to run
        self.spent = ""  # "cpu" or "idle" once a budget is spent
        self._last: tuple[float, float] | None = None

    def cpu_spent(self) -> bool:
        """The question's processes used their CPU budget (measured by the cgroup)."""
        group = self._handle.group
        return bool(group is not None and self._cpu_limit is not None
                    and group.cpu_seconds() >= self._cpu_limit)

    def over(self) -> bool:
        """Polled while waiting for a reply: is the CPU or the idle budget spent?"""
        group = self._handle.group
        if group is None:
            return False
        if self.cpu_spent():
            self.spent = "cpu"
            return True
        now, wanted = time.monotonic(), group.wanted_seconds()
        if self._last is not None:
            elapsed = now - self._last[0]
            if wanted - self._last[1] < 0.1 * elapsed:
                self.idle += elapsed
        self._last = (now, wanted)
        if self._idle_limit is not None and self.idle >= self._idle_limit:
            self.spent = "idle"
            return True
        return False

    def _ask(self, message: dict, raw: bool = False) -> object:
        self._last = None  # time between requests is the grader's, not the student's
        try:
            reply = zygote.request(self._handle, message, self._deadline, over=self.over)
        except wire.ChannelTimeout:
            raise SandboxGone("timeout", "timed out") from None
        except wire.ChannelClosed:
            raise SandboxGone("crashed", "the sandbox closed the channel") from None
        except (wire.WireError, OSError) as error:
            raise SandboxGone("crashed", f"the sandbox sent an invalid reply: {error}") from None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise SandboxGone("crashed", "the sandbox sent an invalid reply")
        self._record(reply.get("ops"))
        if not reply["ok"]:
            error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
            raise StudentError(str(error.get("type", "Error"))[:100],
                               str(error.get("message", ""))[:2000],
                               str(error.get("traceback", ""))[:4000])
        if raw:
            return reply
        try:
            return wire.decode(reply.get("value"))
        except (wire.WireError, RecursionError, ValueError, TypeError) as error:
            raise SandboxGone("crashed", f"the sandbox sent an invalid value: {error}") from None

    def _record(self, ops: object) -> None:
        if isinstance(ops, list):
            self.operators.update(str(op)[:100] for op in ops[:1000])

    def _call(self, name, args, kwargs):
        return self._ask({"op": "call", "name": name, "args": wire.encode(list(args)),
                          "kwargs": wire.encode(kwargs)})

    def _map(self, name, calls):
        reply = self._ask({"op": "map", "name": name, "calls": [
            [wire.encode(list(args)), wire.encode(kwargs)] for args, kwargs in calls]}, raw=True)
        replies = reply.get("batch")
        if not isinstance(replies, list) or len(replies) != len(calls):
            raise SandboxGone("crashed", "the sandbox sent an invalid reply to a batch of calls")
        return [self._outcome(r) for r in replies]

    def _outcome(self, reply: object):
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise SandboxGone("crashed", "the sandbox sent an invalid reply")
        if reply["ok"]:
            try:
                return wire.decode(reply.get("value"))
            except (wire.WireError, RecursionError, ValueError, TypeError) as error:
                raise SandboxGone("crashed",
                                  f"the sandbox sent an invalid value: {error}") from None
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        return StudentError(str(error.get("type", "Error"))[:100],
                            str(error.get("message", ""))[:2000],
                            str(error.get("traceback", ""))[:4000])

    def _eval(self, expression, bindings, mode="eval"):
        return self._ask({"op": "eval", "expression": expression, "mode": mode,
                          "bindings": wire.encode(bindings)})

    def source(self, question: str) -> str:
        return self._sources.get(question, "")


def collect_tests(sources: list[str], label: str) -> list:
    """Run tests cells in a fresh namespace of the grader and return their test functions."""
    tests = []
    for index, source in enumerate(sources):
        namespace = {"__name__": f"coursekit_lab_tests_{label}_{index}"}
        token = collecting.set(True)
        try:
            exec(parsing.compile_source(source, f"<{label} tests {index + 1}>"), namespace)
        finally:
            collecting.reset(token)
        tests += [namespace[name] for name in test_names(source)]
    return tests


def _hint(test) -> str:
    return " ".join((test.__doc__ or "").split())


def _status_text(finish: dict) -> str:
    status = finish.get("status")
    if status is None:
        return "the sandbox was stopped"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"the sandbox was killed by signal {sig} ({signal.Signals(sig).name})"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    if code > 128 and code - 128 in {s.value for s in signal.Signals}:
        sig = code - 128
        return f"the student's process was killed by signal {sig} ({signal.Signals(sig).name})"
    if code == 71:
        return "the sandbox could not be set up (a grader problem, see the output)"
    return f"the student's process exited with code {code}"


def _read_output(path: str, limit: int = 2000) -> str:
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(limit).decode("utf-8", "replace")
        os.unlink(path)
    except OSError:
        return ""
    if size > limit:
        head += f"\n[... {size - limit} more bytes of output not shown]"
    return head


def grade_question(pool: Pool, lab: Lab, answers: Answers, qid: str,
                   limits: sandbox.Limits, slot: int = 0) -> QuestionResult:
    question = lab.questions[qid]
    public = collect_tests(question.public_tests, f"{qid} public")
    hidden = collect_tests(question.hidden_tests, f"{qid} hidden")
    tests = [("public", t) for t in public] + [("hidden", t) for t in hidden]
    result = QuestionResult(qid, question.points, 0.0, "failed", "")
    refused = next((answers.problems[q] for q in lab.run_order(qid)
                    if q in answers.problems), None)
    if qid not in answers.sources or refused:
        result.status = "missing"
        result.reason = refused or f"no cell marked '# ANSWER {qid}' in the submission"
        result.tests = [TestResult(t.__name__, v, "not run", "no answer cell") for v, t in tests]
        return result
    cells = [(f"setup {i + 1}", s) for i, s in enumerate(lab.setup)]
    for q in lab.run_order(qid):
        parts = answers.cells_of(q)
        cells += [(f"answer {q}" + (f" cell {n + 1}" if len(parts) > 1 else ""), part)
                  for n, part in enumerate(parts)]
    try:
        handle = pool.spawn(limits, slot)
    except (zygote.ZygoteError, OSError) as error:
        result.status, result.reason = "crashed", f"could not start a sandbox: {error}"
        result.tests = [TestResult(t.__name__, v, "not run", "no sandbox") for v, t in tests]
        return result
    deadline = time.monotonic() + limits.wall_backstop
    gone: SandboxGone | None = None
    student = RemoteStudent(handle, deadline, answers.sources, limits.timeout,
                            limits.idle_limit)
    try:
        try:
            result.load_errors = _load_errors(student._ask({"op": "load", "cells": cells}))
        except StudentError as error:
            gone = SandboxGone("crashed", f"loading the answers failed: {error}")
        except SandboxGone as error:
            gone = error
            gone.reason = f"{gone.reason} while running the answer cells"
        for visibility, test in tests:
            if gone is not None:
                result.tests.append(TestResult(test.__name__, visibility, "not run",
                                               f"the sandbox had stopped: {gone.reason}"))
                continue
            result.tests.append(_run_test(test, visibility, student))
            if result.tests[-1].status in ("timeout", "crashed"):
                gone = SandboxGone(result.tests[-1].status, result.tests[-1].summary)
    finally:
        cpu_spent = student.cpu_spent()
        out_of_memory = handle.group is not None and handle.group.out_of_memory()
        finish = pool.finish(handle, grace=1.0 if gone and gone.status == "crashed" else 0.0)
        result.output = _read_output(handle.output)
    passed = sum(t.status == "passed" for t in result.tests)
    result.score = round(question.points * passed / len(result.tests), 2) if tests else 0.0
    if gone is not None and (gone.status == "timeout" or cpu_spent or _cpu_signal(finish)):
        result.status = "timeout"
        if cpu_spent or _cpu_signal(finish) or student.spent == "cpu":
            limit = f"{limits.timeout:g} s of CPU time (infinite loop or too slow)"
        elif student.spent == "idle":
            limit = (f"{limits.idle_limit:g} s of sleeping or waiting without computing "
                     "(nothing in a lab needs to wait)")
        else:
            limit = f"{limits.wall_backstop:g} s of wall-clock time (the backstop)"
        result.reason = (f"stopped after {limit}; {passed}/{len(tests)} tests passed "
                         "before that")
        for t in result.tests:
            if t.status == "crashed":
                t.status = "timeout"
    elif gone is not None:
        result.status = "crashed"
        memory = (f"; it ran out of memory (limit {limits.memory_mb} MB, all processes and "
                  "shared memory counted)" if out_of_memory else "")
        result.reason = (f"{_status_text(finish)}{memory}; {passed}/{len(tests)} tests passed "
                         "before that")
    else:
        result.status = ("passed" if passed == len(tests) else
                         "partial" if passed else "failed")
        result.reason = f"{passed}/{len(tests)} tests passed"
    return result


def _cpu_signal(finish: dict) -> bool:
    """The sandbox died of its CPU rlimit (SIGXCPU, directly or as PID 1's exit code)."""
    status = finish.get("status")
    if status is None:
        return False
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status) == signal.SIGXCPU
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 128 + signal.SIGXCPU


def _load_errors(value: object) -> list[str]:
    """The errors the answer cells raised while loading, as report lines."""
    if not isinstance(value, list):
        return []
    lines = []
    for error in value[:20]:
        if isinstance(error, dict):
            cell = str(error.get("cell", "?"))[:40]
            lines.append(f"{cell}: {str(error.get('type', 'Error'))[:80]}: "
                         f"{str(error.get('message', ''))[:500]}")
    return lines


def _run_test(test, visibility: str, student: RemoteStudent) -> TestResult:
    name, hint = test.__name__, _hint(test)
    try:
        test(student)
    except TestFailure as failure:
        where = f" (in {student.last_call})" if student.last_call else ""
        return TestResult(name, visibility, "failed", failure.summary + where, failure.details,
                          hint)
    except StudentError as error:
        return TestResult(name, visibility, "error",
                          f"{student.last_call or 'your code'} raised {error.kind}: "
                          f"{error.message}", error.traceback, hint)
    except SandboxGone as gone:
        return TestResult(name, visibility, gone.status, f"{gone.reason} during "
                          f"{student.last_call or name}", hint=hint)
    except Exception as error:  # the test choked on what the student returned
        return TestResult(name, visibility, "failed",
                          f"unexpected result from {student.last_call or 'your code'}: "
                          f"{type(error).__name__}: {error}", hint=hint)
    return TestResult(name, visibility, "passed", hint=hint)


SCRATCH_PREFIX, CGROUP_PREFIX = cgroups.SCRATCH_PREFIX, cgroups.CGROUP_PREFIX


class Pool:
    """The zygote plus the isolation settings shared by every sandbox of a grading run."""

    def __init__(self, preload: list[str], hidden: list[str] = (), mode: str = "auto") -> None:
        cgroups.sweep_scratch(SCRATCH_PREFIX, tempfile.gettempdir())  # left by a killed grader
        self.scratch = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")
        self.cgroups = cgroups.available() if os.geteuid() == 0 else None
        if self.cgroups:
            cgroups.sweep(CGROUP_PREFIX)
        self._groups = 0
        self.slack = 256 * 2**20  # copy-on-write pages of the inherited interpreter it dirties
        os.chmod(self.scratch, 0o711)  # basic mode: a sandbox may enter its own workdir only
        self.hidden = [os.path.realpath(p) for p in hidden] + [self.scratch]
        self.preload = sorted(set(["torch", "numpy", *preload]))
        self._zygote_lock = threading.Lock()
        self.zygote = zygote.Zygote(self.preload, self.scratch)
        self.keep = sandbox.default_keep(self.hidden)
        self.uid_base = int(os.environ.get("COURSEKIT_SANDBOX_UID_BASE", "64000"))
        self.mode = self._choose(mode)

    # --- isolation mode ------------------------------------------------------------------------
    def _candidates(self, mode: str) -> list[str]:
        if mode != "auto":
            if mode not in sandbox.MODES:
                raise ValueError(f"isolation must be auto or one of {sandbox.MODES}, not {mode!r}")
            if mode == "userns" and os.geteuid() == 0:
                raise ValueError("as root, use --isolation namespaces: a user namespace mapped "
                                 "to root would not be limited by RLIMIT_NPROC")
            return [mode]
        return ["namespaces", "basic"] if os.geteuid() == 0 else ["userns", "basic"]

    def _choose(self, mode: str) -> str:
        problems = []
        for candidate in self._candidates(mode):
            self.mode = candidate
            problem = self._probe()
            if problem is None:
                return candidate
            problems.append(f"{candidate}: {problem}")
        self.close()
        raise RuntimeError("no sandbox works on this machine: " + "; ".join(problems))

    def _probe(self) -> str | None:
        handle = self.spawn(sandbox.Limits(timeout=30), 0)
        try:
            reply = zygote.request(handle, {"op": "probe"}, time.monotonic() + 30)
        except (wire.WireError, OSError, TimeoutError) as error:
            reply = {"ok": False, "error": str(error)}
        finally:
            self.finish(handle, grace=0.5)
            output = _read_output(handle.output)
        if not reply.get("ok"):
            return (output or str(reply.get("error"))).strip()[:300] or "no reply"
        facts = reply["value"]
        if self.mode != "basic":
            caps = facts.get("caps") or {}
            if any(caps.get(k) for k in ("CapEff", "CapPrm", "CapBnd")):
                return f"capabilities left: {caps}"
            if facts.get("hostname") != "sandbox":
                return "not in a new UTS namespace"
        return None

    @property
    def description(self) -> str:
        uid = self.uid_base if self.mode != "userns" and os.geteuid() == 0 else None
        return sandbox.describe(self.mode, uid, self.cgroups)

    # --- sandboxes -----------------------------------------------------------------------------
    def spawn(self, limits: sandbox.Limits, slot: int) -> zygote.Handle:
        workdir = ""
        if self.mode == "basic":
            workdir = tempfile.mkdtemp(prefix="work-", dir=self.scratch)
        root_dir = tempfile.mkdtemp(prefix="root-", dir=self.scratch)
        uid = self.uid_base + slot
        group = None
        if self.cgroups:
            with self._zygote_lock:
                self._groups += 1
                name = f"{CGROUP_PREFIX}{os.getpid()}-{self._groups}"
            group = cgroups.Group(self.cgroups, name, limits.memory_mb * 2**20 + self.slack,
                                  limits.processes)
        spec = sandbox.Spec(self.mode, limits, uid=uid, gid=uid, keep=self.keep,
                            hidden=self.hidden, root_dir=root_dir, workdir=workdir,
                            cgroup_procs=group.procs if group else [])
        with self._zygote_lock:
            if not self.zygote.alive():  # a submission managed to end it: start another
                self.zygote = zygote.Zygote(self.preload, self.scratch)
        try:
            try:
                handle = self.zygote.spawn(spec)
            except zygote.ZygoteError:
                with self._zygote_lock:
                    self.zygote.close()
                    self.zygote = zygote.Zygote(self.preload, self.scratch)
                handle = self.zygote.spawn(spec)
        except BaseException:
            if group is not None:
                group.remove()
            raise
        handle.folders = (root_dir, workdir) if workdir else (root_dir,)
        handle.group = group
        return handle

    def finish(self, handle: zygote.Handle, grace: float = 0.0) -> dict:
        try:
            return self.zygote.finish(handle, grace)
        except zygote.ZygoteError:
            return {"killed": True, "status": None}
        finally:
            for folder in handle.folders:
                shutil.rmtree(folder, ignore_errors=True)
            if handle.group is not None:
                handle.group.remove()

    def close(self) -> None:
        try:
            self.zygote.close()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def secret_paths(lab: Lab, *extra: str | Path) -> list[str]:
    """What basic mode hides: the solutions folder, its repository's .git, and ``extra``."""
    paths = [str(lab.path.resolve().parent)]
    for parent in lab.path.resolve().parents:
        if (parent / ".git").exists():
            paths.append(str(parent / ".git"))
            break
    return paths + [str(Path(p).resolve()) for p in extra if p]

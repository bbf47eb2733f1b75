"""coursekit grade on a batch of broken and malicious lab-4 submissions.

Each submission is built in a temporary folder from the lab itself (tests/fixtures/
hostile_lab04.py): a correct student, then one trick each — infinite loops, a loop that
ignores KeyboardInterrupt, memory and fork bombs, detached processes, network access, reading
the solutions, patching the test machinery, forging replies, renamed functions, sys.exit,
os._exit, killing itself or the grader, huge outputs and return values, invalid JSON,
deleted, duplicated and reordered cells, changed ids. The batch must finish with a complete
gradebook, the trick must cost exactly the question it is in, and nothing may survive or leak.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from coursekit.grading import sandbox, zygote
from coursekit.grading.batch import grade_folder
from coursekit.grading.judge import Pool, secret_paths

_spec = importlib.util.spec_from_file_location(
    "hostile_lab04", Path(__file__).parent / "fixtures" / "hostile_lab04.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)

LIMITS = sandbox.Limits(timeout=3.0, wall=60.0)  # CPU seconds; wall only as a backstop


class Listener:
    """A TCP server on the host's loopback that records every connection it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections: list = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, address = self.sock.accept()
            except OSError:
                return
            self.connections.append(address)
            conn.close()


def _fingerprints(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir())}


def _marked_processes() -> list[str]:
    """Processes a submission started and that should have died with its sandbox."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            uid = int(Path(f"/proc/{entry}/status").read_text().split("Uid:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue
        sandbox_uid = os.geteuid() == 0 and 64000 <= uid < 64010
        if b"4321" in cmdline or sandbox_uid:
            found.append(f"{entry} uid {uid}: {cmdline.decode(errors='replace')[:80]}")
    return found


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    listener = Listener()
    folder = base / "submissions"
    lab = hostile._lab()
    hostile.write(hostile.hostile(listener.port, lab.path, folder), folder)
    before = _fingerprints(folder)
    with Pool(lab.preload_modules(), secret_paths(lab, folder, base)) as pool:
        first = grade_folder(lab, folder, base / "out1", jobs=2, limits=LIMITS, pool=pool,
                             progress=lambda line: None)
        time.sleep(0.5)
        leftovers = _marked_processes()
        second = grade_folder(lab, folder, base / "out2", jobs=2, limits=LIMITS, pool=pool,
                              progress=lambda line: None)
        yield {"lab": lab, "base": base, "folder": folder, "before": before, "pool": pool,
               "first": first, "second": second, "listener": listener,
               "results": {r.student: r for r in first.results}, "leftovers": leftovers}


def _question(batch, student: str, qid: str):
    return next(q for q in batch["results"][student].questions if q.id == qid)


def _everything(q) -> str:
    return " ".join([q.reason, *q.load_errors, *(t.summary for t in q.tests)])


def test_gradebook_is_complete(batch):
    lines = (batch["base"] / "out1" / "gradebook.csv").read_text().splitlines()
    assert lines[0] == "student,q1,q2,q3,q4,q5,q6,q7,total"
    names = sorted(p.stem for p in batch["folder"].iterdir())
    assert [line.split(",")[0] for line in lines[1:]] == names
    assert all(len(line.split(",")) == 9 for line in lines)
    reports = sorted(p.stem for p in (batch["base"] / "out1" / "reports").iterdir())
    assert reports == names


@pytest.mark.parametrize("name", sorted(hostile.hostile(submissions_dir=Path("/x"))))
def test_each_trick_costs_its_own_question_only(batch, name):
    expected = hostile.expected(name)
    if name == "detached_child" and batch["pool"].mode == "basic":
        expected["q2"] = 0.0  # basic mode refuses to start programs at all
    got = {q.id: q.score for q in batch["results"][name].questions}
    assert got == expected


def test_infinite_loops_cost_the_question_even_when_interrupts_are_ignored(batch):
    for student, qid in [("infinite_loop", "q3"), ("ignores_interrupt", "q4")]:
        q = _question(batch, student, qid)
        assert q.status == "timeout" and "stopped after" in q.reason
    assert "3 s of CPU time" in _question(batch, "infinite_loop", "q3").reason
    sleeper = _question(batch, "ignores_interrupt", "q4").reason
    assert ("sleeping" if batch["pool"].cgroups else "wall-clock") in sleeper


def test_memory_and_fork_bombs_are_contained(batch):
    assert "MemoryError" in _everything(_question(batch, "memory_bomb", "q3"))
    assert _question(batch, "fork_bomb", "q5").status in ("timeout", "crashed", "failed")
    assert batch["leftovers"] == [], "processes outlived their sandbox"
    assert _marked_processes() == []


def test_detached_processes_ran_and_then_died(batch):
    q2 = _question(batch, "detached_child", "q2")
    if batch["pool"].mode == "basic":
        assert "not allowed while grading" in _everything(q2)
    else:  # full marks prove `sleep` was alive while q2 was graded
        assert q2.status == "passed"
    assert batch["leftovers"] == []


def test_no_network(batch):
    assert _question(batch, "network", "q1").score == 0
    assert batch["listener"].connections == []


def test_solutions_cannot_be_read_and_tests_cannot_be_patched(batch):
    assert _question(batch, "reads_solution", "q3").score == 0
    q4 = _question(batch, "patches_machinery", "q4")
    assert q4.score == 0 and "should be a tensor" in _everything(q4)
    assert _question(batch, "forges_replies", "q6").score == 0


def test_crashes_exits_and_renames_are_reported(batch):
    assert "my_conv2d" in _everything(_question(batch, "renamed_function", "q3"))
    assert "sys.exit('done for today')" in _everything(_question(batch, "sys_exit", "q2"))
    os_exit = _question(batch, "os_exit", "q6")
    assert os_exit.status == "crashed" and "exited with code 3" in os_exit.reason
    assert _question(batch, "kills_itself", "q1").status in ("crashed", "failed")
    assert "cannot be checked" in _everything(_question(batch, "huge_return", "q5"))


def test_broken_notebooks_are_reported_not_fatal(batch):
    results = batch["results"]
    assert "invalid JSON" in results["invalid_json"].reason
    assert "invalid JSON" in results["not_a_notebook"].reason
    assert "not an object" in results["json_list"].reason
    report = (batch["base"] / "out1" / "reports" / "invalid_json.md").read_text()
    assert "Not graded: not a notebook: invalid JSON" in report
    assert [q.status for q in results["deleted_cells"].questions if q.score == 0] == [
        "missing", "missing"]
    assert any("2 cells are marked '# ANSWER q3'" in n for n in results["duplicated_cells"].notes)
    assert any("matched the cell by its id" in n for n in results["deleted_marker_line"].notes)


def test_huge_output_is_truncated_in_the_report(batch):
    report = (batch["base"] / "out1" / "reports" / "prints_a_lot.md").read_text()
    assert "more bytes of output not shown" in report and len(report) < 60_000


def test_originals_are_never_modified(batch):
    assert _fingerprints(batch["folder"]) == batch["before"]


def test_grading_twice_gives_the_same_gradebook(batch):
    first = (batch["base"] / "out1" / "gradebook.csv").read_bytes()
    assert (batch["base"] / "out2" / "gradebook.csv").read_bytes() == first


def _facts(pool, lab, folder, port) -> dict:
    """What code inside a fresh sandbox of ``pool`` can reach."""
    handle = pool.spawn(LIMITS, 0)
    code = f"""
import os, socket, tempfile
def facts():
    out = {{"uid": os.getuid()}}
    for name, path in [("solutions", {str(lab.path.parent)!r}), ("submissions", {str(folder)!r}),
                       ("root", "/")]:
        try:
            out[name] = sorted(os.listdir(path))
        except OSError as error:
            out[name] = type(error).__name__
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=1).close()
        out["network"] = "connected"
    except Exception as error:
        out["network"] = type(error).__name__
    try:
        with tempfile.TemporaryFile() as f:
            f.write(b"x")
        with open("scratch.txt", "w") as f:
            f.write("x")
        out["tmp"] = "writable"
    except OSError as error:
        out["tmp"] = type(error).__name__
    return out
"""
    try:
        deadline = time.monotonic() + 10
        zygote.request(handle, {"op": "load", "cells": [["answer q0", code]]}, deadline)
        reply = zygote.request(handle, {"op": "call", "name": "facts", "args": [],
                                        "kwargs": {"d": []}}, deadline)
    finally:
        pool.finish(handle)
    assert reply["ok"], reply
    return dict(reply["value"]["d"])


def test_the_sandbox_sees_no_secrets(batch):
    """Direct look from inside a sandbox at what it can reach."""
    facts = _facts(batch["pool"], batch["lab"], batch["folder"], batch["listener"].port)
    assert not isinstance(facts["solutions"], list) and not isinstance(facts["submissions"], list)
    assert facts["network"] != "connected" and batch["listener"].connections == []
    assert facts["tmp"] == "writable"
    if batch["pool"].mode != "basic":  # a root of its own, without them: not even "denied"
        assert facts["solutions"] == facts["submissions"] == "FileNotFoundError"
    if os.geteuid() == 0:
        assert facts["uid"] != 0


@pytest.mark.skipif(os.geteuid() != 0, reason="basic mode without root is what auto picks "
                    "when namespaces are not allowed, so the main batch already covers it")
def test_basic_mode_contains_the_same_tricks(tmp_path):
    listener = Listener()
    folder = tmp_path / "submissions"
    lab = hostile._lab()
    subs = hostile.hostile(listener.port, lab.path, folder)
    names = ["correct", "infinite_loop", "network", "reads_solution", "detached_child",
             "patches_machinery", "kills_grader"]
    hostile.write({n: subs[n] for n in names}, folder)
    with Pool(lab.preload_modules(), secret_paths(lab, folder, tmp_path), "basic") as pool:
        result = grade_folder(lab, folder, tmp_path / "out", jobs=2, limits=LIMITS, pool=pool,
                              progress=lambda line: None)
        facts = _facts(pool, lab, folder, listener.port)
    assert result.isolation.startswith("basic")
    assert not isinstance(facts["solutions"], list) and not isinstance(facts["submissions"], list)
    assert facts["network"] != "connected" and facts["tmp"] == "writable"
    assert facts["root"] == "PermissionError"
    for r in result.results:
        expected = hostile.expected(r.student)
        if r.student == "detached_child":
            expected["q2"] = 0.0
        assert {q.id: q.score for q in r.questions} == expected, (
            r.student, [(q.id, q.status, q.reason) for q in r.questions])
    assert listener.connections == [] and _marked_processes() == []


def test_the_grade_command_writes_gradebook_and_reports(tmp_path, capsys):
    from coursekit.cli import main

    folder = tmp_path / "submissions"
    subs = hostile.hostile()
    hostile.write({"ada": subs["correct"], "bea": subs["invalid_json"]}, folder)
    main(["grade", str(hostile.SOLUTION), str(folder), "--out", str(tmp_path / "grades"),
          "--timeout", "10"])
    out = capsys.readouterr().out
    assert "graded 2 submission(s) of lab04_convolution" in out
    assert "not gradable (0 points, see their reports): bea" in out
    assert (tmp_path / "grades" / "gradebook.csv").read_text().splitlines() == [
        "student,q1,q2,q3,q4,q5,q6,q7,total", "ada,2,2,4,2,2,1,2,15", "bea,0,0,0,0,0,0,0,0"]
    assert sorted(p.name for p in (tmp_path / "grades" / "reports").iterdir()) == [
        "ada.md", "bea.md"]
    assert not list((tmp_path / "grades").rglob(".*.tmp"))

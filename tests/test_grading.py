"""coursekit.grading: the authoring format, lab generation, the data channel, the self-check."""

from __future__ import annotations

import json
import struct

import nbformat
import pytest
import torch

from coursekit.grading import authoring, expect, generate, selfcheck, wire
from coursekit.grading.expect import StudentError, TestFailure
from coursekit.grading.student import LocalStudent


def _cell(source: str, kind: str = "code", cid: str | None = None):
    cell = (nbformat.v4.new_code_cell(source) if kind == "code"
            else nbformat.v4.new_markdown_cell(source))
    if cid:
        cell.id = cid
    return cell


def _solution(tmp_path, cells, name="labX.ipynb"):
    nb = nbformat.v4.new_notebook(cells=cells)
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


ANSWER = '''# ANSWER q1 [3 points]
def double(x):
    """Twice x."""
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION
'''
TESTS = '''# TESTS q1
from coursekit.grading import check, expect_equal


def test_two(student):
    """Double means times two."""
    expect_equal(student.double(2), 4)


check("q1")
'''
HIDDEN = '''# HIDDEN TESTS q1
from coursekit.grading import expect_equal


def test_negative(student):
    expect_equal(student.double(-3), -6)
'''


def _minimal(tmp_path, **changes):
    cells = [_cell("# Lab X", "markdown"), _cell("# SETUP\nimport math"),
             _cell(changes.get("answer", ANSWER), cid="q1-answer"),
             _cell(changes.get("tests", TESTS)), _cell(changes.get("hidden", HIDDEN))]
    return _solution(tmp_path, cells)


# --- authoring format -------------------------------------------------------------------------
def test_load_lab_reads_questions_points_and_tests(tmp_path):
    lab = authoring.load_lab(_minimal(tmp_path))
    q = lab.questions["q1"]
    assert (q.points, q.requires, len(q.public_tests), len(q.hidden_tests)) == (3.0, (), 1, 1)
    assert lab.setup == ["# SETUP\nimport math"]
    assert lab.preload_modules() == ["math"]


@pytest.mark.parametrize("change, message", [
    ({"answer": ANSWER.replace(" [3 points]", "")}, "N points"),
    ({"answer": ANSWER.replace("    # BEGIN SOLUTION\n", "").replace("    # END SOLUTION\n", "")},
     "would contain the answer"),
    ({"tests": TESTS.replace("TESTS q1", "TESTS q9")}, "no '# ANSWER q9'"),
    ({"hidden": HIDDEN.replace("def test_negative", "def negative")}, "no 'def test_*"),
    ({"answer": ANSWER.replace("[3 points]", "[3 points] requires q1")}, "require each other"),
    ({"tests": TESTS + "\nx = 1  # SOLUTION\n"}, "belong in '# ANSWER' cells"),
])
def test_authoring_errors_say_what_to_fix(tmp_path, change, message):
    with pytest.raises(authoring.AuthoringError, match=message):
        authoring.load_lab(_minimal(tmp_path, **change))


def test_strip_solution_keeps_structure_and_stubs_regions():
    lab_source = generate.strip_solution(ANSWER + "y = 3  # SOLUTION\n", "q1")
    assert "return 2 * x" not in lab_source and "y = 3" not in lab_source
    assert '    # YOUR CODE HERE\n    raise NotImplementedError("q1:' in lab_source
    assert "y = ...  # YOUR CODE HERE" in lab_source
    assert lab_source.startswith("# ANSWER q1 [3 points]\ndef double(x):")


def test_generated_lab_drops_hidden_tests_and_is_byte_stable(tmp_path):
    lab = authoring.load_lab(_minimal(tmp_path))
    text = generate.render(generate.make_lab(lab, "solutions/labX.ipynb"))
    again = generate.make_lab(authoring.load_lab(lab.path), "solutions/labX.ipynb")
    assert text == generate.render(again)
    assert "HIDDEN" not in text and "test_negative" not in text and "2 * x" not in text
    nb = nbformat.reads(text, as_version=4)
    assert all(c.get("outputs", []) == [] for c in nb.cells)
    assert [c.id for c in nb.cells][2] == "q1-answer"


def test_sync_check_names_the_stale_lab(tmp_path):
    solutions, labs = tmp_path / "solutions", tmp_path / "labs"
    solutions.mkdir()
    _minimal(solutions)
    assert generate.out_of_sync(solutions, labs) == [f"{labs / 'labX.ipynb'} is missing"]
    generate.generate(solutions, labs)
    assert generate.out_of_sync(solutions, labs) == []
    (labs / "labX.ipynb").write_text((labs / "labX.ipynb").read_text().replace("Twice", "Thrice"))
    assert "differs from what" in generate.out_of_sync(solutions, labs)[0]


def test_answers_are_found_by_marker_whatever_the_cell_order_or_ids(tmp_path):
    lab = authoring.load_lab(_minimal(tmp_path))
    sub = {"cells": [{"cell_type": "code", "id": "zzz", "source": ["x = 1\n"]},
                     {"cell_type": "code", "id": "new", "source": "# ANSWER q1\ndef double(x):\n"
                                                                  "    return x + x\n"},
                     {"cell_type": "code", "id": "dup", "source": "# ANSWER q1\nHELP = 1\n"}]}
    answers = authoring.extract_answers(sub, lab)
    assert "return x + x" in answers.sources["q1"] and "HELP = 1" in answers.sources["q1"]
    assert "2 cells are marked" in answers.notes[0]
    gone = {"cells": [{"cell_type": "code", "id": "q1-answer", "source": "def double(x): 0"}]}
    answers = authoring.extract_answers(gone, lab)
    assert answers.sources["q1"] == "def double(x): 0"
    assert "matched the cell by its id" in answers.notes[0]
    assert authoring.extract_answers({"cells": "nonsense"}, lab).sources == {}


# --- the data channel ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    None, True, 3, -2**62, 2.5, float("inf"), "text", (1, [2, 3]), {"a": (1.0, None), 2: "b"},
    torch.arange(6, dtype=torch.float32).reshape(2, 3), torch.tensor([True, False]),
    torch.ones(2, dtype=torch.bfloat16), torch.zeros(0, 3, dtype=torch.int64),
])
def test_wire_round_trips_plain_data(value):
    back = wire.roundtrip(value)
    if isinstance(value, torch.Tensor):
        assert back.dtype == value.dtype and torch.equal(back, value)
    else:
        assert back == value and type(back) is type(value)


def test_wire_turns_objects_into_opaque_values_that_equal_nothing():
    class Sneaky(float):
        def __eq__(self, other):
            return True

    back = wire.roundtrip(object())
    assert isinstance(back, wire.Opaque) and back != back
    assert wire.roundtrip(Sneaky(1.0)) == 1.0 and type(wire.roundtrip(Sneaky(1.0))) is float
    assert wire.roundtrip(torch.nn.Linear(2, 2)) != wire.roundtrip(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("bad", [
    {"a": ["tensor", "float32", [2, 2], "AAAA"]},  # 3 bytes for 16
    {"a": ["tensor", "complex64", [1], ""]},
    {"a": ["tensor", "float32", [10**9], ""]},
    {"a": ["tensor", "float32", [-1], ""]},
    {"x": 1}, {"t": 1, "d": 2}, {"o": [1]},
])
def test_wire_rejects_malformed_values(bad):
    with pytest.raises(wire.WireError):
        wire.decode(bad)


def test_wire_limits_sizes_and_depth():
    with pytest.raises(wire.WireError):
        wire.encode(torch.zeros(wire.MAX_ELEMENTS + 1, dtype=torch.bool))
    nested: list = []
    for _ in range(wire.MAX_DEPTH + 5):
        nested = [nested]
    with pytest.raises(wire.WireError):
        wire.encode(nested)


def test_frames_reject_oversized_and_invalid_bodies():
    import socket

    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", wire.MAX_FRAME + 1))
        with pytest.raises(wire.WireError, match="frame of"):
            wire.receive(b)
        a.sendall(struct.pack(">I", 3) + b"{{{")
        with pytest.raises(wire.WireError, match="not valid JSON"):
            wire.receive(b)
        wire.send(a, {"ok": True})
        assert wire.receive(b) == {"ok": True}
        with pytest.raises(wire.ChannelTimeout):
            wire.receive(b, deadline=0)


# --- expectations ---------------------------------------------------------------------------------
def test_expect_close_explains_shape_and_value_mismatches():
    want = torch.arange(4.0).reshape(2, 2)
    with pytest.raises(TestFailure, match=r"shape \(2, 3\), expected \(2, 2\)"):
        expect.expect_close(torch.zeros(2, 3), want)
    with pytest.raises(TestFailure) as info:
        expect.expect_close(want + torch.tensor([[0, 0], [0, 1.0]]), want)
    assert "differs in 1 of 4 entries" in info.value.summary
    assert "expected 3, got 4" in info.value.details and "[1, 1]" in info.value.details
    with pytest.raises(TestFailure, match="should be a tensor"):
        expect.expect_close(wire.Opaque("x.Y", "y"), want)
    expect.expect_close(want.double() + 1e-9, want)


def test_expect_equal_is_strict_about_types():
    expect.expect_equal((1, 2), (1, 2))
    with pytest.raises(TestFailure, match="should be int, got float"):
        expect.expect_equal(5.0, 5)
    with pytest.raises(TestFailure, match="wrong value"):
        expect.expect_equal(4, 5)


def test_from_scratch_rule_reads_the_answer_source():
    student = LocalStudent({}, {"q3": "import torch.nn.functional as F\ny = F.conv2d"})
    with pytest.raises(TestFailure, match="uses conv2d"):
        expect.expect_from_scratch(student, ("conv2d",), question="q3")
    clean = LocalStudent({}, {"q3": "def conv2d(x):\n    return x"})
    expect.expect_from_scratch(clean, ("conv2d",), question="q3")


# --- the self-check -------------------------------------------------------------------------------
def _run_cell(source: str, namespace: dict, name: str) -> None:
    exec(compile(source, name, "exec"), namespace)


def test_check_prints_expected_got_and_hint(capsys):
    namespace = {"__name__": "__main__"}
    _run_cell("def double(x):\n    return x + 1\n", namespace, "<cell 1>")
    _run_cell(TESTS, namespace, "<cell 2>")
    out = capsys.readouterr().out
    assert "✗ test_two: the result has the wrong value" in out
    assert "in: double(2)" in out and "expected 4" in out and "got 3" in out
    assert "hint: Double means times two." in out and "q1: 0/1 public tests passed" in out
    _run_cell("def double(x):\n    return 2 * x\n", namespace, "<cell 3>")
    _run_cell(TESTS, namespace, "<cell 4>")
    assert "✓ test_two" in capsys.readouterr().out


def test_check_reports_errors_and_missing_names(capsys):
    namespace = {"__name__": "__main__"}
    _run_cell(TESTS, namespace, "<cell 1>")
    assert "NameError: double is not defined" in capsys.readouterr().out
    _run_cell("def double(x):\n    raise NotImplementedError('q1')\n", namespace, "<cell 2>")
    _run_cell(TESTS, namespace, "<cell 3>")
    assert "your code raised NotImplementedError: q1" in capsys.readouterr().out


def test_check_only_runs_the_tests_of_its_own_cell(capsys):
    namespace = {"__name__": "__main__"}
    _run_cell("def test_other(student):\n    raise AssertionError\n", namespace, "<cell 1>")
    _run_cell("def double(x):\n    return 2 * x\n" + TESTS.split("# TESTS q1\n")[1], namespace,
              "<cell 2>")
    out = capsys.readouterr().out
    assert "test_other" not in out and "1/1 public tests passed" in out
    with pytest.raises(ValueError, match="no test_\\* functions"):
        _run_cell("from coursekit.grading import check\ncheck('q1')", namespace, "<cell 3>")


def test_check_is_silent_while_the_grader_collects_tests(capsys):
    token = selfcheck.collecting.set(True)
    try:
        _run_cell(TESTS, {"__name__": "x"}, "<cell>")
    finally:
        selfcheck.collecting.reset(token)
    assert capsys.readouterr().out == ""


def test_local_student_passes_values_through_the_channel():
    namespace = {"f": lambda: {"a": torch.ones(2)}, "g": lambda: object()}
    student = LocalStudent(namespace)
    assert torch.equal(student.f()["a"], torch.ones(2))
    assert isinstance(student.g(), wire.Opaque)
    assert student.eval("f()['a'].sum() + k", k=1.0).item() == 3.0
    with pytest.raises(StudentError, match="NameError"):
        student.missing()


def test_student_call_text_is_readable():
    from coursekit.grading.student import call_text

    assert call_text("conv2d", (torch.zeros(1, 3, 5, 5), 2), {"padding": 1}) == (
        "conv2d(<Tensor of shape (1, 3, 5, 5)>, 2, padding=1)")


def test_generate_json_is_valid_notebook(tmp_path):
    lab = authoring.load_lab(_minimal(tmp_path))
    data = json.loads(generate.render(generate.make_lab(lab, "x")))
    assert data["metadata"]["coursekit"]["lab"] == "labX"


def test_discover_handles_files_folders_and_clashing_names(tmp_path):
    from coursekit.grading.batch import discover, student_id

    lab = authoring.load_lab(_minimal(tmp_path))
    subs = tmp_path / "subs"
    for folder in ("bob/work", "carol", ".hidden", "d a"):
        (subs / folder).mkdir(parents=True)
    for name in ("alice.ipynb", "bob/draft.ipynb", "bob/work/labX.ipynb", "d a/x.ipynb",
                 "d_a.ipynb"):
        (subs / name).write_text("{}")
    (subs / "carol" / "notes.txt").write_text("no notebook")
    found = {s.student: s for s in discover(subs, lab)}
    spaced = student_id("d a")
    assert sorted(found) == sorted(["alice", "bob", "carol", "d_a", spaced])
    assert spaced.startswith("d_a~") and spaced != "d_a"
    assert found["bob"].path.name == "labX.ipynb" and "2 notebooks" in found["bob"].note
    assert found["carol"].path is None and "no .ipynb" in found["carol"].problem


def test_cli_labs_check_sync_only_passes_on_the_repository(capsys, monkeypatch):
    from pathlib import Path

    from coursekit.cli import main

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    main(["labs", "check", "--sync-only"])
    assert "labs are in sync" in capsys.readouterr().out

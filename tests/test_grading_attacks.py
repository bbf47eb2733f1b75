"""New attacks on ``coursekit grade``, one group per class of issue 13.

1. a submission never stops the batch (hostile strings, malformed fields, sizes);
2. only what the student handed in is graded (links, names, forged report lines);
3. nothing of the grader reaches student code, nothing crosses between students;
4. "from scratch" is checked on the operators that ran, not on names;
5. correct work earns full marks (magics, broken duplicates, every requirement imports,
   the same grade on a saturated machine), and nonsense options are refused;
6. the student bundle holds no solution and no hidden test.

No assertion here is about wall-clock time: the suite must pass on a loaded machine.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from coursekit.grading import sandbox, zygote
from coursekit.grading.authoring import extract_answers, load_lab
from coursekit.grading.batch import grade_folder, read_roster, student_id
from coursekit.grading.judge import Pool, grade_question, secret_paths

_spec = importlib.util.spec_from_file_location(
    "hostile_lab04", Path(__file__).parent / "fixtures" / "hostile_lab04.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)

LIMITS = sandbox.Limits(timeout=5.0, wall=20.0)  # CPU seconds; wall only as a backstop
CANARY = "coursekit-canary-7f3e9b2d"
FULL = hostile.FULL
TOTAL = sum(FULL.values())
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="grading needs Linux")


def _body(qid: str, body: str) -> str:
    return hostile._replace_body(qid, body)


def _answer(qid: str) -> str:
    return hostile._lab().questions[qid].answer


# A correct submission written differently from the solution (loops, other idioms).
DIFFERENT = {
    "q1": _body("q1", "if kernel_size > size + 2 * padding:\n"
                      "    raise ValueError('no room for the window')\n"
                      "n = 1\n"
                      "while (n) * stride + kernel_size <= size + 2 * padding:\n"
                      "    n += 1\n"
                      "return n"),
    "q2": _body("q2", "k = kernel_size if isinstance(kernel_size, tuple) else "
                      "(kernel_size,) * 2\n"
                      "weights = in_channels * out_channels * k[0] * k[1]\n"
                      "return weights + out_channels * int(bool(bias))"),
    "q3": _body("q3", "s = stride if isinstance(stride, tuple) else (stride, stride)\n"
                      "p = padding if isinstance(padding, tuple) else (padding, padding)\n"
                      "n, c, h, w = x.shape\n"
                      "o, _, f1, f2 = weight.shape\n"
                      "xp = torch.zeros(n, c, h + 2 * p[0], w + 2 * p[1], dtype=x.dtype)\n"
                      "xp[:, :, p[0]:p[0] + h, p[1]:p[1] + w] = x\n"
                      "ho = (h + 2 * p[0] - f1) // s[0] + 1\n"
                      "wo = (w + 2 * p[1] - f2) // s[1] + 1\n"
                      "out = torch.zeros(n, o, ho, wo, dtype=x.dtype)\n"
                      "for i in range(ho):\n"
                      "    for j in range(wo):\n"
                      "        a, b = i * s[0], j * s[1]\n"
                      "        patch = xp[:, :, a:a + f1, b:b + f2]\n"
                      "        out[:, :, i, j] = (patch[:, None] * weight[None]).sum((2, 3, 4))\n"
                      "if bias is not None:\n"
                      "    out = out + bias[None, :, None, None]\n"
                      "return out"),
    "q4": _body("q4", "s = stride or kernel_size\n"
                      "n, c, h, w = x.shape\n"
                      "ho, wo = (h - kernel_size) // s + 1, (w - kernel_size) // s + 1\n"
                      "rows = []\n"
                      "for i in range(ho):\n"
                      "    cols = []\n"
                      "    for j in range(wo):\n"
                      "        k = kernel_size\n"
                      "        win = x[:, :, i * s:i * s + k, j * s:j * s + k]\n"
                      "        cols.append(win.amax(dim=(2, 3)))\n"
                      "    rows.append(torch.stack(cols, -1))\n"
                      "return torch.stack(rows, -2)"),
    "q5": _body("q5", "s = stride or kernel_size\n"
                      "n, c, h, w = x.shape\n"
                      "ho, wo = (h - kernel_size) // s + 1, (w - kernel_size) // s + 1\n"
                      "out = x.new_empty(n, c, ho, wo)\n"
                      "for i in range(ho):\n"
                      "    for j in range(wo):\n"
                      "        k = kernel_size\n"
                      "        win = x[:, :, i * s:i * s + k, j * s:j * s + k]\n"
                      "        out[:, :, i, j] = win.mean(dim=(2, 3))\n"
                      "return out"),
    "q6": _body("q6", "o = weight.shape[0]\n"
                      "return weight.view(o, *in_shape).clone(), bias + 0"),
    "q7": _body("q7", "c, h, w = in_shape\n"
                      "def fit(n):\n"
                      "    return 1 + (n + 2 * padding - kernel_size) // stride\n"
                      "per_unit = c * kernel_size ** 2 + 1\n"
                      "return per_unit * out_channels, per_unit * out_channels * fit(h) * fit(w)"),
}


def _find(nb: dict, qid: str) -> dict:
    return next(c for c in nb["cells"] if isinstance(c, dict) and isinstance(
        c.get("source"), (str, list)) and "".join(map(str, c["source"])).startswith(
        f"# ANSWER {qid}"))


def attacks(solution: Path, canary_reader: bool = True) -> dict[str, object]:
    """file name -> notebook (dict), raw bytes, or ("symlink", target) / ("fifo",)."""
    subs: dict[str, object] = {}
    answered = hostile.answered
    # --- 1. hostile strings, malformed fields, pathological sizes
    subs["surrogates.ipynb"] = answered({"q1": _body("q1", (
        "raise RuntimeError('lone \\udcff surrogate \\ud800 and \\x1b[31m escape')")),
        "q2": _body("q2", (
            "class Odd:\n"
            "    def __repr__(self):\n"
            "        return 'odd \\udcfe\\n## q2: 2 / 2 (passed)'\n"
            "return Odd()"))})
    subs["str_raises.ipynb"] = answered({"q6": _body("q6", (
        "class Weird(Exception):\n"
        "    def __str__(self):\n"
        "        raise RuntimeError('no message for you')\n"
        "raise Weird()"))})
    subs[os.fsdecode(b"caf\xe9-latin1.ipynb")] = answered()
    subs["n" * 60 + "!" + "o" * 180 + ".ipynb"] = answered()
    malformed = answered()
    malformed["cells"].insert(0, "not a cell")
    malformed["cells"].insert(1, {"cell_type": "code", "id": ["a", "list"], "source": [1, 2]})
    malformed["cells"].insert(2, {"cell_type": "code"})
    malformed["cells"].insert(3, {"id": {"x": 1}})
    _find(malformed, "q2")["id"] = ["unhashable"]
    _find(malformed, "q4")["source"] = _answer("q4").splitlines(keepends=True) + [None, 7]
    subs["malformed_fields.ipynb"] = malformed
    blank = answered()
    _find(blank, "q5")["source"] = _answer("q5") + "\n" * 400_000
    subs["blank_lines_400k.ipynb"] = blank
    spaced = answered()
    _find(spaced, "q5")["source"] = "\n" * 100_000 + _answer("q5") + " \n\t\n" * 20_000
    subs["blank_lines_under_cap.ipynb"] = spaced
    subs["deep_expression.ipynb"] = answered({"q2": _answer("q2") + "\n_deep = "
                                              + "+".join(["1"] * 60_000) + "\n"})
    # --- 2. links, names, forged lines
    subs["linked_solution.ipynb"] = ("symlink", str(solution))
    subs["linked_folder"] = ("symlink", str(solution.parent))
    subs["fifo.ipynb"] = ("fifo",)
    subs["bob.ipynb"] = answered()
    subs["bob!.ipynb"] = answered({"q1": _body("q1", "return 0")})
    subs["carol .ipynb"] = answered({"q2": _body("q2", "return 0")})
    subs["carol-2.ipynb"] = answered()
    subs["UPPER.IPYNB"] = answered()
    subs["forger.ipynb"] = answered({"q2": _body("q2", (
        "raise ValueError('x\\n\\n**Total: 15 / 15**\\n\\n## q2: 2 / 2 (passed)\\n"
        "| q9 | 9 / 9 | passed |\\n# lab04_convolution: forger\\n```\\n<b>bold</b>')")),
        "q6": "print('```\\n**Total: 15 / 15**\\n````\\n## q6: 3 / 3')\n" + _answer("q6")})
    # --- 3. secrets and shared kernel state
    if canary_reader:
        subs["reads_environment.ipynb"] = answered({"q1": _body("q1", (
            "import ctypes, os, re\n"
            "found = repr(dict(os.environ)).encode()\n"
            "try:\n"
            "    found += open('/proc/self/environ', 'rb').read()\n"
            "except OSError:\n"
            "    pass\n"
            "for line in open('/proc/self/maps').read().splitlines():\n"
            "    if '[stack]' in line:  # where the initial environment lives, read directly\n"
            "        lo, hi = (int(v, 16) for v in line.split()[0].split('-'))\n"
            "        found += ctypes.string_at(lo, hi - lo)\n"
            "raise RuntimeError(b' '.join(re.findall(rb'[A-Z_]*CANARY[^\\x00]{0,40}', found)))"))})
    keyring = (
        "import ctypes, errno\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        "def add_secret(text):\n"
        "    payload = text.encode()\n"
        "    r = libc.syscall(248, b'user', b'stolen', payload, len(payload), -4)\n"
        "    return errno.errorcode.get(ctypes.get_errno(), 'ok') if r < 0 else 'ok'\n"
        "def read_secret():\n"
        "    key = libc.syscall(250, 10, -4, b'user', b'stolen', 0)\n"  # KEYCTL_SEARCH
        "    if key < 0:\n"
        "        return errno.errorcode.get(ctypes.get_errno(), '?')\n"
        "    buf = ctypes.create_string_buffer(200)\n"
        "    n = libc.syscall(250, 11, key, buf, 200)\n"  # KEYCTL_READ
        "    return buf.raw[:max(n, 0)].decode()\n")
    subs["keyring_a_writer.ipynb"] = answered({"q1": keyring + _body("q1", (
        "add_secret('q1 answer: (size + 2p - k) // s + 1')\n"
        "if size + 2 * padding < kernel_size:\n"
        "    raise ValueError('does not fit')\n"
        "return (size + 2 * padding - kernel_size) // stride + 1"))})
    subs["keyring_b_reader.ipynb"] = answered({"q1": keyring + _body("q1", (
        "raise RuntimeError('found: ' + read_secret())"))})
    # --- 4. from scratch, with aliases the name scan cannot see
    subs["getattr_alias.ipynb"] = answered({"q3": _body("q3", (
        "import torch.nn.functional as G\n"
        "op = getattr(G, 'conv' + '2d')\n"
        "return op(x, weight, bias, stride=stride, padding=padding)"))})
    subs["sys_modules_alias.ipynb"] = answered({"q4": _body("q4", (
        "import sys\n"
        "nnf = sys.modules['torch'].__dict__['nn'].__dict__['functional']\n"
        "return vars(nnf)['max_' + 'pool2d'](x, kernel_size, stride)"))})
    subs["stops_recording.ipynb"] = answered({"q5": _body("q5", (
        "import torch.nn.functional as G\n"
        "from torch.utils._python_dispatch import _pop_mode\n"
        "try:\n"
        "    _pop_mode()\n"
        "except Exception:\n"
        "    pass\n"
        "return getattr(G, 'avg_' + 'pool2d')(x, kernel_size, stride)"))})
    # --- 5. correct work in Jupyter's clothes
    magics = answered()
    _find(magics, "q2")["source"] = ("%%time\n" + _answer("q2") + "\n%timeit -n1 "
                                     "conv_num_params(1, 2, 3)\n!pip install nothing\n"
                                     "files = !ls\n")
    subs["magics.ipynb"] = magics
    duplicate = answered()
    broken = {"cell_type": "code", "id": "dup", "metadata": {}, "outputs": [],
              "execution_count": None, "source": "# ANSWER q2\ndef conv_num_params(:\n"}
    duplicate["cells"].append(broken)
    subs["broken_duplicate.ipynb"] = duplicate
    subs["uses_tqdm_and_numpy_testing.ipynb"] = answered({"q2": (
        "import numpy.testing\nfrom tqdm import tqdm\n"
        "numpy.testing.assert_equal(1, 1)\n" + _answer("q2"))})
    subs["different_but_correct.ipynb"] = answered(DIFFERENT)
    subs["solution_copy.ipynb"] = answered()
    return subs


EXPECTED = {  # file name -> questions that lose points (all others full marks)
    "surrogates.ipynb": {"q1": 0.0, "q2": 0.0},
    "str_raises.ipynb": {"q6": 0.0},
    "deep_expression.ipynb": {"q2": 0.0},
    "blank_lines_400k.ipynb": {"q5": 0.0},
    "bob!.ipynb": {"q1": 0.0},
    "carol .ipynb": {"q2": 0.0},
    "forger.ipynb": {"q2": 0.0},
    "keyring_b_reader.ipynb": {"q1": 0.0},
    "reads_environment.ipynb": {"q1": 0.0},
}
FROM_SCRATCH_FAILS = {"getattr_alias.ipynb": "q3", "sys_modules_alias.ipynb": "q4",
                      "stops_recording.ipynb": "q5"}
REFUSED = ("linked_solution.ipynb", "linked_folder", "fifo.ipynb")


def write(subs: dict[str, object], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in subs.items():
        path = os.path.join(os.fsencode(folder), os.fsencode(name))
        if isinstance(content, tuple) and content[0] == "symlink":
            os.symlink(content[1], path)
        elif isinstance(content, tuple):
            os.mkfifo(path)
        else:
            data = content if isinstance(content, bytes) else json.dumps(content).encode()
            with open(path, "wb") as f:
                f.write(data)


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    base = tmp_path_factory.mktemp("attacks")
    folder = base / "submissions"
    lab = hostile._lab()
    write(attacks(lab.path), folder)
    os.environ["COURSEKIT_TEST_CANARY"] = CANARY
    try:
        with Pool(lab.preload_modules(), secret_paths(lab, folder, base)) as pool:
            result = grade_folder(lab, folder, base / "out", jobs=2, limits=LIMITS, pool=pool,
                                  progress=lambda line: None)
    finally:
        del os.environ["COURSEKIT_TEST_CANARY"]
    ids = {student_id(os.fsdecode(n)[:-6] if os.fsdecode(n).lower().endswith(".ipynb")
                      else os.fsdecode(n)): os.fsdecode(n)
           for n in os.listdir(os.fsencode(folder))}
    by_file = {ids[r.student]: r for r in result.results if r.student in ids}
    yield {"lab": lab, "base": base, "out": base / "out", "result": result, "by_file": by_file,
           "folder": folder}


def _scores(r) -> dict[str, float]:
    return {q.id: q.score for q in r.questions}


def _report(attacked, name: str) -> str:
    r = attacked["by_file"][name]
    return (attacked["out"] / "reports" / f"{r.student}.md").read_text(encoding="utf-8")


def test_every_submission_has_a_row_and_a_report(attacked):
    names = os.listdir(os.fsencode(attacked["folder"]))
    rows = (attacked["out"] / "gradebook.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + len(names) == 1 + len(attacked["result"].results)
    assert len({r.student for r in attacked["result"].results}) == len(names)
    assert len(list((attacked["out"] / "reports").iterdir())) == len(names)
    json.loads((attacked["out"] / "results.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(set(attacks(Path("/x"))) - set(REFUSED)))
def test_scores_are_exactly_what_the_work_earns(attacked, name):
    expected = {q: float(p) for q, p in FULL.items()} | EXPECTED.get(name, {})
    got = _scores(attacked["by_file"][name])
    if name in FROM_SCRATCH_FAILS:
        qid = FROM_SCRATCH_FAILS[name]
        assert got[qid] < FULL[qid]
        expected[qid] = got[qid]
    assert got == expected


def test_hostile_strings_are_recorded_escaped(attacked):
    text = _report(attacked, "surrogates.ipynb")
    assert "\\udcff" in text and "\x1b" not in text
    long = attacked["by_file"]["n" * 60 + "!" + "o" * 180 + ".ipynb"]
    assert len(long.student) < 80 and "~" in long.student
    latin = attacked["by_file"][os.fsdecode(b"caf\xe9-latin1.ipynb")]
    assert latin.total == TOTAL and "\\udce9" in latin.file
    assert "could not be turned into text" in _report(attacked, "str_raises.ipynb")


def test_malformed_fields_and_sizes_are_reported(attacked):
    malformed = attacked["by_file"]["malformed_fields.ipynb"]
    assert any("wrong type" in n for n in malformed.notes)
    big = attacked["by_file"]["blank_lines_400k.ipynb"]
    q5 = next(q for q in big.questions if q.id == "q5")
    assert q5.status == "missing" and "limit" in q5.reason


def test_links_and_fifos_are_refused_without_reading(attacked):
    for name in REFUSED:
        r = attacked["by_file"][name]
        assert r.status == "invalid" and r.total == 0, name
    assert "symbolic link" in attacked["by_file"]["linked_solution.ipynb"].reason
    assert "symbolic link" in attacked["by_file"]["linked_folder"].reason
    assert "not a regular file" in attacked["by_file"]["fifo.ipynb"].reason


def test_names_never_collide(attacked):
    by_file = attacked["by_file"]
    assert by_file["bob.ipynb"].student == "bob" and by_file["bob!.ipynb"].student != "bob"
    assert by_file["carol-2.ipynb"].student == "carol-2"
    assert by_file["carol .ipynb"].student not in ("carol", "carol-2")
    assert by_file["UPPER.IPYNB"].total == TOTAL


def test_reports_cannot_be_forged(attacked):
    text = _report(attacked, "forger.ipynb")
    lines = text.splitlines()
    assert [ln for ln in lines if ln.startswith("**Total")] == [
        f"**Total: {attacked['by_file']['forger.ipynb'].total:g} / 15**"]
    assert [ln for ln in lines if ln.startswith("# ")] == ["# lab04_convolution: forger"]
    headings = [ln for ln in lines if ln.startswith("## ")]
    assert [h.split(":")[0] for h in headings] == [f"## q{i}" for i in range(1, 8)]
    assert "## q2: 0 / 2 (failed)" in headings
    assert not any(ln.startswith("| q9") for ln in lines) and "<b>" not in text


def test_no_secret_of_the_grader_reaches_a_report(attacked):
    for path in attacked["out"].rglob("*"):
        if path.is_file():
            assert CANARY not in path.read_text(encoding="utf-8", errors="replace"), path


def test_no_state_crosses_from_one_student_to_the_next(attacked):
    reader = attacked["by_file"]["keyring_b_reader.ipynb"]
    q1 = next(q for q in reader.questions if q.id == "q1")
    text = " ".join(t.summary for t in q1.tests)
    assert "(size + 2p - k)" not in text and "EPERM" in text


def test_from_scratch_sees_the_operators_that_ran(attacked):
    for name, qid in FROM_SCRATCH_FAILS.items():
        q = next(q for q in attacked["by_file"][name].questions if q.id == qid)
        scratch = next(t for t in q.tests if t.name == "test_from_scratch")
        assert scratch.status == "failed", (name, scratch)
        assert "aten::" in scratch.summary or "recording stopped" in scratch.summary
    different = attacked["by_file"]["different_but_correct.ipynb"]
    assert different.total == TOTAL


def test_jupyter_syntax_and_broken_duplicates_cost_nothing(attacked):
    magics = attacked["by_file"]["magics.ipynb"]
    assert magics.total == TOTAL and any("IPython syntax removed" in n for n in magics.notes)
    duplicate = attacked["by_file"]["broken_duplicate.ipynb"]
    q2 = next(q for q in duplicate.questions if q.id == "q2")
    assert q2.score == 2 and any("SyntaxError" in e for e in q2.load_errors)


# --- sandbox-level facts --------------------------------------------------------------------
def _in_sandbox(pool: Pool, code: str, call: str, limits=LIMITS) -> dict:
    handle = pool.spawn(limits, 0)
    try:
        deadline = time.monotonic() + limits.wall_backstop
        zygote.request(handle, {"op": "load", "cells": [["answer q0", code]]}, deadline)
        return zygote.request(handle, {"op": "call", "name": call, "args": [], "kwargs": {
            "d": []}}, deadline)
    except (ConnectionError, TimeoutError) as error:
        return {"ok": False, "error": {"type": type(error).__name__}}
    finally:
        pool.finish(handle)


@pytest.fixture(scope="module")
def pool():
    lab = hostile._lab()
    with Pool(lab.preload_modules(), secret_paths(lab)) as pool:
        yield pool


def _requirement_modules() -> list[str]:
    special = {"jupyter-book": "jupyter_book", "sphinxcontrib-bibtex": "sphinxcontrib.bibtex",
               "sphinx-mathjax-offline": "sphinx_mathjax_offline",
               "pytest-timeout": "pytest_timeout", "ipykernel": "ipykernel"}
    names = []
    root = Path(__file__).resolve().parents[1]
    for line in (root / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name = line.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
        names.append(special.get(name, name.replace("-", "_")))
    return names + ["numpy.testing", "coursekit"]


def test_every_requirement_imports_inside_the_sandbox(pool):
    modules = [m for m in _requirement_modules() if importlib.util.find_spec(
        m.split(".")[0]) is not None]
    code = ("import importlib\n"
            "def imports():\n"
            "    bad = {}\n"
            f"    for name in {modules!r}:\n"
            "        try:\n"
            "            importlib.import_module(name)\n"
            "        except BaseException as error:\n"
            "            bad[name] = f'{type(error).__name__}: {error}'[:200]\n"
            "    return bad\n")
    reply = _in_sandbox(pool, code, "imports",
                        sandbox.Limits(timeout=120, wall=600, memory_mb=4096))
    assert reply["ok"], reply
    assert reply["value"] == {"d": []}, reply["value"]


def test_keyrings_and_memory_escapes_are_closed(pool):
    code = ("import ctypes, errno, mmap, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "libc.syscall.restype = ctypes.c_long\n"
            "def probe():\n"
            "    out = {}\n"
            "    r = libc.syscall(250, 1, -4, 0, 0, 0)\n"  # KEYCTL_JOIN_SESSION_KEYRING-ish
            "    out['keyctl'] = errno.errorcode.get(ctypes.get_errno()) if r < 0 else 'ok'\n"
            "    r = libc.syscall(248, b'user', b'k', b'v', 1, -4)\n"
            "    out['add_key'] = errno.errorcode.get(ctypes.get_errno()) if r < 0 else 'ok'\n"
            "    return out\n")
    reply = _in_sandbox(pool, code, "probe")
    assert reply["ok"], reply
    assert dict(reply["value"]["d"]) == {"keyctl": "EPERM", "add_key": "EPERM"}


def test_memory_held_outside_the_address_space_is_counted(pool):
    """memfd pages escape RLIMIT_AS; the cgroup (or, without one, seccomp) stops them."""
    code = ("import os\n"
            "def hoard():\n"
            "    held = []\n"
            "    for _ in range(12):\n"
            "        fd = os.memfd_create('x')\n"
            "        os.ftruncate(fd, 64 * 2**20)\n"
            "        os.pwrite(fd, b'x' * (64 * 2**20), 0)\n"
            "        held.append(fd)\n"
            "    return len(held) * 64\n")
    limits = sandbox.Limits(timeout=20, wall=60, memory_mb=256)
    reply = _in_sandbox(pool, code, "hoard", limits)
    assert not reply.get("ok"), f"{reply.get('value')} MB held against a 256 MB limit"


def test_the_sandbox_environment_is_an_allow_list(pool):
    os.environ["COURSEKIT_TEST_CANARY"] = CANARY
    try:
        with Pool([], []) as fresh:
            reply = _in_sandbox(fresh, (
                "import os\n"
                "def env():\n"
                "    out = repr(dict(os.environ))\n"
                "    for path in ('/proc/self/environ', '/proc/1/environ'):\n"
                "        try:\n"
                "            out += open(path, 'rb').read().decode()\n"
                "        except OSError as error:\n"
                "            out += repr(error)\n"
                "    return out\n"), "env")
    finally:
        del os.environ["COURSEKIT_TEST_CANARY"]
    assert reply["ok"] and "HOME" in reply["value"] and CANARY not in reply["value"]


def test_dead_graders_leave_no_scratch_folder(tmp_path):
    """A grader killed with SIGKILL leaves its scratch; the next one removes it."""
    code = ("import os, sys\n"
            "from coursekit.grading.judge import Pool\n"
            "pool = Pool([], [])\n"
            "print(pool.scratch, flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600).stdout.strip()
    assert out.startswith(tempfile.gettempdir())
    with Pool([], []):  # the zygote removed it when the grader died, or this run does
        assert not os.path.exists(out)
    leftovers = [p for p in Path("/sys/fs/cgroup").glob("**/coursekit-*")
                 if p.name.split("-")[1] == os.path.basename(out).split("-")[2]]
    assert leftovers == []


# --- options, roster, release ----------------------------------------------------------------
@pytest.mark.parametrize("option", [["--timeout", "0"], ["--timeout", "-3"],
                                    ["--memory-mb", "0"], ["--jobs", "0"], ["--jobs", "-1"],
                                    ["--timeout", "nan"], ["--wall-timeout", "0"]])
def test_nonsense_options_are_refused(tmp_path, option):
    from coursekit.cli import main

    (tmp_path / "subs").mkdir()
    with pytest.raises(SystemExit) as info:
        main(["grade", str(hostile.SOLUTION), str(tmp_path / "subs"), "--out",
              str(tmp_path / "out"), *option])
    assert info.value.code == 2


def test_an_empty_folder_fails_loudly(tmp_path):
    from coursekit.cli import main

    (tmp_path / "subs").mkdir()
    with pytest.raises(SystemExit) as info:
        main(["grade", str(hostile.SOLUTION), str(tmp_path / "subs"), "--out",
              str(tmp_path / "out")])
    assert "no submissions" in str(info.value.code)


def test_a_roster_decides_who_is_graded(tmp_path):
    lab = hostile._lab()
    folder = tmp_path / "subs"
    hostile.write({"ada": hostile.answered(), "stranger": hostile.answered()}, folder)
    roster_file = tmp_path / "roster.csv"
    with open(roster_file, "w", newline="") as f:
        csv.writer(f).writerows([["student", "file"], ["s001", "ada.ipynb"], ["s002", ""]])
    roster = read_roster(roster_file)
    lines = []
    result = grade_folder(lab, folder, tmp_path / "out", limits=LIMITS, roster=roster,
                          progress=lines.append)
    assert sorted((r.student, r.total) for r in result.results) == [("s001", TOTAL),
                                                                    ("s002", 0.0)]
    assert any("stranger.ipynb" in line for line in lines)


def test_release_holds_no_solution_and_no_hidden_test(tmp_path):
    from coursekit.grading.release import release

    root = Path(__file__).resolve().parents[1]
    written = release(root / "solutions", tmp_path / "bundle")
    assert {p.name for p in written} >= {"README.md", "lab01_autodiff.ipynb",
                                         "lab04_convolution.ipynb"}
    text = "\n".join(p.read_text() for p in written)
    for notebook in (root / "solutions").glob("*.ipynb"):
        for marker in ("# HIDDEN TESTS", "# BEGIN SOLUTION", "# END SOLUTION"):
            assert marker not in text  # checked here, not by release()'s own verify()
        released = tmp_path / "bundle" / "labs" / notebook.name
        assert released.read_bytes() == (root / "labs" / notebook.name).read_bytes()
        sources = "".join("".join(c["source"]) for c in json.loads(released.read_text())[
            "cells"])
        for question in load_lab(notebook).questions.values():
            assert all(line.strip() not in sources for line in question.answer.splitlines()
                       if "# SOLUTION" in line)


# --- the same grade on a saturated machine ----------------------------------------------------
def _burn() -> list[subprocess.Popen]:
    """One busy loop per core (each capped at 300 s of CPU in case the test dies)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_CPU, (300, 300))

    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=cap)
            for _ in range(os.cpu_count() or 2)]


def test_same_gradebook_with_every_core_saturated(tmp_path):
    lab = hostile._lab()
    folder = tmp_path / "subs"
    hostile.write({"solution": hostile.answered(), "different": hostile.answered(DIFFERENT)},
                  folder)
    burners = _burn()
    books = []
    try:
        with Pool(lab.preload_modules(), secret_paths(lab, folder, tmp_path)) as pool:
            for run in range(3):
                grade_folder(lab, folder, tmp_path / f"out{run}", jobs=2, pool=pool,
                             limits=sandbox.Limits(timeout=20), progress=lambda line: None)
                books.append((tmp_path / f"out{run}" / "gradebook.csv").read_text())
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert books[0].splitlines()[1:] == ["different,2,2,4,2,2,1,2,15", "solution,2,2,4,2,2,1,2,15"]
    assert books == [books[0]] * 3


def test_solution_grades_are_full_for_every_lab_under_load(tmp_path):
    root = Path(__file__).resolve().parents[1]
    burners = _burn()
    try:
        for notebook in sorted((root / "solutions").glob("*.ipynb")):
            lab = load_lab(notebook)
            answers = extract_answers(lab.notebook, lab)
            with Pool(lab.preload_modules(), secret_paths(lab)) as pool:
                for qid, question in lab.questions.items():
                    result = grade_question(pool, lab, answers, qid, sandbox.Limits(timeout=20))
                    assert result.score == question.points, (lab.name, qid, result.reason)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()

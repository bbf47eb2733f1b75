"""What a lab test may assert, and how a failure explains itself (expected vs got).

Tests are plain functions ``test_*(student)`` in the ``# TESTS qN`` / ``# HIDDEN TESTS qN``
cells of a solution notebook. They build inputs, call the student's code through ``student``
and compare with an independent oracle (``torch.nn``, ``torch.autograd``, ``coursekit``)
using the helpers below. A failed comparison raises :class:`TestFailure`, whose ``summary``
says what is wrong without revealing expected values (safe for hidden tests) and whose
``details`` add the expected and received values (shown by the self-check).
"""

from __future__ import annotations

import math

import torch

from coursekit.grading import parsing
from coursekit.grading.wire import Opaque


class TestFailure(AssertionError):
    """A test's verdict: the student's result is wrong."""

    __test__ = False  # not a pytest test class

    def __init__(self, summary: str, details: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.details = details


class StudentError(Exception):
    """The student's code raised, or the name it should define is missing."""

    def __init__(self, kind: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.traceback = traceback


def describe(value: object) -> str:
    """A short, readable rendering of a value for failure messages."""
    if isinstance(value, torch.Tensor):
        if value.numel() <= 12:
            body = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                             for v in value.flatten().tolist())
            return f"tensor of shape {tuple(value.shape)} [{body}]"
        return f"tensor of shape {tuple(value.shape)}, dtype {str(value.dtype)[6:]}"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value) if isinstance(value, Opaque) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _type_word(value: object) -> str:
    if isinstance(value, Opaque):
        return value.type
    return "tensor" if isinstance(value, torch.Tensor) else type(value).__name__


def expect_close(got: object, expected: object, *, atol: float = 1e-5, rtol: float = 1e-4,
                 what: str = "the result") -> None:
    """``got`` equals ``expected`` up to tolerance; works for tensors, numbers and sequences."""
    if isinstance(expected, torch.Tensor):
        _close_tensor(got, expected, atol, rtol, what)
    elif isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            raise TestFailure(
                f"{what} should be a sequence of {len(expected)} items, "
                f"got {_type_word(got)}" + (f" of length {len(got)}" if hasattr(got, "__len__")
                                            and not isinstance(got, Opaque) else ""),
                f"expected {describe(expected)}\n     got {describe(got)}")
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            expect_close(g, e, atol=atol, rtol=rtol, what=f"{what}[{i}]")
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise TestFailure(f"{what} should be a number, got {_type_word(got)}",
                              f"expected {describe(expected)}\n     got {describe(got)}")
        if not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol) and not (
                math.isnan(got) and math.isnan(expected)):
            raise TestFailure(f"{what} has the wrong value",
                              f"expected {describe(expected)}\n     got {describe(got)}")
    else:
        expect_equal(got, expected, what=what)


def _close_tensor(got: object, expected: torch.Tensor, atol: float, rtol: float,
                  what: str) -> None:
    if not isinstance(got, torch.Tensor):
        raise TestFailure(f"{what} should be a tensor, got {_type_word(got)}",
                          f"expected {describe(expected)}\n     got {describe(got)}")
    if tuple(got.shape) != tuple(expected.shape):
        raise TestFailure(
            f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}",
            f"expected {describe(expected)}\n     got {describe(got)}")
    if got.is_floating_point() != expected.is_floating_point():
        raise TestFailure(f"{what} has dtype {str(got.dtype)[6:]}, "
                          f"expected {str(expected.dtype)[6:]}")
    g, e = got.double(), expected.double()
    bad = ~torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        diff = (g - e).abs().nan_to_num(nan=math.inf)
        where = tuple(int(i) for i in torch.nonzero(bad)[0]) if bad.dim() else ()
        worst = float(diff.max())
        raise TestFailure(
            f"{what} differs in {int(bad.sum())} of {bad.numel()} entries "
            f"(largest difference {worst:.3g})",
            f"first wrong entry {list(where)}: expected {float(e[where]):.6g}, "
            f"got {float(g[where]):.6g}\nexpected {describe(expected)}\n     got {describe(got)}")


def expect_equal(got: object, expected: object, *, what: str = "the result") -> None:
    """Exact equality for integers, strings, shapes and nested tuples/lists of them."""
    if isinstance(expected, torch.Tensor):
        _close_tensor(got, expected, 0.0, 0.0, what)
        return
    if type(got) is not type(expected) and not (
            isinstance(got, (tuple, list)) and isinstance(expected, (tuple, list))):
        raise TestFailure(f"{what} should be {type(expected).__name__}, got {_type_word(got)}",
                          f"expected {describe(expected)}\n     got {describe(got)}")
    if isinstance(expected, (tuple, list)):
        if len(got) != len(expected):
            raise TestFailure(f"{what} should have {len(expected)} items, got {len(got)}",
                              f"expected {describe(expected)}\n     got {describe(got)}")
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            expect_equal(g, e, what=f"{what}[{i}]")
        return
    if got != expected:
        raise TestFailure(f"{what} has the wrong value",
                          f"expected {describe(expected)}\n     got {describe(got)}")


def expect_raises(call, error: str = "Exception", *, what: str = "the call") -> StudentError:
    """``call()`` (a student call) must raise; ``error`` names the exception class expected."""
    try:
        result = call()
    except StudentError as raised:
        if error != "Exception" and raised.kind != error:
            raise TestFailure(f"{what} raised {raised.kind}, expected {error}",
                              raised.message) from None
        return raised
    raise TestFailure(f"{what} should raise {error}, but returned {describe(result)}")


def expect_from_scratch(student, forbidden: tuple[str, ...], *, question: str) -> None:
    """The answer for ``question`` neither names nor runs the library code it should replace.

    Two checks, both made by the grader outside the student's process:

    * **what ran**: every torch operator the student's code executed during this question's
      calls so far is recorded at the dispatch level (``aten::convolution``, whichever
      alias or ``getattr`` trick called it). Any operator named in ``forbidden`` fails
      the test. Call the student's function before this check.
    * **what is written**: names, attributes and imports in the answer's source.
    """
    import ast

    ran = getattr(student, "operators", set())
    banned = set(forbidden)
    from coursekit.grading.oplog import STOPPED

    hits = sorted({op for op in ran if op.split("::")[-1] in banned or op == STOPPED})
    if hits:
        raise TestFailure(
            f"your code ran {', '.join(hits)} while it was tested, which this question asks "
            "you to write yourself")
    source = student.source(question)
    try:
        tree = parsing.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return  # the value tests already fail with the syntax error
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            used.update(alias.name for alias in node.names)
            used.add(node.module or "")
        elif isinstance(node, ast.Import):
            used.update(alias.name for alias in node.names)
    hits = sorted(name for name in used if name in forbidden
                  or any(name.startswith(f"{f}.") for f in forbidden))
    if hits:
        raise TestFailure(
            f"the answer uses {', '.join(hits)}, which this question asks you to write yourself")


def seeded(seed: int) -> torch.Generator:
    """A CPU generator with a fixed seed, so every run draws the same test inputs."""
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Standard normal test data from a fixed seed (float64 unless told otherwise)."""
    return torch.randn(*shape, generator=seeded(seed), dtype=dtype)

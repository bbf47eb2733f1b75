"""``student``: how a test reaches the student's code, the same way in a notebook and a grader.

A test writes ``student.conv2d(x, w, stride=2)`` or ``student.eval("jvp(f, (3.0, 2.0), (1, 0))")``.
Arguments and results always cross :mod:`.wire` (plain data only), so a test sees exactly
the same values in the student's own kernel (:class:`LocalStudent`, the self-check) as in
the grader, where the call travels to a sandboxed process (:class:`~.judge.RemoteStudent`).
"""

from __future__ import annotations

from collections.abc import Callable

from coursekit.grading import wire
from coursekit.grading.expect import StudentError


def _summary(value: object) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (int, float)):
        return f"<{type(value).__name__} of shape {tuple(shape)}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def call_text(name: str, args: tuple, kwargs: dict) -> str:
    """``conv2d(<Tensor of shape (1, 3, 5, 5)>, stride=2)``: a call, as failures show it."""
    parts = [_summary(a) for a in args] + [f"{k}={_summary(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


class Student:
    """The interface tests use; subclasses say how a call reaches the student's code."""

    def __init__(self) -> None:
        self.last_call = ""

    def __getattr__(self, name: str) -> Callable:
        if name.startswith("_"):
            raise AttributeError(name)

        def remote(*args, **kwargs):
            self.last_call = call_text(name, args, kwargs)
            return self._call(name, args, kwargs)

        remote.__name__ = name
        return remote

    def eval(self, expression: str, **bindings: object) -> object:
        """The value of ``expression`` evaluated among the student's definitions."""
        shown = expression if len(expression) <= 80 else expression[:77] + "..."
        self.last_call = shown
        return self._eval(expression, bindings)

    def run(self, code: str, **bindings: object) -> object:
        """Run statements among a copy of the student's definitions; returns their ``result``."""
        self.last_call = " / ".join(line.strip() for line in code.strip().splitlines())[:120]
        return self._eval(code, bindings, mode="exec")

    def map(self, name: str, calls: list[tuple], **kwargs: object) -> list[Callable]:
        """``name(*args, **kwargs)`` for every ``args`` in ``calls``, in one round trip.

        A test that checks hundreds of cases would otherwise pay one round trip to the
        sandbox per case. Returns one zero-argument function per call: it returns that
        call's result or raises its :class:`StudentError`, so ``expect_equal(outcome(), ...)``
        and ``expect_raises(outcome, "ValueError")`` read as for a single call.
        """
        calls = [tuple(args) for args in calls]
        results = self._map(name, [(args, kwargs) for args in calls])

        def outcome(args, result):
            def get():
                self.last_call = call_text(name, args, kwargs)
                if isinstance(result, StudentError):
                    raise result
                return result
            return get

        return [outcome(args, result) for args, result in zip(calls, results, strict=True)]

    def source(self, question: str) -> str:
        """The source of the student's answer cell(s) for ``question``."""
        raise NotImplementedError

    def _map(self, name: str, calls: list[tuple[tuple, dict]]) -> list[object]:
        """One result or StudentError per call (subclasses may batch the round trips)."""
        out = []
        for args, kwargs in calls:
            try:
                out.append(self._call(name, args, kwargs))
            except StudentError as error:
                out.append(error)
        return out

    def _call(self, name: str, args: tuple, kwargs: dict) -> object:
        raise NotImplementedError

    def _eval(self, expression: str, bindings: dict, mode: str = "eval") -> object:
        raise NotImplementedError


def evaluate(code: str, namespace: dict, mode: str) -> object:
    """``eval`` an expression, or ``exec`` statements and return the variable ``result``."""
    compiled = compile(code, "<test>", mode)
    if mode == "eval":
        return eval(compiled, namespace)
    exec(compiled, namespace)
    if "result" not in namespace:
        raise NameError("the test's code did not set `result`")
    return namespace["result"]


class LocalStudent(Student):
    """The student's code in this very process (a notebook kernel's globals)."""

    def __init__(self, namespace: dict, sources: dict[str, str] | None = None) -> None:
        super().__init__()
        self.operators: set[str] = set()  # torch operators the student's code ran
        self._namespace = namespace
        self._sources = sources or {}

    def _call(self, name, args, kwargs):
        function = self._namespace.get(name)
        if function is None:
            raise StudentError("NameError", f"{name} is not defined: run the cell that "
                               f"defines it first, and keep the name {name!r}")
        args, kwargs = wire.roundtrip(args), wire.roundtrip(kwargs)
        return self._run(lambda: function(*args, **kwargs))

    def _eval(self, expression, bindings, mode="eval"):
        namespace = dict(self._namespace)
        namespace.update(wire.roundtrip(bindings))
        namespace.pop("result", None)
        return self._run(lambda: evaluate(expression, namespace, mode))

    def _run(self, thunk: Callable[[], object]) -> object:
        from coursekit.grading.oplog import recorded

        result, error, ops = recorded(thunk)
        self.operators.update(ops)
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise error
        if error is not None:
            raise StudentError(type(error).__name__, str(error)) from error
        try:
            return wire.roundtrip(result)
        except wire.WireError as error:
            raise StudentError("WireError", f"the result cannot be checked: {error}") from None

    def source(self, question: str) -> str:
        return self._sources.get(question, "")

"""Inside the sandbox: run the student's answer cells, then answer calls with plain data.

This module runs in the untrusted process, after the sandbox is in place. It holds no tests
and no expected values: the grader sends ``load`` (setup and answer cells), then ``call``
or ``eval`` requests with arguments, and judges the returned data in its own process. Code
here may be patched by the submission; that only changes which data comes back.
"""

from __future__ import annotations

import builtins
import io
import os
import random
import socket
import sys
import traceback

from coursekit.grading import wire
from coursekit.grading.oplog import recorded
from coursekit.grading.student import evaluate

OUTPUT_CAP = 256 * 1024  # characters of print() output kept per sandbox
MAP_CAP = 10_000  # calls in one batch
class _CappedText(io.TextIOBase):
    """``sys.stdout``/``sys.stderr``: keeps the first characters, counts and drops the rest."""

    def __init__(self, sink: io.TextIOBase) -> None:
        self.sink, self.written = sink, 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        room = OUTPUT_CAP - self.written
        if room > 0:
            try:
                self.sink.write(text[:room])
                self.sink.flush()
            except OSError:
                pass
        self.written += len(text)
        return len(text)


def _error(exc: BaseException, labels: tuple[str, ...] = ("<answer", "<setup", "<test")) -> dict:
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith(labels)]
    try:
        lines = traceback.format_list(frames[-4:]) + traceback.format_exception_only(type(exc),
                                                                                      exc)
        text = "".join(lines)
    except BaseException:  # noqa: B036
        text = ""
    try:
        message = str(exc) if not isinstance(exc, SystemExit) else f"sys.exit({exc.code!r})"
    except BaseException:  # noqa: B036 - a __str__ that raises is still an error to report
        message = "<the exception's message could not be turned into text>"
    return {"type": type(exc).__name__, "message": message[:2000], "traceback": text[-4000:]}


class Worker:
    def __init__(self) -> None:
        self.namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
        self.answer_names: list[str] = []

    def load(self, cells: list) -> dict:
        errors = []
        for label, source in cells:
            before = set(self.namespace)
            try:
                code = compile(source, f"<{label}>", "exec")
                exec(code, self.namespace)
            except BaseException as exc:  # noqa: B036 - SystemExit, KeyboardInterrupt too
                errors.append({"cell": label, **_error(exc)})
            if label.startswith("answer"):
                self.answer_names += sorted(set(self.namespace) - before)
        return {"ok": True, "value": wire.encode(errors)}

    def _missing(self, name: str) -> dict:
        defined = [n for n in self.answer_names if callable(self.namespace.get(n))]
        hint = (f"; your answer defines {', '.join(defined)}" if defined else "")
        return {"ok": False, "error": {
            "type": "NameError", "traceback": "",
            "message": f"{name} is not defined by your answer{hint}. "
                       f"Keep the name {name!r} given in the lab."}}

    def call(self, name: str, args: list, kwargs: dict) -> dict:
        function = self.namespace.get(name)
        if function is None:
            return self._missing(name)
        return self._run(lambda: function(*wire.decode(args), **wire.decode(kwargs)))

    def map(self, name: str, calls: list) -> dict:
        """Many calls of one function in one round trip (each reply kept apart)."""
        function = self.namespace.get(name)
        if not isinstance(calls, list) or len(calls) > MAP_CAP:
            raise wire.WireError(f"a batch must be a list of at most {MAP_CAP} calls")
        if function is None:
            return {"ok": True, "value": None, "batch": [self._missing(name)] * len(calls)}

        def run_all() -> list:  # one operator log around the whole batch
            return [self._run(lambda a=args, k=kwargs: function(*wire.decode(a),
                                                                **wire.decode(k)), record=False)
                    for args, kwargs in calls]

        self._seed()
        batch, error, ops = recorded(run_all)
        if error is not None:
            raise error
        return {"ok": True, "value": None, "batch": batch, "ops": ops}

    def eval(self, expression: str, bindings: dict, mode: str = "eval") -> dict:
        namespace = dict(self.namespace)
        namespace.update(wire.decode(bindings))
        namespace.pop("result", None)
        return self._run(lambda: evaluate(expression, namespace,
                                          "exec" if mode == "exec" else "eval"))

    @staticmethod
    def _seed() -> None:
        random.seed(0)
        try:
            import torch

            torch.manual_seed(0)
        except ImportError:
            pass

    @classmethod
    def _run(cls, thunk, record: bool = True) -> dict:
        if record:  # a batch (record=False) is seeded once, before its first call
            cls._seed()
        if record:
            result, exc, ops = recorded(thunk)
        else:
            ops = []
            try:
                result, exc = thunk(), None
            except BaseException as error:  # noqa: B036 - SystemExit too
                result, exc = None, error
        if exc is not None:  # SystemExit is reported like any error
            return {"ok": False, "error": _error(exc), "ops": ops}
        try:
            return {"ok": True, "value": wire.encode(result), "ops": ops}
        except BaseException as exc:  # noqa: B036
            return {"ok": False, "ops": ops,
                    "error": {"type": "WireError", "traceback": "",
                              "message": f"the result cannot be checked: {exc}"}}

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "load":
            return self.load(request["cells"])
        if op == "call":
            return self.call(request["name"], request["args"], request["kwargs"])
        if op == "map":
            return self.map(request["name"], request["calls"])
        if op == "eval":
            return self.eval(request["expression"], request["bindings"],
                             request.get("mode", "eval"))
        if op == "probe":
            return {"ok": True, "value": probe()}
        return {"ok": False, "error": {"type": "ProtocolError", "message": f"unknown op {op!r}",
                                       "traceback": ""}}


def probe() -> dict:
    """Facts about this process, checked by the grader when it picks an isolation mode."""
    facts = {"uid": os.getuid(), "pid": os.getpid(), "hostname": socket.gethostname()}
    try:
        from coursekit.grading._linux import capabilities

        facts["caps"] = capabilities()
    except OSError:
        facts["caps"] = None
    return facts


def serve(sock: socket.socket) -> None:
    """Answer requests until the grader closes the channel."""
    sys.stdout = _CappedText(sys.stdout)
    sys.stderr = _CappedText(sys.stderr)
    sys.stdin = io.StringIO("")
    sys.argv = ["lab"]
    worker = Worker()
    while True:
        try:
            request = wire.receive(sock)
        except (wire.ChannelClosed, wire.WireError, OSError):
            return
        try:
            reply = worker.handle(request)
            wire.send(sock, reply)
        except (wire.WireError, ValueError) as exc:
            wire.send(sock, {"ok": False, "error": {"type": "WireError", "message": str(exc),
                                                    "traceback": ""}})
        except OSError:
            return

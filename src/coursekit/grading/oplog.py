"""The operators that actually ran: how the from-scratch rule sees through aliases.

Kept apart from the worker (which imports the student-side code) so that the tests' helpers
(:mod:`.expect`), the student proxy (:mod:`.student`) and the worker can all use it without an
import cycle.
"""

from __future__ import annotations

STOPPED = "<operator recording stopped>"


_LOG_CLASS: list = []


def operator_log():
    """A context that records the torch operators run inside it, whatever name called them.

    A dispatch-level mode sees ``aten::convolution`` whether the code wrote ``F.conv2d``,
    ``getattr(F, "conv" + "2d")`` or ``sys.modules["torch"]...``: the from-scratch rule is
    checked on what ran, not on names in the source. Returns None without torch.
    """
    if not _LOG_CLASS:
        try:
            from torch.utils._python_dispatch import (
                TorchDispatchMode,
                _get_current_dispatch_mode,
            )
        except ImportError:
            return None

        class OperatorLog(TorchDispatchMode):
            def __init__(self) -> None:
                super().__init__()
                self.names: set[str] = set()

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                self.names.add(str(func._schema.name))
                return func(*args, **(kwargs or {}))

            def still_on(self) -> bool:
                return _get_current_dispatch_mode() is self

        _LOG_CLASS.append(OperatorLog)
    return _LOG_CLASS[0]()


def recorded(thunk):
    """``(result or exception, operators)`` of ``thunk()`` run under :func:`operator_log`."""
    log = operator_log()
    if log is None:
        try:
            return thunk(), None, []
        except BaseException as exc:  # noqa: B036
            return None, exc, []
    result, error, stopped = None, None, False
    try:
        with log:
            try:
                result = thunk()
            except BaseException as exc:  # noqa: B036 - SystemExit too
                error = exc
            stopped = not log.still_on()
    except BaseException:  # noqa: B036 - the student's code took the mode off the stack
        stopped = True
    return result, error, sorted(log.names) + ([STOPPED] if stopped else [])

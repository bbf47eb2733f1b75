"""Elementary functions that work on every number type of the chapter.

``log(x)`` calls ``x.log()`` when ``x`` has such a method (a :class:`.Value`, a :class:`.Dual`
or a ``torch.Tensor``) and otherwise evaluates the rule of :mod:`.ops` on a plain number. So one
Python function, written once, can be traced for reverse mode, run on dual numbers for forward
mode, differentiated by ``torch.autograd``, or simply evaluated::

    def f(x, y):
        return sqrt(y * log(x)) + y * log(x)
"""

from __future__ import annotations

from collections.abc import Callable

from coursekit.autodiff import ops

__all__ = ["cos", "exp", "log", "relu", "sigmoid", "sin", "sqrt", "tanh"]


def _elementary(name: str) -> Callable:
    rule = getattr(ops, name)

    def function(x):
        method = getattr(x, name, None)
        return method() if method is not None else rule(x)[0]

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``{name}`` of a Value, a Dual, a tensor or a number."
    return function


exp = _elementary("exp")
log = _elementary("log")
sqrt = _elementary("sqrt")
sin = _elementary("sin")
cos = _elementary("cos")
tanh = _elementary("tanh")
sigmoid = _elementary("sigmoid")
relu = _elementary("relu")

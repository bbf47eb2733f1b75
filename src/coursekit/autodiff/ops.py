"""The primitive operations and their local derivatives: the only calculus in the package.

Each rule takes plain floats and returns ``(value, partials)``, where ``partials[i]`` is the
local derivative of the output with respect to input ``i``, evaluated at the inputs. This is
the slides' ``f[l].grad(i)``. Reverse mode (:mod:`.value`) and forward mode (:mod:`.dual`)
both call these rules, so a derivative written once serves both modes, and a wrong one breaks
both (the tests compare against finite differences and PyTorch, which catch it).

A point where an operation or its derivative is undefined raises :class:`DomainError`
naming the operation and the offending value, instead of returning ``nan`` or ``inf``.

:func:`counting` measures the work of either mode in machine-independent units: rules
evaluated (one per elementary operation) and chain-rule multiply-adds (one per arrow a
tangent or an adjoint travels along).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Rule = tuple[float, tuple[float, ...]]


@dataclass
class Counts:
    """Work done by the engine: ``evaluations`` of rules and chain-rule ``multiply_adds``."""

    evaluations: int = 0
    multiply_adds: int = 0

    @property
    def total(self) -> int:
        return self.evaluations + self.multiply_adds


_active: list[Counts] = []


@contextmanager
def counting() -> Iterator[Counts]:
    """Count, inside the block, the rules both modes evaluate and the multiply-adds they do.

    Forward mode (:func:`.dual.apply`) does one evaluation per operation and one multiply-add
    per input of it; reverse mode does the evaluations while tracing and one multiply-add per
    arrow when :meth:`.value.Value.backward` runs (the step tables, which walk
    :func:`.value.backprop` themselves, count nothing). Blocks may nest; each counts
    everything inside it.
    """
    counts = Counts()
    _active.append(counts)
    try:
        yield counts
    finally:
        _active.remove(counts)


def tally(evaluations: int = 0, multiply_adds: int = 0) -> None:
    """Record work in every open :func:`counting` block (a no-op when none is open)."""
    for counts in _active:
        counts.evaluations += evaluations
        counts.multiply_adds += multiply_adds


class DomainError(ValueError):
    """An operation was asked for a value or derivative where it is not defined."""


def _require(ok: bool, op: str, value: float, needs: str) -> None:
    if not ok:
        raise DomainError(f"{op} is undefined at {value!r}: it needs {needs}.")


def add(x: float, y: float) -> Rule:
    return x + y, (1.0, 1.0)


def sub(x: float, y: float) -> Rule:
    return x - y, (1.0, -1.0)


def mul(x: float, y: float) -> Rule:
    return x * y, (y, x)


def div(x: float, y: float) -> Rule:
    _require(y != 0, "division", y, "a nonzero divisor (division by zero)")
    return x / y, (1.0 / y, -x / (y * y))


def neg(x: float) -> Rule:
    return -x, (-1.0,)


def power(x: float, p: float) -> Rule:
    """``x ** p`` for a constant exponent ``p``: only ``x`` gets a derivative."""
    _require(x >= 0 or float(p).is_integer(), "pow", x,
             f"x >= 0 for the non-integer exponent {p!r}")
    _require(x != 0 or p >= 1 or p == 0, "pow", x,
             f"x != 0 for the exponent {p!r} (the derivative is infinite at 0)")
    return x**p, (p * x ** (p - 1) if p != 0 else 0.0,)


def pow(x: float, y: float) -> Rule:
    """``x ** y`` where both are variables: needs ``log x``, so ``x > 0``."""
    _require(x > 0, "pow", x, "a positive base when the exponent is a variable too")
    out = x**y
    return out, (y * x ** (y - 1), out * math.log(x))


def exp(x: float) -> Rule:
    _require(x < 709.78, "exp", x, "x < 709.78 (larger values overflow a float)")
    out = math.exp(x)
    return out, (out,)


def log(x: float) -> Rule:
    _require(x > 0, "log", x, "x > 0")
    return math.log(x), (1.0 / x,)


def sqrt(x: float) -> Rule:
    _require(x > 0, "sqrt", x, "x > 0 (negative: no real root; 0: infinite derivative)")
    out = math.sqrt(x)
    return out, (0.5 / out,)


def sin(x: float) -> Rule:
    return math.sin(x), (math.cos(x),)


def cos(x: float) -> Rule:
    return math.cos(x), (-math.sin(x),)


def tanh(x: float) -> Rule:
    out = math.tanh(x)
    return out, (1.0 - out * out,)


def sigmoid(x: float) -> Rule:
    # Two algebraically equal forms, each of which cannot overflow on its side of zero.
    out = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
    return out, (out * (1.0 - out),)


def relu(x: float) -> Rule:
    # At 0 the derivative does not exist; like PyTorch we use 0 there.
    return (x if x > 0 else 0.0), (1.0 if x > 0 else 0.0,)

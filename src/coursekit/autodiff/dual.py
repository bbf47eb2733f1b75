"""Forward mode: dual numbers carry a value and its directional derivative side by side.

A dual number ``a + ȧ ε`` with ``ε² = 0`` obeys ``f(a + ȧ ε) = f(a) + f'(a) ȧ ε``, so evaluating
a function on duals computes, in the same single pass, its value and the derivative along the
seed direction. No graph is stored: each operation combines its inputs' tangents at once with
the local derivatives of :mod:`.ops` (the same rules reverse mode uses)::

    ṫ[l] = Σ_{i -> l} f[l].grad(i) · ṫ[i]

One pass gives one directional derivative (a Jacobian-vector product); a full gradient of a
function of n inputs takes n passes, one per coordinate direction.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

from coursekit.autodiff import ops


class Dual:
    """A value (``primal``) and its derivative along the seed direction (``tangent``)."""

    __slots__ = ("primal", "tangent")

    def __init__(self, primal: float, tangent: float = 0.0) -> None:
        if not (isinstance(primal, numbers.Real) and isinstance(tangent, numbers.Real)):
            raise TypeError(f"Dual holds two real numbers, got {primal!r} and {tangent!r}.")
        self.primal = float(primal)
        self.tangent = float(tangent)

    def __repr__(self) -> str:
        return f"Dual({self.primal:.6g}, tangent={self.tangent:.6g})"

    def _binary(self, rule: Callable, other: object, reflected: bool = False):
        other = _lift(other)
        if other is NotImplemented:
            return NotImplemented
        return apply(rule, (other, self) if reflected else (self, other))

    def __add__(self, other):
        return self._binary(ops.add, other)

    def __radd__(self, other):
        return self._binary(ops.add, other, reflected=True)

    def __sub__(self, other):
        return self._binary(ops.sub, other)

    def __rsub__(self, other):
        return self._binary(ops.sub, other, reflected=True)

    def __mul__(self, other):
        return self._binary(ops.mul, other)

    def __rmul__(self, other):
        return self._binary(ops.mul, other, reflected=True)

    def __truediv__(self, other):
        return self._binary(ops.div, other)

    def __rtruediv__(self, other):
        return self._binary(ops.div, other, reflected=True)

    def __pow__(self, other):
        if isinstance(other, numbers.Real):
            p = float(other)
            return apply(lambda x: ops.power(x, p), (self,))
        return self._binary(ops.pow, other)

    def __rpow__(self, other):
        return self._binary(ops.pow, other, reflected=True)

    def __neg__(self):
        return apply(ops.neg, (self,))

    def exp(self):
        return apply(ops.exp, (self,))

    def log(self):
        return apply(ops.log, (self,))

    def sqrt(self):
        return apply(ops.sqrt, (self,))

    def sin(self):
        return apply(ops.sin, (self,))

    def cos(self):
        return apply(ops.cos, (self,))

    def tanh(self):
        return apply(ops.tanh, (self,))

    def sigmoid(self):
        return apply(ops.sigmoid, (self,))

    def relu(self):
        return apply(ops.relu, (self,))


def apply(rule: Callable[..., ops.Rule], inputs: Sequence[Dual]) -> Dual:
    """Evaluate a rule of :mod:`.ops` and push the tangents through its local derivatives."""
    primal, local_grads = rule(*(x.primal for x in inputs))
    ops.tally(evaluations=1, multiply_adds=len(inputs))
    return Dual(primal, sum(d * x.tangent for d, x in zip(local_grads, inputs, strict=True)))


def _lift(x: object) -> Dual:
    """A number is a constant: its tangent is 0."""
    if isinstance(x, Dual):
        return x
    if isinstance(x, numbers.Real):
        return Dual(float(x))
    return NotImplemented


def jvp(f: Callable[..., Dual], point: Sequence[float], direction: Sequence[float]):
    """One forward pass: ``(f(point), ∇f(point) · direction)``, the directional derivative."""
    if len(point) != len(direction):
        raise ValueError(
            f"point has {len(point)} coordinates but direction has {len(direction)}; "
            "give one seed tangent per input."
        )
    out = f(*(Dual(x, dx) for x, dx in zip(point, direction, strict=True)))
    if not isinstance(out, Dual):
        raise TypeError(f"f must return a Dual computed from its inputs, got {out!r}.")
    return out.primal, out.tangent


def forward_gradient(f: Callable[..., Dual], *point: float) -> tuple[float, tuple[float, ...]]:
    """The gradient by forward mode: one pass per input, seeded with each unit vector."""
    n = len(point)
    if n == 0:
        raise ValueError("forward_gradient needs at least one input coordinate.")
    passes = [jvp(f, point, [float(i == j) for j in range(n)]) for i in range(n)]
    return passes[0][0], tuple(tangent for _, tangent in passes)

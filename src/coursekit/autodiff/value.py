"""Reverse mode: a scalar that records its computation graph, and backpropagation over it.

Every arithmetic operation on a :class:`Value` returns a new node that remembers its
``parents`` and the local derivatives ``local_grads[i]`` = ∂node/∂parents[i], computed during
the forward pass from the rules in :mod:`.ops`. :meth:`Value.backward` then runs the slides'
pseudo-code over the nodes in reverse topological order::

    g[:] = 0;  g[L] = 1
    for l = L, ..., 1:
        for i such that i -> l:
            g[i] += g[l] * f[l].grad(i)

and adds ``g`` into every node's ``.grad``, so that repeated calls accumulate exactly as in
PyTorch until :meth:`Value.zero_grad` clears them.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from coursekit.autodiff import ops


class Value:
    """A scalar node of a computation graph: its ``data``, its ``grad`` and how it was made."""

    __slots__ = ("data", "grad", "parents", "local_grads", "op", "label")

    def __init__(
        self,
        data: float,
        label: str = "",
        *,
        parents: Sequence[Value] = (),
        local_grads: Sequence[float] = (),
        op: str = "",
    ) -> None:
        if not isinstance(data, numbers.Real):
            raise TypeError(f"Value holds a real number, got {type(data).__name__}: {data!r}.")
        if len(parents) != len(local_grads):
            raise ValueError(
                f"op {op!r}: got {len(parents)} parents but {len(local_grads)} local "
                "derivatives; give one local derivative per parent."
            )
        self.data = float(data)
        self.grad = 0.0
        self.parents = tuple(parents)
        self.local_grads = tuple(float(d) for d in local_grads)
        self.op = op  # "" for an input (a leaf)
        self.label = label

    def named(self, label: str) -> Value:
        """Give the node a name for tables and drawings; returns the node itself."""
        self.label = label
        return self

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in (("label", self.label), ("op", self.op)) if v)
        return f"Value({self.data:.6g}, grad={self.grad:.6g}{extra})"

    # --- building the graph ------------------------------------------------------------------
    def _binary(self, rule: Callable, other: object, op: str, reflected: bool = False):
        other = _lift(other)
        if other is NotImplemented:
            return NotImplemented
        return apply(rule, (other, self) if reflected else (self, other), op)

    def __add__(self, other):
        return self._binary(ops.add, other, "+")

    def __radd__(self, other):
        return self._binary(ops.add, other, "+", reflected=True)

    def __sub__(self, other):
        return self._binary(ops.sub, other, "-")

    def __rsub__(self, other):
        return self._binary(ops.sub, other, "-", reflected=True)

    def __mul__(self, other):
        return self._binary(ops.mul, other, "*")

    def __rmul__(self, other):
        return self._binary(ops.mul, other, "*", reflected=True)

    def __truediv__(self, other):
        return self._binary(ops.div, other, "/")

    def __rtruediv__(self, other):
        return self._binary(ops.div, other, "/", reflected=True)

    def __pow__(self, other):
        if isinstance(other, numbers.Real):  # a constant exponent: one parent
            p = float(other)
            return apply(lambda x: ops.power(x, p), (self,), f"**{p:g}")
        return self._binary(ops.pow, other, "**")

    def __rpow__(self, other):
        return self._binary(ops.pow, other, "**", reflected=True)

    def __neg__(self):
        return apply(ops.neg, (self,), "neg")

    def exp(self):
        return apply(ops.exp, (self,), "exp")

    def log(self):
        return apply(ops.log, (self,), "log")

    def sqrt(self):
        return apply(ops.sqrt, (self,), "sqrt")

    def sin(self):
        return apply(ops.sin, (self,), "sin")

    def cos(self):
        return apply(ops.cos, (self,), "cos")

    def tanh(self):
        return apply(ops.tanh, (self,), "tanh")

    def sigmoid(self):
        return apply(ops.sigmoid, (self,), "sigmoid")

    def relu(self):
        return apply(ops.relu, (self,), "relu")

    def __float__(self) -> float:
        """The plain number, e.g. for a loop's test: reading it records nothing in the graph."""
        return self.data

    def detach(self) -> Value:
        """A new leaf with the same data: what is computed from it sends no gradient back here."""
        return Value(self.data, self.label)

    # --- reverse mode ------------------------------------------------------------------------
    def topological_order(self) -> list[Value]:
        """Every node this one depends on, each after all of its parents (self comes last)."""
        order: list[Value] = []
        seen: set[Value] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:  # depth-first search without recursion, so deep graphs are fine
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((p, False) for p in reversed(node.parents) if p not in seen)
        return order

    def backward(self, seed: float = 1.0) -> None:
        """Add ∂self/∂node (times ``seed``) to the ``.grad`` of every node self depends on."""
        for _ in backprop(self, seed):
            ops.tally(multiply_adds=1)  # one g[i] += g[l] * f[l].grad(i) per arrow

    def zero_grad(self) -> None:
        """Set ``.grad`` to 0 on this node and every node it depends on."""
        for node in self.topological_order():
            node.grad = 0.0


class BackwardStep(NamedTuple):
    """One update ``g[parent] += node_grad * local_grad`` of the backward pass."""

    node: Value
    parent: Value
    node_grad: float
    local_grad: float


def backprop(output: Value, seed: float = 1.0) -> Iterator[BackwardStep]:
    """Run the backward pass from ``output``, yielding each update as it is made.

    The gradients of this pass are collected in ``g`` and added to the nodes' ``.grad``
    once the pass is complete (so exhaust the iterator, as :meth:`Value.backward` does).
    """
    order = output.topological_order()
    g = dict.fromkeys(order, 0.0)  # g[:] = 0
    g[output] = float(seed)  # g[L] = 1
    for node in reversed(order):  # l = L, ..., 1
        for parent, local_grad in zip(node.parents, node.local_grads, strict=True):
            g[parent] += g[node] * local_grad  # g[i] += g[l] * f[l].grad(i)
            yield BackwardStep(node, parent, g[node], local_grad)
    for node in order:
        node.grad += g[node]


def apply(rule: Callable[..., ops.Rule], inputs: Sequence[Value], op: str) -> Value:
    """Evaluate a rule of :mod:`.ops` on the inputs' data and record the new node."""
    data, local_grads = rule(*(x.data for x in inputs))
    ops.tally(evaluations=1)
    return Value(data, parents=inputs, local_grads=local_grads, op=op)


def _lift(x: object) -> Value:
    """Numbers enter the graph as constant leaves, named by their value."""
    if isinstance(x, Value):
        return x
    if isinstance(x, numbers.Real):
        return Value(float(x), label=f"{float(x):g}")
    return NotImplemented


def gradient(f: Callable[..., Value], *point: float) -> tuple[float, tuple[float, ...]]:
    """``f(point)`` and its gradient by one reverse pass: ``(value, (∂f/∂x0, ∂f/∂x1, ...))``."""
    inputs = [Value(x, label=f"x{i}") for i, x in enumerate(point)]
    out = f(*inputs)
    if not isinstance(out, Value):
        raise TypeError(f"f must return a Value computed from its inputs, got {out!r}.")
    out.backward()
    return out.data, tuple(x.grad for x in inputs)

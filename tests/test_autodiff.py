"""The tracer's derivatives: every op against finite differences, PyTorch, and the other mode."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.autodiff import (
    DomainError,
    Dual,
    Value,
    cos,
    exp,
    forward_gradient,
    gradient,
    jvp,
    log,
    ops,
    relu,
    sigmoid,
    sin,
    sqrt,
    tanh,
)


def interval(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def away_from_zero(lo: float, hi: float):
    """|x| in [lo, hi], either sign: keeps finite differences off a kink or a pole."""
    return st.tuples(interval(lo, hi), st.booleans()).map(lambda t: t[0] if t[1] else -t[0])


REAL, POSITIVE = interval(-4, 4), interval(0.05, 8)

# name -> (function written once for floats, Values, Duals and tensors; input strategies)
OPS = {
    "add": (lambda x, y: x + y, [REAL, REAL]),
    "sub": (lambda x, y: x - y, [REAL, REAL]),
    "mul": (lambda x, y: x * y, [REAL, REAL]),
    "div": (lambda x, y: x / y, [REAL, away_from_zero(0.2, 4)]),
    "neg": (lambda x: -x, [REAL]),
    "pow var": (lambda x, y: x**y, [interval(0.1, 4), interval(-3, 3)]),
    "pow 3": (lambda x: x**3, [REAL]),
    "pow -2": (lambda x: x**-2, [away_from_zero(0.2, 4)]),
    "pow 0.5": (lambda x: x**0.5, [POSITIVE]),
    "pow 2.5": (lambda x: x**2.5, [POSITIVE]),
    "radd": (lambda x: 1.5 + x, [REAL]),
    "rsub": (lambda x: 1.5 - x, [REAL]),
    "rmul": (lambda x: 1.5 * x, [REAL]),
    "rdiv": (lambda x: 1.5 / x, [away_from_zero(0.2, 4)]),
    "rpow": (lambda x: 1.5**x, [REAL]),
    "exp": (exp, [REAL]),
    "log": (log, [POSITIVE]),
    "sqrt": (sqrt, [POSITIVE]),
    "sin": (sin, [REAL]),
    "cos": (cos, [REAL]),
    "tanh": (tanh, [REAL]),
    "sigmoid": (sigmoid, [REAL]),
    "relu": (relu, [away_from_zero(0.01, 4)]),
}


def deck_example(x, y):
    """The slides' f(x, y) = sqrt(y log x) + y log x."""
    s = y * log(x)
    return sqrt(s) + s


COMPOSITES = {
    "deck example": (deck_example, [interval(1.2, 6), interval(0.2, 4)]),
    "shared subexpression": (lambda x, y: (x * y) * (x * y) + x * y, [REAL, REAL]),
    "neuron": (lambda w, b, x: tanh(w * x + b) * sigmoid(x - w), [REAL, REAL, REAL]),
    "everything": (
        lambda x, y: exp(sin(x) * cos(y)) / (1 + relu(x) + sqrt(y * y + 1)) - log(1 + x * x),
        [away_from_zero(0.01, 4), REAL],
    ),
}


def finite_differences(f, point, h=1e-6):
    grads = []
    for i in range(len(point)):
        up, down = list(point), list(point)
        up[i] += h
        down[i] -= h
        grads.append((f(*up) - f(*down)) / (2 * h))
    return grads


def torch_gradient(f, point):
    inputs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in point]
    f(*inputs).backward()
    return [x.grad.item() for x in inputs]


def points(strategies):
    return st.tuples(*strategies)


def close(a, b, rel, abs_):
    return all(math.isclose(x, y, rel_tol=rel, abs_tol=abs_) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", list(OPS) + list(COMPOSITES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_reverse_mode_matches_finite_differences(name, data):
    f, strategies = {**OPS, **COMPOSITES}[name]
    point = data.draw(points(strategies))
    value, grads = gradient(f, *point)
    assert math.isclose(value, f(*point), rel_tol=1e-12, abs_tol=1e-12)
    assert close(grads, finite_differences(f, point), rel=1e-5, abs_=1e-6), (grads, point)


@pytest.mark.parametrize("name", list(OPS) + list(COMPOSITES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_both_modes_match_torch_autograd(name, data):
    f, strategies = {**OPS, **COMPOSITES}[name]
    point = data.draw(points(strategies))
    expected = torch_gradient(f, point)
    assert close(gradient(f, *point)[1], expected, rel=1e-11, abs_=1e-12)
    assert close(forward_gradient(f, *point)[1], expected, rel=1e-11, abs_=1e-12)


@settings(max_examples=40, deadline=None)
@given(point=points(COMPOSITES["everything"][1]), direction=points([REAL, REAL]))
def test_jvp_is_the_gradient_dotted_with_the_direction(point, direction):
    f = COMPOSITES["everything"][0]
    value, slope = jvp(f, point, direction)
    _, grads = gradient(f, *point)
    assert value == f(*point)
    expected = sum(g * d for g, d in zip(grads, direction, strict=True))
    assert math.isclose(slope, expected, abs_tol=1e-10)


def test_a_broken_derivative_is_caught(monkeypatch):
    """Sabotage sin's derivative (the sign): both checks above must notice."""
    monkeypatch.setattr(ops, "sin", lambda x: (math.sin(x), (-math.cos(x),)))
    point = (0.4,)
    grads = gradient(sin, *point)[1]
    assert not close(grads, finite_differences(sin, point), rel=1e-5, abs_=1e-6)
    assert not close(grads, torch_gradient(lambda x: x.sin(), point), rel=1e-11, abs_=1e-12)


def test_deck_example_equals_the_analytic_derivatives():
    x, y = Value(3.0, "x"), Value(2.0, "y")
    deck_example(x, y).backward()
    log3 = math.log(3)
    dfdx = (1 / 3) * (2 + 1 / math.sqrt(2 * log3))  # (y/x)(1 + 1/(2 sqrt(y log x)))
    dfdy = log3 / (2 * math.sqrt(2 * log3)) + log3  # log x (1 + 1/(2 sqrt(y log x)))
    assert math.isclose(x.grad, dfdx, rel_tol=1e-14)
    assert math.isclose(y.grad, dfdy, rel_tol=1e-14)
    assert math.isclose(jvp(deck_example, (3.0, 2.0), (1.0, 0.0))[1], dfdx, rel_tol=1e-14)
    assert math.isclose(jvp(deck_example, (3.0, 2.0), (0.0, 1.0))[1], dfdy, rel_tol=1e-14)


def test_a_node_used_many_times_accumulates_every_use():
    x = Value(1.5)
    (x * x).backward()
    assert x.grad == 3.0  # the same parent twice: 2x
    x.zero_grad()
    total = x
    for _ in range(99):
        total = total + x
    total.backward()
    assert x.grad == 100.0


def test_intermediate_gradients_match_torch_retain_grad():
    x, y = Value(0.7), Value(-1.3)
    s = x * y
    out = s.tanh() * s + s.exp()
    out.backward()
    xt, yt = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.7, -1.3))
    st_ = xt * yt
    st_.retain_grad()
    (st_.tanh() * st_ + st_.exp()).backward()
    assert math.isclose(s.grad, st_.grad.item(), rel_tol=1e-13)


def test_repeated_backward_accumulates_and_zero_grad_clears():
    x, y = Value(3.0), Value(2.0)
    out = deck_example(x, y)
    out.backward()
    once = (x.grad, y.grad, out.grad)
    out.backward()
    assert (x.grad, y.grad, out.grad) == tuple(2 * g for g in once)
    out.zero_grad()
    assert all(node.grad == 0.0 for node in out.topological_order())
    out.backward()
    assert (x.grad, y.grad, out.grad) == once


def test_topological_order_puts_parents_first_even_for_deep_graphs():
    x = Value(0.0, "x")
    out = x
    for _ in range(5000):  # far deeper than Python's recursion limit
        out = out + 1.0
    order = out.topological_order()
    position = {node: k for k, node in enumerate(order)}
    assert order[-1] is out and len(order) == 10001
    assert all(position[p] < position[n] for n in order for p in n.parents)
    out.backward()
    assert x.grad == 1.0


@pytest.mark.parametrize(
    ("compute", "op", "value"),
    [
        (lambda: Value(-1.0).log(), "log", "-1.0"),
        (lambda: Value(0.0).log(), "log", "0.0"),
        (lambda: Value(1.0) / 0, "division", "0.0"),
        (lambda: 1 / Value(0.0), "division", "0.0"),
        (lambda: Value(-4.0).sqrt(), "sqrt", "-4.0"),
        (lambda: Value(-8.0) ** 0.5, "pow", "-8.0"),
        (lambda: Value(0.0) ** -1, "pow", "0.0"),
        (lambda: (-2.0) ** Value(1.0), "pow", "-2.0"),
        (lambda: Dual(-1.0, 1.0).log(), "log", "-1.0"),
        (lambda: Dual(2.0, 1.0) / Dual(0.0), "division", "0.0"),
        (lambda: sqrt(-9.0), "sqrt", "-9.0"),
        (lambda: Value(800.0).exp(), "exp", "800.0"),
    ],
)
def test_undefined_points_raise_a_clear_error(compute, op, value):
    with pytest.raises(DomainError) as error:
        compute()
    message = str(error.value)
    assert op in message and value in message


def test_bad_inputs_are_rejected_clearly():
    with pytest.raises(TypeError, match="real number"):
        Value("3")
    with pytest.raises(TypeError):
        Value(1.0) + "a"
    with pytest.raises(ValueError, match="one local derivative per parent"):
        Value(1.0, parents=(Value(1.0),), local_grads=())
    with pytest.raises(TypeError, match="must return a Value"):
        gradient(lambda x: 1.0, 2.0)
    with pytest.raises(ValueError, match="one seed tangent per input"):
        jvp(deck_example, (3.0, 2.0), (1.0,))


def test_functions_dispatch_on_the_number_type():
    assert log(3.0) == math.log(3.0)
    assert isinstance(log(Value(3.0)), Value)
    assert isinstance(log(Dual(3.0)), Dual)
    assert isinstance(log(torch.tensor(3.0)), torch.Tensor)
    assert relu(-2) == 0.0 and sigmoid(0.0) == 0.5


def test_sigmoid_is_stable_far_from_zero():
    assert sigmoid(-800.0) == 0.0 and sigmoid(800.0) == 1.0
    assert Value(-800.0).sigmoid().local_grads == (0.0,)


def test_value_and_dual_show_themselves():
    assert repr(Value(3.0, "x")) == "Value(3, grad=0, label='x')"
    assert "op='log'" in repr(Value(3.0).log())
    assert repr(Dual(2.0, 1.0)) == "Dual(2, tangent=1)"

"""Counting the engine's work: forward mode repeats per input what reverse mode does once."""

from __future__ import annotations

from itertools import pairwise

import pytest

from coursekit.autodiff import Value, counting, forward_gradient, gradient, jvp, log, sqrt, tanh


def f(x, y):
    s = y * log(x)
    return sqrt(s) + s


def tanh_chain(*xs):
    return sum(tanh(u * v) for u, v in pairwise(xs))


def test_one_jvp_evaluates_each_operation_once_and_does_one_multiply_add_per_arrow():
    with counting() as counts:
        jvp(f, (3.0, 2.0), (1.0, 0.0))
    # log, *, sqrt, +: 4 rules; arrows: log 1, * 2, sqrt 1, + 2
    assert (counts.evaluations, counts.multiply_adds, counts.total) == (4, 6, 10)


def test_reverse_mode_traces_once_and_backward_does_one_multiply_add_per_arrow():
    with counting() as counts:
        gradient(f, 3.0, 2.0)
    assert (counts.evaluations, counts.multiply_adds) == (4, 6)
    x = Value(3.0)
    with counting() as counts:
        out = x * x * x
    assert (counts.evaluations, counts.multiply_adds) == (2, 0)
    with counting() as counts:
        out.backward()
    assert (counts.evaluations, counts.multiply_adds) == (0, 4)


@pytest.mark.parametrize("n", [2, 5, 17])
def test_forward_mode_costs_exactly_n_times_reverse_mode(n):
    point = [0.1 * k for k in range(1, n + 1)]
    with counting() as forward:
        forward_gradient(tanh_chain, *point)
    with counting() as reverse:
        gradient(tanh_chain, *point)
    # sum() starts from 0: n - 1 products, tanh and sums; 5 arrows per pair
    assert (reverse.evaluations, reverse.multiply_adds) == (3 * (n - 1), 5 * (n - 1))
    assert forward.total == n * reverse.total


def test_counting_blocks_nest_and_count_nothing_outside():
    with counting() as outer:
        jvp(f, (3.0, 2.0), (1.0, 0.0))
        with counting() as inner:
            jvp(f, (3.0, 2.0), (1.0, 0.0))
    jvp(f, (3.0, 2.0), (1.0, 0.0))
    assert inner.total == 10 and outer.total == 20


def test_detach_makes_a_leaf_that_stops_the_gradient():
    x = Value(3.0, "x")
    y = x * x
    z = x * y.detach()  # y is taken as the constant 9
    z.backward()
    assert x.grad == 9.0
    assert y.detach().parents == () and y.detach().data == y.data
    x.zero_grad()
    (x * y).backward()
    assert x.grad == 27.0  # d(x^3)/dx = 3 x^2


def test_float_reads_the_data_without_growing_the_graph():
    x = Value(2.0)
    r = x
    while float(r) < 100:  # control flow on plain numbers: the graph has only the products
        r = r * x
    assert float(r) == 128.0 and len(r.topological_order()) == 7
    r.backward()
    assert x.grad == 7 * 2.0**6

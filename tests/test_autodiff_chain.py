"""Jacobian chain costs: the formulas, the multiplications they count, and which order wins."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.autodiff.chain import forward_cost, multiply, optimal_cost, reverse_cost

WIDTHS = st.lists(st.integers(1, 60), min_size=2, max_size=7)


@settings(max_examples=30, deadline=None)
@given(widths=WIDTHS)
def test_formulas_count_the_multiplications_and_both_orders_agree(widths):
    jacobians = [torch.randn(n_out, n_in, dtype=torch.float64)
                 for n_in, n_out in pairwise(widths)]
    forward, forward_macs = multiply(jacobians, "forward")
    reverse, reverse_macs = multiply(jacobians, "reverse")
    assert forward_macs == forward_cost(widths) and reverse_macs == reverse_cost(widths)
    assert forward.shape == (widths[-1], widths[0])
    torch.testing.assert_close(forward, reverse)
    assert optimal_cost(widths) <= min(forward_macs, reverse_macs)


@settings(max_examples=200, deadline=None)
@given(widths=WIDTHS)
def test_reverse_is_optimal_when_widths_shrink_and_forward_when_they_grow(widths):
    shrinking = sorted(widths, reverse=True)
    assert reverse_cost(shrinking) == optimal_cost(shrinking)
    assert forward_cost(shrinking[::-1]) == optimal_cost(shrinking[::-1])


def test_a_classifier_chain():
    widths = [784, 512, 256, 10, 1]  # an MNIST MLP and its scalar loss
    assert forward_cost(widths) == 256 * 512 * 784 + 10 * 256 * 784 + 1 * 10 * 784
    assert reverse_cost(widths) == 10 * 256 + 256 * 512 + 512 * 784
    assert optimal_cost([2, 3, 4]) == 24 and optimal_cost([5, 7]) == 0


def test_bad_chains_are_explained():
    with pytest.raises(ValueError, match="positive width"):
        forward_cost([784])
    with pytest.raises(ValueError, match="order must be"):
        multiply([torch.ones(2, 2)], "sideways")
    with pytest.raises(ValueError, match="columns"):
        multiply([torch.ones(3, 2), torch.ones(4, 2)], "forward")

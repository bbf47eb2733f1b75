"""coursekit.scratch.pooling: pooling from the definition equals torch's, values and gradients."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from coursekit.scratch import pooling


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@st.composite
def pool_cases(draw):
    """A random valid pooling: kernel, stride, padding (at most half the kernel), ceil_mode."""
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    return dict(
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)),
               draw(st.integers(max(1, k[0] - 2 * p[0]), 10)),
               draw(st.integers(max(1, k[1] - 2 * p[1]), 10))),
        kernel_size=k, padding=p,
        stride=draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3)))),
        ceil_mode=draw(st.booleans()), seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=80, deadline=None)
@given(pool_cases(), st.booleans())
def test_avg_pool2d_matches_torch_values_and_gradients(case, count_include_pad):
    args = (case["kernel_size"], case["stride"], case["padding"], case["ceil_mode"],
            count_include_pad)
    x = _randn(*case["shape"], seed=case["seed"]).requires_grad_()
    ours, theirs = pooling.avg_pool2d(x, *args), F.avg_pool2d(x, *args)
    torch.testing.assert_close(ours, theirs)
    g = _randn(*theirs.shape, seed=case["seed"] + 1)
    torch.testing.assert_close(torch.autograd.grad(ours, x, g)[0],
                               torch.autograd.grad(theirs, x, g)[0])


@settings(max_examples=80, deadline=None)
@given(pool_cases())
def test_max_pool2d_matches_torch_values_and_gradients(case):
    args = (case["kernel_size"], case["stride"], case["padding"])
    x = _randn(*case["shape"], seed=case["seed"]).requires_grad_()  # no ties, almost surely
    ours = pooling.max_pool2d(x, *args, ceil_mode=case["ceil_mode"])
    theirs = F.max_pool2d(x, *args, ceil_mode=case["ceil_mode"])
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    g = _randn(*theirs.shape, seed=case["seed"] + 1)
    torch.testing.assert_close(torch.autograd.grad(ours, x, g)[0],
                               torch.autograd.grad(theirs, x, g)[0])


def test_modules_and_unbatched_input():
    x = _randn(3, 9, 7)  # C x H x W
    torch.testing.assert_close(pooling.max_pool2d(x, 3, 2, 1), nn.MaxPool2d(3, 2, 1)(x))
    torch.testing.assert_close(pooling.avg_pool2d(x, 2), nn.AvgPool2d(2)(x))


def test_a_worked_example():
    x = torch.tensor([[1.0, 2, 0, 1], [3, 4, 1, 0], [0, 0, 5, 6], [1, 1, 7, 2]]).view(1, 1, 4, 4)
    assert pooling.max_pool2d(x, 2).flatten().tolist() == [4, 1, 1, 7]
    assert pooling.avg_pool2d(x, 2).flatten().tolist() == [2.5, 0.5, 0.5, 5.0]


def test_output_size_matches_torch_including_ceil_mode():
    for size, k, s, p, ceil in itertools.product(range(1, 13), range(1, 5), range(1, 4),
                                                 range(0, 3), (False, True)):
        if 2 * p > k or size + 2 * p < k:
            continue
        expected = F.max_pool2d(torch.zeros(1, 1, size, size), k, s, p, ceil_mode=ceil).shape[-1]
        assert pooling.pool_output_size(size, k, s, p, ceil) == expected, (size, k, s, p, ceil)


def test_ceil_mode_example_from_nin():
    # A 3x3 max pool with stride 2 on 32 pixels: (32 - 3) / 2 + 1 = 15.5 -> 15 or 16.
    assert pooling.pool_output_size(32, 3, 2) == 15
    assert pooling.pool_output_size(32, 3, 2, ceil_mode=True) == 16


def test_windows_start_where_the_definition_says():
    x = torch.arange(36.0).view(1, 1, 6, 6)
    windows = pooling.pool_windows(x, 3, 2, 1, fill=-1.0)  # 1 x 1 x 3 x 3 x 3 x 3
    assert windows.shape == (1, 1, 3, 3, 3, 3)
    # window (1, 2) starts at row 1*2-1 = 1, column 2*2-1 = 3
    torch.testing.assert_close(windows[0, 0, 1, 2], x[0, 0, 1:4, 3:6])
    assert windows[0, 0, 0, 0, 0].eq(-1).all()  # the top row of window (0, 0) is padding


@pytest.mark.parametrize(
    "shape, kwargs, message",
    [
        ((4, 4), dict(kernel_size=2), "C×H×W or N×C×H×W"),
        ((1, 1, 4, 4), dict(kernel_size=3, padding=2), "more than half the kernel"),
        ((1, 1, 2, 2), dict(kernel_size=3), "does not fit"),
        ((1, 1, 4, 4), dict(kernel_size=0), "must be positive"),
        ((1, 1, 4, 4), dict(kernel_size=(2, 2, 2)), "pair of ints"),
    ],
)
def test_bad_arguments_are_explained(shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pooling.max_pool2d(torch.zeros(shape), **kwargs)


def test_relative_change_is_the_mean_of_per_example_norm_ratios():
    before = torch.tensor([[[3.0, 4.0]], [[1.0, 0.0]]])  # norms 5 and 1
    after = before + torch.tensor([[[0.0, 5.0]], [[0.0, 3.0]]])  # changes of norm 5 and 3
    assert pooling.relative_change(after, before) == pytest.approx((5 / 5 + 3 / 1) / 2)
    assert pooling.relative_change(before, before) == 0.0


@pytest.mark.parametrize(("after", "before", "message"), [
    (torch.ones(2, 3), torch.ones(2, 4), "same shape"),
    (torch.ones(3), torch.ones(3), "batch"),
    (torch.ones(2, 3), torch.tensor([[1.0, 0, 0], [0, 0, 0]]), "1 example"),
])
def test_relative_change_refuses_what_it_cannot_measure(after, before, message):
    with pytest.raises(ValueError, match=message):
        pooling.relative_change(after, before)

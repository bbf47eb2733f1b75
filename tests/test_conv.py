"""coursekit.scratch.conv: the from-scratch convolution equals PyTorch's, and the formulas hold."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from coursekit.scratch import conv


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@st.composite
def conv2d_cases(draw):
    """A random but valid 2D convolution: shapes, filter, stride, padding."""
    f1, f2 = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    p1, p2 = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, f1 - 2 * p1), 9))
    w = draw(st.integers(max(1, f2 - 2 * p2), 9))
    return dict(
        batch=draw(st.integers(1, 2)), c_in=draw(st.integers(1, 3)),
        c_out=draw(st.integers(1, 3)), h=h, w=w, f=(f1, f2),
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=(p1, p2),
        bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=60, deadline=None)
@given(conv2d_cases())
def test_conv2d_matches_torch(case):
    x = _randn(case["batch"], case["c_in"], case["h"], case["w"], seed=case["seed"])
    weight = _randn(case["c_out"], case["c_in"], *case["f"], seed=case["seed"] + 1)
    bias = _randn(case["c_out"], seed=case["seed"] + 2) if case["bias"] else None
    expected = F.conv2d(x, weight, bias, case["stride"], case["padding"])
    torch.testing.assert_close(conv.conv2d(x, weight, bias, case["stride"], case["padding"]),
                               expected)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), ((1, 2), (2, 0))])
def test_loops_definition_matches_torch(stride, padding):
    x, weight, bias = _randn(2, 3, 6, 5), _randn(2, 3, 3, 2, seed=1), _randn(2, seed=2)
    expected = F.conv2d(x, weight, bias, stride, padding)
    torch.testing.assert_close(conv.conv2d_loops(x, weight, bias, stride, padding), expected)
    torch.testing.assert_close(conv.conv2d_loops(x, weight, None, stride, padding),
                               F.conv2d(x, weight, None, stride, padding))


def test_matches_nn_conv2d_layer_in_float32():
    layer = nn.Conv2d(3, 8, kernel_size=5, stride=2, padding=2)
    x = torch.randn(4, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(conv.conv2d(x, layer.weight, layer.bias, 2, 2), layer(x))


def test_gradients_match_torch():
    x = _randn(2, 2, 7, 6).requires_grad_()
    weight = _randn(3, 2, 3, 3, seed=1).requires_grad_()
    bias = _randn(3, seed=2).requires_grad_()
    upstream = _randn(2, 3, 4, 3, seed=3)
    ours = torch.autograd.grad((conv.conv2d(x, weight, bias, 2, 1) * upstream).sum(),
                               (x, weight, bias))
    theirs = torch.autograd.grad((F.conv2d(x, weight, bias, 2, 1) * upstream).sum(),
                                 (x, weight, bias))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("stride, padding", [(1, 0), (3, 2), (2, 1)])
def test_conv1d_matches_torch(stride, padding):
    x, weight, bias = _randn(2, 3, 20), _randn(4, 3, 5, seed=1), _randn(4, seed=2)
    torch.testing.assert_close(conv.conv1d(x, weight, bias, stride, padding),
                               F.conv1d(x, weight, bias, stride, padding))


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), ((1, 2, 3), (0, 1, 2))])
def test_conv3d_matches_torch(stride, padding):
    x, weight, bias = _randn(2, 2, 6, 7, 8), _randn(3, 2, 3, 2, 3, seed=1), _randn(3, seed=2)
    torch.testing.assert_close(conv.conv3d(x, weight, bias, stride, padding),
                               F.conv3d(x, weight, bias, stride, padding))


def test_output_size_matches_nn_conv2d_over_a_grid():
    checked = 0
    for w_in, f, p, s in itertools.product(range(1, 17), range(1, 8), range(0, 4), range(1, 5)):
        x = torch.zeros(1, 1, w_in, w_in)
        layer = nn.Conv2d(1, 1, kernel_size=f, stride=s, padding=p)
        if f > w_in + 2 * p:
            with pytest.raises(ValueError, match="larger than the padded input"):
                conv.output_size(w_in, f, p, s)
            with pytest.raises(RuntimeError):
                layer(x)
            continue
        with torch.no_grad():
            shape = layer(x).shape
        assert shape == (1, 1, conv.output_size(w_in, f, p, s), conv.output_size(w_in, f, p, s))
        checked += 1
    assert checked > 1000


def test_output_size_deck_examples():
    assert conv.output_size(7, 5) == 3
    assert conv.output_size(7, 5, p=2) == 7
    assert conv.output_size(7, 3, s=1) == 5
    assert conv.output_size(7, 3, s=2) == 3
    assert conv.output_size(7, 3, p=1, s=3, exact=True) == 3
    assert conv.output_size(7, 3, s=3) == 2  # the floor silently drops the last column
    with pytest.raises(ValueError, match="does not fit"):
        conv.output_size(7, 3, s=3, exact=True)


@pytest.mark.parametrize("args, message", [
    ((0, 3), "input size must be a positive integer"),
    ((7, 0), "filter size must be a positive integer"),
    ((7, 3, 0, 0), "stride must be a positive integer"),
    ((7, 3, -1), "padding must be a non-negative integer"),
    ((7.0, 3), "input size must be a positive integer"),
    ((7, 3, 1.5), "padding must be a non-negative integer"),
    ((3, 8), r"pad by at least 3"),
])
def test_output_size_rejects_impossible_settings(args, message):
    with pytest.raises(ValueError, match=message):
        conv.output_size(*args)


@pytest.mark.parametrize("c_in, c_out, f1, f2, bias", [
    (1, 1, 1, 1, True), (3, 64, 3, 3, True), (3, 96, 11, 11, True), (16, 32, 5, 3, False),
    (64, 128, 1, 1, False),
])
def test_conv_params_matches_nn_conv2d(c_in, c_out, f1, f2, bias):
    layer = nn.Conv2d(c_in, c_out, kernel_size=(f1, f2), bias=bias)
    expected = sum(p.numel() for p in layer.parameters())
    assert conv.conv_params(c_in, c_out, f1, f2, bias=bias) == expected


def test_conv_params_square_default_and_errors():
    assert conv.conv_params(3, 8, 5) == conv.conv_params(3, 8, 5, 5) == 5 * 5 * 3 * 8 + 8
    with pytest.raises(ValueError, match="c_out must be a positive integer"):
        conv.conv_params(3, 0, 3)


@settings(max_examples=40, deadline=None)
@given(down=st.integers(-4, 4), right=st.integers(-4, 4), f=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_shift_equivariance_away_from_the_borders(down, right, f, seed):
    """conv(shift(x)) = shift(conv(x)) wherever the shifted window saw only real pixels."""
    x, weight = _randn(1, 2, 12, 11, seed=seed), _randn(3, 2, f, f, seed=seed + 1)
    lhs = conv.conv2d(conv.shift2d(x, down, right), weight)
    rhs = conv.shift2d(conv.conv2d(x, weight), down, right)
    rows = slice(down, None) if down >= 0 else slice(0, lhs.shape[-2] + down)
    cols = slice(right, None) if right >= 0 else slice(0, lhs.shape[-1] + right)
    torch.testing.assert_close(lhs[..., rows, cols], rhs[..., rows, cols])
    if f > 1 and (down or right):  # at the border, the zeros that entered the frame matter
        assert not torch.allclose(lhs, rhs)


def test_fully_connected_layer_is_not_shift_equivariant():
    torch.manual_seed(0)
    layer = nn.Linear(8 * 8, 8 * 8, bias=False).double()
    x = _randn(1, 1, 8, 8)
    lhs = layer(conv.shift2d(x, 1, 1).flatten(1)).view(1, 1, 8, 8)
    rhs = conv.shift2d(layer(x.flatten(1)).view(1, 1, 8, 8), 1, 1)
    assert not torch.allclose(lhs[..., 2:-2, 2:-2], rhs[..., 2:-2, 2:-2])


def test_shift2d_moves_content_and_fills_zeros():
    x = torch.arange(1.0, 13.0).view(1, 1, 3, 4)
    shifted = conv.shift2d(x, 1, -2)
    expected = torch.tensor([[0.0, 0, 0, 0], [3, 4, 0, 0], [7, 8, 0, 0]]).view(1, 1, 3, 4)
    torch.testing.assert_close(shifted, expected)
    with pytest.raises(ValueError, match="out of a 3x4 frame"):
        conv.shift2d(x, 3, 0)


def test_zero_pad():
    x = torch.ones(1, 1, 2, 3)
    padded = conv.zero_pad(x, (1, 2))
    assert padded.shape == (1, 1, 4, 7)
    assert padded.sum() == 6 and padded[..., 1:3, 2:5].eq(1).all()


@pytest.mark.parametrize("x_shape, w_shape, bias_shape, message", [
    ((3, 8, 8), (4, 3, 3, 3), None, "Add a batch dimension"),
    ((1, 2, 8, 8), (4, 3, 3, 3), None, "input has 2 channels but the weight expects C_in = 3"),
    ((1, 3, 8, 8), (4, 3, 3, 3), (3,), r"bias must have shape \(4,\)"),
    ((1, 3, 2, 2), (4, 3, 3, 3), None, "larger than the padded input"),
])
def test_conv2d_errors_name_the_problem(x_shape, w_shape, bias_shape, message):
    bias = torch.zeros(bias_shape) if bias_shape else None
    with pytest.raises(ValueError, match=message):
        conv.conv2d(torch.zeros(x_shape), torch.zeros(w_shape), bias)


def test_dimension_specific_wrappers_check_the_weight():
    with pytest.raises(ValueError, match="a 2D convolution needs a weight"):
        conv.conv2d(torch.zeros(1, 1, 5), torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="stride needs one value per spatial dimension"):
        conv.conv2d(torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3), stride=(1, 1, 1))


def _window_of_nonzero_gradient(kernel_sizes, strides, size=23):
    """Rows and columns of the input that the centre output pixel of a stack depends on."""
    layers = [nn.Conv2d(1, 1, f, stride=s, bias=False, dtype=torch.float64)
              for f, s in zip(kernel_sizes, strides, strict=True)]
    for layer in layers:
        nn.init.constant_(layer.weight, 1.0)  # positive weights: no cancellation
    x = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    y = nn.Sequential(*layers)(x)
    centre = y.shape[-1] // 2
    (grad,) = torch.autograd.grad(y[0, 0, centre, centre], x)
    rows = grad[0, 0].abs().sum(dim=1).nonzero().flatten()
    cols = grad[0, 0].abs().sum(dim=0).nonzero().flatten()
    assert grad[0, 0, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].gt(0).all()  # a full square
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.mark.parametrize("kernel_sizes, strides", [
    ([3], [1]), ([3, 3], [1, 1]), ([3, 3, 3], [1, 1, 1]), ([5, 3], [1, 1]),
    ([3, 3], [2, 1]), ([3, 3, 3], [2, 2, 1]), ([1, 3], [1, 1]), ([2, 2, 2], [2, 2, 2]),
])
def test_receptive_field_is_where_the_gradient_is_nonzero(kernel_sizes, strides):
    side = conv.receptive_field(kernel_sizes, strides)
    assert _window_of_nonzero_gradient(kernel_sizes, strides) == (side, side)


def test_receptive_field_of_stacked_3x3_layers_and_errors():
    assert [conv.receptive_field([3] * depth) for depth in range(1, 5)] == [3, 5, 7, 9]
    assert conv.receptive_field([1, 1, 1]) == 1
    with pytest.raises(ValueError, match="one stride per layer"):
        conv.receptive_field([3, 3], [1])
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        conv.receptive_field([3], [0])


def test_multichannel_output_is_a_sum_of_single_channel_convolutions():
    x, w, b = _randn(2, 3, 8, 8, seed=1), _randn(4, 3, 3, 3, seed=2), _randn(4, seed=3)
    y = conv.conv2d(x, w, b, padding=1)
    torch.testing.assert_close(y, F.conv2d(x, w, b, padding=1))
    for ell in range(4):
        parts = sum(conv.conv2d(x[:, g:g + 1], w[ell:ell + 1, g:g + 1], padding=1)
                    for g in range(3))
        torch.testing.assert_close(y[:, ell:ell + 1], parts + b[ell])


def test_1x1_convolution_is_a_linear_layer_on_every_pixel():
    x, linear = _randn(2, 5, 4, 6, seed=4), nn.Linear(5, 3, dtype=torch.float64)
    with torch.no_grad():
        by_conv = conv.conv2d(x, linear.weight.view(3, 5, 1, 1), linear.bias)
        by_linear = linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(by_conv, by_linear)

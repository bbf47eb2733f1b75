"""The worked answers of chapters 2, 8 and 9 that state a checkable result, recomputed.

(Chapter 1's are in ``test_ch01_exercises.py``.) An answer that goes stale when the package
changes fails here, not silently on the page.
"""

import pytest
import torch
from torch import nn

from coursekit.models import lenet
from coursekit.scratch import conv


@pytest.mark.parametrize(("widths", "rank"), [([784, 128, 64, 10], 10), ([784, 128, 4, 10], 4)])
def test_ch02_ex2_a_linear_stack_collapses_to_the_rank_of_its_narrowest_layer(widths, rank):
    torch.manual_seed(0)
    layers = [nn.Linear(n_in, n_out) for n_in, n_out in zip(widths, widths[1:], strict=False)]
    collapsed = torch.eye(widths[0])
    for layer in layers:
        collapsed = layer.weight.detach() @ collapsed
    assert collapsed.shape == (10, 784)
    assert torch.linalg.matrix_rank(collapsed) == rank


def test_ch08_ex1_shapes_and_parameters_of_two_layers():
    first = nn.Conv2d(3, 16, 5)
    second = nn.Conv2d(16, 32, 3, stride=2, padding=1)
    h = first(torch.randn(1, 3, 32, 32))
    assert h.shape == (1, 16, 28, 28) and second(h).shape == (1, 32, 14, 14)
    assert conv.output_size(32, 5) == 28 and conv.output_size(28, 3, 1, 2) == 14
    assert conv.conv_params(3, 16, 5) == 1216 == sum(p.numel() for p in first.parameters())
    assert conv.conv_params(16, 32, 3) == 4640 == sum(p.numel() for p in second.parameters())


def test_ch08_alexnet_first_layer_fits_227_not_224():
    assert conv.output_size(224, 11, 0, 4) == 54  # floor(53.25) + 1: the last row is dropped
    with pytest.raises(ValueError):
        conv.output_size(224, 11, 0, 4, exact=True)
    assert conv.output_size(227, 11, 0, 4, exact=True) == 55


def test_ch08_lenet_like_stack_sees_a_16_pixel_window():
    assert conv.receptive_field([5, 2, 5, 2], [1, 2, 1, 2]) == 16


def test_ch09_lenet5_refuses_a_larger_image_with_a_message():
    with pytest.raises(ValueError, match="28×28"):
        lenet.lenet5("modern")(torch.zeros(1, 1, 36, 36))

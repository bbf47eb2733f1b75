"""Looking inside PyTorch's autograd: saved tensors and layer Jacobians."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from coursekit.autodiff import chain
from coursekit.autodiff.autograd import flops, layer_jacobians, nbytes, saved_tensors
from coursekit.models.mlp import mlp


def test_a_linear_relu_stack_saves_its_activations_not_its_parameters():
    torch.manual_seed(0)
    net = mlp([6, 5, 3])
    x, labels = torch.randn(4, 6), torch.tensor([0, 1, 2, 0])
    loss, saved = saved_tensors(lambda: F.cross_entropy(net(x), labels),
                                exclude=net.parameters())
    shapes = [tuple(t.shape) for t in saved]
    assert shapes == [(4, 6), (4, 5), (4, 3), (4,), ()]
    assert nbytes(saved) == 4 * (24 + 20 + 12 + 1) + 8 * 4
    assert loss.grad_fn is not None
    _, with_parameters = saved_tensors(lambda: F.cross_entropy(net(x), labels))
    assert len(with_parameters) > len(saved)


def test_nothing_is_saved_under_no_grad():
    net = mlp([6, 5, 3])
    with torch.no_grad():
        out, saved = saved_tensors(lambda: net(torch.randn(2, 6)))
    assert saved == [] and out.grad_fn is None


def test_layer_jacobians_multiply_to_the_jacobian_of_the_composition():
    torch.manual_seed(0)
    net = mlp([7, 5, 4, 2])
    h = torch.randn(7)
    jacobians = layer_jacobians([net.block1, net.block2, net.head], h)
    assert [tuple(J.shape) for J in jacobians] == [(5, 7), (4, 5), (2, 4)]
    whole = torch.func.jacrev(lambda v: net(v[None])[0])(h)
    for order in chain.ORDERS:
        product, _ = chain.multiply(jacobians, order)
        torch.testing.assert_close(product, whole)
    with pytest.raises(ValueError, match="at least one layer"):
        layer_jacobians([], h)


def test_flops_counts_two_per_multiply_add_of_matrix_products_only():
    layer = torch.nn.Linear(5, 3)
    x = torch.randn(4, 5)
    assert flops(lambda: layer(x)) == 2 * 4 * 5 * 3
    assert flops(lambda: torch.relu(x).exp().sum()) == 0
    # backward: one product for the weight's gradient, a second only if the input needs one
    assert flops(layer(x).sum().backward) == 2 * 4 * 5 * 3
    x.requires_grad_()
    assert flops(layer(x).sum().backward) == 2 * (2 * 4 * 5 * 3)

"""coursekit.models.lenet: both LeNet5 variants, checked against the paper's own numbers."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from coursekit.models import lenet
from coursekit.models.lenet import (
    C3_CONNECTIONS,
    RBFOutput,
    ScaledTanh,
    SparseConv2d,
    Subsampling,
    count_connections,
    lenet5,
)

# Table I of LeCun et al. (1998), typed from the paper: rows are the 6 S2 maps, columns the
# 16 C3 maps, X where a C3 map reads an S2 map.
PAPER_TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""
# Trainable parameters and connections per layer, as printed in section II.B of the paper.
PAPER_PARAMETERS = {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}
PAPER_CONNECTIONS = {"c1": 122304, "s2": 5880, "c3": 151600, "s4": 2000, "c5": 48120,
                     "f6": 10164, "output": 840}


def _per_layer_parameters(model):
    return {name.split(".")[1]: n for name, n in lenet.count_parameters(model).items()}


def test_c3_table_is_the_papers():
    rows = PAPER_TABLE_I.split()
    paper = torch.tensor([[c == "X" for c in row] for row in rows])  # 6 x 16
    assert torch.equal(C3_CONNECTIONS, paper.T)


def test_classic_parameters_and_connections_are_the_papers():
    model = lenet5("classic")
    assert _per_layer_parameters(model) == PAPER_PARAMETERS
    assert sum(p.numel() for p in model.parameters()) == 60_000
    connections = {name.split(".")[1]: n for name, n in count_connections(model).items()}
    assert connections == PAPER_CONNECTIONS
    assert sum(connections.values()) == 340_908


def test_modern_parameters_follow_the_conv_and_linear_formulas():
    model = lenet5("modern", num_classes=7)
    expected = {
        "c1": 5 * 5 * 1 * 6 + 6, "c3": 5 * 5 * 6 * 16 + 16, "c5": 5 * 5 * 16 * 120 + 120,
        "f6": 120 * 84 + 84, "output": 84 * 7 + 7,
    }
    assert _per_layer_parameters(model) == expected


@pytest.mark.parametrize("variant", lenet.VARIANTS)
@pytest.mark.parametrize("num_classes", [10, 3])
def test_shapes(variant, num_classes):
    model = lenet5(variant, num_classes=num_classes)
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, num_classes)
    assert model.features(torch.randn(2, 1, 28, 28)).shape == (2, 120, 1, 1)


def test_builders_and_in_channels():
    assert lenet.lenet5_classic().variant == "classic"
    assert lenet.lenet5_modern().variant == "modern"
    assert lenet5(in_channels=3)(torch.randn(1, 3, 28, 28)).shape == (1, 10)


def test_modern_has_no_activation_after_pooling_and_it_would_change_nothing():
    names = list(dict(lenet5("modern").features.named_children()))
    for pool in ("s2", "s4"):
        following = names[names.index(pool) + 1]
        assert following.startswith("c"), f"{pool} is followed by {following}"
    x = torch.randn(8, 6, 28, 28)
    pooled = F.max_pool2d(F.relu(x), 2)
    assert torch.equal(F.relu(pooled), pooled)  # a ReLU after the pool is the identity
    assert torch.equal(F.max_pool2d(F.relu(x), 2), F.relu(F.max_pool2d(x, 2)))


def test_scaled_tanh_maps_one_to_one():
    f = ScaledTanh()
    torch.testing.assert_close(f(torch.tensor([-1.0, 0.0, 1.0])),
                               torch.tensor([-1.0, 0.0, 1.0]), atol=1e-4, rtol=0)


def test_subsampling_is_a_scaled_shifted_sum():
    layer = Subsampling(3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, -1.0, 2.0]))
        layer.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
    x = torch.randn(2, 3, 6, 6)
    block_sums = x.view(2, 3, 3, 2, 3, 2).sum(dim=(3, 5))
    expected = block_sums * layer.weight.view(1, 3, 1, 1) + layer.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(layer(x), expected)


def test_sparse_conv_is_a_masked_conv_and_ignores_unconnected_maps():
    torch.manual_seed(0)
    layer = SparseConv2d(C3_CONNECTIONS, kernel_size=5)
    x = torch.randn(2, 6, 14, 14, requires_grad=True)
    dense = layer.dense_weight()
    assert torch.equal(dense.abs().sum(dim=(2, 3)) > 0, C3_CONNECTIONS)
    torch.testing.assert_close(layer(x), F.conv2d(x, dense, layer.bias))
    for out_map in range(16):
        (grad,) = torch.autograd.grad(layer(x)[:, out_map].sum(), x)
        reads = grad.abs().sum(dim=(0, 2, 3)) > 0
        assert torch.equal(reads, C3_CONNECTIONS[out_map])


def test_sparse_conv_default_init_uses_each_maps_fan_in():
    torch.manual_seed(0)
    layer = SparseConv2d(C3_CONNECTIONS, kernel_size=5)
    owner = C3_CONNECTIONS.nonzero()[:, 0]
    fan_in = C3_CONNECTIONS.sum(dim=1).float()[owner] * 25
    assert (layer.weight.abs().amax(dim=(1, 2)) <= fan_in.rsqrt()).all()
    assert layer.weight.abs().max() > 0.9 / 150**0.5  # not all squeezed near zero


def test_sparse_conv_rejects_a_bad_table():
    with pytest.raises(ValueError, match="at least one input map"):
        SparseConv2d(torch.tensor([[True, False], [False, False]]), 3)


def test_classic_initialisation_respects_the_fan_in_bound():
    model = lenet5("classic")
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            bound = 2.4 / module.weight[0].numel()
            assert module.weight.abs().max() <= bound
        if isinstance(module, SparseConv2d):
            bound = (2.4 / module.fan_in().float())[module.kernel_owner()]
            assert (module.weight.abs().amax(dim=(1, 2)) <= bound).all()


def test_rbf_output_scores_are_minus_squared_distances():
    centers = torch.randn(4, 5)
    layer = RBFOutput(5, 4, centers)
    x = torch.randn(3, 5)
    torch.testing.assert_close(layer(x), -torch.cdist(x, centers) ** 2, atol=1e-4, rtol=1e-4)
    assert layer(centers).argmax(1).tolist() == [0, 1, 2, 3]
    assert not list(layer.parameters()), "the centres are fixed, not trained"


def test_digit_codes_are_distinct_plus_minus_one_vectors():
    codes = lenet.digit_codes()
    assert codes.shape == (10, 84)
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    assert torch.cdist(codes, codes).add(torch.eye(10)).min() > 0


def test_digit_codes_are_close_for_some_similar_digits_only():
    codes = lenet.digit_codes()
    differing = (codes[:, None] != codes[None]).sum(-1)  # 10 x 10 Hamming distances
    rows, cols = torch.triu_indices(10, 10, offset=1)
    average = differing[rows, cols].float().mean()
    assert differing[6, 8] < average  # the docstring's example of a close pair
    assert differing[1, 7] >= average and differing[4, 9] >= average  # and its counterexamples


def test_c5_is_a_fully_connected_layer():
    model = lenet5("modern").eval()
    s4 = torch.randn(3, 16, 5, 5)
    c5 = model.features.c5
    linear = nn.Linear(16 * 5 * 5, 120)
    with torch.no_grad():
        linear.weight.copy_(c5.weight.flatten(1))
        linear.bias.copy_(c5.bias)
        torch.testing.assert_close(c5(s4).flatten(1), linear(s4.flatten(1)))


def test_torch_fx_feature_extraction_works():
    model = lenet5("classic")
    extractor = create_feature_extractor(model, {"features.s2": "s2", "classifier.f6": "f6"})
    out = extractor(torch.randn(2, 1, 28, 28))
    assert out["s2"].shape == (2, 6, 14, 14) and out["f6"].shape == (2, 84)


@pytest.mark.parametrize("variant", lenet.VARIANTS)
def test_a_few_steps_reduce_the_loss(variant):
    torch.manual_seed(0)
    model = lenet5(variant)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = F.cross_entropy(model(x), y).item()
    for _ in range(40):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    assert F.cross_entropy(model(x), y).item() < 0.5 * first


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: lenet5("vintage"), "Unknown LeNet5 variant"),
        (lambda: lenet5(num_classes=0), "num_classes"),
        (lambda: lenet5()(torch.zeros(1, 1, 32, 32)), "expects N×C×28×28"),
        (lambda: RBFOutput(84, 10, torch.zeros(10, 5)), "centers must have shape"),
    ],
)
def test_bad_input_is_explained(call, message):
    with pytest.raises(ValueError, match=message):
        call()

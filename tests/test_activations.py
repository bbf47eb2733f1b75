"""The activation table (analytic derivatives vs autograd) and the dead-unit probe."""

import math

import pytest
import torch
from torch import nn

from coursekit.models.mlp import MLP, mlp
from coursekit.scratch import activations
from coursekit.scratch.activations import ACTIVATIONS

NAMES = list(ACTIVATIONS)


def autograd_derivative(fn, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x).sum(), x)
    return grad


@pytest.mark.parametrize("name", NAMES)
def test_analytic_derivative_matches_autograd(name):
    act = ACTIVATIONS[name]
    x = torch.arange(-1200, 1201, dtype=torch.float64) / 100  # includes x = 0 exactly
    assert (x == 0).any()
    torch.testing.assert_close(act.derivative(x), autograd_derivative(act.function, x))


@pytest.mark.parametrize("name", NAMES)
def test_function_and_module_agree_and_stay_in_range(name):
    act = ACTIVATIONS[name]
    x = torch.randn(1000, dtype=torch.float64) * 20
    y = act.function(x)
    torch.testing.assert_close(act.layer()(x), y)
    low, high = act.output_range
    assert (y >= low).all() and (y <= high).all()


def test_known_values_at_zero_and_saturation():
    zero = torch.zeros(1, dtype=torch.float64)
    assert ACTIVATIONS["sigmoid"].derivative(zero).item() == 0.25
    assert ACTIVATIONS["tanh"].derivative(zero).item() == 1.0
    big = torch.tensor([-20.0, 20.0], dtype=torch.float64)
    assert (ACTIVATIONS["sigmoid"].derivative(big) < 1e-8).all()
    assert (ACTIVATIONS["tanh"].derivative(big) < 1e-16).all()
    assert ACTIVATIONS["relu"].derivative(big).tolist() == [0.0, 1.0]
    assert ACTIVATIONS["leaky_relu"].derivative(big).tolist() == [activations.LEAKY_SLOPE, 1.0]


def test_sigmoid_derivative_never_exceeds_a_quarter():
    x = torch.linspace(-50, 50, 100_001, dtype=torch.float64)
    assert ACTIVATIONS["sigmoid"].derivative(x).max().item() <= 0.25
    assert ACTIVATIONS["tanh"].derivative(x).max().item() <= 1.0


def test_get_accepts_spellings_and_rejects_unknown_names():
    assert activations.get("Leaky-ReLU") is ACTIVATIONS["leaky_relu"]
    with pytest.raises(ValueError, match="Choose one of: sigmoid, tanh, relu, leaky_relu"):
        activations.get("swish")


def dead_network() -> nn.Sequential:
    """Two hidden ReLU units, the second with a bias so negative it can never fire."""
    first = nn.Linear(3, 2)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.1, 0.1, 0.1]]))
        first.bias.copy_(torch.tensor([0.0, -100.0]))
    return nn.Sequential(first, nn.ReLU(inplace=True), nn.Linear(2, 1))


def test_unit_activity_finds_the_dead_unit_in_batches_and_loaders():
    model = dead_network()
    x = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [2.0, 5, 5], [-3.0, 1, 1]])
    activity = activations.unit_activity(model, x)
    assert activity.examples == 4
    assert activity.active_counts["1"].tolist() == [2, 0]
    assert activity.ever_active["1"].tolist() == [True, False]
    assert activity.dead_per_layer == {"1": 0.5}
    assert activity.dead_units == 1 and activity.total_units == 2
    torch.testing.assert_close(activity.active_rate["1"], torch.tensor([0.5, 0.0],
                                                                       dtype=torch.float64))
    loader = [(x[:2], torch.zeros(2)), (x[2:], torch.zeros(2))]
    assert activations.unit_activity(model, loader).active_counts["1"].tolist() == [2, 0]
    assert activations.dead_fraction(model, x) == 0.5


def test_unit_activity_restores_mode_and_removes_hooks():
    model = dead_network().train()
    activations.unit_activity(model, torch.randn(5, 3))
    assert model.training
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_conv_channels_count_as_units():
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 1.0]).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, -10.0]))
    model = nn.Sequential(conv, nn.ReLU())
    x = torch.zeros(3, 1, 4, 4)
    x[0, 0, 1, 2] = 1.0  # one positive pixel in one image
    activity = activations.unit_activity(model, x)
    assert activity.active_counts["1"].tolist() == [1, 0]


def test_unit_activity_explains_a_model_without_activation_modules():
    with pytest.raises(ValueError, match="instead of calling torch.relu"):
        activations.unit_activity(nn.Linear(3, 2), torch.randn(4, 3))
    with pytest.raises(ValueError, match="no examples"):
        activations.unit_activity(dead_network(), [])


def test_activation_inputs_are_the_pre_activations():
    torch.manual_seed(0)
    model = mlp([5, 4, 3, 2], "tanh")
    x = torch.randn(6, 5)
    z = activations.activation_inputs(model, x)
    assert list(z) == ["block1.1", "block2.1"]
    torch.testing.assert_close(z["block1.1"], model.block1[0](x))
    torch.testing.assert_close(z["block2.1"], model.block2[0](torch.tanh(z["block1.1"])))


# --------------------------------------------------------------------------- the MLP builder


@pytest.mark.parametrize("activation", [*NAMES, nn.GELU, None])
def test_mlp_shapes_and_layers(activation):
    model = mlp([12, 8, 6, 3], activation)
    assert isinstance(model, MLP) and model.widths == (12, 8, 6, 3)
    assert model(torch.randn(4, 3, 2, 2)).shape == (4, 3)  # inputs are flattened
    assert [(m.in_features, m.out_features) for m in model.linear_layers()] == [
        (12, 8), (8, 6), (6, 3)
    ]
    n_activations = sum(isinstance(m, (*activations.ACTIVATION_LAYERS, nn.GELU))
                        for m in model.modules())
    assert n_activations == (0 if activation is None else 2)


def test_linear_only_mlp_collapses_to_one_linear_map():
    torch.manual_seed(0)
    model = mlp([7, 5, 2, 4], None).double()
    weight, bias = torch.eye(7, dtype=torch.float64), torch.zeros(7, dtype=torch.float64)
    for layer in model.linear_layers():
        weight, bias = layer.weight @ weight, layer.weight @ bias + layer.bias
    x = torch.randn(10, 7, dtype=torch.float64)
    torch.testing.assert_close(model(x), x @ weight.T + bias)
    assert torch.linalg.matrix_rank(weight).item() == 2  # the narrowest layer bounds the rank


def test_mlp_rejects_bad_widths_and_activations():
    with pytest.raises(ValueError, match="at least an input and an output"):
        mlp([784])
    with pytest.raises(ValueError, match="positive integers"):
        mlp([784, 0, 10])
    with pytest.raises(ValueError, match="Unknown activation"):
        mlp([4, 3, 2], "softsign")
    with pytest.raises(TypeError, match="activation must be"):
        mlp([4, 3, 2], 3)


def test_leaky_slope_is_torch_default():
    assert math.isclose(activations.LEAKY_SLOPE, nn.LeakyReLU().negative_slope)


def test_relu_derivative_at_zero_is_the_subgradient_torch_uses():
    """ReLU'(0) is undefined; the table, like torch's backward, uses 0 (leaky: the slope)."""
    zero = torch.tensor([0.0, -0.0], dtype=torch.float64)
    slope = activations.LEAKY_SLOPE
    assert ACTIVATIONS["relu"].derivative(zero).tolist() == [0.0, 0.0]
    assert autograd_derivative(nn.ReLU(), zero).tolist() == [0.0, 0.0]
    assert ACTIVATIONS["leaky_relu"].derivative(zero).tolist() == [slope, slope]
    assert autograd_derivative(nn.LeakyReLU(slope), zero).tolist() == [slope, slope]
    tiny = torch.tensor([-1e-300, 1e-300], dtype=torch.float64)  # either side of the kink
    assert ACTIVATIONS["relu"].derivative(tiny).tolist() == [0.0, 1.0]


# --- backward signals and counted cost (chapter 2, sections 2.3 and 2.4) ---------------------


def test_activation_input_grads_equal_autograd_on_the_pre_activations():
    torch.manual_seed(0)
    net = mlp([5, 4, 3, 2], "tanh")
    x, y = torch.randn(6, 5), torch.tensor([0, 1, 0, 1, 1, 0])
    grads = activations.activation_input_grads(net, x, y)
    z1 = net.block1[0](net.flatten(x))
    z2 = net.block2[0](torch.tanh(z1))
    loss = nn.functional.cross_entropy(net.head(torch.tanh(z2)), y)
    expected = torch.autograd.grad(loss, [z1, z2])
    assert list(grads) == ["block1.1", "block2.1"]
    for got, want in zip(grads.values(), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_activation_input_grads_leave_the_weight_gradients_of_one_backward_pass():
    torch.manual_seed(0)
    net = mlp([5, 4, 2], "relu")
    x, y = torch.randn(3, 5), torch.tensor([0, 1, 1])
    activations.activation_input_grads(net, x, y)
    hooked = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    for got, want in zip(hooked, (p.grad for p in net.parameters()), strict=True):
        torch.testing.assert_close(got, want)
    assert not net.block1[1]._forward_pre_hooks  # hooks removed


@pytest.mark.parametrize("name", NAMES)
def test_an_activation_keeps_one_input_sized_tensor_and_does_no_matrix_flops(name):
    x = torch.randn(4, 8, requires_grad=True)
    cost = activations.forward_backward_cost(ACTIVATIONS[name].function, x, torch.randn(4, 8))
    assert cost == activations.Cost(elements=32, matmul_flops=0, saved_elements=32)
    assert x.grad is None


def test_a_linear_layer_costs_three_matrix_products():
    x = torch.randn(4, 8, requires_grad=True)
    cost = activations.forward_backward_cost(nn.Linear(8, 3), x, torch.randn(4, 3))
    # forward x @ W.T, backward grad @ W and grad.T @ x: 2 * 4 * 8 * 3 FLOPs each
    assert cost.matmul_flops == 3 * 2 * 4 * 8 * 3
    assert cost.saved_elements == 4 * 8 + 8 * 3  # the input and the weight


def test_forward_backward_cost_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="require grad"):
        activations.forward_backward_cost(torch.relu, torch.randn(3), torch.randn(3))

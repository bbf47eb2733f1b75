"""Activation functions as data, and a probe for dead ReLUs.

Chapter 2 compares sigmoid, tanh, ReLU and leaky ReLU by their range, where they saturate,
their gradients and their cost. :data:`ACTIVATIONS` holds each one's function, its
*analytic* derivative (written out, so the tests can check it against ``torch.autograd``),
its ``nn.Module`` and its range, so the chapter plots and asserts from one table.

:func:`activation_inputs` captures the pre-activations entering each activation layer,
to evaluate ``f'`` where a network actually operates, and :func:`activation_input_grads` the
loss gradients with respect to them, the backward signal. :func:`forward_backward_cost`
counts an operation's work (matrix FLOPs, elements kept for backward) instead of timing it.
:func:`unit_activity` and :func:`dead_fraction` find units whose pre-activation is never
positive on some data. For a ReLU such a unit outputs 0 and passes back a zero gradient on
every example, so gradient descent can no longer change its incoming weights: it is dead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

LEAKY_SLOPE = 0.01  # Maas et al. (2013); torch's default negative_slope


@dataclass(frozen=True)
class Activation:
    """One non-linearity: the function, its derivative written by hand, and its layer."""

    name: str
    function: Callable[[Tensor], Tensor]
    derivative: Callable[[Tensor], Tensor]
    layer: Callable[[], nn.Module]
    output_range: tuple[float, float]  # open or closed ends are stated in ``formula``
    formula: str  # LaTeX, for tables and plot titles
    derivative_formula: str


def _sigmoid_derivative(x: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 - s)


def _tanh_derivative(x: Tensor) -> Tensor:
    return 1 - torch.tanh(x) ** 2


def _relu_derivative(x: Tensor) -> Tensor:
    # At x = 0 the derivative is undefined; we use 0, the subgradient torch's backward picks.
    return (x > 0).to(x.dtype)


def _leaky_relu_derivative(x: Tensor) -> Tensor:
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, LEAKY_SLOPE))


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(
        "sigmoid", torch.sigmoid, _sigmoid_derivative, nn.Sigmoid, (0.0, 1.0),
        r"\sigma(x) = \frac{1}{1 + e^{-x}}", r"\sigma'(x) = \sigma(x)\,(1 - \sigma(x))",
    ),
    "tanh": Activation(
        "tanh", torch.tanh, _tanh_derivative, nn.Tanh, (-1.0, 1.0),
        r"\tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}", r"\tanh'(x) = 1 - \tanh^2(x)",
    ),
    "relu": Activation(
        "relu", torch.relu, _relu_derivative, nn.ReLU, (0.0, math.inf),
        r"\mathrm{ReLU}(x) = \max(0, x)", r"\mathrm{ReLU}'(x) = \mathbb{1}[x > 0]",
    ),
    "leaky_relu": Activation(
        "leaky_relu",
        lambda x: nn.functional.leaky_relu(x, LEAKY_SLOPE),
        _leaky_relu_derivative,
        lambda: nn.LeakyReLU(LEAKY_SLOPE),
        (-math.inf, math.inf),
        rf"\mathrm{{LReLU}}(x) = \max({LEAKY_SLOPE}\,x, x)",
        rf"\mathrm{{LReLU}}'(x) = 1 \text{{ if }} x > 0 \text{{ else }} {LEAKY_SLOPE}",
    ),
}


def get(name: str) -> Activation:
    """Look an activation up by name, with an error that lists the valid names."""
    key = name.lower().replace("-", "_").replace(" ", "_")
    if key not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {name!r}. Choose one of: {', '.join(ACTIVATIONS)}."
        )
    return ACTIVATIONS[key]


# --------------------------------------------------------------------------- hooks

RECTIFIERS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.LeakyReLU)
ACTIVATION_LAYERS: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU)


def _find_layers(model: nn.Module,
                 layer_types: tuple[type[nn.Module], ...]) -> dict[str, nn.Module]:
    layers = {name: m for name, m in model.named_modules() if isinstance(m, layer_types)}
    if not layers:
        kinds = ", ".join(t.__name__ for t in layer_types)
        raise ValueError(
            f"{type(model).__name__} has no {kinds} modules to measure. Activations are "
            "read with hooks on activation modules: build the network with nn.ReLU, "
            "nn.Sigmoid, ... layers instead of calling torch.relu inside forward()."
        )
    return layers


def _batches(inputs: Tensor | Iterable) -> Iterable[Tensor]:
    if isinstance(inputs, Tensor):
        yield inputs
        return
    for batch in inputs:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def _run_with_pre_hooks(model: nn.Module, inputs: Tensor | Iterable,
                        layers: dict[str, nn.Module], record: Callable[[str, Tensor], None]) -> int:
    """Run ``model`` (eval mode, no grad) and call ``record(name, layer_input)`` per layer.

    Forward *pre*-hooks see each layer's input before the layer runs, so ``inplace=True``
    activations are measured correctly. Returns the number of examples seen.
    """
    handles = [
        m.register_forward_pre_hook(lambda _m, args, name=n: record(name, args[0]))
        for n, m in layers.items()
    ]
    was_training = model.training
    device = next(model.parameters()).device
    examples = 0
    model.eval()
    try:
        with torch.no_grad():
            for x in _batches(inputs):
                model(x.to(device))
                examples += len(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if examples == 0:
        raise ValueError("inputs held no examples; pass a non-empty batch or loader.")
    return examples


def activation_inputs(model: nn.Module, x: Tensor,
                      layer_types: tuple[type[nn.Module], ...] = ACTIVATION_LAYERS
                      ) -> dict[str, Tensor]:
    """The pre-activations ``z`` entering each activation layer for one batch ``x``.

    With them one can evaluate ``f'(z)``, the factor each layer contributes to the chain rule.
    """
    seen: dict[str, Tensor] = {}
    layers = _find_layers(model, layer_types)
    _run_with_pre_hooks(model, x, layers, lambda name, z: seen.__setitem__(name, z.detach().cpu()))
    return seen


# --------------------------------------------------------------------------- dead units


@dataclass
class UnitActivity:
    """How often each unit of each rectifier layer had a positive pre-activation.

    ``active_counts[name]`` holds, per unit (feature dimension 1: a neuron of a linear layer,
    a channel of a conv layer, which counts as active on an example if it is positive at any
    position), the number of examples on which it was positive, out of ``examples``.
    "Never active" only means something relative to the data measured.
    """

    active_counts: dict[str, Tensor] = field(default_factory=dict)
    examples: int = 0

    @property
    def ever_active(self) -> dict[str, Tensor]:
        """Per layer, a bool per unit: positive on at least one example."""
        return {name: c > 0 for name, c in self.active_counts.items()}

    @property
    def active_rate(self) -> dict[str, Tensor]:
        """Per layer, the fraction of examples on which each unit was positive."""
        return {name: c.double() / self.examples for name, c in self.active_counts.items()}

    @property
    def dead_per_layer(self) -> dict[str, float]:
        """Fraction of units in each layer whose pre-activation was never positive."""
        return {name: (c == 0).double().mean().item() for name, c in self.active_counts.items()}

    @property
    def dead_units(self) -> int:
        return sum(int((c == 0).sum()) for c in self.active_counts.values())

    @property
    def total_units(self) -> int:
        return sum(c.numel() for c in self.active_counts.values())

    @property
    def dead_fraction(self) -> float:
        """Dead units over all units of all measured layers."""
        return self.dead_units / self.total_units


def unit_activity(model: nn.Module, inputs: Tensor | Iterable,
                  layer_types: tuple[type[nn.Module], ...] = RECTIFIERS) -> UnitActivity:
    """Run ``model`` on ``inputs`` and count, per unit, the examples where it was positive.

    ``inputs`` is one batch or an iterable of batches (``(x, y)`` pairs are fine, so a test
    loader can be passed directly). The model runs in eval mode without gradients and is
    restored to its previous mode afterwards.
    """
    activity = UnitActivity()

    def record(name: str, z: Tensor) -> None:
        if z.dim() < 2:
            raise ValueError(
                f"{name}: expected a batch shaped (N, units, ...), got {tuple(z.shape)}."
            )
        positive = (z > 0).reshape(z.shape[0], z.shape[1], -1).any(dim=2)
        counts = positive.sum(dim=0).cpu()
        previous = activity.active_counts.get(name)
        activity.active_counts[name] = counts if previous is None else previous + counts

    activity.examples = _run_with_pre_hooks(model, inputs, _find_layers(model, layer_types), record)
    return activity


def dead_fraction(model: nn.Module, inputs: Tensor | Iterable,
                  layer_types: tuple[type[nn.Module], ...] = RECTIFIERS) -> float:
    """Fraction of rectifier units never positive on ``inputs`` (see :func:`unit_activity`)."""
    return unit_activity(model, inputs, layer_types).dead_fraction


# --------------------------------------------------------------------------- backward signals


def activation_input_grads(model: nn.Module, x: Tensor, target: Tensor,
                           loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
                           layer_types: tuple[type[nn.Module], ...] = ACTIVATION_LAYERS
                           ) -> dict[str, Tensor]:
    """The gradient ``∂loss/∂z`` of each activation layer's input ``z``, for one batch.

    Backpropagation multiplies this signal by ``f'(z)`` and a transposed weight matrix at every
    layer, so its size per layer shows how the backward pass grows or shrinks with depth. The
    weight gradient of the layer that produced ``z`` is built from it and from that layer's
    input. ``loss_fn`` defaults to cross-entropy. Parameter gradients accumulate as in any
    ``backward``; the model's mode is kept.
    """
    loss_fn = loss_fn or nn.functional.cross_entropy
    layers = _find_layers(model, layer_types)
    grads: dict[str, Tensor] = {}

    def capture(name: str, z: Tensor) -> None:
        if z.requires_grad:
            z.register_hook(lambda g: grads.__setitem__(name, g.detach().cpu()))

    handles = [m.register_forward_pre_hook(lambda _m, args, name=n: capture(name, args[0]))
               for n, m in layers.items()]
    try:
        loss_fn(model(x), target).backward()
    finally:
        for handle in handles:
            handle.remove()
    return {name: grads[name] for name in layers if name in grads}


# --------------------------------------------------------------------------- cost as counts


@dataclass(frozen=True)
class Cost:
    """What one forward and backward pass of an operation does, counted rather than timed.

    ``matmul_flops`` is what :class:`torch.utils.flop_counter.FlopCounterMode` counts: the
    floating-point operations of matrix products and convolutions (element-wise operations
    count zero there). ``saved_elements`` is the number of tensor elements autograd keeps
    from the forward pass for the backward pass, read once more when it runs.
    """

    elements: int
    matmul_flops: int
    saved_elements: int


def forward_backward_cost(fn: Callable[[Tensor], Tensor], x: Tensor, upstream: Tensor) -> Cost:
    """Count the work of ``fn(x).backward(upstream)`` (``x`` must require grad)."""
    from torch.utils.flop_counter import FlopCounterMode

    if not x.requires_grad:
        raise ValueError("x must require grad, or there is no backward pass to count.")
    saved: list[int] = []

    def pack(tensor: Tensor) -> Tensor:
        saved.append(tensor.numel())
        return tensor

    with FlopCounterMode(display=False) as counter:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            y = fn(x)
        y.backward(upstream)
    x.grad = None
    return Cost(x.numel(), int(counter.get_total_flops()), sum(saved))

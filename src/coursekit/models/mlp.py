"""Multi-layer perceptrons in torchvision's style: a block class and a builder.

``mlp([784, 256, 256, 10], "relu")`` is Flatten → (Linear → ReLU) → (Linear → ReLU) →
Linear. The last layer has no activation (it produces logits). ``activation=None`` builds
a purely linear stack, which chapter 2 uses to show that such a stack collapses to a
single linear map.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from torch import nn

from coursekit.scratch import activations

ActivationSpec = str | Callable[[], nn.Module] | None


class LinearBlock(nn.Sequential):
    """``Linear(in, out)`` followed by an activation layer (or nothing if ``None``)."""

    def __init__(self, in_features: int, out_features: int,
                 activation: Callable[[], nn.Module] | None = None, bias: bool = True):
        layers: list[nn.Module] = [nn.Linear(in_features, out_features, bias=bias)]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)
        self.in_features, self.out_features = in_features, out_features


class MLP(nn.Sequential):
    """A fully connected network: ``len(widths) - 1`` linear layers, inputs flattened.

    ``widths`` lists the input size, the hidden widths and the number of outputs.
    Hidden blocks are named ``block1``, ``block2``, …; the output layer is ``head``.
    """

    def __init__(self, widths: Sequence[int], activation: ActivationSpec = "relu",
                 bias: bool = True):
        widths = _check_widths(widths)
        make_activation = _activation_factory(activation)
        layers: dict[str, nn.Module] = {"flatten": nn.Flatten()}
        for i, (n_in, n_out) in enumerate(zip(widths[:-2], widths[1:-1], strict=True), 1):
            layers[f"block{i}"] = LinearBlock(n_in, n_out, make_activation, bias=bias)
        layers["head"] = nn.Linear(widths[-2], widths[-1], bias=bias)
        super().__init__(OrderedDict(layers))
        self.widths = tuple(widths)

    def linear_layers(self) -> list[nn.Linear]:
        """The ``nn.Linear`` layers from input to output."""
        return [m for m in self.modules() if isinstance(m, nn.Linear)]


def mlp(widths: Sequence[int], activation: ActivationSpec = "relu", bias: bool = True) -> MLP:
    """Build an :class:`MLP`. ``activation``: a name from
    :data:`coursekit.scratch.activations.ACTIVATIONS`, a module class or factory, or ``None``."""
    return MLP(widths, activation, bias=bias)


def _check_widths(widths: Sequence[int]) -> list[int]:
    widths = list(widths)
    if len(widths) < 2:
        raise ValueError(
            f"widths={widths!r} needs at least an input and an output size, "
            "e.g. [784, 10] (one linear layer) or [784, 256, 10] (one hidden layer)."
        )
    if not all(isinstance(w, int) and w > 0 for w in widths):
        raise ValueError(f"widths={widths!r} must be positive integers.")
    return widths


def _activation_factory(activation: ActivationSpec) -> Callable[[], nn.Module] | None:
    if activation is None:
        return None
    if isinstance(activation, str):
        return activations.get(activation).layer
    if callable(activation):
        return activation
    raise TypeError(
        f"activation must be a name ({', '.join(activations.ACTIVATIONS)}), an nn.Module "
        f"class or factory, or None; got {type(activation).__name__}."
    )

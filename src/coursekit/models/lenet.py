"""LeNet5 as published (LeCun et al., 1998) and as it is usually built today.

Both variants take a 1×28×28 image, pad it to 32×32 in the first convolution, and share
the published layer sizes: C1 (6 maps 28×28) → S2 (6 maps 14×14) → C3 (16 maps 10×10) →
S4 (16 maps 5×5) → C5 (120 maps 1×1) → F6 (84 units) → output (``num_classes``).

``classic`` follows the paper: the scaled tanh ``1.7159·tanh(2a/3)`` after every layer from
C1 to F6, subsampling layers with a trainable coefficient and bias per map, C3 wired with the
paper's sparse connection table, uniform ``±2.4/fan_in`` initialisation, and Euclidean RBF output
units whose centres are fixed ±1 codes. One documented simplification: the paper's centres
were ±1 bitmaps of stylised characters, shown only as a small figure; ours are 7×12
bitmaps of the ten digits drawn for this book (:func:`digit_codes`). The output returns
``-‖x - c_i‖²``, so cross-entropy on it is the paper's discriminative (MAP) criterion without
the constant "rubbish class" term ``e^{-j}``.

``modern`` is the common re-implementation: ReLU, max pooling, no activation after the
pooling layers, a complete C3, default PyTorch initialisation and a linear output layer.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "C3_CONNECTIONS",
    "LeNet5",
    "RBFOutput",
    "ScaledTanh",
    "SparseConv2d",
    "Subsampling",
    "count_connections",
    "count_parameters",
    "digit_codes",
    "lenet5",
    "lenet5_classic",
    "lenet5_modern",
]

VARIANTS = ("classic", "modern")
INPUT_SIZE = (28, 28)


class ScaledTanh(nn.Module):
    """``A·tanh(S·a)`` with A = 1.7159, S = 2/3: f(±1) = ±1 and the gain at 0 is about 1.14."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2 / 3):
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4f}"


class Subsampling(nn.Module):
    """LeNet's S-layer: each ``k×k`` block's sum times a trainable coefficient, plus a bias.

    One coefficient and one bias per map (2 parameters per map), non-overlapping windows.
    It is average pooling with a learned scale and offset.
    """

    def __init__(self, channels: int, kernel_size: int = 2):
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        sums = F.avg_pool2d(x, k) * (k * k)
        return sums * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"channels={self.weight.numel()}, kernel_size={self.kernel_size}"


def _c3_table() -> torch.Tensor:
    """The paper's Table I as a 16×6 boolean (output map × input map) table.

    Maps 0-5 read 3 neighbouring S2 maps, 6-11 read 4 neighbouring maps, 12-14 read 4
    non-neighbouring maps, and map 15 reads all 6 (indices modulo 6).
    """
    inputs = [[(i + j) % 6 for j in range(3)] for i in range(6)]
    inputs += [[(i + j) % 6 for j in range(4)] for i in range(6)]
    inputs += [[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5], list(range(6))]
    table = torch.zeros(16, 6, dtype=torch.bool)
    for out, ins in enumerate(inputs):
        table[out, ins] = True
    return table


C3_CONNECTIONS = _c3_table()


class SparseConv2d(nn.Module):
    """A convolution where output map ``o`` sees input map ``i`` only if ``connections[o, i]``.

    Only the connected ``k×k`` kernels are parameters (packed in ``weight``), so parameter
    counts are honest; the forward pass scatters them into a dense kernel with zeros
    elsewhere and runs one ordinary convolution.
    """

    def __init__(self, connections: torch.Tensor, kernel_size: int, bias: bool = True):
        super().__init__()
        connections = torch.as_tensor(connections, dtype=torch.bool)
        if connections.dim() != 2 or not connections.any(dim=1).all():
            raise ValueError(
                "connections must be an out_channels×in_channels boolean table in which "
                "every output map reads at least one input map"
            )
        self.register_buffer("connections", connections.clone())
        # Where each packed kernel goes in the flattened out×in grid of kernels.
        self.register_buffer("positions", connections.flatten().nonzero().flatten())
        self.out_channels, self.in_channels = connections.shape
        self.kernel_size = kernel_size
        n = int(connections.sum())
        self.weight = nn.Parameter(torch.empty(n, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels)) if bias else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Uniform in ±1/sqrt(fan_in) of each output map, the bound ``nn.Conv2d`` uses."""
        bound = self.fan_in().float().rsqrt()
        self.weight.uniform_(-1, 1).mul_(bound[self.kernel_owner()].view(-1, 1, 1))
        if self.bias is not None:
            self.bias.uniform_(-1, 1).mul_(bound)

    def kernel_owner(self) -> torch.Tensor:
        """The output map each packed kernel of ``weight`` belongs to."""
        return self.connections.nonzero()[:, 0]

    def dense_weight(self) -> torch.Tensor:
        """The equivalent ``out×in×k×k`` kernel, zero where the table has no connection."""
        k = self.kernel_size
        dense = self.weight.new_zeros(self.out_channels * self.in_channels, k, k)
        dense = dense.index_copy(0, self.positions, self.weight)
        return dense.view(self.out_channels, self.in_channels, k, k)

    def fan_in(self) -> torch.Tensor:
        """Inputs read by each output map: (connected input maps) × k²."""
        return self.connections.sum(dim=1) * self.kernel_size**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"connections={int(self.connections.sum())}/{self.connections.numel()}")


_DIGIT_BITMAPS = """
    ....... ....... ....... ....... ....... ....... ....... ....... ....... .......
    ..###.. ...#... ..###.. .####.. ....#.. ####### ..###.. ####### ..###.. ..###..
    .#...#. ..##... .#...#. .....#. ...##.. #...... .#..... ......# .#...#. .#...#.
    #.....# .#.#... .....#. .....#. ..#.#.. #...... #...... .....#. .#...#. #.....#
    #.....# ...#... .....#. .....#. .#..#.. #...... #...... .....#. .#...#. #.....#
    #.....# ...#... ....#.. ..###.. #...#.. #####.. #.###.. ....#.. ..###.. .#...##
    #.....# ...#... ...#... .....#. ####### .....#. ##...#. ....#.. .#...#. ..###.#
    #.....# ...#... ..#.... .....#. ....#.. ......# #.....# ...#... #.....# ......#
    #.....# ...#... .#..... .....#. ....#.. ......# #.....# ...#... #.....# ......#
    .#...#. ...#... #...... .....#. ....#.. .....#. .#...#. ..#.... .#...#. .....#.
    ..###.. .#####. ####### .####.. ....#.. #####.. ..###.. ..#.... ..###.. ..###..
    ....... ....... ....... ....... ....... ....... ....... ....... ....... .......
"""


def digit_codes() -> torch.Tensor:
    """Ten 7×12 bitmaps of the digits as a 10×84 tensor of ±1 (``#`` is +1).

    Like the paper's RBF centres they are "stylised images" of the classes, so digits drawn
    alike can get close codes (6 and 8 differ in fewer pixels than the average pair). The
    bitmaps were drawn, not optimised: other confusable pairs (1 and 7, 4 and 9) are about as
    far apart as the average pair or farther.
    """
    rows = [line.split() for line in _DIGIT_BITMAPS.strip("\n").splitlines()]
    bitmaps = torch.tensor(
        [[[1.0 if c == "#" else -1.0 for c in rows[r][d]] for r in range(12)]
         for d in range(10)]
    )
    return bitmaps.flatten(1)


class RBFOutput(nn.Module):
    """Euclidean RBF units: ``y_i = ‖x − c_i‖²`` with fixed centres; returns ``−y``.

    The centres are a buffer, not parameters (the paper kept them fixed). Returning ``−y``
    makes the output usable as logits: the nearest centre gets the largest score.
    """

    def __init__(self, in_features: int, num_classes: int, centers: torch.Tensor | None = None):
        super().__init__()
        if centers is None:
            if (in_features, num_classes) == (84, 10):
                centers = digit_codes()
            else:
                generator = torch.Generator().manual_seed(1998)
                signs = torch.randint(0, 2, (num_classes, in_features), generator=generator)
                centers = signs.float() * 2 - 1
        if tuple(centers.shape) != (num_classes, in_features):
            raise ValueError(
                f"centers must have shape ({num_classes}, {in_features}) "
                f"(num_classes, in_features), not {tuple(centers.shape)}"
            )
        self.register_buffer("centers", centers.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squared = (x.unsqueeze(1) - self.centers.unsqueeze(0)).pow(2).sum(dim=-1)
        return -squared

    def extra_repr(self) -> str:
        classes, features = self.centers.shape
        return f"in_features={features}, num_classes={classes} (fixed centres)"


def _check_input_size(x: torch.Tensor) -> None:
    if tuple(x.shape[-2:]) != INPUT_SIZE:
        raise ValueError(
            f"LeNet5 expects N×C×28×28 images (C1 pads them to 32×32), got shape "
            f"{tuple(x.shape)}; resize or crop the input, or call .features directly "
            "to slide the network over a larger image"
        )


torch.fx.wrap("_check_input_size")  # a leaf for torch.fx, so feature extraction can trace


class LeNet5(nn.Module):
    """LeNet5 for 1×28×28 inputs; ``variant`` is ``"classic"`` (the paper) or ``"modern"``."""

    def __init__(self, variant: str = "modern", num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"Unknown LeNet5 variant {variant!r}; choose one of {VARIANTS}.")
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, not {num_classes}")
        self.variant = variant
        if variant == "classic":
            act = ScaledTanh
            self.features = nn.Sequential(OrderedDict(
                c1=nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), act1=act(),
                s2=Subsampling(6), act2=act(),
                c3=SparseConv2d(C3_CONNECTIONS, kernel_size=5), act3=act(),
                s4=Subsampling(16), act4=act(),
                c5=nn.Conv2d(16, 120, kernel_size=5), act5=act(),
            ))
            self.classifier = nn.Sequential(OrderedDict(
                f6=nn.Linear(120, 84), act6=act(), output=RBFOutput(84, num_classes),
            ))
            self._init_classic()
        else:
            self.features = nn.Sequential(OrderedDict(
                c1=nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), relu1=nn.ReLU(),
                s2=nn.MaxPool2d(2),
                c3=nn.Conv2d(6, 16, kernel_size=5), relu3=nn.ReLU(),
                s4=nn.MaxPool2d(2),
                c5=nn.Conv2d(16, 120, kernel_size=5), relu5=nn.ReLU(),
            ))
            self.classifier = nn.Sequential(OrderedDict(
                f6=nn.Linear(120, 84), relu6=nn.ReLU(), output=nn.Linear(84, num_classes),
            ))

    @torch.no_grad()
    def _init_classic(self) -> None:
        """The paper's rule: weights uniform in ±2.4/F, F the unit's fan-in; biases zero."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                fan_in = module.weight[0].numel()
                nn.init.uniform_(module.weight, -2.4 / fan_in, 2.4 / fan_in)
                nn.init.zeros_(module.bias)
            elif isinstance(module, Subsampling):
                fan_in = module.kernel_size**2
                nn.init.uniform_(module.weight, -2.4 / fan_in, 2.4 / fan_in)
                nn.init.zeros_(module.bias)
            elif isinstance(module, SparseConv2d):
                # Each packed kernel belongs to one output map, whose fan-in it uses.
                bound = (2.4 / module.fan_in().float())[module.kernel_owner()].view(-1, 1, 1)
                module.weight.uniform_(-1, 1).mul_(bound)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input_size(x)
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


def lenet5(variant: str = "modern", num_classes: int = 10, **kwargs) -> LeNet5:
    """Build LeNet5: ``variant="classic"`` (LeCun et al., 1998) or ``"modern"``."""
    return LeNet5(variant=variant, num_classes=num_classes, **kwargs)


def lenet5_classic(num_classes: int = 10, **kwargs) -> LeNet5:
    """LeNet5 as published: scaled tanh, trainable subsampling, sparse C3, RBF output."""
    return lenet5("classic", num_classes, **kwargs)


def lenet5_modern(num_classes: int = 10, **kwargs) -> LeNet5:
    """LeNet5 as built today: ReLU, max pooling, complete C3, linear output."""
    return lenet5("modern", num_classes, **kwargs)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per layer, ``{layer name: count}`` in definition order.

    Buffers (the C3 table, the fixed RBF centres) are not parameters and are not counted.
    """
    counts: dict[str, int] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            layer = name.rsplit(".", 1)[0]  # features.c1.weight -> features.c1
            counts[layer] = counts.get(layer, 0) + parameter.numel()
    return counts


def count_connections(model: nn.Module, input_size=(1, 1, *INPUT_SIZE)) -> dict[str, int]:
    """Connections per layer, counted as the paper does: one per multiply, one per bias.

    A connection links an input (or the bias) to one output unit. With weight sharing many
    connections use the same parameter, so this number is far larger than the parameter
    count. Zero padding counts as input (the paper fed 32×32 images). Returns
    ``{layer name: connections}`` in forward order, for the layers that have any.
    """
    counts: dict[str, int] = {}

    def per_output(module: nn.Module, output: torch.Tensor) -> int | None:
        positions = output[0].numel()  # output units per example
        if isinstance(module, nn.Conv2d):
            per_unit = module.weight[0].numel() + (module.bias is not None)
            return positions * per_unit
        if isinstance(module, SparseConv2d):
            maps = output.shape[-2] * output.shape[-1]
            bias = module.out_channels if module.bias is not None else 0
            return maps * (int(module.fan_in().sum()) + bias)
        if isinstance(module, Subsampling):
            return positions * (module.kernel_size**2 + 1)
        if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
            k = module.kernel_size
            window = k * k if isinstance(k, int) else k[0] * k[1]
            return positions * window  # a parameter-free pool has no bias
        if isinstance(module, nn.Linear):
            return positions * (module.in_features + (module.bias is not None))
        if isinstance(module, RBFOutput):
            return module.centers.numel()
        return None

    hooks = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue  # only leaf layers

        def hook(module, _inputs, output, name=name):
            count = per_output(module, output)
            if count is not None:
                counts[name] = count

        hooks.append(module.register_forward_hook(hook))
    try:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else None
        with torch.no_grad():
            model(torch.zeros(input_size, device=device))
    finally:
        for handle in hooks:
            handle.remove()
    return counts

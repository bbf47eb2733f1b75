"""Convolution from its formal definition: the index formula, zero padding, stride.

With 0-based indices, stride ``S`` and the input already zero-padded, a 2D convolutional
layer computes

    Y[k, l, i, j] = sum_{g, a, b} w[l, g, a, b] * X[k, g, S*i + a, S*j + b] + bias[l]

for batch element ``k``, output channel ``l`` and output position ``(i, j)``; ``g`` runs over
the input channels and ``(a, b)`` over the filter. :func:`conv2d_loops` spells this out with
one Python loop per index (for tiny tensors); :func:`convnd` keeps the loop over the filter
offsets ``(a, b)`` and does the rest as one tensor product, which is fast enough for real
images and works for any number of spatial dimensions (:func:`conv1d`, :func:`conv2d`,
:func:`conv3d`). PyTorch's layers compute the same thing (a cross-correlation, without
flipping the filter), so both are checked against ``torch.nn.functional`` in the tests.

:func:`output_size` and :func:`conv_params` are the two formulas to know by heart;
:func:`receptive_field` says how much of the input one output pixel of a stack of layers sees.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

IntOrTuple = int | Sequence[int]


def output_size(w_in: int, f: int, p: int = 0, s: int = 1, *, exact: bool = False) -> int:
    """Spatial output size ``floor((w_in - f + 2p) / s) + 1`` of a convolution.

    ``exact=True`` refuses settings where the filter does not fit a whole number of times,
    i.e. where the floor silently drops the last rows/columns of the (padded) input.
    """
    for name, value in (("input size", w_in), ("filter size", f), ("stride", s)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if not isinstance(p, int) or isinstance(p, bool) or p < 0:
        raise ValueError(f"padding must be a non-negative integer, got {p!r}.")
    span = w_in - f + 2 * p
    if span < 0:
        raise ValueError(
            f"filter size {f} is larger than the padded input {w_in} + 2*{p} = {w_in + 2 * p}: "
            f"use a filter of size at most {w_in + 2 * p} or pad by at least "
            f"{-(-(f - w_in) // 2)}."
        )
    if exact and span % s:
        raise ValueError(
            f"the filter does not fit: (W_in - F + 2P) / S = ({w_in} - {f} + 2*{p}) / {s} = "
            f"{span}/{s} is not an integer, so the last {span % s} row(s)/column(s) of the "
            f"padded input would never be used. Change the padding or pick a stride that "
            f"divides {span}."
        )
    return span // s + 1


def conv_params(c_in: int, c_out: int, f1: int, f2: int | None = None, bias: bool = True) -> int:
    """Trainable parameters of a conv layer: ``f1*f2*c_in*c_out`` weights + ``c_out`` biases."""
    f2 = f1 if f2 is None else f2
    for name, value in (("c_in", c_in), ("c_out", c_out), ("f1", f1), ("f2", f2)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return f1 * f2 * c_in * c_out + (c_out if bias else 0)


def receptive_field(kernel_sizes: Sequence[int], strides: Sequence[int] | None = None) -> int:
    """Side of the input window that one output pixel of a stack of conv layers depends on.

    Layer ``l`` (filter ``F_l``, stride ``S_l``) widens the window by ``F_l - 1`` steps of
    its own input, and one step there is ``S_1 * ... * S_{l-1}`` input pixels, so
    ``r = 1 + sum_l (F_l - 1) * prod_{k<l} S_k``. Padding moves the window, not its size.
    """
    strides = [1] * len(kernel_sizes) if strides is None else list(strides)
    if len(strides) != len(kernel_sizes):
        raise ValueError(f"need one stride per layer: {len(kernel_sizes)} filter sizes but "
                         f"{len(strides)} strides.")
    for name, values in (("filter size", kernel_sizes), ("stride", strides)):
        for value in values:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    size, step = 1, 1  # window side and the input distance between neighbouring positions
    for f, s in zip(kernel_sizes, strides, strict=True):
        size += (f - 1) * step
        step *= s
    return size


def zero_pad(x: torch.Tensor, padding: Sequence[int]) -> torch.Tensor:
    """Surround each of the last ``len(padding)`` dimensions with ``padding[d]`` zeros per side."""
    n = len(padding)
    spatial = x.shape[x.dim() - n:]
    padded_size = [m + 2 * p for m, p in zip(spatial, padding, strict=True)]
    padded = x.new_zeros(*x.shape[: x.dim() - n], *padded_size)
    interior = tuple(slice(p, p + m) for m, p in zip(spatial, padding, strict=True))
    padded[(..., *interior)] = x
    return padded


def convnd(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: IntOrTuple = 1, padding: IntOrTuple = 0) -> torch.Tensor:
    """N-dimensional convolution (N = ``weight.dim() - 2``) from the index formula.

    ``x`` is ``B x C_in x (spatial...)``, ``weight`` is ``C_out x C_in x (filter...)``,
    ``bias`` is ``C_out`` or ``None``. For each filter offset we take the strided window
    of the padded input that this offset meets at every output position, and add
    ``sum_g w[l, g, offset] * window[k, g, ...]`` to the output.
    """
    n, kernel, stride, padding = _check(x, weight, bias, stride, padding)
    dims = zip(x.shape[2:], kernel, padding, stride, strict=True)
    sizes = [output_size(m, f, p, s) for m, f, p, s in dims]
    x = zero_pad(x, padding)
    y = x.new_zeros(x.shape[0], weight.shape[0], *sizes)
    for offset in itertools.product(*(range(f) for f in kernel)):
        # output position i meets input position S*i + a for filter offset a
        window = tuple(slice(a, a + s * (o - 1) + 1, s)
                       for a, s, o in zip(offset, stride, sizes, strict=True))
        w_offset = weight[(..., *offset)]  # C_out x C_in
        patches = x[(slice(None), slice(None), *window)]  # B x C_in x (output size...)
        y += torch.einsum("lg,kg...->kl...", w_offset, patches)
    if bias is not None:
        y += bias.view(1, -1, *([1] * n))
    return y


def conv1d(x, weight, bias=None, stride: IntOrTuple = 1, padding: IntOrTuple = 0):
    """1D convolution (signals such as audio): ``x`` is ``B x C_in x L``."""
    _expect_dims(weight, 1)
    return convnd(x, weight, bias, stride, padding)


def conv2d(x, weight, bias=None, stride: IntOrTuple = 1, padding: IntOrTuple = 0):
    """2D convolution (images): ``x`` is ``B x C_in x H x W``."""
    _expect_dims(weight, 2)
    return convnd(x, weight, bias, stride, padding)


def conv3d(x, weight, bias=None, stride: IntOrTuple = 1, padding: IntOrTuple = 0):
    """3D convolution (video, volumes): ``x`` is ``B x C_in x D x H x W``."""
    _expect_dims(weight, 3)
    return convnd(x, weight, bias, stride, padding)


def conv2d_loops(x: torch.Tensor, weight: torch.Tensor,
                 bias: torch.Tensor | None = None, stride: IntOrTuple = 1,
                 padding: IntOrTuple = 0) -> torch.Tensor:
    """The definition with one Python loop per index. Slow: only for tiny tensors."""
    _expect_dims(weight, 2)
    _, (f1, f2), (s1, s2), padding = _check(x, weight, bias, stride, padding)
    batch, c_in, m, n = x.shape
    c_out = weight.shape[0]
    m_out = output_size(m, f1, padding[0], s1)
    n_out = output_size(n, f2, padding[1], s2)
    X = zero_pad(x, padding).tolist()
    w = weight.tolist()
    b = bias.tolist() if bias is not None else [0.0] * c_out
    Y = [[[[0.0] * n_out for _ in range(m_out)] for _ in range(c_out)]
         for _ in range(batch)]
    for k in range(batch):
        for ell in range(c_out):
            for i in range(m_out):
                for j in range(n_out):
                    total = b[ell]
                    for gamma in range(c_in):
                        for alpha in range(f1):
                            for beta in range(f2):
                                total += (w[ell][gamma][alpha][beta]
                                          * X[k][gamma][s1 * i + alpha][s2 * j + beta])
                    Y[k][ell][i][j] = total
    return torch.tensor(Y, dtype=x.dtype, device=x.device)


def shift2d(x: torch.Tensor, down: int, right: int) -> torch.Tensor:
    """Translate the last two dimensions by ``(down, right)`` pixels, filling with zeros.

    Unlike ``torch.roll`` nothing wraps around: what leaves the frame is lost and what
    enters is zero, as when a camera pans.
    """
    height, width = x.shape[-2:]
    if abs(down) >= height or abs(right) >= width:
        raise ValueError(
            f"shift ({down}, {right}) moves everything out of a {height}x{width} frame."
        )
    shifted = torch.zeros_like(x)
    src_rows, dst_rows = _overlap(down, height)
    src_cols, dst_cols = _overlap(right, width)
    shifted[..., dst_rows, dst_cols] = x[..., src_rows, src_cols]
    return shifted


def _overlap(shift: int, size: int) -> tuple[slice, slice]:
    """Source and destination slices of a 1D translation by ``shift``."""
    if shift >= 0:
        return slice(0, size - shift), slice(shift, size)
    return slice(-shift, size), slice(0, size + shift)


def _expect_dims(weight: torch.Tensor, n: int) -> None:
    if weight.dim() != n + 2:
        raise ValueError(
            f"a {n}D convolution needs a weight of shape C_out x C_in x {' x '.join(['F'] * n)} "
            f"({n + 2}-D), got shape {tuple(weight.shape)}."
        )


def _as_tuple(value: IntOrTuple, n: int, name: str) -> tuple[int, ...]:
    values = (value,) * n if isinstance(value, int) else tuple(value)
    if len(values) != n:
        raise ValueError(f"{name} needs one value per spatial dimension ({n}), got {value!r}.")
    return values


def _check(x, weight, bias, stride, padding):
    """Validate shapes; return (N, filter size, stride, padding) as tuples of length N."""
    n = weight.dim() - 2
    if n < 1:
        raise ValueError(
            f"weight must be C_out x C_in x (filter...), got shape {tuple(weight.shape)}."
        )
    if x.dim() != n + 2:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == n + 1 else ""
        raise ValueError(
            f"input must be B x C_in x (spatial...) with {n + 2} dimensions to match the "
            f"weight {tuple(weight.shape)}; got shape {tuple(x.shape)}.{hint}"
        )
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"input has {x.shape[1]} channels but the weight expects C_in = {weight.shape[1]} "
            f"(weight shape {tuple(weight.shape)})."
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(
            f"bias must have shape ({weight.shape[0]},) = (C_out,), got {tuple(bias.shape)}."
        )
    stride, padding = _as_tuple(stride, n, "stride"), _as_tuple(padding, n, "padding")
    return n, tuple(weight.shape[2:]), stride, padding

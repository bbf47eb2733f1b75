"""Max and average pooling written from the definition, to compare with ``torch.nn``.

A pooling layer slides a ``k×k`` window over each channel separately, with stride ``s``
and zero padding ``p``, and replaces each window by one number: its maximum or its mean.
It has no trainable parameters. These functions spell that out (pad, cut out every
window, reduce it) so the chapter can assert they equal :class:`torch.nn.MaxPool2d` and
:class:`torch.nn.AvgPool2d`, including torch's conventions for padding and
``ceil_mode``. :func:`relative_change` measures how much a shift of the input moves a
map.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from coursekit.scratch import conv


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, not {value!r}")
    return pair  # type: ignore[return-value]


def pool_output_size(size: int, kernel_size: int, stride: int, padding: int = 0,
                     ceil_mode: bool = False) -> int:
    """Number of windows along one axis: ``floor((size + 2p - k) / s) + 1``.

    With ``ceil_mode`` the division rounds up, but (as in torch) a last window that
    would start inside the right padding is dropped: every window must touch the input.
    """
    if size + 2 * padding < kernel_size:
        raise ValueError(
            f"the {kernel_size}-wide window does not fit in an input of size {size} "
            f"with padding {padding}; use a smaller kernel_size or more padding"
        )
    out = conv.output_size(size, kernel_size, padding, stride)  # floor, as for a conv
    if ceil_mode and (size + 2 * padding - kernel_size) % stride:
        out += 1  # round up: one more, partial window ...
        if (out - 1) * stride >= size + padding:
            out -= 1  # ... unless it would start inside the right padding
    return out


def pool_windows(x: torch.Tensor, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, ceil_mode: bool = False,
                 fill: float = 0.0) -> torch.Tensor:
    """Every pooling window of ``x`` (N×C×H×W or C×H×W), shaped ...×H_out×W_out×k_h×k_w.

    The input is padded with ``fill`` by ``padding`` on every side; in ``ceil_mode`` the
    last, partial window may need extra cells on the right and bottom, which get
    ``fill`` too. Window ``(i, j)`` starts at row ``i·s_h − p_h`` and column
    ``j·s_w − p_w`` of the input.
    """
    if x.dim() not in (3, 4):
        raise ValueError(
            f"pooling expects a C×H×W or N×C×H×W tensor, got shape {tuple(x.shape)}; "
            "add a batch or channel dimension with unsqueeze"
        )
    (kh, kw) = _pair(kernel_size, "kernel_size")
    (sh, sw) = _pair(stride if stride is not None else kernel_size, "stride")
    (ph, pw) = _pair(padding, "padding")
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError("kernel_size and stride must be positive and padding "
                         "non-negative")
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(
            f"padding {padding} is more than half the kernel {kernel_size}: some "
            "windows would see only padding; reduce padding to at most kernel_size // 2"
        )
    h, w = x.shape[-2:]
    h_out = pool_output_size(h, kh, sh, ph, ceil_mode)
    w_out = pool_output_size(w, kw, sw, pw, ceil_mode)
    extra_h = max(0, (h_out - 1) * sh + kh - (h + 2 * ph))  # > 0 only in ceil_mode
    extra_w = max(0, (w_out - 1) * sw + kw - (w + 2 * pw))
    padded = F.pad(x, (pw, pw + extra_w, ph, ph + extra_h), value=fill)
    windows = padded.unfold(-2, kh, sh).unfold(-2, kw, sw)  # ...×rows×cols×kh×kw
    return windows[..., :h_out, :w_out, :, :]


def max_pool2d(x: torch.Tensor, kernel_size: int | tuple[int, int],
               stride: int | tuple[int, int] | None = None,
               padding: int | tuple[int, int] = 0,
               ceil_mode: bool = False) -> torch.Tensor:
    """The maximum over each window; padding never wins because it is ``-inf``.

    Same arguments and result as :func:`torch.nn.functional.max_pool2d`
    (``stride`` defaults to ``kernel_size``).
    """
    windows = pool_windows(x, kernel_size, stride, padding, ceil_mode, fill=-math.inf)
    return windows.amax(dim=(-2, -1))


def avg_pool2d(x: torch.Tensor, kernel_size: int | tuple[int, int],
               stride: int | tuple[int, int] | None = None,
               padding: int | tuple[int, int] = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> torch.Tensor:
    """The mean over each window, with torch's rule for what the mean divides by.

    Zero padding adds nothing to a window's sum. The divisor counts the window's cells
    that lie in the input, plus (if ``count_include_pad``) those in the symmetric
    padding ``p``; cells that exist only because of ``ceil_mode`` are never counted.
    Same arguments and result as :func:`torch.nn.functional.avg_pool2d`.
    """
    windows = pool_windows(x, kernel_size, stride, padding, ceil_mode, fill=0.0)
    sums = windows.sum(dim=(-2, -1))
    # The divisor is the same pooling applied to a mask of the cells that count.
    (ph, pw) = _pair(padding, "padding")
    h, w = x.shape[-2:]
    counted = torch.ones(1, 1, h, w, dtype=x.dtype, device=x.device)
    if count_include_pad:
        counted = F.pad(counted, (pw, pw, ph, ph), value=1.0)
        mask_windows = pool_windows(counted, kernel_size, stride, 0, ceil_mode)
        mask_windows = mask_windows[..., : sums.shape[-2], : sums.shape[-1], :, :]
    else:
        mask_windows = pool_windows(counted, kernel_size, stride, padding, ceil_mode)
    divisor = mask_windows.sum(dim=(-2, -1))
    return sums / divisor.reshape(divisor.shape[-2:])


def relative_change(after: torch.Tensor, before: torch.Tensor) -> float:
    """Mean over the batch of ``‖after − before‖ / ‖before‖``, each example flattened.

    How much a transformation of the input (a shift) moves a map, on a scale that does
    not depend on the map's size or units: 0 means unchanged, 1 a change as large as the
    map itself.
    """
    if after.shape != before.shape:
        raise ValueError(f"after {tuple(after.shape)} and before {tuple(before.shape)} "
                         "must have the same shape: compare one map before and after")
    if before.dim() < 2:
        raise ValueError(f"expected a batch (N×...), got shape {tuple(before.shape)}; "
                         "add a batch dimension with unsqueeze(0)")
    norms = before.flatten(1).norm(dim=1)
    if not norms.all():
        raise ValueError(f"{int((norms == 0).sum())} example(s) of `before` are all "
                         "zero, so their relative change is undefined; leave them out")
    return ((after - before).flatten(1).norm(dim=1) / norms).mean().item()

"""Jacobian chains: what forward and reverse mode cost on a composition of layers.

For ``g = f_L ∘ ⋯ ∘ f_1`` with ``f_l: R^{n_{l-1}} -> R^{n_l}``, the chain rule gives
``Dg = J_L ⋯ J_1`` where ``J_l`` is ``n_l × n_{l-1}``. A product of a ``p × q`` and a
``q × r`` matrix costs ``p·q·r`` multiply-adds, so the bracketing matters:

* forward mode, ``J_L (⋯ (J_2 J_1))``: ``Σ_{l=2..L} n_l n_{l-1} n_0``;
* reverse mode, ``((J_L J_{L-1}) ⋯) J_1``: ``Σ_{l=1..L-1} n_L n_l n_{l-1}``;
* the cheapest bracketing is the classic matrix-chain dynamic programme.

``widths`` is always ``(n_0, n_1, ..., n_L)``, from the input to the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

ORDERS = ("forward", "reverse")


def _check(widths: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(int(n) for n in widths)
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(
            f"widths must be (n_0, ..., n_L) with L >= 1 layers of positive width, got {widths}."
        )
    return widths


def forward_cost(widths: Sequence[int]) -> int:
    """Multiply-adds of ``J_L (⋯ (J_2 J_1))``: every product carries ``n_0`` columns."""
    n = _check(widths)
    return sum(n[k] * n[k - 1] * n[0] for k in range(2, len(n)))


def reverse_cost(widths: Sequence[int]) -> int:
    """Multiply-adds of ``((J_L J_{L-1}) ⋯) J_1``: every product carries ``n_L`` rows."""
    n = _check(widths)
    return sum(n[-1] * n[k] * n[k - 1] for k in range(1, len(n) - 1))


def optimal_cost(widths: Sequence[int]) -> int:
    """The fewest multiply-adds over all bracketings (matrix-chain dynamic programming)."""
    n = _check(widths)

    @cache
    def best(i: int, j: int) -> int:  # cheapest product of J_j ⋯ J_{i+1}: n_j × n_i
        if j - i <= 1:
            return 0
        return min(best(i, k) + best(k, j) + n[j] * n[k] * n[i] for k in range(i + 1, j))

    return best(0, len(n) - 1)


def multiply(jacobians: Sequence, order: str) -> tuple[object, int]:
    """Multiply ``[J_1, ..., J_L]`` (anything with ``@`` and ``.shape``) in the given order.

    Returns the product ``J_L ⋯ J_1`` and the multiply-adds actually performed, counted from
    the shapes of each product as it is made.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}.")
    if not jacobians:
        raise ValueError("multiply needs at least one Jacobian.")
    for k in range(1, len(jacobians)):
        if jacobians[k].shape[1] != jacobians[k - 1].shape[0]:
            raise ValueError(
                f"J_{k + 1} has {jacobians[k].shape[1]} columns but J_{k} has "
                f"{jacobians[k - 1].shape[0]} rows; pass the Jacobians from the input layer on."
            )
    macs = 0
    if order == "forward":
        product = jacobians[0]
        for J in jacobians[1:]:
            macs += J.shape[0] * J.shape[1] * product.shape[1]
            product = J @ product
    else:
        product = jacobians[-1]
        for J in reversed(jacobians[:-1]):
            macs += product.shape[0] * product.shape[1] * J.shape[1]
            product = product @ J
    return product, macs

"""Numbers as a reader expects to see them in running text.

:func:`power_of_ten` turns ``2.3e-06`` into ``2 × 10⁻⁶`` (``2.3 × 10⁻⁶`` with ``digits=1``)
for a ``{glue:text}`` role, where Python's exponent notation would otherwise reach the page.
"""

from __future__ import annotations

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(value: float, digits: int = 0) -> str:
    """``value`` in scientific notation with ``digits`` decimals: ``2 × 10⁻⁶``, ``10⁻²``.

    A mantissa that rounds to exactly 1 is left out (``10⁻²``, not ``1 × 10⁻²``).
    """
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    power = "10" + str(int(exponent)).translate(_SUPERSCRIPT)
    if float(mantissa) == 1.0:
        return power
    if float(mantissa) == -1.0:
        return "−" + power
    return f"{mantissa.replace('-', '−')} × {power}"

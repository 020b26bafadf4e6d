"""Dollar amounts as people read them: cents for whole amounts, as many digits as a small one needs."""

from __future__ import annotations

import math

SIGNIFICANT_DIGITS = 4
"""Digits kept of an amount below a dollar: $0.0115 stays $0.0115, $0.000581 stays $0.000581."""


def usd(amount: float) -> str:
    """`amount` in dollars with at least two decimals and the four significant digits a small amount needs
    ($2.00, $0.015, $0.001, $0.0163); trailing zeros past the cents are dropped."""
    if amount == 0 or not math.isfinite(amount):
        return "$0.00" if amount == 0 else f"${amount}"
    decimals = max(2, SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(amount))))
    whole, _, fraction = f"{abs(amount):.{decimals}f}".partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{'-' if amount < 0 else ''}${whole}.{fraction}"

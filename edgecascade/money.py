"""Dollar amounts as people read them, in one place (the run line, error messages, notes)."""

from __future__ import annotations

import math


def usd(x: float) -> str:
    """``x`` dollars: 4 decimals from a cent up, 6 below it, and below a hundred-thousandth as many
    as show its first two significant digits ($0.00000046), so a real cost never prints as the
    $0.000000 of a free tier."""
    if x != 0 and math.isfinite(x) and abs(x) < 1e-5:
        return f"${x:.{1 - math.floor(math.log10(abs(x)))}f}"
    return f"${x:.6f}" if abs(x) < 0.01 else f"${x:.4f}"

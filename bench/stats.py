"""Summaries of samples: min / median / p99 / max, linear-interpolated percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, interpolating between ranks.

    With few samples p99 is close to the maximum: 10 samples have no "1 in 100".
    """
    if not sorted_values:
        return math.nan
    position = (len(sorted_values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def summary(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> dict[str, float]:
    """min/median/p99/max (and the count) of ``values`` times ``scale`` (e.g. 1000 for ms)."""
    data = sorted(v * scale for v in values)
    if not data:
        return {"count": 0}
    return {
        "count": len(data),
        "min": round(data[0], digits),
        "median": round(percentile(data, 50), digits),
        "p99": round(percentile(data, 99), digits),
        "max": round(data[-1], digits),
    }

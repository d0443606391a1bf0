"""Fixed point in the ring Z_2^64 (numpy uint64 arithmetic wraps modulo 2^64 by itself).

A plant sends q = round(w * c * 2^f) mod 2^64 for its clipped update c (||c||_2 <= C, so every coordinate is
within [-C, C]) times its aggregation weight w <= W. The sum over n plants is then bounded by
n * W * C * 2^f + n/2 in absolute value; choosing f so that this is below 2^62 makes overflow impossible
and the signed reading of the modular sum is the true sum.
"""

from __future__ import annotations

import math

import numpy as np

from shared.errors import AggregationError

MAX_FRACTION_BITS = 32
MIN_FRACTION_BITS = 8
MAX_WEIGHT = float(2 ** 24)  # cap of a plant's aggregation weight (its sample count) under secure aggregation


def fraction_bits(plants: int, clip: float, max_weight: float = MAX_WEIGHT) -> int:
    """The largest f <= 32 with plants * max_weight * 2 * clip * 2^f < 2^62 (a factor 2 of slack for the
    float32 rounding of a clipped update)."""
    if plants < 1 or clip <= 0 or max_weight <= 0:
        raise ValueError("plants, clip and max_weight must be positive")
    f = 62 - math.ceil(math.log2(plants * max_weight * 2 * clip + 1))
    if f < MIN_FRACTION_BITS:
        raise AggregationError(f"{plants} plants with update norm bound {clip} leave only {f} fraction bits "
                               "in the 64-bit ring; lower the bound")
    return min(MAX_FRACTION_BITS, f)


def quantize(values: np.ndarray, bits: int) -> np.ndarray:
    scaled = np.rint(np.asarray(values, dtype=np.float64) * float(2 ** bits))
    if np.any(np.abs(scaled) >= 2.0 ** 62):
        raise AggregationError("a value is outside the fixed-point range; was the update clipped?")
    return scaled.astype(np.int64).view(np.uint64)


def dequantize(values: np.ndarray, bits: int) -> np.ndarray:
    """The signed reading of a (sum of) quantized vector(s)."""
    return np.asarray(values, dtype=np.uint64).view(np.int64).astype(np.float64) / float(2 ** bits)

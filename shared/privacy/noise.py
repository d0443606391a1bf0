"""Noise for differential privacy from the operating system's cryptographic random source (STYLE habit 16).

The central mechanisms (shared.privacy.central) take any NoiseSource; a test passes a seeded
np.random.Generator, the dashboard passes SystemRandomNoise, whose every bit comes from os.urandom
(getrandom(2): the kernel's ChaCha20 CSPRNG): nobody who knows the experiment, its id or its seed can
reproduce or subtract the noise. NumPy's own generators (PCG64, Philox) are not cryptographic, even when
seeded with secret bits.
"""

from __future__ import annotations

import math
import os
from typing import Protocol

import numpy as np

_MANTISSA = 53  # bits of a float64 mantissa: uniforms on a grid of 2^-53


class NoiseSource(Protocol):
    """The two draws the central mechanisms need, with np.random.Generator's signatures."""

    def normal(self, loc: float = 0.0, scale: float = 1.0, size=None) -> np.ndarray: ...

    def laplace(self, loc: float = 0.0, scale: float = 1.0, size=None) -> np.ndarray: ...


class SystemRandomNoise:
    """Gaussian draws by the Box-Muller transform (Box and Muller 1958) and Laplace draws as the difference of
    two exponential ones (Laplace(0, 1) = E1 - E2, E = -ln U), from uniforms on (0, 1] built of 53 bits of
    os.urandom each. (Floating-point noise still has the representation issues of Mironov, CCS 2012, as
    NumPy's has; this class is about where the randomness comes from.)"""

    def uniform(self, count: int) -> np.ndarray:
        """`count` independent uniforms on (0, 1]: never 0, so that their logarithm is finite."""
        words = np.frombuffer(os.urandom(8 * count), dtype=np.uint64) >> np.uint64(64 - _MANTISSA)
        return (words.astype(np.float64) + 1.0) * 2.0 ** -_MANTISSA

    def normal(self, loc: float = 0.0, scale: float = 1.0, size=None) -> np.ndarray:
        count = _count(size)
        pairs = (count + 1) // 2
        radius = np.sqrt(-2.0 * np.log(self.uniform(pairs)))
        angle = 2.0 * math.pi * self.uniform(pairs)
        z = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:count]
        return _shaped(loc + scale * z, size)

    def laplace(self, loc: float = 0.0, scale: float = 1.0, size=None) -> np.ndarray:
        count = _count(size)
        z = np.log(self.uniform(count)) - np.log(self.uniform(count))  # E2 - E1, symmetric
        return _shaped(loc + scale * z, size)


def _count(size) -> int:
    return 1 if size is None else int(np.prod(size))


def _shaped(values: np.ndarray, size):
    return float(values[0]) if size is None else values.reshape(size)

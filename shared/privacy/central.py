"""Central DP for federated averaging (McMahan et al., "Learning Differentially Private Recurrent
Language Models", ICLR 2018): every plant clips its update to L2 norm C; the aggregator adds
N(0, (sigma C)^2) to the sum of the m clipped updates and divides by m. Equal weights keep the
sensitivity of the sum at C.

The Laplace mechanism (Dwork & Roth 2014, Thm 3.6) is the pure-DP alternative: plants clip in L1 norm to C,
the aggregator adds Laplace(C / epsilon) to every coordinate of the sum, and each round costs exactly epsilon
(delta = 0), composed over rounds by summation.

The noise comes from the `rng` passed in: the dashboard passes shared.privacy.noise.SystemRandomNoise (the
operating system's CSPRNG), a test a seeded np.random.Generator."""

from __future__ import annotations

import numpy as np

from shared.privacy.noise import NoiseSource


def clip_update(delta: np.ndarray, max_norm: float, ord: int = 2) -> np.ndarray:
    """delta scaled down to norm max_norm (L2, or L1 with ord=1) when it is longer."""
    norm = float(np.linalg.norm(delta, ord=ord))
    return delta * (max_norm / norm) if norm > max_norm else delta


def noisy_mean(deltas: np.ndarray, max_norm: float, noise_multiplier: float, rng: NoiseSource) -> np.ndarray:
    """(sum_k clip(d_k) + N(0, (sigma C)^2 I)) / m."""
    clipped = np.stack([clip_update(d, max_norm) for d in deltas])
    return noisy_mean_of_sum(clipped.sum(axis=0), len(deltas), max_norm, noise_multiplier, rng)


def noisy_mean_of_sum(total: np.ndarray, count: int, max_norm: float, noise_multiplier: float,
                      rng: NoiseSource) -> np.ndarray:
    """(sum + N(0, (sigma C)^2 I)) / m for a sum of m updates each clipped to C by its plant (the form secure
    aggregation delivers)."""
    return (total + rng.normal(0.0, noise_multiplier * max_norm, size=total.shape)) / count


def laplace_mean_of_sum(total: np.ndarray, count: int, max_norm: float, epsilon: float,
                        rng: NoiseSource) -> np.ndarray:
    """(sum + Laplace(C / epsilon)^d) / m for a sum of m updates each clipped to L1 norm C by its plant."""
    return (total + rng.laplace(0.0, max_norm / epsilon, size=total.shape)) / count

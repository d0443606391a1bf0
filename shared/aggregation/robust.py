"""Byzantine-robust combination of plant updates, and outlier scoring for reputation.

All functions take updates as rows of a matrix U (plants x parameters) of deltas w_k - w_global.

- coordinate-wise median (Yin et al., ICML 2018): median over plants of each coordinate;
- trimmed mean (Yin et al., ICML 2018): drop the `trim` largest and smallest values of each coordinate;
- Krum / Multi-Krum (Blanchard et al., NeurIPS 2017): score_k = sum of squared distances to the n - f - 2
  nearest other updates; Krum picks the lowest score, Multi-Krum averages the m lowest;
- norm bounding (Sun et al., 2019, "Can you really backdoor FL?"): u <- u * min(1, C / ||u||);
- outliers by update norm: robust z-score (median/MAD) or Tukey's IQR fences.
"""

from __future__ import annotations

import math

import numpy as np

from shared.errors import AggregationError


def coordinate_median(updates: np.ndarray) -> np.ndarray:
    return np.median(updates, axis=0)


def trimmed_mean(updates: np.ndarray, trim_ratio: float) -> np.ndarray:
    n = len(updates)
    k = int(math.floor(trim_ratio * n))
    if n - 2 * k < 1:
        raise AggregationError(f"trim ratio {trim_ratio} leaves no update of {n}")
    ordered = np.sort(updates, axis=0)
    return ordered[k:n - k].mean(axis=0)


def krum_scores(updates: np.ndarray, byzantine: int) -> np.ndarray:
    n = len(updates)
    closest = n - byzantine - 2
    if closest < 1:
        raise AggregationError(f"Krum needs n > f + 2 plants; got n={n}, f={byzantine}")
    sq = np.sum((updates[:, None, :] - updates[None, :, :]) ** 2, axis=2)
    return np.array([np.sort(np.delete(sq[i], i))[:closest].sum() for i in range(n)])


def multi_krum(updates: np.ndarray, byzantine: int, keep: int = 1) -> tuple[np.ndarray, list[int]]:
    """Mean of the `keep` updates with the lowest Krum scores (keep=1: Krum) and their indices."""
    chosen = list(np.argsort(krum_scores(updates, byzantine), kind="stable")[:max(1, keep)])
    return updates[chosen].mean(axis=0), [int(i) for i in chosen]


def clip_norm(update: np.ndarray, bound: float) -> np.ndarray:
    norm = float(np.linalg.norm(update))
    return update * min(1.0, bound / norm) if norm > 0 else update


def outliers_zscore(norms: np.ndarray, threshold: float = 2.5) -> np.ndarray:
    """Robust z = 0.6745 (x - median) / MAD (Iglewicz and Hoaglin); only unusually large norms count."""
    median = np.median(norms)
    mad = np.median(np.abs(norms - median))
    if mad == 0:
        return norms > median * 1.5 if median > 0 else np.zeros(len(norms), dtype=bool)
    return 0.6745 * (norms - median) / mad > threshold


def outliers_iqr(norms: np.ndarray, k: float = 1.5) -> np.ndarray:
    q1, q3 = np.percentile(norms, [25, 75])
    return norms > q3 + k * (q3 - q1)


def update_reputation(previous: dict[str, float], names: list[str], outlier: np.ndarray,
                      decay: float = 0.5) -> dict[str, float]:
    """r <- decay * r + (1 - decay) * (0 if outlier this round else 1), starting at 1: a plant that keeps being
    an outlier drops towards 0, one that behaves recovers (seed 002's reputation intent)."""
    out = dict(previous)
    for name, bad in zip(names, outlier):
        out[name] = decay * previous.get(name, 1.0) + (1 - decay) * (0.0 if bad else 1.0)
    return out

"""Federated feature statistics and the global standard scaler built from them (DESIGN §6, step 0).

Each plant computes per-feature count, sum and sum of squares of its training split (never a minimum or a
maximum: those are single records' values); the dashboard adds them up. The pooled mean and variance equal those of the union of the plants' rows:
mean = S1 / n, var = S2 / n - mean^2 (population variance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLIP = 10.0  # scaled values beyond +-10 standard deviations are clipped: one bad sensor must not blow up training


@dataclass(frozen=True)
class FeatureStats:
    count: int
    sum: np.ndarray
    sum_sq: np.ndarray

    def to_dict(self) -> dict:
        return {"count": self.count, "sum": self.sum.tolist(), "sum_sq": self.sum_sq.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureStats":
        return cls(int(d["count"]), *(np.asarray(d[k], dtype=np.float64) for k in ("sum", "sum_sq")))


def feature_stats(x: np.ndarray) -> FeatureStats:
    """Sufficient statistics of the rows of x (n, d)."""
    x = np.asarray(x, dtype=np.float64)
    return FeatureStats(len(x), x.sum(0), (x * x).sum(0))


def combine_stats(parts: list[FeatureStats]) -> FeatureStats:
    """Statistics of the union of the plants' rows."""
    return FeatureStats(sum(p.count for p in parts), sum(p.sum for p in parts), sum(p.sum_sq for p in parts))


@dataclass(frozen=True)
class Scaler:
    mean: np.ndarray
    scale: np.ndarray  # standard deviation; 1 where a feature is constant

    @classmethod
    def from_stats(cls, stats: FeatureStats) -> "Scaler":
        n = max(stats.count, 1)
        mean = stats.sum / n
        var = np.maximum(stats.sum_sq / n - mean * mean, 0.0)
        std = np.sqrt(var)
        # constant (or numerically constant) features: divide by 1, they carry no signal anyway
        scale = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(mean=mean, scale=scale)

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return np.clip(z, -CLIP, CLIP).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["scale"], dtype=np.float64))


def scaler_mismatch(mean: np.ndarray, scale: np.ndarray, local_sum: np.ndarray, local_sum_sq: np.ndarray,
                    count: int, tolerance: float) -> str | None:
    """Why a global scaler cannot have come from statistics that include this plant's own, or None.

    For each feature the plant varies on (local std s > 0): the global scale must lie within
    [s / tolerance, s * tolerance] and the global mean within tolerance * max(s, scale) of the local mean. A
    pooled scaler of non-IID plants passes (pooled variance = mean within-plant variance + variance of the
    plant means); a crafted one that zooms in on a narrow band of one feature, turning a clipped model
    update into an indicator of a threshold (a counting query), does not. Features constant at this plant
    carry no information about its rows and are not checked."""
    if count <= 0:
        return "the plant has no training rows"
    local_mean = np.asarray(local_sum, dtype=np.float64) / count
    local_std = np.sqrt(np.maximum(np.asarray(local_sum_sq, dtype=np.float64) / count - local_mean ** 2, 0.0))
    varies = local_std > 1e-9 * np.maximum(1.0, np.abs(local_mean))
    too_narrow = varies & (scale < local_std / tolerance)
    too_wide = varies & (scale > local_std * tolerance)
    off_centre = varies & (np.abs(mean - local_mean) > tolerance * np.maximum(local_std, scale))
    for problem, what in ((too_narrow, "scale below this plant's std / {t}"), (too_wide, "scale above this plant's "
                          "std x {t}"), (off_centre, "mean more than {t} std from this plant's mean")):
        if problem.any():
            return f"feature #{int(np.flatnonzero(problem)[0])}: " + what.format(t=tolerance)
    return None

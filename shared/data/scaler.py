"""Federated feature statistics and the global standard scaler built from them (DESIGN §6, step 0).

Each plant computes per-feature count, sum, sum of squares, min and max of its training split; the
dashboard adds them up. The pooled mean and variance equal those of the union of the plants' rows:
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
    min: np.ndarray
    max: np.ndarray

    def to_dict(self) -> dict:
        return {"count": self.count, "sum": self.sum.tolist(), "sum_sq": self.sum_sq.tolist(),
                "min": self.min.tolist(), "max": self.max.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureStats":
        return cls(int(d["count"]), *(np.asarray(d[k], dtype=np.float64) for k in ("sum", "sum_sq", "min", "max")))


def feature_stats(x: np.ndarray) -> FeatureStats:
    """Sufficient statistics of the rows of x (n, d)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        zeros = np.zeros(x.shape[1])
        return FeatureStats(0, zeros, zeros, np.full(x.shape[1], np.inf), np.full(x.shape[1], -np.inf))
    return FeatureStats(len(x), x.sum(0), (x * x).sum(0), x.min(0), x.max(0))


def combine_stats(parts: list[FeatureStats]) -> FeatureStats:
    """Statistics of the union of the plants' rows."""
    return FeatureStats(sum(p.count for p in parts), sum(p.sum for p in parts), sum(p.sum_sq for p in parts),
                        np.minimum.reduce([p.min for p in parts]), np.maximum.reduce([p.max for p in parts]))


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

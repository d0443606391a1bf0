"""How far the data a plant scores has moved from the data its model was trained on, from moments only.

For each encoded feature j, with m_j and v_j the mean and (population) variance over the recently scored rows
and mu_j, sigma_j the global scaler the model was trained with (shared.data.scaler: the pooled training
mean and standard deviation):

    drift = (1 / d) * sum_j ( |m_j - mu_j| / sigma_j  +  |v_j / sigma_j^2 - 1| )

The first term is the standardised mean difference (Cohen's d against the training moments), the second the
relative change of the variance. Identically distributed data score about 0 (plus sampling noise of order
1/sqrt(n)); every feature shifted by one training standard deviation scores about 1; a feature whose spread
doubled adds 3/d. It is a cheap monitoring signal, computed at the plant on the rows it scored, not a
statistical test (for tests of dataset shift see Rabanser, Günnemann & Lipton, "Failing Loudly", NeurIPS 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureTotals:
    """Sufficient statistics of scored rows: count, per-feature sum and sum of squares (float64)."""

    count: int
    sum: np.ndarray
    sum_sq: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> "FeatureTotals":
        x = np.asarray(x, dtype=np.float64)
        x = np.where(np.isfinite(x), x, 0.0)
        return cls(len(x), x.sum(axis=0), (x * x).sum(axis=0))

    def __add__(self, other: "FeatureTotals") -> "FeatureTotals":
        return FeatureTotals(self.count + other.count, self.sum + other.sum, self.sum_sq + other.sum_sq)


def drift_score(totals: FeatureTotals, mean: np.ndarray, scale: np.ndarray) -> float | None:
    """The formula above; None with fewer than two rows or no feature."""
    mean, scale = np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    if totals.count < 2 or mean.size == 0 or totals.sum.shape != mean.shape:
        return None
    m = totals.sum / totals.count
    v = np.maximum(totals.sum_sq / totals.count - m * m, 0.0)
    scale = np.where(scale > 0, scale, 1.0)
    per_feature = np.abs(m - mean) / scale + np.abs(v / (scale * scale) - 1.0)
    return float(per_feature.mean())


@dataclass(frozen=True)
class DriftReference:
    """The rows a released model's drift is compared with: this plant's own validation split (the rows the
    federation's threshold was chosen on), by feature name; they stay at the plant."""

    feature_names: tuple[str, ...]
    features: np.ndarray  # (n, d) unscaled, in feature_names order

    @classmethod
    def of(cls, data) -> "DriftReference | None":
        """The validation split of a shared.data PlantData (None without validation rows)."""
        rows = data.features[data.split == 1]
        return cls(tuple(data.schema.feature_names), np.asarray(rows, dtype=np.float64)) if len(rows) >= 2 else None

    def totals(self, feature_names: list[str], fill: np.ndarray) -> FeatureTotals:
        """The reference's totals in a model's feature order; a feature this plant lacks reads as `fill` (the
        model's own fill value for a numeric column, 0 for a category)."""
        return FeatureTotals.of(self.totals_matrix(feature_names, fill))

    def totals_matrix(self, feature_names: list[str], fill: np.ndarray | None = None) -> np.ndarray:
        """The reference's rows in `feature_names` order (a missing feature: its `fill`, else 0)."""
        index = {name: j for j, name in enumerate(self.feature_names)}
        fill = np.zeros(0) if fill is None else fill
        columns = [self.features[:, index[name]] if name in index else
                   np.full(len(self.features), fill[k] if k < len(fill) else 0.0) for k, name in enumerate(feature_names)]
        return np.stack(columns, axis=1) if columns else np.zeros((len(self.features), 0))


def drift_baseline(reference: DriftReference, feature_names: list[str], fill: np.ndarray, mean: np.ndarray,
                   scale: np.ndarray) -> float | None:
    """The drift score of the plant's validation split against the model's scaler: what the score reads on data
    the model was chosen on. The dashboard shows the floor's drift as a ratio to it (shared.drift)."""
    return drift_score(reference.totals(feature_names, fill), mean, scale)

"""The plant's contribution to a secure sum: its weighted, clipped update (the masking and the reveal are
stages of shared.secagg.protocol; the plant's request handlers run them with the plant's own key and ledgers,
factory_agent.plant.handlers)."""

from __future__ import annotations

import numpy as np

from shared.aggregation.vectors import flatten, float_keys
from shared.errors import SecurityError
from shared.privacy.central import clip_update
from shared.secagg.quantize import MAX_WEIGHT

WEIGHTINGS = ("samples", "samples_per_step", "equal")


def aggregation_weight(weighting: str, num_samples: int, steps: int) -> float:
    """The weight a plant multiplies its update by before masking; samples are visible metadata, so the
    aggregator computes the same weights to divide the sum by. samples: FedAvg/FedProx; samples_per_step:
    FedNova (n_k / tau_k); equal: central DP and FedDyn."""
    if weighting not in WEIGHTINGS:
        raise SecurityError(f"unknown weighting {weighting!r}")
    if weighting == "equal":
        return 1.0
    n = min(float(num_samples), MAX_WEIGHT)
    return n / max(int(steps), 1) if weighting == "samples_per_step" else n


def contribution(global_weights: dict, weights: dict, clip: float, weight: float) -> np.ndarray:
    """weight * clip(w_k - w): clipping to the announced bound is what makes fixed point overflow-proof."""
    keys = float_keys(global_weights)
    return weight * clip_update(flatten(weights, keys) - flatten(global_weights, keys), clip)


"""What a plant contributes to a round, and the checks every aggregation runs first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.errors import AggregationError

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class ClientUpdate:
    """One plant's contribution to a round."""

    factory: str
    weights: Weights
    num_samples: int
    steps: int = 0


def check_updates(global_weights: Weights, updates: list[ClientUpdate]) -> None:
    if not updates:
        raise AggregationError("no update to aggregate")
    for u in updates:
        if set(u.weights) != set(global_weights):
            raise AggregationError(f"update from {u.factory!r} has different parameters than the global model")
        for k, v in global_weights.items():
            if np.shape(u.weights[k]) != np.shape(v):
                raise AggregationError(f"update from {u.factory!r}: {k!r} has shape {np.shape(u.weights[k])}, "
                                       f"expected {np.shape(v)}")
            if not np.all(np.isfinite(u.weights[k])):
                raise AggregationError(f"update from {u.factory!r}: {k!r} contains NaN or infinity")
    if sum(u.num_samples for u in updates) <= 0:
        raise AggregationError("the updates carry no samples")

"""What a plant contributes to a round, and the checks every aggregation runs first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.aggregation.vectors import float_keys
from shared.errors import AggregationError

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class ClientUpdate:
    """One plant's contribution to a round."""

    factory: str
    weights: Weights
    num_samples: int
    steps: int = 0
    control: Weights | None = None  # SCAFFOLD's Delta c_i (shared.aggregation.scaffold), same keys as the weights


def check_updates(global_weights: Weights, updates: list[ClientUpdate]) -> None:
    if not updates:
        raise AggregationError("no update to aggregate")
    learned = {k: global_weights[k] for k in float_keys(global_weights)}  # what a control variate covers
    for u in updates:
        _check_arrays(global_weights, u.weights, f"update from {u.factory!r}")
        if u.control is not None:
            _check_arrays(learned, u.control, f"control variate delta from {u.factory!r}")
    if sum(u.num_samples for u in updates) <= 0:
        raise AggregationError("the updates carry no samples")


def _check_arrays(global_weights: Weights, arrays: Weights, what: str) -> None:
    """The same parameter names and shapes as the global model, every value finite."""
    if set(arrays) != set(global_weights):
        raise AggregationError(f"{what} has different parameters than the global model")
    for k, v in global_weights.items():
        if np.shape(arrays[k]) != np.shape(v):
            raise AggregationError(f"{what}: {k!r} has shape {np.shape(arrays[k])}, expected {np.shape(v)}")
        if not np.all(np.isfinite(arrays[k])):
            raise AggregationError(f"{what}: {k!r} contains NaN or infinity")

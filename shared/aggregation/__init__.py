"""Aggregation (Flower's split: the arithmetic in pure functions over numpy arrays, tested alone).

- base.py: ClientUpdate, the checks every round runs first;
- algorithms.py: FedAvg/FedProx, FedNova and FedDyn combinations of plant deltas;
- robust.py: median, trimmed mean, (Multi-)Krum, norm bounding, outlier scores, reputation;
- server_opt.py: FedAdam and FedYogi;
- pipeline.py: one round's aggregation in order, with its state in and out.
"""

from shared.aggregation.base import ClientUpdate, check_updates
from shared.aggregation.pipeline import AggregationSettings, AggregationState, aggregate

__all__ = ["AggregationSettings", "AggregationState", "ClientUpdate", "aggregate", "check_updates"]

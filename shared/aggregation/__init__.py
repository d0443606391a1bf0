"""Aggregation arithmetic (Flower's split: pure functions over numpy arrays, tested alone); the strategies
that use it are in shared.strategies.

- base.py: ClientUpdate, the checks every round runs first;
- algorithms.py: FedAvg/FedProx, FedNova and FedDyn combinations of plant deltas;
- scaffold.py: SCAFFOLD's control-variate updates, plant side (option II) and server side;
- robust.py: median, trimmed mean, (Multi-)Krum, norm bounding, outlier scores, reputation;
- server_opt.py: FedAdam, FedYogi and FedAvgM steps;
- vectors.py: weights as one flat vector and back;
"""

from shared.aggregation.base import ClientUpdate, check_updates

__all__ = ["ClientUpdate", "check_updates"]

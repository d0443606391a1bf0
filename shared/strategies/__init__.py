"""Aggregation strategies, one class per algorithm (Flower's design): what plants train with (`configure_fit`),
how they weight a masked update (`secure_weighting`), and the next global model from single updates
(`aggregate`) or from a secure sum (`aggregate_sum`).

- fedavg.py, fedprox.py, fednova.py, feddyn.py, scaffold.py: the algorithms;
- fedadam.py, fedyogi.py, fedavgm.py: server optimisers, around any strategy;
- robust.py: reputation, norm bound, median / trimmed mean / Krum, around any strategy;
- central_dp.py: clip and noise the sum, around any strategy;
- build.py: build_strategy composes them; shared.experiment.training.strategy_for calls it with the settings.

The arithmetic stays in pure functions in shared.aggregation (algorithms, robust, server_opt).
"""

from shared.aggregation.base import ClientUpdate
from shared.strategies.base import (Aggregated, AggregationReport, Change, Cohort, FitConfig, SecureSum, ServerState,
                                    Strategy, Wrapper)
from shared.strategies.build import algorithm_strategy, build_strategy, with_server_optimizer
from shared.strategies.central_dp import CentralDP
from shared.strategies.fedadam import FedAdam
from shared.strategies.fedavg import FedAvg
from shared.strategies.fedavgm import FedAvgM
from shared.strategies.feddyn import FedDyn
from shared.strategies.fednova import FedNova
from shared.strategies.fedprox import FedProx
from shared.strategies.fedyogi import FedYogi
from shared.strategies.robust import Robust
from shared.strategies.scaffold import Scaffold

__all__ = ["Aggregated", "AggregationReport", "CentralDP", "Change", "ClientUpdate", "Cohort", "FedAdam", "FedAvg",
           "FedAvgM", "FedDyn", "FitConfig", "FedNova", "FedProx", "FedYogi", "Robust", "Scaffold", "SecureSum",
           "ServerState",
           "Strategy", "Wrapper", "algorithm_strategy", "build_strategy", "with_server_optimizer"]

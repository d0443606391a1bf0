"""SCAFFOLD (Karimireddy et al., "SCAFFOLD: Stochastic Controlled Averaging for Federated Learning", ICML 2020):
each plant corrects its local steps by c - c_i and keeps its control variate c_i in its own state; the server
moves the global model by the FedAvg mean of the deltas and its control variate c by (|S| / N) times the mean
of the plants' Delta c_i (shared.aggregation.scaffold). Under secure aggregation the plants mask
[a_k d_k, Delta c_k] as one vector, so the server learns sum_k Delta c_k and never a single one.

The server clips every Delta c_k again to the bound the plants were asked to clip to: a hostile plant moves c
by at most bound / N per round whatever it sends. With single updates that is done here; under secure
aggregation each plant's masked vector was clipped by the plant itself (the sum hides the parts)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from shared.aggregation.algorithms import fedavg_change, weighted_sum
from shared.aggregation.scaffold import server_control_update
from shared.errors import AggregationError
from shared.privacy.central import clip_update
from shared.privacy.noise import NoiseSource
from shared.strategies.base import Change, Cohort, SecureSum, ServerState, Strategy


class Scaffold(Strategy):
    name = "scaffold"

    def __init__(self, federation_size: int = 0, clip: float | None = None):
        self.federation_size = federation_size  # N: the eligible plants, at least those of the round
        self.clip = clip  # the bound plants clip their update and their Delta c_i to

    def combine(self, cohort: Cohort, state: ServerState, noise: NoiseSource | None) -> Change:
        if cohort.controls is None:
            raise AggregationError("scaffold: a plant's update came without its control variate delta")
        controls = cohort.controls if self.clip is None else np.stack(
            [clip_update(d, self.clip) for d in cohort.controls])
        change = fedavg_change(weighted_sum(cohort.deltas, cohort.weights), cohort.weights.sum())
        return Change(change, self._next(state, controls.mean(axis=0), len(controls)))

    def combine_sum(self, summed: SecureSum, state: ServerState, noise: NoiseSource | None) -> Change:
        if summed.controls is None or len(summed.controls) != len(summed.total):
            raise AggregationError("scaffold: the secure sum does not hold the control variate deltas")
        count = len(summed.weights)
        change = fedavg_change(summed.total, sum(summed.weights.values()))
        return Change(change, self._next(state, summed.controls / count, count))

    def _next(self, state: ServerState, mean_delta: np.ndarray, count: int) -> ServerState:
        if state.c is not None and len(state.c) != len(mean_delta):
            raise AggregationError(f"scaffold: the stored control variate has {len(state.c)} values, the model "
                                   f"{len(mean_delta)}")
        return replace(state, c=server_control_update(state.c, mean_delta, count, self.federation_size))

"""SCAFFOLD (Karimireddy et al., "SCAFFOLD: Stochastic Controlled Averaging for Federated Learning", ICML 2020):
each plant corrects its local steps by c - c_i and keeps its control variate c_i in its own state; the server
moves the global model by the FedAvg mean of the deltas and its control variate c by (|S| / N) times the mean
of the plants' Delta c_i (shared.aggregation.scaffold).

Never under secure aggregation (refused by the experiment's settings and by every plant): the sum of the
unweighted Delta c_k = -c + (x - y_k) / (K_k lr) and the sum of the weighted updates a_k d_k are two independent
linear functions of the updates (a_k grows with n_k, 1/K_k shrinks with it), so from two survivors' sums the
server would solve for each plant's update.

The server clips every Delta c_k again to the bound the plants were asked to clip to (a hostile plant moves c
by at most bound / N per round whatever it sends), and c itself to that L2 bound after each update: over many
rounds one plant could otherwise push c past what plants accept (|c| <= 1e4 per value, every later round
refused) and steer every honest plant's steps by lr K c."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from shared.aggregation.algorithms import fedavg_change, weighted_sum
from shared.aggregation.base import Weights
from shared.aggregation.scaffold import server_control_update
from shared.aggregation.vectors import float_keys, unflatten
from shared.errors import AggregationError
from shared.privacy.central import clip_update
from shared.privacy.noise import NoiseSource
from shared.protocol import SecAggRequest
from shared.strategies.base import Change, Cohort, FitConfig, SecureSum, ServerState, Strategy


DEFAULT_CONTROL_BOUND = 100.0  # ||c|| without a clip: the experiments' SCAFFOLD_DEFAULT_CLIP, far below 1e4
SECURE_SUM_REFUSED = ("scaffold cannot be combined with secure aggregation: the two sums (updates and control "
                      "variate deltas) would give the server each plant's update")


class Scaffold(Strategy):
    name = "scaffold"

    def __init__(self, federation_size: int = 0, clip: float | None = None):
        self.federation_size = federation_size  # N: the eligible plants, at least those of the round
        self.clip = clip  # the bound plants clip their update and their Delta c_i to

    def configure_fit(self, global_weights: Weights, state: ServerState) -> FitConfig:
        """Every plant corrects its steps by the server's c (zeros before the first aggregation)."""
        keys = float_keys(global_weights)
        size = sum(np.size(global_weights[k]) for k in keys)
        c = state.c if state.c is not None and len(state.c) == size else np.zeros(size)
        c = clip_update(c, self._bound)  # a c stored before it was bounded (review M1) never stalls a round
        return FitConfig(self.configure(), {k: v.astype(np.float32) for k, v in unflatten(c, global_weights,
                                                                                            keys).items()})

    def secure_setup(self, participants: dict[str, str], clip: float | None) -> SecAggRequest:
        raise AggregationError(SECURE_SUM_REFUSED)

    @property
    def _bound(self) -> float:
        return self.clip if self.clip is not None else DEFAULT_CONTROL_BOUND

    def combine(self, cohort: Cohort, state: ServerState, noise: NoiseSource | None) -> Change:
        if cohort.controls is None:
            raise AggregationError("scaffold: a plant's update came without its control variate delta")
        controls = cohort.controls if self.clip is None else np.stack(
            [clip_update(d, self.clip) for d in cohort.controls])
        change = fedavg_change(weighted_sum(cohort.deltas, cohort.weights), cohort.weights.sum())
        return Change(change, self._next(state, controls.mean(axis=0), len(controls)))

    def combine_sum(self, summed: SecureSum, state: ServerState, noise: NoiseSource | None) -> Change:
        raise AggregationError(SECURE_SUM_REFUSED)

    def _next(self, state: ServerState, mean_delta: np.ndarray, count: int) -> ServerState:
        if state.c is not None and len(state.c) != len(mean_delta):
            raise AggregationError(f"scaffold: the stored control variate has {len(state.c)} values, the model "
                                   f"{len(mean_delta)}")
        c = server_control_update(state.c, mean_delta, count, self.federation_size)
        return replace(state, c=clip_update(c, self._bound))

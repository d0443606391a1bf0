"""FedAvg (McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data",
AISTATS 2017): the sample-weighted mean of the plants' deltas."""

from __future__ import annotations

from shared.aggregation.algorithms import fedavg_change, weighted_sum
from shared.privacy.noise import NoiseSource
from shared.strategies.base import Change, Cohort, SecureSum, ServerState, Strategy


class FedAvg(Strategy):
    name = "fedavg"

    def combine(self, cohort: Cohort, state: ServerState, noise: NoiseSource | None) -> Change:
        return Change(fedavg_change(weighted_sum(cohort.deltas, cohort.weights), cohort.weights.sum()), state)

    def combine_sum(self, summed: SecureSum, state: ServerState, noise: NoiseSource | None) -> Change:
        return Change(fedavg_change(summed.total, sum(summed.weights.values())), state)

"""FedNova (Wang et al., "Tackling the Objective Inconsistency Problem in Heterogeneous Federated
Optimization", NeurIPS 2020): each delta normalised by the plant's local steps, the mean rescaled by the
effective number of steps (shared.aggregation.algorithms.fednova_change). Under secure aggregation the plants
weight their delta by n_k / tau_k before masking, so that the sum is what the formula needs."""

from __future__ import annotations

import numpy as np

from shared.aggregation.algorithms import fednova_change, fednova_weights, weighted_sum
from shared.privacy.noise import NoiseSource
from shared.secagg.quantize import MAX_WEIGHT
from shared.strategies.base import Change, Cohort, SecureSum, ServerState, Strategy


class FedNova(Strategy):
    """(Under central DP the released mean has equal weights, which FedNova's n_k / tau_k would not keep:
    shared.experiment refuses that combination; `combine_mean` stays the plain mean for configurations
    stored before it did.)"""

    name = "fednova"

    @property
    def secure_weighting(self) -> str:
        return "samples_per_step"

    def combine(self, cohort: Cohort, state: ServerState, noise: NoiseSource | None) -> Change:
        total = weighted_sum(cohort.deltas, fednova_weights(cohort.weights, cohort.steps))
        return Change(fednova_change(total, cohort.weights, cohort.steps), state)

    def combine_sum(self, summed: SecureSum, state: ServerState, noise: NoiseSource | None) -> Change:
        names = summed.names
        samples = np.minimum(np.array([summed.samples[n] for n in names], dtype=np.float64), MAX_WEIGHT)
        steps = np.array([summed.steps[n] for n in names], dtype=np.float64)
        return Change(fednova_change(summed.total, samples, steps), state)

"""FedDyn (Acar et al., "Federated Learning Based on Dynamic Regularization", ICLR 2021): plants add a linear
and a quadratic term to their loss (shared.training); the server keeps h, the running correction, and steps
to mean_k d_k - h / alpha (shared.aggregation.algorithms.feddyn_change). Plants weight equally, so the server
update needs only the mean of the round's deltas: from single updates, from a secure sum, or from the noisy
mean central DP releases (h then stays a function of released values only)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from shared.aggregation.algorithms import feddyn_change
from shared.privacy.noise import NoiseSource
from shared.strategies.base import Change, Cohort, SecureSum, ServerState, Strategy


class FedDyn(Strategy):
    name = "feddyn"

    def __init__(self, alpha: float = 0.01, federation_size: int = 0):
        self.alpha = alpha
        self.federation_size = federation_size  # m: the eligible plants, at least those of the round

    def configure(self) -> dict:
        return {"feddyn_alpha": self.alpha}

    @property
    def secure_weighting(self) -> str:
        return "equal"

    def combine(self, cohort: Cohort, state: ServerState, noise: NoiseSource | None) -> Change:
        return self.combine_mean(cohort.deltas.mean(axis=0), len(cohort.deltas), state)

    def combine_sum(self, summed: SecureSum, state: ServerState, noise: NoiseSource | None) -> Change:
        count = len(summed.weights)
        return self.combine_mean(summed.total / count, count, state)

    def combine_mean(self, mean: np.ndarray, count: int, state: ServerState) -> Change:
        change, h = feddyn_change(mean, count, state.h, self.alpha, self.federation_size)
        return Change(change, replace(state, h=h))

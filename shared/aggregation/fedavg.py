"""FedAvg (McMahan et al., AISTATS 2017) and FedProx (Li et al., MLSys 2020).

FedAvg: w_{t+1} = sum_k (n_k / n) w_k, with n_k the samples of plant k and n = sum_k n_k.
FedProx aggregates the same way; it differs on the plant side by the proximal term mu/2 ||w - w_t||^2.
"""

from __future__ import annotations

import numpy as np

from shared.aggregation.base import Aggregator, ClientUpdate, Weights, check_updates


def weighted_average(weight_sets: list[Weights], counts: list[int]) -> Weights:
    """sum_k (counts_k / sum counts) * weight_sets_k, per parameter, in float64 then cast back."""
    total = float(sum(counts))
    out: Weights = {}
    for name in weight_sets[0]:
        acc = sum(np.asarray(w[name], dtype=np.float64) * (c / total) for w, c in zip(weight_sets, counts))
        out[name] = acc.astype(np.asarray(weight_sets[0][name]).dtype)
    return out


class FedAvg(Aggregator):
    name = "fedavg"

    def aggregate(self, global_weights: Weights, updates: list[ClientUpdate]) -> Weights:
        check_updates(global_weights, updates)
        return weighted_average([u.weights for u in updates], [u.num_samples for u in updates])


class FedProx(FedAvg):
    name = "fedprox"

    def __init__(self, mu: float = 0.01):
        self.mu = mu

    def client_config(self) -> dict:
        return {"proximal_mu": self.mu}

"""How plant deltas d_k = w_k - w combine into the global change, per algorithm (pure functions).

Each rule is written once, over a weighted sum of deltas: the same function serves single updates (the sum is
taken here) and secure aggregation (the plants weighted and masked their deltas, the sum is all there is).

- FedAvg / FedProx (McMahan et al., AISTATS 2017; Li et al., MLSys 2020): sum_k a_k d_k / sum_k a_k, with
  a_k = n_k (samples).
- FedNova (Wang et al., NeurIPS 2020, eq. 6): normalise each delta by its local steps tau_k, then scale by the
  effective steps tau_eff = sum_k p_k tau_k, p_k = n_k / n:  tau_eff * sum_k p_k d_k / tau_k, i.e.
  tau_eff * S / n with S = sum_k (n_k / tau_k) d_k.
- FedDyn (Acar et al., ICLR 2021, Algorithm 1), server side: h <- h - alpha (1/m) sum_k d_k over the m plants of
  the federation; new w = w + mean_k d_k - h / alpha. (The plant side keeps its own linear term; see
  shared.training.) Written over the mean of the round's deltas, so that a noisy mean (central DP) drives it too.
"""

from __future__ import annotations

import numpy as np


def weighted_sum(deltas: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_k a_k d_k over the rows d_k of `deltas`."""
    return (weights[:, None] * deltas).sum(axis=0)


def fedavg_change(total: np.ndarray, weight_total: float) -> np.ndarray:
    """sum_k a_k d_k / sum_k a_k, from the weighted sum."""
    return total / weight_total


def fednova_weights(samples: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """a_k = n_k / tau_k (a plant that reports no step counts one)."""
    return samples / np.maximum(steps.astype(np.float64), 1.0)


def fednova_change(total: np.ndarray, samples: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """tau_eff * S / n, from S = sum_k (n_k / tau_k) d_k (fednova_weights) and the plants' n_k and tau_k."""
    p = samples / samples.sum()
    tau = np.maximum(steps.astype(np.float64), 1.0)
    return float((p * tau).sum()) * total / samples.sum()


def feddyn_change(mean: np.ndarray, count: int, h: np.ndarray | None, alpha: float, federation_size: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(global change, new h) from the mean of `count` deltas: sum_k d_k = count * mean; m is the federation's
    size (at least the plants of this round)."""
    h = np.zeros_like(mean) if h is None else h
    h = h - alpha * count * mean / max(federation_size, count)
    return mean - h / alpha, h

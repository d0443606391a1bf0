"""How plant deltas d_k = w_k - w combine into the global change, per algorithm (pure functions).

- FedAvg / FedProx (McMahan et al. 2017; Li et al. 2020): sum_k p_k d_k with p_k = n_k / n.
- FedNova (Wang et al., NeurIPS 2020): normalise each delta by its local steps tau_k, then scale by the
  effective steps tau_eff = sum_k p_k tau_k:  tau_eff * sum_k p_k d_k / tau_k.
- FedDyn (Acar et al., ICLR 2021), server side: h <- h - alpha * (1/m) sum_k d_k over the m plants of the
  federation; new w = w + mean_k d_k - h / alpha. (The plant side keeps its own linear term; see
  shared.training.)
"""

from __future__ import annotations

import numpy as np


def weighted_delta(deltas: np.ndarray, samples: np.ndarray) -> np.ndarray:
    p = samples / samples.sum()
    return (p[:, None] * deltas).sum(axis=0)


def fednova_delta(deltas: np.ndarray, samples: np.ndarray, steps: np.ndarray) -> np.ndarray:
    p = samples / samples.sum()
    tau = np.maximum(steps.astype(np.float64), 1.0)
    tau_eff = float((p * tau).sum())
    return tau_eff * (p[:, None] * deltas / tau[:, None]).sum(axis=0)


def feddyn_delta(deltas: np.ndarray, h: np.ndarray | None, alpha: float, federation_size: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(global change, new h)."""
    h = np.zeros(deltas.shape[1]) if h is None else h
    h = h - alpha * deltas.sum(axis=0) / max(federation_size, len(deltas))
    return deltas.mean(axis=0) - h / alpha, h

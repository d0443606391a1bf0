"""SCAFFOLD's control variates (Karimireddy et al., "SCAFFOLD: Stochastic Controlled Averaging for Federated
Learning", ICML 2020, Algorithm 1 with option II), as pure functions over flat float64 vectors.

Notation of the paper: x the global model a plant starts from, y its model after K local steps at learning
rate eta_l, c the server's control variate, c_i the plant's own, S the round's plants, N the federation's.

- plant (line 12, option II): c_i+ = c_i - c + (x - y) / (K eta_l); the plant keeps c_i + clip(c_i+ - c_i)
  and sends Delta c_i = clip(c_i+ - c_i), clipped to the bound its model update is clipped to, so one plant
  moves c by at most (1 / N) times that bound (and the server's c stays the mean of the plants' c_i);
- local step (line 10): y <- y - eta_l (g_i(y) - c_i + c). FactoryFL's plants step with Adam, which rescales
  a gradient per coordinate: the correction (c - c_i) is added to the step, y <- y - eta_l (d(y) + c - c_i)
  with d Adam's direction, so that option II's (x - y) / (K eta_l) measures exactly the mean direction taken
  (for plain SGD, d = g and this is line 10). It also survives DP-SGD, whose optimiser rebuilds the gradient
  from clipped per-sample gradients (the correction is post-processing of earlier releases and of c);
- server (lines 16-17): x <- x + mean of the plants' deltas (FedAvg's weighting, eta_g = 1) and
  c <- c + (|S| / N) * mean_i Delta c_i.
"""

from __future__ import annotations

import numpy as np

from shared.privacy.central import clip_update


def plant_control_update(c_i: np.ndarray, c: np.ndarray, x: np.ndarray, y: np.ndarray, steps: int,
                         learning_rate: float) -> np.ndarray:
    """Option II: c_i+ = c_i - c + (x - y) / (K eta_l) (Karimireddy et al. 2020, Algorithm 1, line 12); K >= 1."""
    return c_i - c + (x - y) / (max(int(steps), 1) * learning_rate)


def control_delta(c_i: np.ndarray, c_i_plus: np.ndarray, bound: float | None) -> np.ndarray:
    """Delta c_i = c_i+ - c_i, scaled down to L2 norm `bound` when longer (None: unbounded)."""
    delta = c_i_plus - c_i
    return delta if bound is None else clip_update(delta, bound)


def server_control_update(c: np.ndarray | None, mean_delta: np.ndarray, count: int, federation_size: int
                          ) -> np.ndarray:
    """c <- c + (|S| / N) * mean_{i in S} Delta c_i (Algorithm 1, line 17), with |S| = `count` plants this round
    and N = max(federation_size, count) (a federation is at least the plants of its round); c starts at 0."""
    c = np.zeros_like(mean_delta) if c is None else c
    return c + count / max(federation_size, count) * mean_delta

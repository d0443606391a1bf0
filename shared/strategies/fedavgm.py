"""FedAvgM (Hsu et al., "Measuring the Effects of Non-Identical Data Distribution for Federated Visual
Classification", 2019): server momentum on the round's change D of any strategy, v <- beta v + D,
w <- w + eta v (shared.aggregation.server_opt.momentum_step). eta = 1 and beta = 0.9 are the paper's usual
choice; with beta = 0 it is the inner strategy unchanged."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from shared.aggregation.server_opt import momentum_step
from shared.strategies.base import ServerState, Strategy, Wrapper


class FedAvgM(Wrapper):
    DEFAULT_LR = 1.0
    DEFAULT_MOMENTUM = 0.9

    def __init__(self, inner: Strategy, lr: float = DEFAULT_LR, momentum: float = DEFAULT_MOMENTUM):
        super().__init__(inner)
        self.lr = lr
        self.momentum = momentum

    @property
    def name(self) -> str:
        return f"{self.inner.name}+fedavgm"

    def apply(self, w: np.ndarray, delta: np.ndarray, state: ServerState) -> tuple[np.ndarray, ServerState]:
        new, velocity = momentum_step(w, delta, state.m, self.lr, self.momentum)
        return new, replace(state, m=velocity)

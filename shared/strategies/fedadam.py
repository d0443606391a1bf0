"""FedAdam (Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2): the round's change D of
any strategy is a pseudo-gradient; the server steps with Adam's moments on it
(shared.aggregation.server_opt.server_step)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from shared.aggregation.server_opt import ServerOptimizerConfig, server_step
from shared.strategies.base import ServerState, Strategy, Wrapper


class FedAdam(Wrapper):
    variant = "fedadam"
    DEFAULT_LR = 0.01

    def __init__(self, inner: Strategy, lr: float = DEFAULT_LR):
        super().__init__(inner)
        self.lr = lr

    @property
    def name(self) -> str:
        return f"{self.inner.name}+{self.variant}"

    def apply(self, w: np.ndarray, delta: np.ndarray, state: ServerState) -> tuple[np.ndarray, ServerState]:
        new, m, v = server_step(ServerOptimizerConfig(self.variant, eta=self.lr), w, delta, state.m, state.v)
        return new, replace(state, m=m, v=v)

"""FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020): each plant adds the
proximal term (mu / 2) ||w - w_global||^2 to its loss (shared.training); the server averages as FedAvg does."""

from __future__ import annotations

from shared.strategies.fedavg import FedAvg


class FedProx(FedAvg):
    name = "fedprox"

    def __init__(self, mu: float = 0.01):
        self.mu = mu

    def configure(self) -> dict:
        return {"proximal_mu": self.mu}

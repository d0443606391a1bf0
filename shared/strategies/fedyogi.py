"""FedYogi (Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2): FedAdam with Yogi's
additive second moment, v <- v - (1 - b2) D^2 sign(v - D^2), which grows v more slowly."""

from __future__ import annotations

from shared.strategies.fedadam import FedAdam


class FedYogi(FedAdam):
    variant = "fedyogi"

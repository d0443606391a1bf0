"""Server optimisers on the aggregated update (Reddi et al., "Adaptive Federated Optimization", ICLR 2021).

With the pseudo-gradient D = aggregate - w (the averaged change), and state m, v:
    m <- b1 m + (1 - b1) D
    FedAdam: v <- b2 v + (1 - b2) D^2
    FedYogi: v <- v - (1 - b2) D^2 sign(v - D^2)
    w <- w + eta m / (sqrt(v) + tau)

and server momentum (FedAvgM, momentum_step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ServerOptimizerConfig:
    name: str  # fedadam | fedyogi
    eta: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3


def server_step(config: ServerOptimizerConfig, weights: np.ndarray, delta: np.ndarray,
                m: np.ndarray | None, v: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = np.zeros_like(delta) if m is None else m
    v = np.full_like(delta, config.tau ** 2) if v is None else v
    m = config.beta1 * m + (1 - config.beta1) * delta
    sq = delta * delta
    if config.name == "fedadam":
        v = config.beta2 * v + (1 - config.beta2) * sq
    elif config.name == "fedyogi":
        v = v - (1 - config.beta2) * sq * np.sign(v - sq)
    else:
        raise ValueError(f"unknown server optimiser {config.name!r}")
    return weights + config.eta * m / (np.sqrt(v) + config.tau), m, v


def momentum_step(weights: np.ndarray, delta: np.ndarray, momentum: np.ndarray | None, lr: float,
                  beta: float) -> tuple[np.ndarray, np.ndarray]:
    """FedAvgM (Hsu et al., "Measuring the Effects of Non-Identical Data Distribution for Federated Visual
    Classification", 2019): v <- beta v + D; w <- w + eta v. With beta = 0 and eta = 1 it is FedAvg."""
    momentum = delta if momentum is None else beta * momentum + delta
    return weights + lr * momentum, momentum

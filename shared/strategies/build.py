"""One strategy from an experiment's settings: the algorithm, wrapped by central DP, then by the robust
rules, then by the server optimiser (the order a round runs them in)."""

from __future__ import annotations

from shared.enums import Algorithm, ServerOptimizer
from shared.strategies.base import Strategy
from shared.strategies.central_dp import CentralDP
from shared.strategies.fedadam import FedAdam
from shared.strategies.fedavg import FedAvg
from shared.strategies.fedavgm import FedAvgM
from shared.strategies.feddyn import FedDyn
from shared.strategies.fednova import FedNova
from shared.strategies.fedprox import FedProx
from shared.strategies.fedyogi import FedYogi
from shared.strategies.robust import Robust
from shared.strategies.scaffold import Scaffold


def algorithm_strategy(algorithm: str, *, mu: float = 0.01, feddyn_alpha: float = 0.01,
                       federation_size: int = 0, update_clip: float | None = None) -> Strategy:
    """The base algorithm (shared.enums.Algorithm); `update_clip`: the bound plants clip their update to
    (SCAFFOLD clips each plant's control variate delta to it too)."""
    kind = Algorithm(algorithm)
    if kind is Algorithm.SCAFFOLD:
        return Scaffold(federation_size, update_clip)
    if kind is Algorithm.FEDPROX:
        return FedProx(mu)
    if kind is Algorithm.FEDNOVA:
        return FedNova()
    if kind is Algorithm.FEDDYN:
        return FedDyn(feddyn_alpha, federation_size)
    return FedAvg()


def with_server_optimizer(inner: Strategy, optimizer: str, *, lr: float | None = None,
                          momentum: float | None = None) -> Strategy:
    """`inner` with the server optimiser's step (shared.enums.ServerOptimizer; lr None: the optimiser's default)."""
    kind = ServerOptimizer(optimizer)
    if kind is ServerOptimizer.FEDAVGM:
        return FedAvgM(inner, FedAvgM.DEFAULT_LR if lr is None else lr,
                       FedAvgM.DEFAULT_MOMENTUM if momentum is None else momentum)
    if kind in (ServerOptimizer.FEDADAM, ServerOptimizer.FEDYOGI):
        optimizer_type = FedAdam if kind is ServerOptimizer.FEDADAM else FedYogi
        return optimizer_type(inner, optimizer_type.DEFAULT_LR if lr is None else lr)
    return inner


def build_strategy(algorithm: str = "fedavg", *, mu: float = 0.01, feddyn_alpha: float = 0.01,
                   federation_size: int = 0, server_optimizer: str = "none", server_lr: float | None = None,
                   server_momentum: float | None = None, robust: dict | None = None,
                   central_dp: dict | None = None, update_clip: float | None = None) -> Strategy:
    """`robust`: Robust's keyword arguments (method, trim_ratio, ...); `central_dp`: CentralDP's (clip,
    noise_multiplier, mechanism, round_epsilon), None without central DP. The robust wrapper is always there:
    with method "none" it reports norms, outliers and reputation without changing any weight."""
    strategy = algorithm_strategy(algorithm, mu=mu, feddyn_alpha=feddyn_alpha, federation_size=federation_size,
                                  update_clip=update_clip)
    if central_dp is not None:
        strategy = CentralDP(strategy, **central_dp)
    strategy = Robust(strategy, **(robust or {}))
    return with_server_optimizer(strategy, server_optimizer, lr=server_lr, momentum=server_momentum)

"""Poisson sampling of plants: each round, every eligible plant takes part independently with probability q
(the sampling of DP-FedAvg, McMahan et al., ICLR 2018), which is what lets the accountant count a round at
rate q (shared.privacy.accounting, "draw" steps)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class UniformSource(Protocol):
    def random(self) -> float:
        """A uniform draw on [0, 1): random.Random and secrets.SystemRandom have it."""


def poisson_sample(plants: Sequence[T], rate: float, rng: UniformSource) -> list[T]:
    """The plants drawn, in their order: each one independently with probability `rate`. The dashboard
    passes secrets.SystemRandom(): a draw nobody can predict from the experiment's settings."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"sampling rate must be in (0, 1], got {rate}")
    return [p for p in plants if rate >= 1.0 or rng.random() < rate]


def probability_of_at_least(count: int, plants: int, rate: float) -> float:
    """P(at least `count` of `plants` drawn at `rate`): the binomial tail."""
    return sum(math.comb(plants, k) * rate ** k * (1 - rate) ** (plants - k) for k in range(count, plants + 1))

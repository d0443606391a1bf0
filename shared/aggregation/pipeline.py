"""One round's aggregation, in order: deltas -> reputation -> norm bound -> combine (algorithm or robust
rule) -> server optimiser. Pure: state goes in and comes out; the engine persists it.
(NVIDIA FLARE's filters, in one readable function instead of a chain of objects.)"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shared.aggregation.algorithms import feddyn_delta, fednova_delta, weighted_delta
from shared.aggregation.base import ClientUpdate, check_updates
from shared.aggregation.robust import (clip_norm, coordinate_median, multi_krum, outliers_iqr, outliers_zscore,
                                       trimmed_mean, update_reputation)
from shared.aggregation.server_opt import ServerOptimizerConfig, server_step
from shared.aggregation.vectors import Weights, flatten, float_keys, unflatten
from shared.errors import AggregationError
from shared.secagg.quantize import MAX_WEIGHT
from shared.privacy.central import clip_update, laplace_mean_of_sum, noisy_mean, noisy_mean_of_sum
from shared.privacy.noise import NoiseSource


@dataclass(frozen=True)
class AggregationSettings:
    algorithm: str = "fedavg"  # fedavg | fedprox | fednova | feddyn
    feddyn_alpha: float = 0.01
    server_optimizer: str = "none"  # none | fedadam | fedyogi
    server_lr: float = 0.01
    robust_method: str = "none"  # none | norm_bound | median | trimmed_mean | krum
    trim_ratio: float = 0.2
    krum_byzantine: int = 1
    multi_krum: int = 1
    max_norm: float | None = None  # norm bound; None: the median of this round's update norms
    outlier_method: str = "zscore"  # zscore | iqr
    exclude_below: float = 0.3  # reputation under which a plant's update is left out
    use_reputation: bool = True  # False: reputation is tracked and reported but changes no weight (plain FedAvg)
    federation_size: int = 0
    dp_noise_multiplier: float = 0.0  # central DP: > 0 adds N(0, (sigma C)^2) to the sum of clipped updates
    dp_clip: float = 1.0
    dp_mechanism: str = "gaussian"  # gaussian | laplace (plants clip in L1; Laplace(C / dp_round_epsilon) noise)
    dp_round_epsilon: float = 1.0

    @property
    def central_dp(self) -> bool:
        return self.dp_noise_multiplier > 0 or self.dp_mechanism == "laplace"


@dataclass
class AggregationState:
    m: np.ndarray | None = None
    v: np.ndarray | None = None
    h: np.ndarray | None = None
    reputation: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AggregationReport:
    used: list[str]
    excluded: dict[str, str]
    norms: dict[str, float]
    outliers: list[str]
    reputation: dict[str, float]


def aggregate(settings: AggregationSettings, global_weights: Weights, updates: list[ClientUpdate],
              state: AggregationState, rng: NoiseSource | None = None
              ) -> tuple[Weights, AggregationState, AggregationReport]:
    check_updates(global_weights, updates)
    keys = float_keys(global_weights)
    w = flatten(global_weights, keys)
    names = [u.factory for u in updates]
    deltas = np.stack([flatten(u.weights, keys) - w for u in updates])
    samples = np.array([u.num_samples for u in updates], dtype=np.float64)
    steps = np.array([u.steps for u in updates], dtype=np.float64)

    norms = np.linalg.norm(deltas, axis=1)
    flags = (outliers_iqr(norms) if settings.outlier_method == "iqr" else outliers_zscore(norms)) \
        if len(updates) >= 3 else np.zeros(len(updates), dtype=bool)
    reputation = update_reputation(state.reputation, names, flags)
    keep = np.array([reputation[n] >= settings.exclude_below or not settings.use_reputation for n in names])
    excluded = {n: f"reputation {reputation[n]:.2f} below {settings.exclude_below}" for n, k in zip(names, keep)
                if not k}
    if not keep.any():
        raise AggregationError("every update was excluded by reputation")
    deltas, samples, steps = deltas[keep], samples[keep], steps[keep]
    used = [n for n, k in zip(names, keep) if k]
    if settings.use_reputation:
        weights = samples * np.array([reputation[n] for n in used])  # down-weight plants with a poor record
    else:
        weights = samples

    if settings.robust_method == "norm_bound":
        bound = settings.max_norm or float(np.median(norms))
        deltas = np.stack([clip_norm(d, bound) for d in deltas])

    h = state.h
    if settings.central_dp:  # equal weights keep the sum's sensitivity at C
        if rng is None:
            raise AggregationError("central differential privacy needs a random generator for its noise")
        if settings.dp_mechanism == "laplace":
            total = np.stack([clip_update(d, settings.dp_clip, ord=1) for d in deltas]).sum(axis=0)
            change = laplace_mean_of_sum(total, len(deltas), settings.dp_clip, settings.dp_round_epsilon, rng)
        else:
            change = noisy_mean(deltas, settings.dp_clip, settings.dp_noise_multiplier, rng)
    elif settings.robust_method == "median":
        change = coordinate_median(deltas)
    elif settings.robust_method == "trimmed_mean":
        change = trimmed_mean(deltas, settings.trim_ratio)
    elif settings.robust_method == "krum" and len(deltas) >= 3:
        # after reputation exclusions fewer plants may remain than Krum's n > f + 2 needs: assume fewer attackers
        byzantine = min(settings.krum_byzantine, len(deltas) - 3)
        change, chosen = multi_krum(deltas, byzantine, min(settings.multi_krum, len(deltas) - byzantine))
        excluded.update({n: "not selected by Krum" for i, n in enumerate(used) if i not in chosen})
    elif settings.robust_method == "krum":  # one or two plants left: nothing to vote on
        change = coordinate_median(deltas)
    elif settings.algorithm == "fednova":
        change = fednova_delta(deltas, weights, steps)
    elif settings.algorithm == "feddyn":
        change, h = feddyn_delta(deltas, h, settings.feddyn_alpha, settings.federation_size)
    else:  # fedavg, fedprox
        change = weighted_delta(deltas, weights)

    out, m, v = _apply(settings, global_weights, keys, w, change, state)
    report = AggregationReport(used=used, excluded=excluded, norms=dict(zip(names, map(float, norms))),
                               outliers=[n for n, f in zip(names, flags) if f], reputation=reputation)
    return out, AggregationState(m=m, v=v, h=h, reputation=reputation), report


def _apply(settings: AggregationSettings, global_weights: Weights, keys: list[str], w: np.ndarray,
           change: np.ndarray, state: AggregationState) -> tuple[Weights, np.ndarray | None, np.ndarray | None]:
    """The server optimiser (or plain addition) on the round's change."""
    m, v = state.m, state.v
    if settings.server_optimizer in ("fedadam", "fedyogi"):
        new, m, v = server_step(ServerOptimizerConfig(settings.server_optimizer, eta=settings.server_lr), w, change,
                                m, v)
    else:
        new = w + change
    out = dict(global_weights)
    out.update(unflatten(new, global_weights, keys))
    return out, m, v


def secure_weighting(settings: AggregationSettings) -> str:
    """How plants weight their clipped delta before masking (shared.secagg.plant.aggregation_weight)."""
    if settings.central_dp or settings.algorithm == "feddyn":
        return "equal"
    return "samples_per_step" if settings.algorithm == "fednova" else "samples"


@dataclass(frozen=True)
class SecureSum:
    """What secure aggregation yields: sum_k a_k clip(d_k) over the survivors, and their public metadata."""

    total: np.ndarray
    weights: dict[str, float]  # a_k, as the plants applied them
    samples: dict[str, int]
    steps: dict[str, int]


def aggregate_secure(settings: AggregationSettings, global_weights: Weights, summed: SecureSum,
                     state: AggregationState, rng: NoiseSource | None = None
                     ) -> tuple[Weights, AggregationState, AggregationReport]:
    """The same algorithms from the sum alone: FedAvg/FedProx sum/sum(a) with a = n; FedNova tau_eff * sum / n
    with a = n/tau; FedDyn and central DP with a = 1. Per-plant norms, outliers and reputation need single
    updates, which secure aggregation hides: reputation is carried over unchanged."""
    keys = float_keys(global_weights)
    w = flatten(global_weights, keys)
    names = sorted(summed.weights)
    count = len(names)
    if not count or len(summed.total) != len(w):
        raise AggregationError(f"secure sum of length {len(summed.total)} from {count} plants does not fit the "
                               f"model's {len(w)} parameters")
    if not np.all(np.isfinite(summed.total)):
        raise AggregationError("the secure sum contains NaN or infinity")
    h = state.h
    samples = np.minimum(np.array([summed.samples[n] for n in names], dtype=np.float64), MAX_WEIGHT)
    if settings.central_dp:
        if rng is None:
            raise AggregationError("central differential privacy needs a random generator for its noise")
        if settings.dp_mechanism == "laplace":  # the plants clipped in L1 before masking
            change = laplace_mean_of_sum(summed.total, count, settings.dp_clip, settings.dp_round_epsilon, rng)
        else:
            change = noisy_mean_of_sum(summed.total, count, settings.dp_clip, settings.dp_noise_multiplier, rng)
    elif settings.algorithm == "feddyn":
        h = (np.zeros_like(w) if h is None else h) - settings.feddyn_alpha * summed.total / max(
            settings.federation_size, count)
        change = summed.total / count - h / settings.feddyn_alpha
    elif settings.algorithm == "fednova":
        p = samples / samples.sum()
        tau = np.maximum(np.array([summed.steps[n] for n in names], dtype=np.float64), 1.0)
        change = float((p * tau).sum()) * summed.total / samples.sum()
    else:
        change = summed.total / sum(summed.weights.values())
    out, m, v = _apply(settings, global_weights, keys, w, change, state)
    report = AggregationReport(used=names, excluded={}, norms={}, outliers=[], reputation=dict(state.reputation))
    return out, AggregationState(m=m, v=v, h=h, reputation=dict(state.reputation)), report

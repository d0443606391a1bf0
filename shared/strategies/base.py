"""What every strategy shares (Flower's Strategy, reduced to what a round of FactoryFL asks of it).

A strategy says what the plants train with (`configure_fit`, as Flower's: its settings and, for SCAFFOLD, the
server's control variate), asks for masked updates (`secure_setup`, weighted as `secure_weighting` says), and
turns a round's contributions into the next global model: single updates
(`aggregate`) or the sum secure aggregation yields (`aggregate_sum`). Both are template methods over three
steps a subclass or a wrapper changes:

- `combine(cohort)` / `combine_sum(summed)`: the round's global change D from the updates or from their sum;
- `combine_mean(mean, count)`: D from the equally weighted mean of clipped deltas (what central DP releases);
- `apply(w, D)`: the server's step, w + D, or a server optimiser's.

Wrappers (robust rules, central DP, server optimisers) hold an inner strategy and replace one step.
State between rounds is a ServerState (FedDyn's h, the optimiser's moments, the plants' reputation).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace

import numpy as np

from shared.aggregation.base import ClientUpdate, Weights, check_updates
from shared.aggregation.vectors import flatten, float_keys, unflatten
from shared.errors import AggregationError
from shared.privacy.noise import NoiseSource
from shared.protocol import SecAggRequest

STATE_ARRAYS = ("m", "v", "h", "c")


@dataclass(frozen=True)
class ServerState:
    """What the server carries from round to round."""

    m: np.ndarray | None = None  # FedAdam/FedYogi's first moment, or FedAvgM's momentum
    v: np.ndarray | None = None  # FedAdam/FedYogi's second moment
    h: np.ndarray | None = None  # FedDyn's server term
    c: np.ndarray | None = None  # SCAFFOLD's server control variate (over the float parameters, flat)
    reputation: dict[str, float] = field(default_factory=dict)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store (shared.serialization); the reputation is stored apart, as JSON."""
        return {k: getattr(self, k) for k in STATE_ARRAYS if getattr(self, k) is not None}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray] | None, reputation: dict[str, float] | None = None
                    ) -> "ServerState":
        arrays = arrays or {}
        return cls(**{k: arrays.get(k) for k in STATE_ARRAYS}, reputation=dict(reputation or {}))


@dataclass(frozen=True)
class SecureSum:
    """What secure aggregation yields: sum_k a_k clip(d_k) over the survivors, and their public metadata."""

    total: np.ndarray
    weights: dict[str, float]  # a_k, as the plants applied them
    samples: dict[str, int]
    steps: dict[str, int]

    @property
    def names(self) -> list[str]:
        return sorted(self.weights)


@dataclass(frozen=True)
class Cohort:
    """One round's single updates as rows of a matrix of deltas d_k = w_k - w."""

    names: tuple[str, ...]
    deltas: np.ndarray
    weights: np.ndarray  # a_k: samples (times reputation under a robust rule)
    steps: np.ndarray
    norms: np.ndarray  # ||d_k|| of every update of the round, before any exclusion
    controls: np.ndarray | None = None  # SCAFFOLD's Delta c_k as rows, when every update carries one

    @classmethod
    def of(cls, updates: list[ClientUpdate], keys: list[str], w: np.ndarray) -> "Cohort":
        deltas = np.stack([flatten(u.weights, keys) - w for u in updates])
        controls = np.stack([flatten(u.control, keys) for u in updates]) \
            if all(u.control is not None for u in updates) else None
        return cls(names=tuple(u.factory for u in updates), deltas=deltas,
                   weights=np.array([u.num_samples for u in updates], dtype=np.float64),
                   steps=np.array([u.steps for u in updates], dtype=np.float64),
                   norms=np.linalg.norm(deltas, axis=1), controls=controls)

    def subset(self, keep: np.ndarray, weights: np.ndarray) -> "Cohort":
        """The kept plants, with new combining weights (norms stay those of the whole round)."""
        return replace(self, names=tuple(n for n, k in zip(self.names, keep) if k), deltas=self.deltas[keep],
                       weights=weights, steps=self.steps[keep],
                       controls=None if self.controls is None else self.controls[keep])


@dataclass(frozen=True)
class Change:
    """A round's global change D before the server's step, and what the combining learnt on the way."""

    delta: np.ndarray
    state: ServerState
    used: list[str] | None = None  # None: every plant of the round
    excluded: dict[str, str] = field(default_factory=dict)  # plant -> why its update was left out
    outliers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FitConfig:
    """The strategy's part of every plant's training request in a round."""

    settings: dict = field(default_factory=dict)  # extra TrainSettings fields (e.g. proximal_mu)
    control: Weights | None = None  # SCAFFOLD's server control variate, shaped as the model's float parameters


@dataclass(frozen=True)
class AggregationReport:
    used: list[str]
    excluded: dict[str, str]
    norms: dict[str, float]
    outliers: list[str]
    reputation: dict[str, float]


@dataclass(frozen=True)
class Aggregated:
    """The new global weights, the state for the next round, and what the round's aggregation did."""

    weights: Weights
    state: ServerState
    report: AggregationReport


class Strategy(ABC):
    name: str = ""

    @property
    def algorithm(self) -> str:
        """The algorithm that combines the updates (a wrapper names its inner one's)."""
        return self.name

    def configure(self) -> dict:
        """Extra TrainSettings fields every plant trains with (e.g. proximal_mu)."""
        return {}

    def configure_fit(self, global_weights: Weights, state: ServerState) -> FitConfig:
        """The strategy's part of the round's training requests (Flower's configure_fit)."""
        return FitConfig(self.configure())

    def secure_setup(self, participants: dict[str, str], clip: float | None) -> SecAggRequest:
        """The part of every plant's training request that asks for a masked update; `participants`: every
        plant asked this round -> its X25519 public key (hex); `clip`: the bound plants clip their update to."""
        from shared.secagg.quantize import fraction_bits
        from shared.secagg.shamir import default_threshold

        return SecAggRequest(participants=dict(participants), threshold=default_threshold(len(participants)),
                             fraction_bits=fraction_bits(len(participants), clip),
                             weighting=self.secure_weighting, clip=clip)

    @property
    def secure_weighting(self) -> str:
        """How plants weight their clipped delta before masking (shared.secagg.plant.aggregation_weight)."""
        return "samples"

    @abstractmethod
    def combine(self, cohort: Cohort, state: ServerState, noise: NoiseSource | None) -> Change:
        """The global change from single updates."""

    @abstractmethod
    def combine_sum(self, summed: SecureSum, state: ServerState, noise: NoiseSource | None) -> Change:
        """The global change from the sum of the plants' weighted deltas (weighted as `secure_weighting` says)."""

    def combine_mean(self, mean: np.ndarray, count: int, state: ServerState) -> Change:
        """The global change from the equally weighted mean of `count` clipped deltas: the mean itself."""
        return Change(mean, state)

    def apply(self, w: np.ndarray, delta: np.ndarray, state: ServerState) -> tuple[np.ndarray, ServerState]:
        """The server's step on the flat global weights."""
        return w + delta, state

    def __repr__(self) -> str:  # the whole composition with its parameters: what a round ran
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    # --- the template methods -------------------------------------------------------------------
    def aggregate(self, global_weights: Weights, updates: list[ClientUpdate], state: ServerState | None = None,
                  noise: NoiseSource | None = None) -> Aggregated:
        check_updates(global_weights, updates)
        keys = float_keys(global_weights)
        w = flatten(global_weights, keys)
        cohort = Cohort.of(updates, keys, w)
        change = self.combine(cohort, state or ServerState(), noise)
        return self._finish(global_weights, keys, w, change, list(cohort.names),
                            dict(zip(cohort.names, map(float, cohort.norms))))

    def aggregate_sum(self, global_weights: Weights, summed: SecureSum, state: ServerState | None = None,
                      noise: NoiseSource | None = None) -> Aggregated:
        """Per-plant norms, outliers and reputation need single updates, which secure aggregation hides: the
        reputation is carried over unchanged."""
        keys = float_keys(global_weights)
        w = flatten(global_weights, keys)
        count = len(summed.weights)
        if not count or len(summed.total) != len(w):
            raise AggregationError(f"secure sum of length {len(summed.total)} from {count} plants does not fit the "
                                   f"model's {len(w)} parameters")
        if not np.all(np.isfinite(summed.total)):
            raise AggregationError("the secure sum contains NaN or infinity")
        state = state or ServerState()
        change = self.combine_sum(summed, replace(state, reputation=dict(state.reputation)), noise)
        return self._finish(global_weights, keys, w, change, summed.names, {})

    def _finish(self, global_weights: Weights, keys: list[str], w: np.ndarray, change: Change, names: list[str],
                norms: dict[str, float]) -> Aggregated:
        new, state = self.apply(w, change.delta, change.state)
        out = dict(global_weights)
        out.update(unflatten(new, global_weights, keys))
        report = AggregationReport(used=names if change.used is None else change.used, excluded=change.excluded,
                                   norms=norms, outliers=change.outliers, reputation=state.reputation)
        return Aggregated(out, state, report)


class Wrapper(Strategy):
    """A strategy around another one: every step it does not replace is the inner strategy's."""

    def __init__(self, inner: Strategy):
        self.inner = inner

    @property
    def algorithm(self) -> str:
        return self.inner.algorithm

    def configure(self) -> dict:
        return self.inner.configure()

    def configure_fit(self, global_weights: Weights, state: ServerState) -> FitConfig:
        return self.inner.configure_fit(global_weights, state)

    def secure_setup(self, participants: dict[str, str], clip: float | None) -> SecAggRequest:
        """The inner strategy's (which may refuse), weighted as this wrapper says (central DP: equally)."""
        return replace(self.inner.secure_setup(participants, clip), weighting=self.secure_weighting)

    @property
    def secure_weighting(self) -> str:
        return self.inner.secure_weighting

    def combine(self, cohort: Cohort, state: ServerState, noise: NoiseSource | None) -> Change:
        return self.inner.combine(cohort, state, noise)

    def combine_sum(self, summed: SecureSum, state: ServerState, noise: NoiseSource | None) -> Change:
        return self.inner.combine_sum(summed, state, noise)

    def combine_mean(self, mean: np.ndarray, count: int, state: ServerState) -> Change:
        return self.inner.combine_mean(mean, count, state)

    def apply(self, w: np.ndarray, delta: np.ndarray, state: ServerState) -> tuple[np.ndarray, ServerState]:
        return self.inner.apply(w, delta, state)

"""Byzantine robustness around any strategy: reputation from update norms, norm bounding, and robust rules
that replace the strategy's average (shared.aggregation.robust has the formulas and their papers).

In order, on single updates: every plant's update norm is scored as an outlier (n >= 3) and its reputation
updated; with a robust method, plants under `exclude_below` are left out and the others weighted by
reputation; norm_bound clips each delta to `max_norm` (default: the median norm of the round); median,
trimmed mean and (Multi-)Krum then replace the inner strategy's combining step (ExperimentConfig refuses them
with algorithms whose server step they would drop). Method "none" only observes: norms, outliers and
reputation are reported, no weight changes.

A secure sum hides single updates: reputation is carried over, norm bounding is the plants' clip, and a rule
that needs single updates is an error.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from shared.aggregation.robust import (clip_norm, coordinate_median, multi_krum, outliers_iqr, outliers_zscore,
                                       trimmed_mean, update_reputation)
from shared.enums import RobustMethod
from shared.errors import AggregationError
from shared.privacy.noise import NoiseSource
from shared.strategies.base import Change, Cohort, SecureSum, ServerState, Strategy, Wrapper


class Robust(Wrapper):
    def __init__(self, inner: Strategy, method: str = "none", *, trim_ratio: float = 0.2, byzantine: int = 1,
                 multi_krum: int = 1, max_norm: float | None = None, outlier_method: str = "zscore",
                 exclude_below: float = 0.3, use_reputation: bool | None = None):
        super().__init__(inner)
        self.method = RobustMethod(method)
        self.trim_ratio, self.byzantine, self.multi_krum = trim_ratio, byzantine, multi_krum
        self.max_norm, self.outlier_method, self.exclude_below = max_norm, outlier_method, exclude_below
        # reputation changes weights under a robust method; without one it is tracked and reported only
        self.use_reputation = self.method is not RobustMethod.NONE if use_reputation is None else use_reputation

    @property
    def name(self) -> str:
        return self.inner.name if self.method is RobustMethod.NONE else f"{self.inner.name}+{self.method}"

    def combine(self, cohort: Cohort, state: ServerState, noise: NoiseSource | None) -> Change:
        flags = self._outliers(cohort.norms)
        reputation = update_reputation(state.reputation, list(cohort.names), flags)
        state = replace(state, reputation=reputation)
        kept, excluded = self._exclude(cohort, reputation)
        if self.method is RobustMethod.NORM_BOUND:
            bound = self.max_norm or float(np.median(cohort.norms))
            kept = replace(kept, deltas=np.stack([clip_norm(d, bound) for d in kept.deltas]))
        if self.method.needs_single_updates:
            change = self._rule(kept, state)
        else:
            change = self.inner.combine(kept, state, noise)
        return replace(change, used=list(kept.names), excluded={**excluded, **change.excluded},
                       outliers=[n for n, f in zip(cohort.names, flags) if f])

    def combine_sum(self, summed: SecureSum, state: ServerState, noise: NoiseSource | None) -> Change:
        if self.method.needs_single_updates:
            raise AggregationError(f"{self.method} needs each plant's update, which secure aggregation hides")
        return self.inner.combine_sum(summed, state, noise)

    def _outliers(self, norms: np.ndarray) -> np.ndarray:
        if len(norms) < 3:
            return np.zeros(len(norms), dtype=bool)
        return outliers_iqr(norms) if self.outlier_method == "iqr" else outliers_zscore(norms)

    def _exclude(self, cohort: Cohort, reputation: dict[str, float]) -> tuple[Cohort, dict[str, str]]:
        """Plants whose reputation fell under the bar are left out; the others are weighted by it."""
        if not self.use_reputation:
            return cohort, {}
        keep = np.array([reputation[n] >= self.exclude_below for n in cohort.names])
        excluded = {n: f"reputation {reputation[n]:.2f} below {self.exclude_below}"
                    for n, k in zip(cohort.names, keep) if not k}
        if not keep.any():
            raise AggregationError("every update was excluded by reputation")
        kept_names = [n for n, k in zip(cohort.names, keep) if k]
        return cohort.subset(keep, cohort.weights[keep] * np.array([reputation[n] for n in kept_names])), excluded

    def _rule(self, cohort: Cohort, state: ServerState) -> Change:
        """The robust statistic in place of the inner strategy's average (its server state is left as is)."""
        deltas = cohort.deltas
        if self.method is RobustMethod.MEDIAN:
            return Change(coordinate_median(deltas), state)
        if self.method is RobustMethod.TRIMMED_MEAN:
            return Change(trimmed_mean(deltas, self.trim_ratio), state)
        if len(deltas) < 3:  # Krum with one or two plants left: nothing to vote on
            return Change(coordinate_median(deltas), state)
        # after reputation exclusions fewer plants may remain than Krum's n > f + 2 needs: assume fewer attackers
        byzantine = min(self.byzantine, len(deltas) - 3)
        change, chosen = multi_krum(deltas, byzantine, min(self.multi_krum, len(deltas) - byzantine))
        return Change(change, state, excluded={n: "not selected by Krum" for i, n in enumerate(cohort.names)
                                               if i not in chosen})

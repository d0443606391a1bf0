"""Central differential privacy around any strategy (McMahan et al., "Learning Differentially Private Recurrent
Language Models", ICLR 2018; shared.privacy.central has the mechanisms): every plant's delta is clipped to C,
the sum of the clipped deltas gets Gaussian noise N(0, (sigma C)^2) (or Laplace(C / epsilon) noise with L1
clipping), and the noisy mean is what the inner strategy combines from (`combine_mean`). Equal weights keep
the sum's sensitivity at C, so the plants weight equally under secure aggregation too.

Everything after the noise is post-processing of a released value: FedDyn's h, the server optimiser's moments
and the next model depend on the noisy mean only.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from shared.enums import PrivacyMechanism
from shared.errors import AggregationError
from shared.privacy.central import clip_update, laplace_mean_of_sum, noisy_mean, noisy_mean_of_sum
from shared.privacy.noise import NoiseSource
from shared.aggregation.base import Weights
from shared.strategies.base import Change, Cohort, FitConfig, SecureSum, ServerState, Strategy, Wrapper


class CentralDP(Wrapper):
    def __init__(self, inner: Strategy, clip: float, noise_multiplier: float = 0.0,
                 mechanism: str = "gaussian", round_epsilon: float = 1.0):
        super().__init__(inner)
        self.clip, self.noise_multiplier = clip, noise_multiplier
        self.mechanism, self.round_epsilon = PrivacyMechanism(mechanism), round_epsilon

    @property
    def name(self) -> str:
        return f"{self.inner.name}+central_dp"

    @property
    def secure_weighting(self) -> str:
        return "equal"

    def configure_fit(self, global_weights: Weights, state: ServerState) -> FitConfig:
        """Under Laplace the plants clip in L1 (the mechanism's sensitivity)."""
        fit = self.inner.configure_fit(global_weights, state)
        if self.mechanism is PrivacyMechanism.LAPLACE:
            return replace(fit, settings={**fit.settings, "clip_update_ord": 1})
        return fit

    def combine(self, cohort: Cohort, state: ServerState, noise: NoiseSource | None) -> Change:
        noise = _required(noise)
        count = len(cohort.deltas)
        if self.mechanism is PrivacyMechanism.LAPLACE:
            total = np.stack([clip_update(d, self.clip, ord=1) for d in cohort.deltas]).sum(axis=0)
            mean = laplace_mean_of_sum(total, count, self.clip, self.round_epsilon, noise)
        else:
            mean = noisy_mean(cohort.deltas, self.clip, self.noise_multiplier, noise)
        return self.inner.combine_mean(mean, count, state)

    def combine_sum(self, summed: SecureSum, state: ServerState, noise: NoiseSource | None) -> Change:
        """The plants clipped (in L1 for Laplace) and weighted equally before masking."""
        noise = _required(noise)
        count = len(summed.weights)
        if self.mechanism is PrivacyMechanism.LAPLACE:
            mean = laplace_mean_of_sum(summed.total, count, self.clip, self.round_epsilon, noise)
        else:
            mean = noisy_mean_of_sum(summed.total, count, self.clip, self.noise_multiplier, noise)
        return self.inner.combine_mean(mean, count, state)


def _required(noise: NoiseSource | None) -> NoiseSource:
    if noise is None:
        raise AggregationError("central differential privacy needs a random generator for its noise")
    return noise

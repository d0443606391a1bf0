"""Settings that contradict each other: refused with a message that names both fields and why.

Which combinations the strategies implement fully instead (shared.strategies):
- fedprox with any robust rule: FedProx is a plant-side term; the robust rule replaces the server's average,
  exactly as for fedavg;
- feddyn with central DP: the server term h follows the noisy mean (post-processing of a released value);
- any algorithm with any server optimiser (fedadam, fedyogi, fedavgm): the optimiser steps on the round's
  change, whatever computed it (a robust rule, a noisy mean);
- norm_bound with anything: each delta is clipped before the algorithm combines;
- scaffold with DP-SGD: the step correction and Delta c_k are post-processing of the plant's noisy steps and
  of the public c.

Refused here, all at once (`contradictions` lists every one; each message names both fields and a valid
alternative): the rules of secure aggregation, DP-SGD, central DP and personalization with the rest, then the
algorithms' own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.enums import Algorithm, ModelType, Personalization, PrivacyMechanism, RobustMethod
from shared.experiment.validation import ValidationError

if TYPE_CHECKING:
    from shared.experiment.config import ExperimentConfig


def contradictions(config: ExperimentConfig) -> list[ValidationError]:
    """Every contradiction in `config`, in the order the API has always named the first."""
    return [*_secure_aggregation(config), *_privacy(config), *_robust(config), *_personalization(config),
            *_algorithm(config)]


def _secure_aggregation(config: ExperimentConfig) -> list[ValidationError]:
    found, method = [], config.robust.method
    if not config.secure_aggregation:
        return found
    if RobustMethod(method).needs_single_updates:
        found.append(ValidationError("robust.method", f"{method} needs each plant's update, which secure "
                                                      "aggregation hides from the aggregator; use norm_bound or "
                                                      "turn secure aggregation off"))
    if config.min_factories < 2:
        found.append(ValidationError("min_factories", "secure aggregation needs at least 2 plants per round: the "
                                                      "sum of one plant is that plant's update"))
    if method == RobustMethod.NORM_BOUND.value and config.robust.max_norm is None:
        found.append(ValidationError("robust.max_norm", "norm_bound under secure aggregation needs a fixed "
                                                        "max_norm: the default (the median of this round's update "
                                                        "norms) needs each plant's update"))
    return found


def _privacy(config: ExperimentConfig) -> list[ValidationError]:
    found, privacy, algorithm = [], config.privacy, config.algorithm
    if privacy.dp_sgd and ModelType(config.model_type).is_sequence:
        found.append(ValidationError("privacy.mode", f"dp_sgd trains the row models only "
                                                     f"({', '.join(ModelType.tabular())}): Opacus's per-sample "
                                                     f"gradients do not cover torch's LSTM layer used by "
                                                     f"{config.model_type}; use central"))
    if privacy.dp_sgd and algorithm in (Algorithm.FEDPROX.value, Algorithm.FEDDYN.value):
        found.append(ValidationError("privacy.mode", f"dp_sgd clips per-sample gradients of the data loss; "
                                                     f"{algorithm}'s regulariser is not per sample: use fedavg or "
                                                     "fednova"))
    laplace = privacy.mechanism == PrivacyMechanism.LAPLACE.value
    if laplace and not privacy.central:
        found.append(ValidationError("privacy.mechanism", "laplace is a central mechanism (noise on the sum); "
                                                          "dp_sgd is Gaussian per step"))
    if laplace and privacy.epsilon is not None and privacy.round_epsilon > privacy.epsilon:
        found.append(ValidationError("privacy.round_epsilon", f"{privacy.round_epsilon} per round exceeds the "
                                                              f"whole budget {privacy.epsilon}: not even one round "
                                                              "would fit"))
    return found


def _robust(config: ExperimentConfig) -> list[ValidationError]:
    found, robust = [], config.robust
    if config.privacy.central and robust.method not in (RobustMethod.NONE.value, RobustMethod.NORM_BOUND.value):
        found.append(ValidationError("robust.method", f"{robust.method} cannot be combined with central "
                                                      "differential privacy: the noise is calibrated to a sum of "
                                                      "clipped updates; use none or norm_bound"))
    if robust.method == RobustMethod.KRUM.value and config.min_factories < robust.byzantine + 3:
        found.append(ValidationError("min_factories", f"Krum with {robust.byzantine} Byzantine plant(s) needs at "
                                                      f"least {robust.byzantine + 3} plants per round"))
    return found


def _personalization(config: ExperimentConfig) -> list[ValidationError]:
    """Personalization trains on each plant's rows without DP, and releases scores of the models it fits: under
    dp_sgd or central DP the experiment's epsilon would not cover it (review H2; not named, it is none there:
    shared.experiment.fields)."""
    privacy, asked = config.privacy, config.personalization
    if not (privacy.dp_sgd or privacy.central) or asked == Personalization.NONE.value:
        return []
    return [ValidationError("personalization", f"{asked} cannot be combined with privacy.mode {privacy.mode}: "
                                               "personalization fine-tunes on each plant's training rows without "
                                               "differential privacy, so the experiment's epsilon would not cover "
                                               "it; use personalization none, or privacy.mode none")]


def _algorithm(config: ExperimentConfig) -> list[ValidationError]:
    """Each names one field (the algorithm) and, in its message, the other."""
    found, algorithm, method = [], config.algorithm, config.robust.method
    if algorithm == Algorithm.SCAFFOLD.value:
        found.extend(_scaffold(config))
    if RobustMethod(method).needs_single_updates and algorithm == Algorithm.FEDNOVA.value:
        found.append(ValidationError("algorithm", f"fednova cannot be combined with robust.method {method}: the "
                                           "robust rule "
                                           "replaces the server's average, and with it FedNova's normalisation by "
                                           f"each plant's local steps; use fedavg or fedprox with {method}, or "
                                           "robust.method none or norm_bound with fednova"))
    if RobustMethod(method).needs_single_updates and algorithm == Algorithm.FEDDYN.value:
        found.append(ValidationError("algorithm", f"feddyn cannot be combined with robust.method {method}: the "
                                           "robust rule "
                                           "replaces FedDyn's server update, so its server term would never follow "
                                           f"the plants' linear terms; use fedavg or fedprox with {method}, or "
                                           "robust.method none or norm_bound with feddyn"))
    if config.privacy.central and algorithm == Algorithm.FEDNOVA.value:
        found.append(ValidationError("algorithm", "fednova cannot be combined with privacy.mode central: central DP "
                                           "averages clipped updates with equal weights, so that one plant moves "
                                           "the sum by at most privacy.max_grad_norm; FedNova's weights (samples "
                                           "per local step) would change that bound; use fedavg, fedprox or feddyn"))
    return found


SCAFFOLD_SECAGG = ("scaffold cannot be combined with secure_aggregation: the unmasked sum of the unweighted control "
                   "variate deltas (sum_k Delta c_k = -N c - sum_k d_k / (K_k lr)) and the sum of the weighted "
                   "updates (sum_k a_k d_k) are two independent linear functions of the plants' updates, so with "
                   "two survivors the server can solve for each plant's update; use fedavg, fedprox, fednova or "
                   "feddyn with secure_aggregation, or scaffold without it")


def _scaffold(config: ExperimentConfig) -> list[ValidationError]:
    found, method = [], config.robust.method
    if config.secure_aggregation:
        found.append(ValidationError("algorithm", SCAFFOLD_SECAGG))
    if RobustMethod(method).needs_single_updates:
        found.append(ValidationError("algorithm", f"scaffold cannot be combined with robust.method {method}: the "
                                           "robust rule "
                                           "replaces the server's average of the updates but not of the control "
                                           "variate deltas, so the server's c would follow plants whose updates "
                                           f"were left out; use fedavg or fedprox with {method}, or robust.method "
                                           "none or norm_bound with scaffold"))
    if config.privacy.central:
        found.append(ValidationError("algorithm", "scaffold cannot be combined with privacy.mode central: central "
                                           "DP noises "
                                           "the sum of the updates, but each plant's control variate delta would "
                                           "reach the server un-noised (it carries the same information as the "
                                           "update); use dp_sgd (record level, at each plant) with scaffold, or "
                                           "fedavg, fedprox or feddyn with central DP"))
    return found

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

Refused here (a valid alternative is in each message); the checks of secure aggregation, DP-SGD and central DP
with robust rules are in shared.experiment.parse, where they always were.
"""

from __future__ import annotations

from shared.enums import Algorithm, PrivacyMode, RobustMethod
from shared.experiment.config import ExperimentConfig  # config imports neither this module nor parse
from shared.experiment.validation import ValidationError


def default_algorithm(privacy_mode: str, robust_method: str, server_optimizer: str = "none") -> str:
    """The algorithm of a body that names none: feddyn (ExperimentConfig's default, the best on validation F1:
    README "Model quality"), or fedavg where feddyn cannot run or does not help: under dp_sgd (its regulariser
    is not per sample), with a robust rule that replaces the server's average (median, trimmed mean, Krum),
    under central DP (its server term h adds up every round's noisy mean change, so the first round's model
    already carries twice the noise of fedavg's), and with a server optimiser (FedAvgM, FedAdam and FedYogi
    were measured over fedavg; "fedavgm" has always meant FedAvg with server momentum)."""
    if (privacy_mode != PrivacyMode.NONE.value or RobustMethod(robust_method).needs_single_updates
            or server_optimizer != "none"):
        return Algorithm.FEDAVG.value
    return ExperimentConfig.algorithm


def refuse_contradictions(config: ExperimentConfig) -> None:
    """ValidationError naming one field (the algorithm) and, in its message, the other."""
    algorithm, method = config.algorithm, config.robust.method
    if algorithm == Algorithm.SCAFFOLD.value:
        _refuse_for_scaffold(config)
    if RobustMethod(method).needs_single_updates and algorithm == Algorithm.FEDNOVA.value:
        raise ValidationError("algorithm", f"fednova cannot be combined with robust.method {method}: the robust rule "
                                           "replaces the server's average, and with it FedNova's normalisation by "
                                           f"each plant's local steps; use fedavg or fedprox with {method}, or "
                                           "robust.method none or norm_bound with fednova")
    if RobustMethod(method).needs_single_updates and algorithm == Algorithm.FEDDYN.value:
        raise ValidationError("algorithm", f"feddyn cannot be combined with robust.method {method}: the robust rule "
                                           "replaces FedDyn's server update, so its server term would never follow "
                                           f"the plants' linear terms; use fedavg or fedprox with {method}, or "
                                           "robust.method none or norm_bound with feddyn")
    if config.privacy.central and algorithm == Algorithm.FEDNOVA.value:
        raise ValidationError("algorithm", "fednova cannot be combined with privacy.mode central: central DP "
                                           "averages clipped updates with equal weights, so that one plant moves "
                                           "the sum by at most privacy.max_grad_norm; FedNova's weights (samples "
                                           "per local step) would change that bound; use fedavg, fedprox or feddyn")


SCAFFOLD_SECAGG = ("scaffold cannot be combined with secure_aggregation: the unmasked sum of the unweighted control "
                   "variate deltas (sum_k Delta c_k = -N c - sum_k d_k / (K_k lr)) and the sum of the weighted "
                   "updates (sum_k a_k d_k) are two independent linear functions of the plants' updates, so with "
                   "two survivors the server can solve for each plant's update; use fedavg, fedprox, fednova or "
                   "feddyn with secure_aggregation, or scaffold without it")


def _refuse_for_scaffold(config: ExperimentConfig) -> None:
    method = config.robust.method
    if config.secure_aggregation:
        raise ValidationError("algorithm", SCAFFOLD_SECAGG)
    if RobustMethod(method).needs_single_updates:
        raise ValidationError("algorithm", f"scaffold cannot be combined with robust.method {method}: the robust rule "
                                           "replaces the server's average of the updates but not of the control "
                                           "variate deltas, so the server's c would follow plants whose updates "
                                           f"were left out; use fedavg or fedprox with {method}, or robust.method "
                                           "none or norm_bound with scaffold")
    if config.privacy.central:
        raise ValidationError("algorithm", "scaffold cannot be combined with privacy.mode central: central DP noises "
                                           "the sum of the updates, but each plant's control variate delta would "
                                           "reach the server un-noised (it carries the same information as the "
                                           "update); use dp_sgd (record level, at each plant) with scaffold, or "
                                           "fedavg, fedprox or feddyn with central DP")

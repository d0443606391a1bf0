"""An experiment's JSON body, validated as hostile into an ExperimentConfig (DESIGN §5): every problem is a
ValidationError that names its field and says why; defaults are the dataclass fields' (shared.experiment.config)."""

from __future__ import annotations

import math
from dataclasses import MISSING, fields, replace

from shared.enums import Algorithm, ModelType, Personalization, PrivacyMode, RobustMethod, ServerOptimizer
from shared.errors import SecurityError
from shared.experiment.combinations import default_algorithm, refuse_contradictions
from shared.experiment.config import (CHOICES, DP_SGD_MAX_GRAD_NORM, DP_SGD_TRAINING, ExperimentConfig, PrivacyConfig,
                                      RobustConfig, planned_steps)
from shared.experiment.validation import ValidationError, choice, number, whole_number
from shared.strategies import FedAvgM

ROBUST_OPTIONS = [f.name for f in fields(RobustConfig) if f.name != "method"]
PRIVACY_OPTIONS = [f.name for f in fields(PrivacyConfig) if f.name not in ("mode", "noise_multiplier_source")]
# the plants refuse a rate below 1e-9 (shared.protocol.TrainSettings); lr_decay goes down to LR_FLOOR (1 %) of it
MIN_LEARNING_RATE = 1e-7
# issue 25: lr_decay 0.9 and the pooled class weight (0.4) were tuned with the default schedule (rate, batch,
# epochs: the decay's size is relative to them); a body that names its schedule is explicit about its training and
# gets, for what it leaves out, the values from before them (no decay, each plant's own weight): 0.3's explicit
# experiments train as they did
TUNED_WITH = ("learning_rate", "batch_size", "local_epochs")
UNTUNED = {"lr_decay": 1.0, "class_weight": "local"}


def default(cls, name: str):
    f = next(f for f in fields(cls) if f.name == name)
    return f.default if f.default is not MISSING else f.default_factory()


def parse_experiment(body: object) -> ExperimentConfig:
    """Validate a JSON body into an ExperimentConfig, or raise ValidationError naming the field."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    known = {f.name for f in fields(ExperimentConfig)}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValidationError(unknown[0], f"unknown field; allowed fields are {', '.join(sorted(known))}")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name", "is required: a short text naming the experiment")
    if len(name) > 200:
        raise ValidationError("name", "must be at most 200 characters")
    kinds = {key: choice(body, key, default(ExperimentConfig, key), CHOICES[key].values())
             for key in ("model_type", "algorithm", "server_optimizer", "class_weight", "personalization")}
    factories, min_factories = _plants(body)
    secure = body.get("secure_aggregation", False)
    if not isinstance(secure, bool):
        raise ValidationError("secure_aggregation", f"must be true or false, got {secure!r}")
    privacy, robust = _nested(body, "privacy", "mode"), _nested(body, "robust", "method")
    if "algorithm" not in body:
        kinds["algorithm"] = default_algorithm(privacy["mode"], robust["method"], kinds["server_optimizer"])
    _secure_and_dp_sgd(kinds, secure, min_factories, privacy, robust)
    rounds = whole_number(body, "rounds", default(ExperimentConfig, "rounds"), 1, 1000)
    sampling_rate = number(body, "sampling_rate", default(ExperimentConfig, "sampling_rate"), 0.0, 1.0)
    privacy = _privacy_options(privacy, planned_steps(rounds, sampling_rate, min_factories, factories),
                               sampling_rate)
    if privacy.central and robust["method"] not in ("none", "norm_bound"):
        raise ValidationError("robust.method", f"{robust['method']} cannot be combined with central differential "
                                               "privacy: the noise is calibrated to a sum of clipped updates; use none "
                                               "or norm_bound")
    robust = _robust_options(robust, min_factories)
    kinds["personalization"] = _personalization(body, kinds["personalization"], privacy)
    seed = whole_number(body, "seed", 0, 0, 2 ** 31 - 1)
    config = ExperimentConfig(
        name=name.strip(), **kinds, rounds=rounds, factories=factories, min_factories=min_factories,
        sampling_rate=sampling_rate, secure_aggregation=secure, privacy=privacy, robust=robust, seed=seed,
        **_numbers(body, kinds["server_optimizer"]))
    if any(key in body for key in TUNED_WITH):
        config = replace(config, **{key: value for key, value in UNTUNED.items() if key not in body})
    refuse_contradictions(config)
    return config


def _numbers(body: dict, server_optimizer: str) -> dict:
    """The plain numeric settings, each in its range."""
    server_lr = FedAvgM.DEFAULT_LR if server_optimizer == ServerOptimizer.FEDAVGM.value else \
        default(ExperimentConfig, "server_lr")
    return {"local_epochs": whole_number(body, "local_epochs", default(ExperimentConfig, "local_epochs"), 1, 100),
            "batch_size": whole_number(body, "batch_size", default(ExperimentConfig, "batch_size"), 1, 65536),
            "learning_rate": number(body, "learning_rate", default(ExperimentConfig, "learning_rate"),
                                    MIN_LEARNING_RATE, 1.0),
            "sequence_length": whole_number(body, "sequence_length", default(ExperimentConfig, "sequence_length"),
                                            2, 512),
            "hidden_size": whole_number(body, "hidden_size", default(ExperimentConfig, "hidden_size"), 4, 2048),
            "mu": number(body, "mu", default(ExperimentConfig, "mu"), -1e-12, 100.0),
            "feddyn_alpha": number(body, "feddyn_alpha", default(ExperimentConfig, "feddyn_alpha"), 0.0, 100.0),
            "server_lr": number(body, "server_lr", server_lr, 0.0, 10.0),
            "round_timeout": number(body, "round_timeout", None, 0.0, 86400.0, allow_none=True),
            "max_grad_norm": number(body, "max_grad_norm", default(ExperimentConfig, "max_grad_norm"), 0.0, 1e6),
            "server_momentum": number(body, "server_momentum", FedAvgM.DEFAULT_MOMENTUM, -1e-12, 0.999),
            "lr_decay": number(body, "lr_decay", default(ExperimentConfig, "lr_decay"), 0.0, 1.0),
            "patience": whole_number(body, "patience", default(ExperimentConfig, "patience"), 0, 1000),
            "personalization_epochs": whole_number(body, "personalization_epochs",
                                                   default(ExperimentConfig, "personalization_epochs"), 1, 100)}


def _personalization(body: dict, asked: str, privacy: PrivacyConfig) -> str:
    """Personalization trains on each plant's rows without DP, and releases scores of the models it fits: under
    dp_sgd or central DP the experiment's epsilon would not cover it (review H2). Not named: none; asked for: a
    ValidationError naming both fields."""
    if not (privacy.dp_sgd or privacy.central):
        return asked
    if "personalization" not in body:
        return Personalization.NONE.value
    if asked != Personalization.NONE.value:
        raise ValidationError("personalization", f"{asked} cannot be combined with privacy.mode {privacy.mode}: "
                                                 "personalization fine-tunes on each plant's training rows without "
                                                 "differential privacy, so the experiment's epsilon would not cover "
                                                 "it; use personalization none, or privacy.mode none")
    return asked


def _plants(body: dict) -> tuple[tuple[str, ...] | str, int]:
    factories = body.get("factories", "all")
    if factories != "all":
        if (not isinstance(factories, list) or not factories
                or not all(isinstance(f, str) and f.strip() for f in factories)):
            raise ValidationError("factories", 'must be "all" or a non-empty list of factory names')
        if len(set(factories)) != len(factories):
            raise ValidationError("factories", "lists a factory twice")
        factories = tuple(factories)
    min_factories = whole_number(body, "min_factories", default(ExperimentConfig, "min_factories"), 1, 10_000)
    if factories != "all" and min_factories > len(factories):
        raise ValidationError("min_factories", f"is {min_factories} but only {len(factories)} factories are listed")
    return factories, min_factories


def _nested(body: dict, part: str, key: str) -> dict:
    """The privacy or robust object, with its mode or method checked first."""
    given = body.get(part, {key: "none"})
    if not isinstance(given, dict):
        raise ValidationError(part, f"must be an object such as {{\"{key}\": \"none\"}}")
    value = given.get(key, "none")
    choices = CHOICES[f"{part}.{key}"].values()
    if value not in choices:
        raise ValidationError(f"{part}.{key}", f"must be one of {', '.join(choices)}, got {value!r}")
    return {**given, key: value}


def _secure_and_dp_sgd(kinds: dict, secure: bool, min_factories: int, privacy: dict, robust: dict) -> None:
    method, mode = robust["method"], privacy["mode"]
    if secure and RobustMethod(method).needs_single_updates:
        raise ValidationError("robust.method", f"{method} needs each plant's update, which secure aggregation "
                                               "hides from the aggregator; use norm_bound or turn secure "
                                               "aggregation off")
    if secure and min_factories < 2:
        raise ValidationError("min_factories", "secure aggregation needs at least 2 plants per round: the sum of "
                                               "one plant is that plant's update")
    if secure and method == RobustMethod.NORM_BOUND.value and robust.get("max_norm") is None:
        raise ValidationError("robust.max_norm", "norm_bound under secure aggregation needs a fixed max_norm: the "
                                                 "default (the median of this round's update norms) needs each "
                                                 "plant's update")
    if mode == PrivacyMode.DP_SGD.value and ModelType(kinds["model_type"]).is_sequence:
        raise ValidationError("privacy.mode", f"dp_sgd trains the row models only ({', '.join(ModelType.tabular())}):"
                                              f" Opacus's per-sample gradients do not cover torch's LSTM layer used "
                                              f"by {kinds['model_type']}; use central")
    if mode == PrivacyMode.DP_SGD.value and kinds["algorithm"] in (Algorithm.FEDPROX.value, Algorithm.FEDDYN.value):
        raise ValidationError("privacy.mode", f"dp_sgd clips per-sample gradients of the data loss; "
                                              f"{kinds['algorithm']}'s regulariser is not per sample: use fedavg or "
                                              "fednova")


def _robust_options(robust: dict, min_factories: int) -> RobustConfig:
    unknown = sorted(set(robust) - {"method", *ROBUST_OPTIONS})
    if unknown:
        raise ValidationError(f"robust.{unknown[0]}", f"unknown option; allowed: {', '.join(sorted(ROBUST_OPTIONS))}")
    out = {**RobustConfig().to_dict(), **robust}
    try:
        out["trim_ratio"] = number(out, "trim_ratio", None, -1e-12, 0.49)
        out["byzantine"] = whole_number(out, "byzantine", None, 0, 1000)
        out["multi_krum"] = whole_number(out, "multi_krum", None, 1, 1000)
        out["exclude_below"] = number(out, "exclude_below", None, -1e-12, 1.0)
        if out["max_norm"] is not None:
            out["max_norm"] = number(out, "max_norm", None, 0.0, 1e9)
    except ValidationError as exc:
        raise ValidationError(f"robust.{exc.field}", exc.message) from exc
    if out["outlier_method"] not in CHOICES["robust.outlier_method"].values():
        raise ValidationError("robust.outlier_method", f"must be zscore or iqr, got {out['outlier_method']!r}")
    if out["method"] == RobustMethod.KRUM.value and min_factories < out["byzantine"] + 3:
        raise ValidationError("min_factories", f"Krum with {out['byzantine']} Byzantine plant(s) needs at least "
                                               f"{out['byzantine'] + 3} plants per round")
    return RobustConfig(**out)


def _privacy_options(privacy: dict, steps: int, sampling_rate: float) -> PrivacyConfig:
    mode = privacy["mode"]
    if mode == PrivacyMode.NONE.value:
        return PrivacyConfig()
    unknown = sorted(set(privacy) - {"mode", *PRIVACY_OPTIONS})
    if unknown:
        raise ValidationError(f"privacy.{unknown[0]}",
                              f"unknown option; allowed: {', '.join(sorted(PRIVACY_OPTIONS))}")
    out = {**PrivacyConfig(mode=mode).to_dict(), **privacy}
    try:
        if out["epsilon"] is not None:
            out["epsilon"] = number(out, "epsilon", None, 0.0, 1e6)
        out["delta"] = number(out, "delta", None, 0.0, 0.1)
        out["max_grad_norm"] = number(out, "max_grad_norm", None, 0.0, 1e6)
        out["noise_multiplier"] = number(out, "noise_multiplier", None, 0.0, 1e6)
        out["round_epsilon"] = number(out, "round_epsilon", None, 0.0, 1e6)
        _dp_sgd_training(out, privacy, mode)
    except ValidationError as exc:
        raise ValidationError(f"privacy.{exc.field}", exc.message) from exc
    _mechanism(out, mode)
    out["noise_multiplier_source"] = "operator" if "noise_multiplier" in privacy else "default"
    if "noise_multiplier" not in privacy and out["epsilon"] is not None and out["mechanism"] == "gaussian":
        out["noise_multiplier_source"] = "target_epsilon"
        if mode == PrivacyMode.DP_SGD.value:  # each plant derives it from epsilon over its own steps (Opacus)
            out["noise_multiplier"] = None
        else:
            out["noise_multiplier"] = _central_noise_multiplier(out, steps, sampling_rate)
    return PrivacyConfig(**out)


def _dp_sgd_training(out: dict, asked: dict, mode: str) -> None:
    """DP-SGD's own batch size, learning rate and local epochs (in place of the experiment's): only with dp_sgd."""
    if mode != PrivacyMode.DP_SGD.value:
        given = [name for name in DP_SGD_TRAINING if name in asked]
        if given:
            raise ValidationError(given[0], "sets DP-SGD's training at the plants: only with privacy.mode dp_sgd "
                                            "(the experiment's batch_size, learning_rate and local_epochs apply)")
        return
    if "max_grad_norm" not in asked:
        out["max_grad_norm"] = DP_SGD_MAX_GRAD_NORM
    out["batch_size"] = whole_number(out, "batch_size", None, 1, 65536)
    out["learning_rate"] = number(out, "learning_rate", None, MIN_LEARNING_RATE, 1.0)
    out["local_epochs"] = whole_number(out, "local_epochs", None, 1, 100)


def _mechanism(privacy: dict, mode: str) -> None:
    mechanism = privacy["mechanism"]
    if mechanism not in CHOICES["privacy.mechanism"].values():
        raise ValidationError("privacy.mechanism", f"must be gaussian or laplace, got {mechanism!r}")
    if mechanism == "laplace" and mode != PrivacyMode.CENTRAL.value:
        raise ValidationError("privacy.mechanism", "laplace is a central mechanism (noise on the sum); dp_sgd is "
                                                   "Gaussian per step")
    if mechanism == "laplace" and privacy["epsilon"] is not None and privacy["round_epsilon"] > privacy["epsilon"]:
        raise ValidationError("privacy.round_epsilon", f"{privacy['round_epsilon']} per round exceeds the whole "
                                                       f"budget {privacy['epsilon']}: not even one round would fit")


def _central_noise_multiplier(privacy: dict, steps: int, sampling_rate: float) -> float:
    """The noise multiplier that keeps the planned steps (planned_steps) within the target epsilon. Draws are
    random: with q < 1 more of them may fall short than planned, and the budget then ends the experiment a
    round or two early (status budget_exhausted)."""
    from shared.privacy.accounting import noise_multiplier_for

    what = f"{steps} round(s)" if sampling_rate >= 1.0 else f"{steps} draw(s) of plants"
    try:
        sigma = noise_multiplier_for(privacy["epsilon"], privacy["delta"], steps, sampling_rate)
        return math.ceil(sigma * 1e6) / 1e6  # rounded up: more noise, never more epsilon
    except SecurityError as exc:
        raise ValidationError("privacy.epsilon", f"{privacy['epsilon']} is too small for {what} at "
                                                 f"delta {privacy['delta']}: {exc}") from exc

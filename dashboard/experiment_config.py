"""Validation of an experiment's settings (DESIGN §5): every problem names its field and says why."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from shared.enums import Algorithm, ModelType, PrivacyMode, RobustMethod, ServerOptimizer
from shared.errors import ExperimentError, SecurityError

ROBUST_DEFAULTS = {"trim_ratio": 0.2, "byzantine": 1, "multi_krum": 1, "max_norm": None, "outlier_method": "zscore",
                   "exclude_below": 0.3}


class ValidationError(ExperimentError):
    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    model_type: str = ModelType.CNN.value
    algorithm: str = Algorithm.FEDAVG.value
    server_optimizer: str = ServerOptimizer.NONE.value
    rounds: int = 5
    local_epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 0.005
    sequence_length: int = 10
    hidden_size: int = 64
    factories: list[str] | str = "all"
    min_factories: int = 2
    sampling_rate: float = 1.0  # q < 1: each round, each eligible plant takes part with probability q
    secure_aggregation: bool = False
    privacy: dict = field(default_factory=lambda: {"mode": PrivacyMode.NONE.value})
    robust: dict = field(default_factory=lambda: {"method": RobustMethod.NONE.value})
    mu: float = 0.01
    feddyn_alpha: float = 0.01
    server_lr: float = 0.01
    seed: int = 0
    round_timeout: float | None = None
    max_grad_norm: float = 5.0

    def to_dict(self) -> dict:
        return asdict(self)


def _int(body: dict, name: str, default: int, lo: int, hi: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, f"must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ValidationError(name, f"must be between {lo} and {hi}, got {value}")
    return value


def _float(body: dict, name: str, default: float | None, lo: float, hi: float, allow_none: bool = False):
    value = body.get(name, default)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(name, f"must be a number, got {value!r}")
    if not lo < value <= hi:
        raise ValidationError(name, f"must be greater than {lo} and at most {hi}, got {value}")
    return float(value)


def _choice(body: dict, name: str, default: str, choices: list[str]) -> str:
    value = body.get(name, default)
    if value not in choices:
        raise ValidationError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def parse_experiment(body: object) -> ExperimentConfig:
    """Validate a JSON body into an ExperimentConfig, or raise ValidationError naming the field."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    known = set(ExperimentConfig.__dataclass_fields__)
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValidationError(unknown[0], f"unknown field; allowed fields are {', '.join(sorted(known))}")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name", "is required: a short text naming the experiment")
    if len(name) > 200:
        raise ValidationError("name", "must be at most 200 characters")
    model_type = _choice(body, "model_type", ModelType.CNN.value, ModelType.values())
    algorithm = _choice(body, "algorithm", Algorithm.FEDAVG.value, Algorithm.values())
    server_optimizer = _choice(body, "server_optimizer", ServerOptimizer.NONE.value, ServerOptimizer.values())
    factories = body.get("factories", "all")
    if factories != "all":
        if (not isinstance(factories, list) or not factories
                or not all(isinstance(f, str) and f.strip() for f in factories)):
            raise ValidationError("factories", 'must be "all" or a non-empty list of factory names')
        if len(set(factories)) != len(factories):
            raise ValidationError("factories", "lists a factory twice")
    min_factories = _int(body, "min_factories", 2, 1, 10_000)
    if isinstance(factories, list) and min_factories > len(factories):
        raise ValidationError("min_factories", f"is {min_factories} but only {len(factories)} factories are listed")
    secure = body.get("secure_aggregation", False)
    if not isinstance(secure, bool):
        raise ValidationError("secure_aggregation", f"must be true or false, got {secure!r}")
    privacy = body.get("privacy", {"mode": "none"})
    if not isinstance(privacy, dict):
        raise ValidationError("privacy", "must be an object such as {\"mode\": \"none\"}")
    mode = privacy.get("mode", "none")
    if mode not in PrivacyMode.values():
        raise ValidationError("privacy.mode", f"must be one of {', '.join(PrivacyMode.values())}, got {mode!r}")
    robust = body.get("robust", {"method": "none"})
    if not isinstance(robust, dict):
        raise ValidationError("robust", "must be an object such as {\"method\": \"none\"}")
    method = robust.get("method", "none")
    if method not in RobustMethod.values():
        raise ValidationError("robust.method", f"must be one of {', '.join(RobustMethod.values())}, got {method!r}")
    if secure and method in ("median", "trimmed_mean", "krum"):
        raise ValidationError("robust.method", f"{method} needs each plant's update, which secure aggregation "
                                               "hides from the aggregator; use norm_bound or turn secure aggregation off")
    if secure and min_factories < 2:
        raise ValidationError("min_factories", "secure aggregation needs at least 2 plants per round: the sum of "
                                               "one plant is that plant's update")
    if secure and method == "norm_bound" and robust.get("max_norm") is None:
        raise ValidationError("robust.max_norm", "norm_bound under secure aggregation needs a fixed max_norm: the "
                                                 "default (the median of this round's update norms) needs each "
                                                 "plant's update")
    if mode == "dp_sgd" and model_type != "cnn":
        raise ValidationError("privacy.mode", f"dp_sgd trains the CNN only: Opacus's per-sample gradients do not "
                                              f"cover torch's LSTM layer used by {model_type}; use central")
    if mode == "dp_sgd" and algorithm in ("fedprox", "feddyn"):
        raise ValidationError("privacy.mode", f"dp_sgd clips per-sample gradients of the data loss; {algorithm}'s "
                                              "regulariser is not per sample: use fedavg or fednova")
    rounds = _int(body, "rounds", 5, 1, 1000)
    sampling_rate = _float(body, "sampling_rate", 1.0, 0.0, 1.0)
    privacy = _privacy_options(privacy, mode, planned_steps(rounds, sampling_rate, min_factories, factories),
                               sampling_rate)
    if mode == "central" and method not in ("none", "norm_bound"):
        raise ValidationError("robust.method", f"{method} cannot be combined with central differential privacy: the "
                                               "noise is calibrated to a sum of clipped updates; use none or norm_bound")
    robust = _robust_options(robust, method, min_factories)
    seed = _int(body, "seed", 0, 0, 2 ** 31 - 1)
    return ExperimentConfig(
        name=name.strip(), model_type=model_type, algorithm=algorithm, server_optimizer=server_optimizer,
        rounds=rounds, local_epochs=_int(body, "local_epochs", 2, 1, 100),
        batch_size=_int(body, "batch_size", 64, 1, 65536),
        learning_rate=_float(body, "learning_rate", 0.005, 0.0, 1.0),
        sequence_length=_int(body, "sequence_length", 10, 2, 512), hidden_size=_int(body, "hidden_size", 64, 4, 2048),
        factories=factories,
        min_factories=min_factories, sampling_rate=sampling_rate, secure_aggregation=secure,
        privacy={"mode": mode, **privacy},
        robust={"method": method, **robust}, mu=_float(body, "mu", 0.01, -1e-12, 100.0), seed=seed,
        feddyn_alpha=_float(body, "feddyn_alpha", 0.01, 0.0, 100.0),
        server_lr=_float(body, "server_lr", 0.01, 0.0, 10.0),
        round_timeout=_float(body, "round_timeout", None, 0.0, 86400.0, allow_none=True),
        max_grad_norm=_float(body, "max_grad_norm", 5.0, 0.0, 1e6))


def _robust_options(robust: dict, method: str, min_factories: int) -> dict:
    unknown = sorted(set(robust) - {"method", *ROBUST_DEFAULTS})
    if unknown:
        raise ValidationError(f"robust.{unknown[0]}", f"unknown option; allowed: {', '.join(sorted(ROBUST_DEFAULTS))}")
    out = {"method": method, **ROBUST_DEFAULTS, **{k: v for k, v in robust.items() if k != "method"}}
    try:
        out["trim_ratio"] = _float(out, "trim_ratio", 0.2, -1e-12, 0.49)
        out["byzantine"] = _int(out, "byzantine", 1, 0, 1000)
        out["multi_krum"] = _int(out, "multi_krum", 1, 1, 1000)
        out["exclude_below"] = _float(out, "exclude_below", 0.3, -1e-12, 1.0)
        if out["max_norm"] is not None:
            out["max_norm"] = _float(out, "max_norm", None, 0.0, 1e9)
    except ValidationError as exc:
        raise ValidationError(f"robust.{exc.field}", exc.message) from exc
    if out["outlier_method"] not in ("zscore", "iqr"):
        raise ValidationError("robust.outlier_method", f"must be zscore or iqr, got {out['outlier_method']!r}")
    if method == "krum" and min_factories < out["byzantine"] + 3:
        raise ValidationError("min_factories", f"Krum with {out['byzantine']} Byzantine plant(s) needs at least "
                                               f"{out['byzantine'] + 3} plants per round")
    return out


PRIVACY_DEFAULTS = {"epsilon": None, "delta": 1e-5, "max_grad_norm": 1.0, "noise_multiplier": 1.0,
                    "mechanism": "gaussian", "round_epsilon": 1.0}


def planned_steps(rounds: int, sampling_rate: float, min_factories: int, factories: list[str] | str) -> int:
    """The central-DP steps an experiment plans for: its rounds at q = 1; at q < 1 its draws of plants, on
    average rounds / P(a draw reaches min_factories) when the plants are listed (with "all" their number is not
    known in advance: one draw per round)."""
    if sampling_rate >= 1.0 or factories == "all":
        return rounds
    from shared.privacy.sampling import probability_of_at_least

    reach = probability_of_at_least(min_factories, len(factories), sampling_rate)
    return min(math.ceil(rounds / max(reach, 1e-9)), 10 ** 9)


def _privacy_options(privacy: dict, mode: str, steps: int, sampling_rate: float) -> dict:
    if mode == "none":
        return {"mode": "none"}
    unknown = sorted(set(privacy) - {"mode", *PRIVACY_DEFAULTS})
    if unknown:
        raise ValidationError(f"privacy.{unknown[0]}", f"unknown option; allowed: {', '.join(sorted(PRIVACY_DEFAULTS))}")
    out = {"mode": mode, **PRIVACY_DEFAULTS, **{k: v for k, v in privacy.items() if k != "mode"}}
    try:
        if out["epsilon"] is not None:
            out["epsilon"] = _float(out, "epsilon", None, 0.0, 1e6)
        out["delta"] = _float(out, "delta", 1e-5, 0.0, 0.1)
        out["max_grad_norm"] = _float(out, "max_grad_norm", 1.0, 0.0, 1e6)
        out["noise_multiplier"] = _float(out, "noise_multiplier", 1.0, 0.0, 1e6)
        out["round_epsilon"] = _float(out, "round_epsilon", 1.0, 0.0, 1e6)
    except ValidationError as exc:
        raise ValidationError(f"privacy.{exc.field}", exc.message) from exc
    if out["mechanism"] not in ("gaussian", "laplace"):
        raise ValidationError("privacy.mechanism", f"must be gaussian or laplace, got {out['mechanism']!r}")
    if out["mechanism"] == "laplace" and mode != "central":
        raise ValidationError("privacy.mechanism", "laplace is a central mechanism (noise on the sum); dp_sgd is "
                                                   "Gaussian per step")
    if out["mechanism"] == "laplace" and out["epsilon"] is not None and out["round_epsilon"] > out["epsilon"]:
        raise ValidationError("privacy.round_epsilon", f"{out['round_epsilon']} per round exceeds the whole budget "
                                                       f"{out['epsilon']}: not even one round would fit")
    out["noise_multiplier_source"] = "operator" if "noise_multiplier" in privacy else "default"
    if "noise_multiplier" not in privacy and out["epsilon"] is not None and out["mechanism"] == "gaussian":
        out["noise_multiplier_source"] = "target_epsilon"
        if mode == "dp_sgd":  # each plant derives it from epsilon over its own steps (Opacus, at the plant)
            out["noise_multiplier"] = None
        else:
            out["noise_multiplier"] = _central_noise_multiplier(out, steps, sampling_rate)
    return out


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


def model_spec(config: dict, num_features: int):
    """The model an experiment trains (and its bundles hold), from its stored settings."""
    from shared.models import ModelSpec

    sequence = config["model_type"] != "cnn"
    return ModelSpec(model_type=config["model_type"], num_features=num_features,
                     sequence_length=config["sequence_length"] if sequence else 1,
                     hidden_size=config.get("hidden_size", 64))

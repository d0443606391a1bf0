"""An experiment's settings (DESIGN §5), typed: data, with their defaults from the field table.

`parse_experiment(body)` (shared.experiment.parse) validates a hostile API body; `to_dict()` is what the
database stores and the API shows; `from_dict(stored)` loads any stored dict back (trusted; missing keys take
the field table's defaults: shared.experiment.fields, the only place defaults live). What a round derives from
the settings (the strategy, each plant's training request, secure aggregation's setup) is built by
shared.experiment.training with the strategies' own hooks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from shared.enums import Algorithm, ModelType, Personalization, PrivacyMechanism, PrivacyMode
from shared.experiment.fields import DP_SGD_TRAINING, defaults
from shared.model_spec import MLP_BLOCKS, MLP_CROSS_LAYERS, ModelSpec

TOP, PRIVACY, ROBUST = defaults(), defaults("privacy"), defaults("robust")


def _known(cls, d: dict | None) -> dict:
    return {f.name: d[f.name] for f in fields(cls) if f.name in (d or {})}


@dataclass(frozen=True)
class PrivacyConfig:
    """Differential privacy: none, DP-SGD at each plant (record level), or central DP on the sum (plant level)."""

    mode: str = PRIVACY["mode"]
    epsilon: float | None = PRIVACY["epsilon"]  # the target; None: no limit
    delta: float = PRIVACY["delta"]
    max_grad_norm: float = PRIVACY["max_grad_norm"]  # dp_sgd: per-sample gradient bound; central: the update bound C
    noise_multiplier: float | None = PRIVACY["noise_multiplier"]  # None under dp_sgd with a target: plants derive it
    mechanism: str = PRIVACY["mechanism"]
    round_epsilon: float = PRIVACY["round_epsilon"]  # Laplace: what each round spends
    noise_multiplier_source: str = "operator"  # operator | default | target_epsilon
    # dp_sgd only: the plants' local training under DP-SGD, in place of the experiment's batch_size, learning_rate
    # and local_epochs (fewer, larger noisy steps: De et al. 2022); None: the experiment's own (stored before these
    # settings existed). Defaults measured with bench/quality.py --parts dp (README, DP-SGD).
    batch_size: int | None = PRIVACY["batch_size"]  # the expected Poisson batch: q = batch_size / training rows
    learning_rate: float | None = PRIVACY["learning_rate"]
    local_epochs: int | None = PRIVACY["local_epochs"]

    @property
    def central(self) -> bool:
        return self.mode == PrivacyMode.CENTRAL.value

    @property
    def dp_sgd(self) -> bool:
        return self.mode == PrivacyMode.DP_SGD.value

    @property
    def laplace(self) -> bool:
        return self.central and self.mechanism == PrivacyMechanism.LAPLACE.value

    def to_dict(self) -> dict:
        if self.mode == PrivacyMode.NONE.value:
            return {"mode": self.mode}
        out = asdict(self)
        if not self.dp_sgd:
            for name in DP_SGD_TRAINING:
                out.pop(name)
        return out

    @classmethod
    def from_dict(cls, d: dict | None) -> "PrivacyConfig":
        values = _known(cls, d)
        if values.get("mode") == PrivacyMode.DP_SGD.value:  # stored before DP-SGD had its own training settings:
            values = {**{name: None for name in DP_SGD_TRAINING}, **values}  # it trained with the experiment's
        return cls(**values)


@dataclass(frozen=True)
class RobustConfig:
    """Byzantine robustness (shared.strategies.robust)."""

    method: str = ROBUST["method"]
    trim_ratio: float = ROBUST["trim_ratio"]
    byzantine: int = ROBUST["byzantine"]
    multi_krum: int = ROBUST["multi_krum"]
    max_norm: float | None = ROBUST["max_norm"]  # norm_bound; None: the median of the round's update norms
    outlier_method: str = ROBUST["outlier_method"]
    exclude_below: float = ROBUST["exclude_below"]  # reputation under which a plant's update is left out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "RobustConfig":
        return cls(**_known(cls, d))


@dataclass(frozen=True)
class ExperimentConfig:
    """Every field's default, range and help: shared.experiment.fields (a body that names no algorithm gets
    fedavg where feddyn cannot run or does not help: fields.default_algorithm)."""

    name: str
    model_type: str = TOP["model_type"]
    algorithm: str = TOP["algorithm"]
    server_optimizer: str = TOP["server_optimizer"]
    rounds: int = TOP["rounds"]
    local_epochs: int = TOP["local_epochs"]
    batch_size: int = TOP["batch_size"]
    learning_rate: float = TOP["learning_rate"]
    sequence_length: int = TOP["sequence_length"]
    hidden_size: int = TOP["hidden_size"]
    factories: tuple[str, ...] | str = TOP["factories"]
    min_factories: int = TOP["min_factories"]
    sampling_rate: float = TOP["sampling_rate"]  # q < 1: each round, each eligible plant takes part with prob. q
    secure_aggregation: bool = TOP["secure_aggregation"]
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    robust: RobustConfig = field(default_factory=RobustConfig)
    mu: float = TOP["mu"]  # FedProx
    feddyn_alpha: float = TOP["feddyn_alpha"]
    server_lr: float = TOP["server_lr"]  # FedAdam / FedYogi (FedAvgM's default is its own: fields' given rule)
    seed: int = TOP["seed"]
    round_timeout: float | None = TOP["round_timeout"]
    max_grad_norm: float = TOP["max_grad_norm"]  # the plants' gradient clipping in training (not DP)
    server_momentum: float = TOP["server_momentum"]  # FedAvgM
    # the failure class's loss weight: pooled over the federation's training rows at round 0, or each plant's own
    class_weight: str = TOP["class_weight"]
    lr_decay: float = TOP["lr_decay"]  # round r trains at learning_rate * lr_decay ** (r - 1)
    patience: int = TOP["patience"]  # > 0: stop when pooled validation F1 has not improved for this many rounds
    # after the last round each plant fine-tunes the final (best) global model on its own data and keeps it
    # (shared.personalization); its reply carries only the three models' validation scores
    personalization: str = TOP["personalization"]
    personalization_epochs: int = TOP["personalization_epochs"]

    # --- stored form ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out.update(privacy=self.privacy.to_dict(), robust=self.robust.to_dict(),
                   factories=self.factories if self.factories == "all" else list(self.factories))
        return out

    @classmethod
    def from_dict(cls, stored: dict) -> "ExperimentConfig":
        values = _known(cls, stored)
        values.update(privacy=PrivacyConfig.from_dict(stored.get("privacy")),
                      robust=RobustConfig.from_dict(stored.get("robust")))
        if values.get("factories", "all") != "all":
            values["factories"] = tuple(values["factories"])
        if "lr_decay" not in stored:
            values["lr_decay"] = 1.0  # stored before the setting existed: those rounds ran at the full rate
        if "algorithm" not in stored:
            values["algorithm"] = Algorithm.FEDAVG.value  # stored before feddyn became the default: ran fedavg
        if "personalization" not in stored and (values["privacy"].dp_sgd or values["privacy"].central):
            values["personalization"] = Personalization.NONE.value  # stored before it: never without DP (H2)
        return cls(**values)

    # --- derived values ------------------------------------------------------------------------
    def planned_steps(self) -> int:
        return planned_steps(self.rounds, self.sampling_rate, self.min_factories, self.factories)

    def model_spec(self, num_features: int) -> ModelSpec:
        """The model the experiment trains (and its bundles hold)."""
        sequence = ModelType(self.model_type).is_sequence
        mlp = {"num_layers": MLP_BLOCKS, "cross_layers": MLP_CROSS_LAYERS} if self.model_type == ModelType.MLP.value \
            else {}
        return ModelSpec(model_type=self.model_type, num_features=num_features,
                         sequence_length=self.sequence_length if sequence else 1, hidden_size=self.hidden_size, **mlp)


def planned_steps(rounds: int, sampling_rate: float, min_factories: int, factories: tuple[str, ...] | str) -> int:
    """The central-DP steps an experiment plans for: its rounds at q = 1; at q < 1 its draws of plants, on
    average rounds / P(a draw reaches min_factories) when the plants are listed (with "all" their number is not
    known in advance: one draw per round)."""
    if sampling_rate >= 1.0 or factories == "all":
        return rounds
    from shared.privacy.sampling import probability_of_at_least

    reach = probability_of_at_least(min_factories, len(factories), sampling_rate)
    return min(math.ceil(rounds / max(reach, 1e-9)), 10 ** 9)

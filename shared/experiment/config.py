"""An experiment's settings (DESIGN §5), typed, with every value derived from them in one place each.

`parse_experiment(body)` (shared.experiment.parse) validates a hostile API body; `to_dict()` is what the
database stores and the API shows; `from_dict(stored)` loads any stored dict back (trusted; missing keys take
the defaults below, the only place defaults live). From the settings: the model (`model_spec`), the bound plants
clip their update to (`update_clip`), each plant's training request (`plant_training`), the aggregation
strategy (`strategy`) and secure aggregation's setup (`secure_setup`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from shared.enums import (Algorithm, ClassWeight, ModelType, OutlierMethod, Personalization, PrivacyMechanism,
                          PrivacyMode, RobustMethod, ServerOptimizer)
from shared.errors import ConfigurationError
from shared.model_spec import MLP_BLOCKS, MLP_CROSS_LAYERS, ModelSpec
from shared.protocol import SecAggRequest, TrainSettings
from shared.strategies import Strategy, build_strategy

SECAGG_DEFAULT_CLIP = 100.0  # update norm bound under secure aggregation when no other bound is set
SCAFFOLD_DEFAULT_CLIP = 100.0  # ... and under SCAFFOLD, whose control variate deltas are clipped to it too
LOCAL_ONLY_EPOCHS_CAP = 100  # the local-only comparison model's epochs at most (a plant's policy may allow fewer)
LR_FLOOR = 0.01  # lr_decay stops at this fraction of the learning rate
PERSONAL_MIN_BATCH = 16  # personalization trains at this batch at least (the plants' default min_personal_batch)
# the choices of every enumerated setting (the API's validation, the OpenAPI document and the form use these)
CHOICES = {"model_type": ModelType, "algorithm": Algorithm, "server_optimizer": ServerOptimizer, "class_weight": ClassWeight,
           "personalization": Personalization,
           "privacy.mode": PrivacyMode, "privacy.mechanism": PrivacyMechanism, "robust.method": RobustMethod,
           "robust.outlier_method": OutlierMethod}


DP_SGD_TRAINING = ("batch_size", "learning_rate", "local_epochs")  # PrivacyConfig's settings of DP-SGD training
# dp_sgd's per-sample clip when none is given (central DP's update bound keeps PrivacyConfig.max_grad_norm): the
# failure class's loss weight (pooled, up to 50) makes a failure's gradient ~pos_weight times a normal row's, and
# a clip at 1 would scale every failure back to the weight of a normal row (README, DP-SGD)
DP_SGD_MAX_GRAD_NORM = 30.0


def _known(cls, d: dict | None) -> dict:
    return {f.name: d[f.name] for f in fields(cls) if f.name in (d or {})}


@dataclass(frozen=True)
class PrivacyConfig:
    """Differential privacy: none, DP-SGD at each plant (record level), or central DP on the sum (plant level)."""

    mode: str = PrivacyMode.NONE.value
    epsilon: float | None = None  # the target; None: no limit
    delta: float = 1e-5
    max_grad_norm: float = 1.0  # dp_sgd: per-sample gradient bound; central: the plants' update bound C
    noise_multiplier: float | None = 1.0  # None under dp_sgd with a target: each plant derives it
    mechanism: str = PrivacyMechanism.GAUSSIAN.value
    round_epsilon: float = 1.0  # Laplace: what each round spends
    noise_multiplier_source: str = "operator"  # operator | default | target_epsilon
    # dp_sgd only: the plants' local training under DP-SGD, in place of the experiment's batch_size, learning_rate
    # and local_epochs (fewer, larger noisy steps: De et al. 2022); None: the experiment's own (stored before these
    # settings existed). Defaults measured with bench/quality.py --parts dp (README, DP-SGD).
    batch_size: int | None = 1024  # the expected Poisson batch: q = batch_size / the plant's training rows (<= 1)
    learning_rate: float | None = 0.05
    local_epochs: int | None = 2

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

    method: str = RobustMethod.NONE.value
    trim_ratio: float = 0.2
    byzantine: int = 1
    multi_krum: int = 1
    max_norm: float | None = None  # norm_bound; None: the median of the round's update norms
    outlier_method: str = OutlierMethod.ZSCORE.value
    exclude_below: float = 0.3  # reputation under which a plant's update is left out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "RobustConfig":
        return cls(**_known(cls, d))


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    model_type: str = ModelType.MLP.value  # beat the CNN on validation F1 and AUC (README "Tabular models")
    # the best on validation F1 (README "Model quality"); a body that names no algorithm gets fedavg where feddyn
    # cannot run or does not help (DP; median, trimmed mean, Krum; a server optimiser): combinations.default_algorithm
    algorithm: str = Algorithm.FEDDYN.value
    server_optimizer: str = ServerOptimizer.NONE.value
    rounds: int = 10  # with the release at the best round, more rounds measured better (README "Model quality")
    local_epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 0.005
    sequence_length: int = 10
    hidden_size: int = 64
    factories: tuple[str, ...] | str = "all"
    min_factories: int = 2
    sampling_rate: float = 1.0  # q < 1: each round, each eligible plant takes part with probability q
    secure_aggregation: bool = False
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    robust: RobustConfig = field(default_factory=RobustConfig)
    mu: float = 0.01  # FedProx
    feddyn_alpha: float = 0.01
    server_lr: float = 0.01  # FedAdam / FedYogi (FedAvgM's default is its own: parse fills it in)
    seed: int = 0
    round_timeout: float | None = None
    max_grad_norm: float = 5.0  # the plants' gradient clipping in training (not DP)
    server_momentum: float = 0.9  # FedAvgM
    # the failure class's loss weight: pooled over the federation's training rows at round 0, or each plant's own
    class_weight: str = ClassWeight.POOLED.value
    lr_decay: float = 0.9  # round r trains at learning_rate * lr_decay ** (r - 1); 0.9: best on validation F1
    patience: int = 0  # > 0: stop when pooled validation F1 has not improved for this many rounds
    # after the last round each plant fine-tunes the final (best) global model on its own data and keeps it
    # (shared.personalization); its reply carries only the three models' validation scores
    # chosen on validation F1 (README, Model quality); none under dp_sgd or central DP (parse: it trains without DP)
    personalization: str = Personalization.FINETUNE.value
    personalization_epochs: int = 4

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

    def update_clip(self) -> float | None:
        """The L2 bound plants clip their update to: central DP's C, the norm bound, or under secure aggregation
        a generous default (fixed point needs some bound; 100 only stops absurd updates), as under SCAFFOLD (one
        plant's control variate delta, clipped to it, moves the server's c by at most bound / N)."""
        if self.privacy.central:
            return self.privacy.max_grad_norm
        if self.robust.method == RobustMethod.NORM_BOUND.value and self.robust.max_norm:
            return self.robust.max_norm
        if self.algorithm == Algorithm.SCAFFOLD.value:
            return SCAFFOLD_DEFAULT_CLIP
        return SECAGG_DEFAULT_CLIP if self.secure_aggregation else None

    def strategy(self, federation_size: int = 0) -> Strategy:
        """The aggregation strategy; `federation_size`: the eligible plants (FedDyn's server term divides by it)."""
        privacy = self.privacy
        sigma = 0.0 if privacy.laplace else (privacy.noise_multiplier or 0.0)
        central = None
        if privacy.central and (sigma > 0 or privacy.laplace):
            central = {"clip": privacy.max_grad_norm, "noise_multiplier": sigma, "mechanism": privacy.mechanism,
                       "round_epsilon": privacy.round_epsilon}
        return build_strategy(self.algorithm, mu=self.mu, feddyn_alpha=self.feddyn_alpha,
                              federation_size=federation_size, server_optimizer=self.server_optimizer,
                              server_lr=self.server_lr, server_momentum=self.server_momentum,
                              robust=self.robust.to_dict(), central_dp=central, update_clip=self.update_clip())

    def local_training(self) -> tuple[int, int, float]:
        """(local epochs, batch size, learning rate at round 1) of the plants' training: under dp_sgd the
        privacy settings' own (where set), else the experiment's."""
        epochs, batch, rate = self.local_epochs, self.batch_size, self.learning_rate
        if self.privacy.dp_sgd:
            p = self.privacy
            epochs, batch = p.local_epochs or epochs, p.batch_size or batch
            rate = p.learning_rate or rate
        return epochs, batch, rate

    def learning_rate_at(self, round_number: int) -> float:
        """learning_rate * lr_decay ** (round - 1): step decay over rounds (round 1 at the full rate), down to
        LR_FLOOR x the rate (at 0.9, from round 45 on): without a floor, a long run's rate would fall below what
        the plants accept (1e-9; 0.005 x 0.9^199 = 4e-12) and every plant would refuse the round."""
        rate = self.local_training()[2]
        return rate * max(self.lr_decay ** (max(round_number, 1) - 1), LR_FLOOR)

    def plant_training(self, round_number: int, plant_index: int, pooled_pos_weight: float | None = None
                       ) -> TrainSettings:
        """What the plant at `plant_index` (its place in the round's participants) trains with in this round;
        the seed orders its batches only. `pooled_pos_weight`: the federation's class weight from round 0,
        sent when class_weight is pooled (None: each plant weights by its own ratio)."""
        extra = self.strategy().configure()
        if self.class_weight == ClassWeight.POOLED.value and pooled_pos_weight is not None:
            extra["pos_weight"] = pooled_pos_weight
        clip = self.update_clip()
        if clip is not None:
            extra["clip_update_norm"] = clip  # clipped by the plant, before it sends (or masks)
        if self.privacy.laplace:
            extra["clip_update_ord"] = 1  # the Laplace mechanism's sensitivity is in L1
        if self.privacy.dp_sgd:  # record-level DP at the plant (shared.privacy.dp_sgd)
            extra.update(dp_noise_multiplier=self.privacy.noise_multiplier or 0.0,
                         dp_max_grad_norm=self.privacy.max_grad_norm, dp_delta=self.privacy.delta,
                         dp_target_epsilon=self.privacy.epsilon, dp_rounds=self.rounds)
        epochs, batch_size, _ = self.local_training()
        return TrainSettings.from_wire({
            "epochs": epochs, "batch_size": batch_size,
            "learning_rate": self.learning_rate_at(round_number),
            "max_grad_norm": self.max_grad_norm, "seed": self.seed * 100_003 + round_number * 101 + plant_index,
            **extra})

    def personal_training(self, pooled_pos_weight: float | None = None) -> tuple[TrainSettings, int]:
        """(the fine-tune's settings, the local-only model's epochs) for the personalization step: the fine-tune
        runs personalization_epochs at the last round's learning rate; the local-only model gets the same budget
        as federation plus fine-tune (rounds x local_epochs + personalization_epochs), capped at
        LOCAL_ONLY_EPOCHS_CAP (each plant's policy may refuse less)."""
        extra = {"pos_weight": pooled_pos_weight} if self.class_weight == ClassWeight.POOLED.value and \
            pooled_pos_weight is not None else {}
        train = TrainSettings.from_wire({
            "epochs": self.personalization_epochs, "batch_size": max(self.batch_size, PERSONAL_MIN_BATCH),
            "learning_rate": self.learning_rate_at(self.rounds), "max_grad_norm": self.max_grad_norm,
            "seed": self.seed * 100_003 + 7, **extra})
        budget = self.rounds * self.local_epochs + self.personalization_epochs
        return train, min(budget, LOCAL_ONLY_EPOCHS_CAP)

    def secure_setup(self, participants: dict[str, str], federation_size: int = 0) -> SecAggRequest:
        """The part of every plant's training request that asks for a masked update; `participants`: every
        plant asked this round -> its X25519 public key (hex)."""
        from shared.secagg.quantize import fraction_bits
        from shared.secagg.shamir import default_threshold

        if not self.secure_aggregation:
            raise ConfigurationError("secure_aggregation is off for this experiment: no masked update to ask for")
        clip = self.update_clip()
        return SecAggRequest(participants=dict(participants), threshold=default_threshold(len(participants)),
                             fraction_bits=fraction_bits(len(participants), clip),
                             weighting=self.strategy(federation_size).secure_weighting, clip=clip)


def planned_steps(rounds: int, sampling_rate: float, min_factories: int, factories: tuple[str, ...] | str) -> int:
    """The central-DP steps an experiment plans for: its rounds at q = 1; at q < 1 its draws of plants, on
    average rounds / P(a draw reaches min_factories) when the plants are listed (with "all" their number is not
    known in advance: one draw per round)."""
    if sampling_rate >= 1.0 or factories == "all":
        return rounds
    from shared.privacy.sampling import probability_of_at_least

    reach = probability_of_at_least(min_factories, len(factories), sampling_rate)
    return min(math.ceil(rounds / max(reach, 1e-9)), 10 ** 9)

"""What a round derives from an experiment's settings (DESIGN §5, §6): the aggregation strategy, the bound plants
clip their update to, and each plant's training request; the strategy adds its own part (`configure_fit`: FedProx's
mu, FedDyn's alpha, SCAFFOLD's c, Laplace's L1 clip) and asks for masked updates (`secure_setup`)."""

from __future__ import annotations

from shared.enums import Algorithm, ClassWeight, RobustMethod
from shared.errors import ConfigurationError
from shared.experiment.config import ExperimentConfig
from shared.protocol import SecAggRequest, TrainSettings
from shared.strategies import FitConfig, ServerState, Strategy, build_strategy

SECAGG_DEFAULT_CLIP = 100.0  # update norm bound under secure aggregation when no other bound is set
SCAFFOLD_DEFAULT_CLIP = 100.0  # ... and under SCAFFOLD, whose control variate deltas are clipped to it too
LOCAL_ONLY_EPOCHS_CAP = 100  # the local-only comparison model's epochs at most (a plant's policy may allow fewer)
LR_FLOOR = 0.01  # lr_decay stops at this fraction of the learning rate
PERSONAL_MIN_BATCH = 16  # personalization trains at this batch at least (the plants' default min_personal_batch)


def update_clip(config: ExperimentConfig) -> float | None:
    """The L2 bound plants clip their update to: central DP's C, the norm bound, or under secure aggregation
    a generous default (fixed point needs some bound; 100 only stops absurd updates), as under SCAFFOLD (one
    plant's control variate delta, clipped to it, moves the server's c by at most bound / N)."""
    if config.privacy.central:
        return config.privacy.max_grad_norm
    if config.robust.method == RobustMethod.NORM_BOUND.value and config.robust.max_norm:
        return config.robust.max_norm
    if config.algorithm == Algorithm.SCAFFOLD.value:
        return SCAFFOLD_DEFAULT_CLIP
    return SECAGG_DEFAULT_CLIP if config.secure_aggregation else None


def strategy_for(config: ExperimentConfig, federation_size: int = 0) -> Strategy:
    """The aggregation strategy; `federation_size`: the eligible plants (FedDyn's server term divides by it)."""
    privacy = config.privacy
    sigma = 0.0 if privacy.laplace else (privacy.noise_multiplier or 0.0)
    central = None
    if privacy.central and (sigma > 0 or privacy.laplace):
        central = {"clip": privacy.max_grad_norm, "noise_multiplier": sigma, "mechanism": privacy.mechanism,
                   "round_epsilon": privacy.round_epsilon}
    return build_strategy(config.algorithm, mu=config.mu, feddyn_alpha=config.feddyn_alpha,
                          federation_size=federation_size, server_optimizer=config.server_optimizer,
                          server_lr=config.server_lr, server_momentum=config.server_momentum,
                          robust=config.robust.to_dict(), central_dp=central, update_clip=update_clip(config))


def verifiable_strategy(config: ExperimentConfig) -> dict | None:
    """What a plant needs to replay `strategy_for`'s step from a secure sum (shared.verification.strategy_of), or
    None when the round cannot be verified (the eligible plants, FedDyn's m, travel with each round's transcript): no secure aggregation, central DP (a server-side draw), a robust rule
    on single updates, or SCAFFOLD (a second, unmasked sum)."""
    from shared.verification import VERIFIABLE_ALGORITHMS

    if not config.secure_aggregation or config.privacy.central or config.algorithm not in VERIFIABLE_ALGORITHMS \
            or RobustMethod(config.robust.method).needs_single_updates:
        return None
    return {"algorithm": config.algorithm, "mu": config.mu, "feddyn_alpha": config.feddyn_alpha,
            "server_optimizer": config.server_optimizer,
            "server_lr": config.server_lr, "server_momentum": config.server_momentum,
            "clip": update_clip(config)}  # each member's delta bound: the plant bounds each replayed sum by it


def secure_setup(config: ExperimentConfig, participants: dict[str, str], federation_size: int = 0,
                 strategy: Strategy | None = None) -> SecAggRequest:
    """The strategy's request for masked updates from `participants` (plant -> X25519 public key, hex)."""
    if not config.secure_aggregation:
        raise ConfigurationError("secure_aggregation is off for this experiment: no masked update to ask for")
    return (strategy or strategy_for(config, federation_size)).secure_setup(participants, update_clip(config))


def local_training(config: ExperimentConfig) -> tuple[int, int, float]:
    """(local epochs, batch size, learning rate at round 1) of the plants' training: under dp_sgd the
    privacy settings' own (where set), else the experiment's."""
    epochs, batch, rate = config.local_epochs, config.batch_size, config.learning_rate
    if config.privacy.dp_sgd:
        p = config.privacy
        epochs, batch, rate = p.local_epochs or epochs, p.batch_size or batch, p.learning_rate or rate
    return epochs, batch, rate


def learning_rate_at(config: ExperimentConfig, round_number: int) -> float:
    """learning_rate * lr_decay ** (round - 1): step decay over rounds (round 1 at the full rate), down to
    LR_FLOOR x the rate (at 0.9, from round 45 on): without a floor, a long run's rate would fall below what
    the plants accept (1e-9; 0.005 x 0.9^199 = 4e-12) and every plant would refuse the round."""
    rate = local_training(config)[2]
    return rate * max(config.lr_decay ** (max(round_number, 1) - 1), LR_FLOOR)


def _class_weight(config: ExperimentConfig, pooled_pos_weight: float | None) -> dict:
    if config.class_weight == ClassWeight.POOLED.value and pooled_pos_weight is not None:
        return {"pos_weight": pooled_pos_weight}
    return {}


def plant_training(config: ExperimentConfig, round_number: int, plant_index: int,
                   pooled_pos_weight: float | None = None, fit: FitConfig | None = None) -> TrainSettings:
    """What the plant at `plant_index` (its place in the round's participants) trains with in this round;
    the seed orders its batches only. `pooled_pos_weight`: the federation's class weight from round 0, sent
    when class_weight is pooled (None: each plant weights by its own ratio); `fit`: the strategy's part
    (configure_fit; None: the settings' strategy's, for a model with no parameters)."""
    fit = fit or strategy_for(config).configure_fit({}, ServerState())
    extra = dict(fit.settings)
    extra.update(_class_weight(config, pooled_pos_weight))
    clip = update_clip(config)
    if clip is not None:
        extra["clip_update_norm"] = clip  # clipped by the plant, before it sends (or masks)
    if config.privacy.dp_sgd:  # record-level DP at the plant (shared.privacy.dp_sgd)
        p = config.privacy
        extra.update(dp_noise_multiplier=p.noise_multiplier or 0.0, dp_max_grad_norm=p.max_grad_norm,
                     dp_delta=p.delta, dp_target_epsilon=p.epsilon, dp_rounds=config.rounds)
    epochs, batch_size, _ = local_training(config)
    return TrainSettings.from_wire({
        "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate_at(config, round_number),
        "max_grad_norm": config.max_grad_norm, "seed": config.seed * 100_003 + round_number * 101 + plant_index,
        **extra})


def personal_training(config: ExperimentConfig, pooled_pos_weight: float | None = None
                      ) -> tuple[TrainSettings, int]:
    """(the fine-tune's settings, the local-only model's epochs) for the personalization step: the fine-tune
    runs personalization_epochs at the last round's learning rate; the local-only model gets the same budget
    as federation plus fine-tune (rounds x local_epochs + personalization_epochs), capped at
    LOCAL_ONLY_EPOCHS_CAP (each plant's policy may refuse less)."""
    train = TrainSettings.from_wire({
        "epochs": config.personalization_epochs, "batch_size": max(config.batch_size, PERSONAL_MIN_BATCH),
        "learning_rate": learning_rate_at(config, config.rounds), "max_grad_norm": config.max_grad_norm,
        "seed": config.seed * 100_003 + 7, **_class_weight(config, pooled_pos_weight)})
    budget = config.rounds * config.local_epochs + config.personalization_epochs
    return train, min(budget, LOCAL_ONLY_EPOCHS_CAP)

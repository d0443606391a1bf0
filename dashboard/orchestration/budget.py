"""An experiment's privacy budget: what the accountant records for each round or draw of plants, whether the
next one fits the target epsilon, and the experiment's end when it does not (DESIGN §8.7)."""

from __future__ import annotations

import logging

from dashboard.extensions import db
from dashboard.models import Experiment, record_audit
from dashboard.models.base import utcnow
from shared.experiment.training import local_training
from shared.enums import ExperimentStatus
from shared.errors import SecurityError
from shared.privacy.accounting import epsilon_of as dp_epsilon_of
from shared.privacy.accounting import epsilon_spent, gaussian_step, plant_level_steps, within_budget
from shared.protocol import TrainReply

log = logging.getLogger(__name__)


def privacy_step(experiment: Experiment) -> tuple | None:
    """Central DP: what the accountant records (shared.privacy.accounting), or None without central DP.
    (sigma, 1.0) for each round when every eligible plant is asked: a dropout is not sampling, whatever
    share of the plants it leaves. ("draw", sigma, q) for each Poisson draw of plants at sampling_rate
    q < 1. ("laplace", epsilon) for each round: a draw lowers no pure-DP epsilon, and a draw that falls
    short releases nothing."""
    config = experiment.settings
    privacy = config.privacy
    if privacy.mode != "central":
        return None
    if privacy.mechanism == "laplace":
        return "laplace", privacy.round_epsilon
    return gaussian_step(privacy.noise_multiplier, config.sampling_rate)


def allows(experiment: Experiment, step: tuple | None) -> bool:
    """Central DP: would this step keep epsilon within the target? Ends the experiment when not."""
    privacy = experiment.settings.privacy
    if step is None or privacy.epsilon is None:
        return True
    history = plant_level_steps(experiment.privacy_history)
    ok, projected = within_budget(history, step, privacy.delta, privacy.epsilon)
    if not ok:
        spent = epsilon_spent(history, privacy.delta)
        what = "the next draw of plants" if step[0] == "draw" else f"round {experiment.current_round + 1}"
        exhaust(experiment, SecurityError(
            f"privacy budget exhausted: {what} would bring epsilon to "
            f"{projected:.3f} > target {privacy.epsilon} (spent {spent:.3f} at delta {privacy.delta})"), spent)
    return ok


def account_draw(experiment: Experiment, step: tuple) -> None:
    """Every draw of plants is accounted before anyone trains, whether a round follows or not: its bound
    (shared.privacy.accounting) covers a round that runs only when min_factories plants were drawn, which a
    bound for the rounds alone would not. For a draw that falls short it is an over-count (nothing was
    released), and an over-count is always valid."""
    experiment.privacy_history = [*(experiment.privacy_history or []), list(step)]
    db.session.commit()


def dp_sgd_allows(experiment: Experiment) -> bool:
    """DP-SGD: would one more round like the last take any plant past the target? (Each plant also refuses
    such a round itself; this stops the experiment before plants spend anything on a round that cannot
    count.)"""
    config = experiment.settings
    privacy = config.privacy
    if privacy.mode != "dp_sgd" or privacy.epsilon is None:
        return True
    for plant, history in sorted((experiment.privacy_history or {}).items()):
        sigma, rate = history[-1][0], history[-1][1]
        epochs = local_training(config)[0]  # DP-SGD's own local epochs
        projected = dp_epsilon_of(history + [[sigma, rate, epochs * round(1 / rate)]], privacy.delta)
        if projected > privacy.epsilon:
            spent = dp_epsilon_of(history, privacy.delta)
            exhaust(experiment, SecurityError(
                f"privacy budget exhausted: round {experiment.current_round + 1} would bring {plant}'s epsilon "
                f"to {projected:.3f} > target {privacy.epsilon} (spent {spent:.3f} at delta {privacy.delta})"), spent)
            return False
    return True


def dp_sgd_spent(experiment: Experiment) -> float:
    """The largest epsilon any plant has spent on this experiment (the plants' reports)."""
    histories = experiment.privacy_history if isinstance(experiment.privacy_history, dict) else {}
    delta = experiment.settings.privacy.delta
    return max((dp_epsilon_of(h, delta) for h in histories.values()), default=0.0)


def exhaust(experiment: Experiment, reason: SecurityError, spent: float) -> None:
    experiment.status, experiment.finished_at = ExperimentStatus.BUDGET_EXHAUSTED.value, utcnow()
    experiment.message = str(reason)
    record_audit("scheduler", "privacy.budget_exhausted", experiment.name, epsilon_spent=spent,
                 target_epsilon=experiment.settings.privacy.epsilon, experiment_id=experiment.id)
    db.session.commit()
    log.warning("experiment %d: %s", experiment.id, reason)


def record_dp_sgd(experiment: Experiment, number: int, answers: dict[str, TrainReply], per_factory: dict,
                  aggregate: dict) -> None:
    """Each plant's accountant history and epsilon (it reports them; the plant's own ledger is the truth)."""
    histories = dict(experiment.privacy_history or {})
    for name, answer in answers.items():
        if answer.dp is not None:
            histories[name] = answer.dp.history
            per_factory.setdefault(name, {}).update(dp_epsilon=answer.dp.epsilon,
                                                    dp_noise_multiplier=answer.dp.noise_multiplier,
                                                    dp_lifetime_epsilon=answer.dp.lifetime_epsilon)
    experiment.privacy_history = histories
    delta = experiment.settings.privacy.delta
    by_plant = {name: dp_epsilon_of(h, delta) for name, h in histories.items()}
    aggregate["privacy_epsilon"] = max(by_plant.values(), default=0.0)
    record_audit("scheduler", "privacy.spent", experiment.name, round=number, mode="dp_sgd", delta=delta,
                 epsilon_by_plant=by_plant)


def record_central(experiment: Experiment, number: int, step: tuple, aggregate: dict) -> None:
    """The accountant's entry for a round that ran, and epsilon so far in the round's metrics. The step does
    not depend on who dropped out: at q = 1 every plant was asked (a dropout is not sampling); a draw at
    q < 1 was accounted when it was made."""
    config = experiment.settings
    if step[0] != "draw":
        experiment.privacy_history = [*(experiment.privacy_history or []), list(step)]
    spent = epsilon_spent(plant_level_steps(experiment.privacy_history), config.privacy.delta)
    aggregate["privacy_epsilon"] = spent
    record_audit("scheduler", "privacy.spent", experiment.name, round=number, epsilon=spent,
                 delta=config.privacy.delta, mechanism=config.privacy.mechanism, step=list(step),
                 sampling_rate=config.sampling_rate)

"""Experiments (DESIGN §5): create one from a settings body, move it through its lifecycle, look it up, and its
detail as the API and the experiment page show it (rounds, attempts, model versions, privacy spent)."""

from __future__ import annotations

from dashboard.extensions import db
from dashboard.models import Experiment, ModelVersion, PersonalResult, record_audit
from dashboard.models.base import utcnow
from shared.data.schema import FeatureSchema
from shared.enums import ExperimentStatus, RoundStatus
from shared.errors import ExperimentError
from shared.experiment import parse_experiment
from shared.experiment.stopping import best_round
from shared.privacy.accounting import epsilon_spent, plant_level_steps
from dashboard.errors import NotFound

MAX_ID = 2 ** 63 - 1  # the database's integer range: larger ids in a URL cannot exist

TRANSITIONS = {
    "start": ({ExperimentStatus.PENDING.value}, ExperimentStatus.RUNNING.value),
    "pause": ({ExperimentStatus.RUNNING.value}, ExperimentStatus.PAUSED.value),
    "resume": ({ExperimentStatus.PAUSED.value}, ExperimentStatus.RUNNING.value),
    "cancel": ({ExperimentStatus.PENDING.value, ExperimentStatus.RUNNING.value, ExperimentStatus.PAUSED.value},
               ExperimentStatus.CANCELLED.value),
}


def get_experiment(experiment_id: int) -> Experiment:
    experiment = db.session.get(Experiment, experiment_id) if 0 < experiment_id <= MAX_ID else None
    if experiment is None:
        raise NotFound(f"no experiment with id {experiment_id}")
    return experiment


def recent_experiments(limit: int | None = None) -> list[Experiment]:
    """Newest first; every experiment without `limit`."""
    query = db.select(Experiment).order_by(Experiment.id.desc())
    return list(db.session.scalars(query if limit is None else query.limit(limit)).all())


def create_experiment(body: dict, actor: str, *, start: bool = False) -> Experiment:
    """Validate the settings (ValidationError names the field), store the experiment pending, and start it when
    `start`."""
    config = parse_experiment(body)
    experiment = Experiment(name=config.name, config=config.to_dict(), created_by=actor,
                            status=ExperimentStatus.PENDING.value)
    db.session.add(experiment)
    db.session.flush()
    record_audit(actor, "experiment.created", config.name, experiment_id=experiment.id)
    db.session.commit()
    return change_status(experiment, "start", actor) if start else experiment


def change_status(experiment: Experiment, action: str, actor: str) -> Experiment:
    """start, pause, resume or cancel; an action the experiment's status does not allow is an ExperimentError."""
    allowed, target = TRANSITIONS[action]
    if experiment.status not in allowed:
        raise ExperimentError(f"cannot {action} an experiment that is {experiment.status} "
                              f"(only when {' or '.join(sorted(allowed))})")
    experiment.status = target
    if action == "start":
        experiment.started_at = utcnow()
    if action == "cancel":
        experiment.finished_at = utcnow()
    record_audit(actor, f"experiment.{action}", experiment.name, experiment_id=experiment.id)
    db.session.commit()
    return experiment


def experiment_detail(experiment: Experiment) -> dict:
    rounds = [r for r in experiment.rounds if r.status == RoundStatus.COMPLETED.value]
    live = next((r for r in experiment.rounds if r.status == RoundStatus.RUNNING.value), None)
    versions = db.session.scalars(db.select(ModelVersion.round_number)
                                  .filter_by(experiment_id=experiment.id).order_by(ModelVersion.round_number)).all()
    return {**experiment.summary(), "config": experiment.config, "privacy_spent": privacy_spent(experiment),
            "baseline": experiment.baseline, "rounds": [r.to_dict() for r in rounds],
            "attempts": [r.to_dict() for r in experiment.rounds if r.status != RoundStatus.COMPLETED.value],
            "running_round": live.to_dict() if live else None, "model_versions": versions,
            # the round GET .../model and the release serve by default (pooled validation F1)
            "best_round": best_round(experiment.validation_scores()),
            "personalization": personal_results(experiment),
            "features": FeatureSchema.from_dict(experiment.schema).feature_names if experiment.schema else None}


def personal_results(experiment: Experiment) -> list[dict]:
    """Each plant's global / personalized / local-only scores on its own validation (and test) split."""
    rows = db.session.scalars(db.select(PersonalResult).filter_by(experiment_id=experiment.id)
                              .order_by(PersonalResult.factory_name)).all()
    return [r.to_dict() for r in rows]


def _dp_sgd_plant(history: list, epsilon: float) -> dict:
    """One plant's DP-SGD spending as its ledger reported it: history entries (noise multiplier, sampling rate,
    steps), one per round it trained."""
    sigma, rate, _ = history[-1] if history else (None, None, 0)
    return {"epsilon": epsilon, "rounds": len(history), "steps": sum(int(s[2]) for s in history),
            "noise_multiplier": sigma, "sample_rate": rate}


def privacy_spent(experiment: Experiment) -> dict | None:
    settings = experiment.settings
    privacy = settings.privacy
    if privacy.dp_sgd:  # record-level DP: each plant's own accountant; the worst plant counts
        from shared.privacy.accounting import epsilon_of

        histories = experiment.privacy_history if isinstance(experiment.privacy_history, dict) else {}
        by_plant = {name: epsilon_of(h, privacy.delta) for name, h in histories.items()}
        return {"epsilon": max(by_plant.values(), default=0.0), "delta": privacy.delta,
                "target_epsilon": privacy.epsilon, "by_factory": by_plant, "mode": "dp_sgd", "level": "record",
                "plants": {name: _dp_sgd_plant(h, by_plant[name]) for name, h in sorted(histories.items())}}
    if not privacy.central:
        return None
    history = plant_level_steps(experiment.privacy_history)
    laplace = privacy.laplace
    rate = settings.sampling_rate
    return {"epsilon": epsilon_spent(history, privacy.delta), "mechanism": privacy.mechanism,
            "delta": 0.0 if laplace else privacy.delta, "target_epsilon": privacy.epsilon,
            "level": "plant", "sampling_rate": rate,
            # Poisson sampling of plants lowers epsilon for the Gaussian mechanism only (shared.privacy.accounting)
            "amplified_by_sampling": rate < 1.0 and not laplace,
            "noise_multiplier": None if laplace else privacy.noise_multiplier,
            "noise_multiplier_source": None if laplace else privacy.noise_multiplier_source,
            "rounds_accounted": sum(1 for s in history if s[0] != "draw"),
            "draws_accounted": sum(1 for s in history if s[0] == "draw")}

"""Experiments (DESIGN §5): create one from a settings body, move it through its lifecycle, look it up, and its
detail as the API and the experiment page show it (rounds, attempts, model versions, privacy spent)."""

from __future__ import annotations

from dashboard.extensions import db
from dashboard.models import Experiment, ModelVersion, PersonalResult, Round, record_audit
from dashboard.models.base import utcnow
from dashboard.registry.lifecycle import refuse_named
from dashboard.services import experiment_states, preflight
from dashboard.services.trust import check_trust, plant_facts, secure_by_default
from shared.data.schema import FeatureSchema
from shared.enums import ExperimentStatus, RoundStatus
from shared.errors import ExperimentError, ValidationError
from shared.experiment.stopping import best_round, validation_f1
from shared.privacy.accounting import epsilon_spent, plant_level_steps
from dashboard.errors import NotFound

MAX_ID = 2 ** 63 - 1  # the database's integer range: larger ids in a URL cannot exist



def get_experiment(experiment_id: int) -> Experiment:
    experiment = db.session.get(Experiment, experiment_id) if 0 < experiment_id <= MAX_ID else None
    if experiment is None:
        raise NotFound(f"no experiment with id {experiment_id}")
    return experiment


def recent_experiments(limit: int | None = None, *, archived: bool = False) -> list[Experiment]:
    """Newest first; every experiment without `limit`; the archived ones only when `archived` (and then only
    them)."""
    query = db.select(Experiment).where(Experiment.archived_at.is_not(None) if archived
                                        else Experiment.archived_at.is_(None)).order_by(Experiment.id.desc())
    return list(db.session.scalars(query if limit is None else query.limit(limit)).all())


def list_rows(experiments: list[Experiment]) -> list[dict]:
    """The experiment list's rows: each summary with its state, its actions, and its best round by pooled
    validation F1 with that round's test F1 (MLflow's metric columns); two queries for the whole list."""
    ids = [e.id for e in experiments]
    running = dict(db.session.execute(db.select(Round.experiment_id, Round.number).where(
        Round.experiment_id.in_(ids), Round.status == RoundStatus.RUNNING.value)).all())
    completed: dict[int, dict[int, dict]] = {}
    for eid, number, metrics in db.session.execute(db.select(Round.experiment_id, Round.number, Round.metrics).where(
            Round.experiment_id.in_(ids), Round.status == RoundStatus.COMPLETED.value)):
        completed.setdefault(eid, {})[number] = metrics or {}
    rows = []
    for e in experiments:
        metrics = completed.get(e.id, {})
        best = best_round({n: f for n, m in metrics.items() if (f := validation_f1(m)) is not None})
        rows.append({**e.summary(),
                     "state": experiment_states.state(e.status, running.get(e.id), e.message).to_dict(),
                     "actions": {name: a.to_dict() for name, a in
                                 experiment_states.actions(e.status, len(metrics), e.archived_at is not None).items()},
                     "best_round": best, "best_val_f1": validation_f1(metrics[best]) if best is not None else None,
                     "best_test_f1": metrics[best].get("test_f1") if best is not None else None})
    return rows


def create_experiment(body: dict, actor: str, *, start: bool = False) -> Experiment:
    """Validate the settings and the listed plants (ValidationError names every problem: a plant the registry does
    not hold is one, dashboard.services.preflight), refuse decommissioned plants it names and what its plants that do
    not trust this dashboard would refuse (dashboard.services.trust; both a 400), store the experiment pending, and
    start it when `start`."""
    config = secure_by_default(body, preflight.parse(body, [p.name for p in plant_facts()]))
    refuse_named(config.factories)  # a decommissioned plant (dashboard.registry.lifecycle), a 400
    check_trust(config)
    experiment = Experiment(name=config.name, config=config.to_dict(), created_by=actor,
                            status=ExperimentStatus.PENDING.value)
    db.session.add(experiment)
    db.session.flush()
    record_audit(actor, "experiment.created", config.name, experiment_id=experiment.id)
    db.session.commit()
    return change_status(experiment, "start", actor) if start else experiment


def check_before_start(body: object) -> dict:
    """The pre-flight check of a creation body (POST /api/experiments/preflight, the form's Check button): its field
    errors all at once, or what each chosen plant will refuse, by setting, and what will make it wait. Nothing is
    stored."""
    facts = plant_facts()
    try:
        config = secure_by_default(body, preflight.parse(body, [p.name for p in facts]))
    except ValidationError as exc:
        return preflight.Preflight(errors=list(exc.problems)).to_dict()
    return preflight.check(config, facts).to_dict()


def change_status(experiment: Experiment, action: str, actor: str) -> Experiment:
    """start, pause, resume or cancel; an action the experiment's status does not allow is an ExperimentError
    (HTTP 409), by the one rule of dashboard.services.experiment_states. Starting checks the plants' trust again
    (dashboard.services.trust: ValidationError, 400): the registry may have changed since the experiment was made."""
    status = experiment_states.check_transition(action, experiment.status)
    if action == "start":
        refuse_named(experiment.settings.factories)  # decommissioned since the experiment was made
        check_trust(experiment.settings)
    experiment.status = status
    if action == "start":
        experiment.started_at = utcnow()
    if action == "cancel":
        experiment.finished_at = utcnow()
    record_audit(actor, f"experiment.{action}", experiment.name, experiment_id=experiment.id)
    db.session.commit()
    return experiment


def set_archived(experiment: Experiment, archive: bool, actor: str) -> Experiment:
    """Archive a finished experiment (hidden from the default list; its rounds, models, releases and audit stay)
    or bring it back; ExperimentError (409) when the state refuses (experiment_states.archive_refusal)."""
    action = "archive" if archive else "unarchive"
    refusal = experiment_states.archive_refusal(action, experiment.status, experiment.archived_at is not None)
    if refusal:
        raise ExperimentError(f"cannot {action} experiment {experiment.id}: {refusal}")
    experiment.archived_at, experiment.archived_by = (utcnow(), actor) if archive else (None, None)
    record_audit(actor, f"experiment.{action}d", experiment.name, experiment_id=experiment.id)
    db.session.commit()
    return experiment


def experiment_detail(experiment: Experiment) -> dict:
    rounds = [r for r in experiment.rounds if r.status == RoundStatus.COMPLETED.value]
    live = next((r for r in experiment.rounds if r.status == RoundStatus.RUNNING.value), None)
    versions = db.session.scalars(db.select(ModelVersion.round_number)
                                  .filter_by(experiment_id=experiment.id).order_by(ModelVersion.round_number)).all()
    rounds_recorded = len(rounds)
    return {**experiment.summary(), "config": experiment.config,
            "state": experiment_states.state(experiment.status, live.number if live else None,
                                             experiment.message).to_dict(),
            "actions": {name: a.to_dict() for name, a in
                        experiment_states.actions(experiment.status, rounds_recorded,
                                                                  experiment.archived_at is not None).items()}, "privacy_spent": privacy_spent(experiment),
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

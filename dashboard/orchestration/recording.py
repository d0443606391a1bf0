"""The record stage: a round's outcome into the database (Round, RoundResult, ModelVersion, the experiment's
server state and privacy ledger). A model's scores arrive one round after it was made (the next round's
training calls score it), so an evaluation is recorded on the round that made the model."""

from __future__ import annotations

import logging

from dashboard.extensions import db
from dashboard.models import Experiment, ModelVersion, PersonalResult, Round, RoundResult, record_audit
from dashboard.models.base import utcnow
from dashboard.orchestration import budget
from dashboard.orchestration.evaluation import Evaluation, pooled, training_metrics
from dashboard.orchestration.workflow import RoundState
from shared.enums import ExperimentStatus, RoundStatus
from shared.experiment.stopping import best_round, stopped_early
from shared.serialization import weights_from_bytes, weights_to_bytes
from shared.strategies import ServerState

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


def start_round(experiment: Experiment, names: list[str]) -> Round:
    number = experiment.current_round + 1
    attempt = 1 + db.session.query(Round).filter_by(experiment_id=experiment.id, number=number).count()
    row = Round(experiment_id=experiment.id, number=number, attempt=attempt, participants=names)
    db.session.add(row)
    experiment.message = f"round {number} running on {len(names)} plants"
    db.session.commit()
    return row


def record_evaluation(experiment: Experiment, number: int, evaluation: Evaluation | None) -> None:
    """The scores of round `number`'s model (0: the initial model, the experiment's baseline) on the round
    that made it, and the model version's decision threshold."""
    if evaluation is None:
        return
    version = db.session.scalar(db.select(ModelVersion).filter_by(experiment_id=experiment.id,
                                                                  round_number=number))
    if version is not None:
        version.threshold = evaluation.threshold
    if number == 0:
        experiment.baseline = evaluation.aggregate
        return
    row = db.session.scalar(db.select(Round).filter_by(experiment_id=experiment.id, number=number,
                                                       status=RoundStatus.COMPLETED.value))
    if row is None:
        return
    row.threshold = evaluation.threshold
    results = {r.factory_name: r for r in row.results}
    for name, metrics in evaluation.per_factory.items():
        result = results.get(name) or RoundResult(round=row, factory_name=name, num_samples=0, steps=0)
        result.metrics = {**(result.metrics or {}), **metrics}
        db.session.add(result)
    row.metrics = {**(row.metrics or {}), **evaluation.aggregate}


def record_round(experiment: Experiment, row: Round, state: RoundState, privacy_step: tuple | None) -> None:
    """A completed round: its participants, the new model version, training metrics, privacy spent."""
    config, number = experiment.settings, row.number
    per_factory = training_metrics(state.trained)
    aggregate = pooled(per_factory)
    if privacy_step is not None:
        budget.record_central(experiment, number, privacy_step, aggregate)
    if config.privacy.mode == "dp_sgd":
        budget.record_dp_sgd(experiment, number, state.trained, per_factory, aggregate)
    report = state.aggregated.report
    row.participants, row.dropouts, row.metrics = sorted(state.trained), state.dropouts, aggregate
    row.aggregation = {"strategy": state.strategy, "norms": report.norms, "outliers": report.outliers, "excluded": report.excluded,
                       "reputation": report.reputation}
    if state.secagg is not None:  # what the dashboard saw: masked vectors and their sum; say how it was unmasked
        row.aggregation.update(secure=True, threshold=state.secagg.threshold, survivors=sorted(state.trained),
                               revealed_by=state.revealed_by, fraction_bits=state.secagg.fraction_bits,
                               clip=state.secagg.clip)
    save_server_state(experiment, state.aggregated.state)
    for name, answer in state.trained.items():
        db.session.add(RoundResult(round=row, factory_name=name, num_samples=answer.num_samples,
                                   steps=answer.steps, train_seconds=answer.train_seconds,
                                   metrics=dict(per_factory[name])))
    db.session.add(ModelVersion(experiment_id=experiment.id, round_number=number,
                                weights=weights_to_bytes(state.aggregated.weights), threshold=0.5,
                                transcript=state.transcript.to_bytes() if state.transcript is not None else None))
    row.status, row.finished_at = RoundStatus.COMPLETED.value, utcnow()
    experiment.current_round, experiment.message = number, None
    db.session.flush()
    record_evaluation(experiment, number, state.outgoing)
    scores = experiment.validation_scores()
    if number >= config.rounds or stopped_early(scores, config.patience):
        experiment.status, experiment.finished_at = ExperimentStatus.COMPLETED.value, utcnow()
        best = best_round(scores)
        if number < config.rounds:
            experiment.message = (f"stopped early at round {number}: best round {best} (validation F1 "
                                  f"{scores[best]:.3f}), no improvement in the {config.patience} round(s) after it")
            log.info("experiment %d: %s", experiment.id, experiment.message)
        record_audit("scheduler", "experiment.completed", experiment.name, experiment_id=experiment.id,
                     best_round=best)
    db.session.commit()


def experiment_participants(experiment: Experiment) -> set[str]:
    """Every plant that trained in a completed round of the experiment."""
    return {name for r in experiment.rounds if r.status == RoundStatus.COMPLETED.value for name in r.participants or []}


def record_personalization(experiment: Experiment, round_number: int, answers: dict) -> list[str]:
    """The plants' personalization scores (dashboard.orchestration.personalization), one row per plant and
    experiment; an answer from a plant that never trained in the experiment is refused. The names recorded."""
    from dashboard.orchestration.personalization import accepted

    recorded = []
    for name, reply in sorted(accepted(answers, experiment_participants(experiment)).items()):
        row = db.session.scalar(db.select(PersonalResult).filter_by(experiment_id=experiment.id, factory_name=name))
        row = row or PersonalResult(experiment_id=experiment.id, factory_name=name)
        row.mode, row.round_number = reply.mode, round_number
        row.scores = {kind: scores.to_wire() for kind, scores in reply.scores.items()}
        db.session.add(row)
        recorded.append(name)
    db.session.commit()
    return recorded


def abort_if_cancelled(experiment: Experiment, row: Round) -> bool:
    db.session.refresh(experiment)
    if experiment.status != ExperimentStatus.CANCELLED.value:
        return False
    row.status, row.finished_at, row.error = RoundStatus.ABORTED.value, utcnow(), "experiment cancelled during the round"
    db.session.commit()
    return True


def fail_round(experiment: Experiment, row: Round, dropouts: dict, reason: str) -> None:
    row.status, row.finished_at = RoundStatus.FAILED.value, utcnow()
    row.dropouts, row.error, row.participants = dropouts, reason, []
    log.warning("experiment %d round %d attempt %d failed: %s", experiment.id, row.number, row.attempt, reason)
    if row.attempt >= MAX_ATTEMPTS:
        experiment.status, experiment.finished_at = ExperimentStatus.FAILED.value, utcnow()
        experiment.message = f"round {row.number} failed {MAX_ATTEMPTS} times; last: {reason}"
        record_audit("scheduler", "experiment.failed", experiment.name, reason=reason,
                     experiment_id=experiment.id)
    else:
        experiment.message = f"round {row.number} failed ({reason}); retrying"
    db.session.commit()


def fail_experiment(experiment: Experiment, message: str) -> None:
    experiment.status, experiment.finished_at, experiment.message = (ExperimentStatus.FAILED.value, utcnow(),
                                                                     message)
    for stale in db.session.scalars(db.select(Round).filter_by(experiment_id=experiment.id,
                                                               status=RoundStatus.RUNNING.value)):
        stale.status, stale.finished_at, stale.error = RoundStatus.ABORTED.value, utcnow(), message
    record_audit("scheduler", "experiment.failed", experiment.name, reason=message,
                 experiment_id=experiment.id)
    db.session.commit()


def load_server_state(experiment: Experiment) -> ServerState:
    arrays = weights_from_bytes(experiment.server_state) if experiment.server_state else {}
    return ServerState.from_arrays(arrays, dict(experiment.reputation or {}))


def save_server_state(experiment: Experiment, state: ServerState) -> None:
    arrays = state.to_arrays()
    experiment.server_state = weights_to_bytes(arrays) if arrays else None
    experiment.reputation = dict(state.reputation)

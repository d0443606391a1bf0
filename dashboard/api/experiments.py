"""Experiments JSON API (DESIGN §5), for operators (session or bearer token)."""

from __future__ import annotations

import io

from flask import Blueprint, g, jsonify, request, send_file

from dashboard.api.validation import json_body
from dashboard.extensions import csrf, db
from dashboard.models import Experiment, ModelVersion, Round, record_audit
from dashboard.models.base import isoformat, utcnow
from dashboard.security import operator_required
from shared.bundle import ModelBundle
from shared.data.scaler import Scaler
from shared.data.schema import FeatureSchema
from shared.enums import ExperimentStatus, RoundStatus
from shared.errors import ExperimentError
from shared.experiment import ExperimentConfig
from shared.privacy.accounting import epsilon_spent, plant_level_steps
from shared.serialization import weights_from_bytes

bp = Blueprint("experiments_api", __name__, url_prefix="/api")
csrf.exempt(bp)


class NotFound(ExperimentError):
    status_code = 404


MAX_ID = 2 ** 63 - 1  # the database's integer range: larger ids in a URL cannot exist


def get_experiment(experiment_id: int) -> Experiment:
    experiment = db.session.get(Experiment, experiment_id) if 0 < experiment_id <= MAX_ID else None
    if experiment is None:
        raise NotFound(f"no experiment with id {experiment_id}")
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
            "features": FeatureSchema.from_dict(experiment.schema).feature_names if experiment.schema else None}


def privacy_spent(experiment: Experiment) -> dict | None:
    settings = experiment.settings
    privacy = settings.privacy
    if privacy.dp_sgd:  # record-level DP: each plant's own accountant; the worst plant counts
        from shared.privacy.dp_sgd import epsilon_of

        by_plant = {name: epsilon_of(h, privacy.delta) for name, h in (experiment.privacy_history or {}).items()}
        return {"epsilon": max(by_plant.values(), default=0.0), "delta": privacy.delta,
                "target_epsilon": privacy.epsilon, "by_factory": by_plant, "mode": "dp_sgd", "level": "record"}
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


def create_experiment(body: dict, actor: str) -> Experiment:
    config = ExperimentConfig.parse(body)
    experiment = Experiment(name=config.name, config=config.to_dict(), created_by=actor,
                            status=ExperimentStatus.PENDING.value)
    db.session.add(experiment)
    db.session.flush()
    record_audit(actor, "experiment.created", config.name, experiment_id=experiment.id)
    db.session.commit()
    return experiment


TRANSITIONS = {
    "start": ({ExperimentStatus.PENDING.value}, ExperimentStatus.RUNNING.value),
    "pause": ({ExperimentStatus.RUNNING.value}, ExperimentStatus.PAUSED.value),
    "resume": ({ExperimentStatus.PAUSED.value}, ExperimentStatus.RUNNING.value),
    "cancel": ({ExperimentStatus.PENDING.value, ExperimentStatus.RUNNING.value, ExperimentStatus.PAUSED.value},
               ExperimentStatus.CANCELLED.value),
}


def change_status(experiment: Experiment, action: str, actor: str) -> Experiment:
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


def build_bundle(experiment: Experiment, round_number: int | None) -> tuple[bytes, int]:
    query = db.select(ModelVersion).filter_by(experiment_id=experiment.id)
    if round_number is None:
        version = db.session.scalar(query.order_by(ModelVersion.round_number.desc()).limit(1))
    else:
        version = db.session.scalar(query.filter_by(round_number=round_number))
    if version is None or experiment.schema is None:
        raise NotFound(f"experiment {experiment.id} has no model" +
                       (f" for round {round_number}" if round_number is not None else " yet"))
    schema = FeatureSchema.from_dict(experiment.schema)
    spec = experiment.settings.model_spec(len(schema.feature_names))  # the very spec the rounds trained
    round_row = db.session.scalar(db.select(Round).filter_by(experiment_id=experiment.id,
                                                             number=version.round_number,
                                                             status=RoundStatus.COMPLETED.value))
    bundle = ModelBundle(spec=spec, schema=schema, scaler=Scaler.from_dict(experiment.scaler),
                         weights=weights_from_bytes(version.weights), threshold=version.threshold,
                         source={"experiment_id": experiment.id, "experiment": experiment.name,
                                 "round": version.round_number, "created_at": isoformat(version.created_at),
                                 "metrics": round_row.metrics if round_row else {}})
    return bundle.to_bytes(), version.round_number


@bp.post("/experiments")
@operator_required(role="operator")
def create():
    experiment = create_experiment(json_body(), g.actor)
    return jsonify(experiment_detail(experiment)), 201


@bp.get("/experiments")
@operator_required
def list_experiments():
    experiments = db.session.scalars(db.select(Experiment).order_by(Experiment.id.desc())).all()
    return jsonify([e.summary() for e in experiments])


@bp.get("/experiments/<int:experiment_id>")
@operator_required
def show(experiment_id: int):
    return jsonify(experiment_detail(get_experiment(experiment_id)))


@bp.post("/experiments/<int:experiment_id>/<any(start, pause, resume, cancel):action>")
@operator_required(role="operator")
def act(experiment_id: int, action: str):
    return jsonify(experiment_detail(change_status(get_experiment(experiment_id), action, g.actor)))


@bp.get("/experiments/<int:experiment_id>/model")
@operator_required
def download_model(experiment_id: int):
    experiment = get_experiment(experiment_id)
    raw = request.args.get("round")
    if raw is not None and (not raw.isdigit() or int(raw) > MAX_ID):
        raise ExperimentError("round must be a non-negative whole number")
    blob, number = build_bundle(experiment, int(raw) if raw is not None else None)
    return send_file(io.BytesIO(blob), mimetype="application/octet-stream", as_attachment=True,
                     download_name=f"experiment-{experiment.id}-round-{number}.safetensors")

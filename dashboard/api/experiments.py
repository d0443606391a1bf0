"""Experiments JSON API (DESIGN §5), for operators (session or bearer token); the work is
dashboard.services.experiments and dashboard.services.models."""

from __future__ import annotations

import io

from flask import Blueprint, Response, g, jsonify, request, send_file

from dashboard.api.validation import json_body
from dashboard.auth.roles import operator_required
from dashboard.extensions import csrf
from dashboard.services import experiments as service
from dashboard.services import metrics_export
from dashboard.services.models import build_bundle
from shared.errors import ExperimentError

bp = Blueprint("experiments_api", __name__, url_prefix="/api")
csrf.exempt(bp)


@bp.post("/experiments")
@operator_required(role="operator")
def create():
    experiment = service.create_experiment(json_body(), g.actor)
    return jsonify(service.experiment_detail(experiment)), 201


@bp.post("/experiments/preflight")
@operator_required(role="operator")
def check_before_start():
    """The creation body checked, nothing stored: 200 {ok, errors, refusals, warnings}; a body that is not a JSON
    object is a 400."""
    return jsonify(service.check_before_start(json_body()))


@bp.get("/experiments")
@operator_required
def list_experiments():
    archived = request.args.get("archived") in ("1", "true")  # the archived ones instead of the others
    return jsonify(service.list_rows(service.recent_experiments(archived=archived)))


@bp.get("/experiments/<int:experiment_id>")
@operator_required
def show(experiment_id: int):
    return jsonify(service.experiment_detail(service.get_experiment(experiment_id)))


@bp.post("/experiments/<int:experiment_id>/<any(start, pause, resume, cancel):action>")
@operator_required(role="operator")
def act(experiment_id: int, action: str):
    experiment = service.change_status(service.get_experiment(experiment_id), action, g.actor)
    return jsonify(service.experiment_detail(experiment))


@bp.post("/experiments/<int:experiment_id>/<any(archive, unarchive):action>")
@operator_required(role="operator")
def archive(experiment_id: int, action: str):
    experiment = service.set_archived(service.get_experiment(experiment_id), action == "archive", g.actor)
    return jsonify(service.experiment_detail(experiment))


@bp.get("/experiments/<int:experiment_id>/metrics.csv")
@operator_required
def metrics_csv(experiment_id: int):
    experiment = service.get_experiment(experiment_id)
    return Response(metrics_export.metrics_csv(experiment), mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename=experiment-{experiment.id}-metrics.csv"})


@bp.get("/experiments/<int:experiment_id>/model")
@operator_required
def download_model(experiment_id: int):
    experiment = service.get_experiment(experiment_id)
    raw = request.args.get("round")
    if raw is not None and (not raw.isdigit() or int(raw) > service.MAX_ID):
        raise ExperimentError("round must be a non-negative whole number")
    blob, number = build_bundle(experiment, int(raw) if raw is not None else None)
    return send_file(io.BytesIO(blob), mimetype="application/octet-stream", as_attachment=True,
                     download_name=f"experiment-{experiment.id}-round-{number}.safetensors")

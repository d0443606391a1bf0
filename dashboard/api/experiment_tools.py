"""DELETE /api/experiments/<id> (admins) and GET /api/experiments/compare?ids=1,2 (issue 27 item 6); the work
is dashboard.services.experiment_deletion and dashboard.services.compare, which the pages call too."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from dashboard.auth.roles import operator_required
from dashboard.extensions import csrf
from dashboard.services import compare as comparing
from dashboard.services import experiment_deletion
from dashboard.services.experiments import get_experiment

bp = Blueprint("experiment_tools_api", __name__, url_prefix="/api")
csrf.exempt(bp)


@bp.delete("/experiments/<int:experiment_id>")
@operator_required(role="admin")
def delete(experiment_id: int):
    done = experiment_deletion.delete_experiment(get_experiment(experiment_id), g.actor)
    return jsonify({**done.to_dict(), "deleted": True})


@bp.get("/experiments/compare")
@operator_required
def compare():
    return jsonify(comparing.compare(comparing.parse_ids(request.args.get("ids"))))

"""Released models (DESIGN §10), JSON only:

- `POST /api/experiments/<id>/release` body `{"round": N}` (optional; default: the best round by pooled
  validation F1) — operators;
- `GET /api/releases` — the registry, newest first, with the plants that report using each release;
- `POST /api/releases/<id>/activate` — roll back (or forward) to that release — operators;
- `GET /api/factories/<name>/floor` — a plant's floor history (scored rows, open alerts, drift) for the charts;
- `GET /api/models/<id>/bundle` — the release's bytes, for the plants of its experiment only, authenticated by
  the plant's heartbeat token (`Authorization: Bearer <heartbeat token>`).

The work is dashboard.services.models (releases) and dashboard.services.plants (the floor history).
"""

from __future__ import annotations

import io

from flask import Blueprint, g, jsonify, request, send_file

from dashboard.api.validation import json_body
from dashboard.auth.roles import bearer_token, operator_required
from dashboard.extensions import csrf
from dashboard.services import models, plants
from dashboard.services.experiments import MAX_ID, get_experiment
from shared.errors import ValidationError
from shared.protocol.registry_fields import plant_name

bp = Blueprint("releases_api", __name__, url_prefix="/api")
csrf.exempt(bp)  # cookie-authenticated writes are CSRF-checked by operator_required


def _round_of(body: dict) -> int | None:
    value = body.get("round")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ValidationError("round", f"must be a round number (a whole number, 0 or more), got {str(value)[:40]!r}")
    return value


@bp.post("/experiments/<int:experiment_id>/release")
@operator_required(role="operator")
def release(experiment_id: int):
    body = json_body() if request.get_data() else {}
    row = models.release(get_experiment(experiment_id), _round_of(body), g.actor)
    return jsonify(row.to_dict()), 201


@bp.get("/releases")
@operator_required
def registry():
    return jsonify(models.registry())


@bp.post("/releases/<int:release_id>/activate")
@operator_required(role="operator")
def activate(release_id: int):
    return jsonify(models.activate(release_id, g.actor).to_dict())


@bp.get("/factories/<name>/floor")
@operator_required
def floor(name: str):
    plant_name(name, "name")
    plant = plants.plant_named(name)
    if plant is None:
        raise models.ReleaseNotFound(f"no plant named {name!r}")
    history = plants.floor_history([plant.id])[plant.id]
    reported = plant.to_dict()
    return jsonify({"factory_name": plant.name, "released_model": reported["released_model"],
                    "alerts_open": plant.alerts_open, "scored_rows": plant.scored_rows, "drift": plant.drift,
                    "drift_reading": reported["drift_reading"], "alerts_opened": plant.alerts_opened,
                    "recent_alerts": reported["recent_alerts"], "history": history})


@bp.get("/models/<int:release_id>/bundle")
def bundle(release_id: int):
    row = models.bundle_for_plant(release_id, bearer_token())
    resp = send_file(io.BytesIO(row.bundle), mimetype="application/octet-stream", as_attachment=True,
                     download_name=f"release-{row.id}.safetensors", etag=row.sha256)
    resp.headers["X-Content-SHA256"] = row.sha256
    return resp

"""Released models (DESIGN §10), JSON only:

- `POST /api/experiments/<id>/release` body `{"round": N, "plants": [...]}` (both optional; default: the best
  round by pooled validation F1, deployed to every plant that trained it but pinned ones; `"preview": true`:
  what it would change, nothing stored) — operators;
- `GET /api/releases` — the registry, newest first, with each release's state and the plants using it;
- `POST /api/releases/<id>/deploy` body `{"plants": [...], "confirm": true}` — without `confirm` the preview
  (per plant: current and new validation F1, whether it switches) — operators;
- `GET /api/deployments` — per plant: the release it is assigned, the one it reports, pinned, roll back target;
- `POST /api/factories/<name>/model/rollback`, `.../pin`, `.../unpin`, `POST /api/deployments/rollback` (every
  plant not pinned) — operators (the work: dashboard.services.deployments);
- `GET /api/factories/<name>/floor` — a plant's floor history (scored rows, open alerts, drift) for the charts;
- `GET /api/models/<id>/bundle` — the release's bytes, for the plants of its experiment only, authenticated by
  the plant's heartbeat token (`Authorization: Bearer <heartbeat token>`).

The work is dashboard.services.models (releases), dashboard.services.deployments (who runs what) and
dashboard.services.plants (the floor history).
"""

from __future__ import annotations

import io

from flask import Blueprint, g, jsonify, request, send_file

from dashboard.api.validation import json_body
from dashboard.auth.roles import bearer_token, operator_required
from dashboard.extensions import csrf
from dashboard.services import deployment_views, deployments, models, plants
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


def _only(body: dict, *keys: str) -> dict:
    extra = sorted(set(body) - set(keys))
    if extra:
        raise ValidationError(extra[0][:40], f"is not a field of this request (fields: {', '.join(keys)})")
    return body


def _confirmed(body: dict) -> bool:
    value = body.get("confirm", False)
    if not isinstance(value, bool):
        raise ValidationError("confirm", f"must be true or false, got {str(value)[:40]!r}")
    return value


@bp.post("/experiments/<int:experiment_id>/release")
@operator_required(role="operator")
def release(experiment_id: int):
    body = _only(json_body() if request.get_data() else {}, "round", "plants", "preview")
    experiment, preview = get_experiment(experiment_id), body.get("preview", False)
    if not isinstance(preview, bool):
        raise ValidationError("preview", f"must be true or false, got {str(preview)[:40]!r}")
    if preview:  # what the release would change, nothing stored
        return jsonify(models.release_preview(experiment, _round_of(body), body.get("plants")).to_dict())
    row, plan = models.release(experiment, _round_of(body), g.actor, body.get("plants"))
    return jsonify({**row.to_dict(), "deployment": plan.to_dict()}), 201


@bp.post("/releases/<int:release_id>/deploy")
@operator_required(role="operator")
def deploy(release_id: int):
    body = _only(json_body() if request.get_data() else {}, "plants", "confirm")
    row = models.get_release(release_id)
    named = deployments.chosen_plants(body.get("plants"), tuple(row.plants or ()))
    if not _confirmed(body):
        deployments.refuse_unreleasable(row.experiment)
        return jsonify({"confirmed": False, **deployments.preview(deployments.target_of(row), named).to_dict()})
    return jsonify({"confirmed": True, **deployments.deploy(row, named, g.actor).to_dict()})


@bp.get("/deployments")
@operator_required
def deployments_list():
    return jsonify({"plants": deployment_views.plant_models()})


@bp.post("/deployments/rollback")
@operator_required(role="operator")
def rollback_all():
    return jsonify(deployments.rollback_all(g.actor))


@bp.post("/factories/<name>/model/rollback")
@operator_required(role="operator")
def rollback(name: str):
    return jsonify(deployments.rollback(name, g.actor).to_dict())


@bp.post("/factories/<name>/model/pin")
@operator_required(role="operator")
def pin(name: str):
    return jsonify(deployments.set_pinned(name, True, g.actor).to_dict())


@bp.post("/factories/<name>/model/unpin")
@operator_required(role="operator")
def unpin(name: str):
    return jsonify(deployments.set_pinned(name, False, g.actor).to_dict())


@bp.get("/releases")
@operator_required
def registry():
    return jsonify(models.registry())


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

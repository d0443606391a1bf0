"""Factory registry: POST /register_factory, POST /heartbeat, GET /factories, one plant, its labels and its
decommissioning (DESIGN §4). Thin views: the work is dashboard.registry.service's and .lifecycle's."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from dashboard.api.metrics import count_heartbeat
from dashboard.api.validation import json_body
from dashboard.auth.roles import Unauthorized, bearer_token, operator_required
from dashboard.extensions import csrf, limiter, register_limit
from dashboard.registry import identity, lifecycle, service
from shared.protocol.registry import plant_name

bp = Blueprint("factories_api", __name__)
csrf.exempt(bp)


@bp.post("/register_factory")
@limiter.limit(register_limit)  # enrollment-token guessing
def register_factory():
    identity.refuse_without_any_credential()  # before the body is read
    registered = service.register(json_body())
    return jsonify(registered.answer), 201 if registered.created else 200


@bp.post("/heartbeat")
@limiter.exempt  # authenticated by an unguessable token; the limiter's per-request work was ~15 % of a heartbeat
def heartbeat():
    token = bearer_token()
    if not token:
        raise Unauthorized("missing heartbeat token")
    try:
        answer = service.heartbeat(token, json_body())
    except service.UnknownPlant as exc:
        return jsonify({"error": str(exc), "detail": None}), 404
    count_heartbeat()  # an accepted heartbeat
    return jsonify(answer)


@bp.get("/factories")
@operator_required  # operators' view (viewer and up); agents never read it
def list_factories():
    from dashboard.services import plants

    return jsonify(plants.listing())  # this process's buffered heartbeats first (read your writes)


def _plant_or_404(name: str):
    """The registered plant of that name (a malformed name is a 400), else NotFound (404)."""
    from dashboard.errors import NotFound
    from dashboard.services import plants

    plant = plants.plant_named(plant_name(name, "name"))
    if plant is None:
        raise NotFound(f"no plant named {name!r}")
    return plant


@bp.get("/api/factories/<name>")
@operator_required
def show_factory(name: str):
    """One plant as GET /factories lists it (its status, policy and trust mode)."""
    return jsonify(_plant_or_404(name).to_dict())


@bp.get("/api/factories/<name>/load")
@operator_required
def factory_load(name: str):
    """A plant's CPU, memory and disk over the last `hours` (1, 6, 24 or 168), averaged into at most 240 points."""
    from dashboard.services import load_history

    hours = load_history.range_hours(request.args.get("hours"))
    plant = _plant_or_404(name)
    return jsonify({"factory_name": plant.name, **load_history.load_history(plant.id, hours)})


@bp.patch("/api/factories/<name>")
@operator_required(role="operator")
def relabel_factory(name: str):
    """{"display_name": ..., "site": ...}: set them, "" or null clears one; the name stays the plant's identity."""
    labels = lifecycle.PlantLabels.from_wire(json_body())
    try:
        plant = lifecycle.relabel(plant_name(name, "name"), labels, g.actor)
    except lifecycle.UnknownPlant as exc:
        return jsonify({"error": str(exc), "detail": None}), 404
    return jsonify(plant.to_dict())


@bp.post("/api/factories/<name>/decommission")
@operator_required(role="admin")
def decommission_factory(name: str):
    """Retire the plant: it leaves future cohorts, its history is kept, its heartbeat token is revoked."""
    try:
        plant = lifecycle.decommission(plant_name(name, "name"), g.actor)
    except lifecycle.UnknownPlant as exc:
        return jsonify({"error": str(exc), "detail": None}), 404
    return jsonify(plant.to_dict())

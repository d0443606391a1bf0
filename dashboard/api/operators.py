"""Operators JSON API (admins; DESIGN §8): list, create, change a role, disable, enable, reset a password. The
work is dashboard.services.operators, shared with the CLI and the Operators page. A generated password is in
the answer that made it only."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from dashboard.api.validation import json_body, require
from dashboard.auth.roles import operator_required
from dashboard.extensions import csrf
from dashboard.models import Operator
from dashboard.models.base import isoformat
from dashboard.services import operators as service

bp = Blueprint("operators_api", __name__, url_prefix="/api")
csrf.exempt(bp)


def operator_dict(operator: Operator) -> dict:
    return {"id": operator.id, "email": operator.email, "role": operator.role, "disabled": operator.disabled,
            "disabled_at": isoformat(operator.disabled_at), "created_at": isoformat(operator.created_at)}


@bp.get("/operators")
@operator_required(role="admin")
def list_operators():
    return jsonify([operator_dict(o) for o in service.all_operators()])


@bp.post("/operators")
@operator_required(role="admin")
def create():
    body = json_body()
    password = require(body, "password", str, optional=True, max_len=service.MAX_PASSWORD)
    operator, generated = service.create_operator(require(body, "email", str, max_len=service.MAX_EMAIL),
                                                  require(body, "role", str, optional=True, max_len=16) or "viewer",
                                                  password, g.actor)
    return jsonify({**operator_dict(operator), "password": generated}), 201


@bp.post("/operators/<int:operator_id>/role")
@operator_required(role="admin")
def change_role(operator_id: int):
    role = require(json_body(), "role", str, max_len=16)
    return jsonify(operator_dict(service.set_role(service.get_operator(operator_id), role, g.actor, by=g.operator)))


@bp.post("/operators/<int:operator_id>/disable")
@operator_required(role="admin")
def disable(operator_id: int):
    return jsonify(operator_dict(service.set_disabled(service.get_operator(operator_id), True, g.actor,
                                                      by=g.operator)))


@bp.post("/operators/<int:operator_id>/enable")
@operator_required(role="admin")
def enable(operator_id: int):
    return jsonify(operator_dict(service.set_disabled(service.get_operator(operator_id), False, g.actor,
                                                      by=g.operator)))


@bp.post("/operators/<int:operator_id>/password")
@operator_required(role="admin")
def reset_password(operator_id: int):
    operator = service.get_operator(operator_id)
    return jsonify({**operator_dict(operator), "password": service.reset_password(operator, g.actor)})

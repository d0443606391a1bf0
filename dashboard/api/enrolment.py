"""POST /api/enrolment-tokens: a one-time enrolment token for one plant name, answered once (DESIGN §4)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from dashboard.registry import enrolment
from dashboard.api.validation import json_body, require
from dashboard.extensions import csrf, db
from dashboard.models.base import isoformat
from dashboard.auth.roles import operator_required

bp = Blueprint("enrolment_api", __name__, url_prefix="/api")
csrf.exempt(bp)


@bp.post("/enrolment-tokens")
@operator_required(role="admin")
def create_enrolment_token():
    body = json_body()
    name = require(body, "factory_name", str, max_len=120)
    hours = require(body, "expires_in_hours", (int, float), optional=True)
    row, token = enrolment.issue_enrolment_token(name, 24 if hours is None else hours, g.actor)
    db.session.commit()
    # the token itself is in this answer only: the dashboard keeps its SHA-256 digest
    return jsonify({"id": row.id, "factory_name": row.factory_name, "token": token,
                    "expires_at": isoformat(row.expires_at)}), 201

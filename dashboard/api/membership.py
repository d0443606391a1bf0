"""Membership relay (dashboard.registry.membership): the federation administrator uploads certificates and
revocation lists it signed elsewhere; anyone may read the current revocation list (it is signed and public)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from dashboard.api.validation import json_body
from dashboard.auth.roles import operator_required
from dashboard.extensions import csrf
from dashboard.registry import membership

bp = Blueprint("membership_api", __name__, url_prefix="/api/membership")
csrf.exempt(bp)


@bp.post("/certificates")
@operator_required  # a write: admin role
def upload_certificate():
    cert = membership.store_certificate(json_body())
    return jsonify({"plant": cert.plant, "serial": cert.serial, "federation": cert.federation}), 201


@bp.post("/revocations")
@operator_required
def upload_revocations():
    listing = membership.store_revocations(json_body())
    return jsonify({"serial": listing.serial, "revoked": list(listing.revoked)}), 201


@bp.get("/revocations")
def current_revocations():
    listing = membership.revocations()
    return jsonify(listing.to_wire() if listing is not None else None)

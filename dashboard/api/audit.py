"""GET /api/audit: the audit log as JSON, with the page's filters and paging (dashboard.services.audit)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from dashboard.auth.roles import operator_required
from dashboard.services import audit as service

bp = Blueprint("audit_api", __name__, url_prefix="/api")


@bp.get("/audit")
@operator_required
def audit():
    query = service.AuditQuery.from_args(request.args)
    found = service.search(query)
    return jsonify({"events": [ev.to_dict() | {"id": ev.id} for ev in found.events], "total": found.total,
                    "page": found.page, "pages": found.pages, "per_page": query.per_page,
                    "filters": query.filters()})

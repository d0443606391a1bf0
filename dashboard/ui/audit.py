"""The audit log page: filters (who, action, plant, experiment, time range), pages of 50, readable details,
consecutive logins folded (dashboard.services.audit)."""

from __future__ import annotations

from flask import render_template, request
from flask_login import login_required

from dashboard.services import audit as service
from dashboard.ui import bp
from shared.errors import ValidationError


@bp.get("/audit")
@login_required
def audit():
    try:
        query, problem = service.AuditQuery.from_args(request.args), None
    except ValidationError as exc:  # a bad filter: say which, show the unfiltered first page
        query, problem = service.AuditQuery(), exc
    found = service.search(query)
    return render_template("audit.html", rows=service.fold_logins(found.events), found=found, query=query,
                           filters=query.filters(), choices=service.choices(), problem=problem,
                           args=request.args), 400 if problem else 200

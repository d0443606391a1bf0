"""The audit log page: the latest 200 events, newest first."""

from __future__ import annotations

from flask import render_template
from flask_login import login_required

from dashboard.extensions import db
from dashboard.models import AuditEvent
from dashboard.ui import bp


@bp.get("/audit")
@login_required
def audit():
    events = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(200)).all()
    return render_template("audit.html", events=events)

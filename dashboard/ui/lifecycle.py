"""The plant page's lifecycle forms (dashboard.registry.lifecycle): its display name and site (operators), and
decommissioning it behind a confirmation page (admins). Errors come back as flash messages on the plant's page."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard.auth.roles import role_required
from dashboard.extensions import db
from dashboard.registry import lifecycle
from dashboard.ui import bp
from dashboard.ui.factories import plant_or_404
from shared.errors import FederatedLearningError

CONSEQUENCES = ("It leaves the cohorts of every future round, running experiments included, and an experiment "
                "that names it is refused at creation and at start.",
                "Its history is kept: rounds, results, releases, heartbeats and the audit trail.",
                "Its heartbeat token and any unused one-time enrolment token for its name are revoked at once: its "
                "heartbeats are refused, and its agent cannot bring it back by itself.",
                "Only a new one-time enrolment token for its name, made by an admin after now, lets it register "
                "again (audited as factory.recommissioned).")


@bp.post("/factories/<name>/decommission")
@role_required("admin")
def decommission_factory(name: str):
    plant = plant_or_404(name)
    if request.form.get("confirm") != "yes":  # the confirmation step, a page of its own (no JS needed)
        return render_template("confirm.html", title=f"Decommission plant {plant.name}?",
                               question="Retire this plant. What happens:", details=CONSEQUENCES, fields=None,
                               action_url=url_for("ui.decommission_factory", name=plant.name),
                               yes="Yes, decommission it", back_url=url_for("ui.factory", name=plant.name))
    try:
        lifecycle.decommission(plant.name, current_user.email)
    except FederatedLearningError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"{plant.name} is decommissioned: it takes part in no future round and its heartbeats are refused; "
              "its history is kept", "ok")
    return redirect(url_for("ui.factory", name=plant.name))


@bp.post("/factories/<name>/labels")
@role_required("operator")
def relabel_factory(name: str):
    plant = plant_or_404(name)
    try:
        labels = lifecycle.PlantLabels.from_wire({key: request.form.get(key, "") for key in lifecycle.LABEL_LIMITS})
        lifecycle.relabel(plant.name, labels, current_user.email)
    except FederatedLearningError as exc:
        db.session.rollback()
        for field, reason in getattr(exc, "problems", [(None, str(exc))]):
            flash(f"{field.replace('_', ' ')}: {reason}" if field else reason, "error")
    else:
        flash(f"{plant.name}: display name and site saved", "ok")
    return redirect(url_for("ui.factory", name=plant.name))

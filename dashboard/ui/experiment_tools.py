"""Deleting an experiment (admins: a confirmation page that says what goes and what stays) and comparing 2 to 4
experiments side by side (issue 27 item 6). The work is dashboard.services.experiment_deletion and
dashboard.services.compare, which the API calls too."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dashboard.auth.roles import role_required
from dashboard.services import compare as comparing
from dashboard.services import experiment_deletion
from dashboard.services.experiments import get_experiment
from dashboard.ui import bp
from shared.errors import ExperimentError, ValidationError


@bp.get("/experiments/<int:experiment_id>/delete")
@role_required("admin")
def experiment_delete_confirm(experiment_id: int):
    plan = experiment_deletion.plan(get_experiment(experiment_id))
    return render_template("experiment_delete.html", plan=plan), 409 if plan.refusal else 200


@bp.post("/experiments/<int:experiment_id>/delete")
@role_required("admin")
def experiment_delete(experiment_id: int):
    experiment = get_experiment(experiment_id)
    if request.form.get("confirm") != "yes":
        return redirect(url_for("ui.experiment_delete_confirm", experiment_id=experiment_id))
    try:
        done = experiment_deletion.delete_experiment(experiment, current_user.email)
    except ExperimentError as exc:
        flash(str(exc), "error")
        return redirect(url_for("ui.experiment", experiment_id=experiment_id))
    flash(f"experiment #{done.experiment_id} ({done.name}) deleted; its audit events are kept", "ok")
    return redirect(url_for("ui.experiments"))


@bp.get("/experiments/compare")
@login_required
def experiments_compare():
    raw = request.args.get("ids")
    if request.args.getlist("id"):  # the experiment list's check boxes: ?id=1&id=2
        raw = ",".join(request.args.getlist("id"))
    try:
        data = comparing.compare(comparing.parse_ids(raw))
    except ValidationError as exc:
        return render_template("compare.html", data=None, error=exc.message), 400
    return render_template("compare.html", data=data, error=None)

"""The experiments pages: the list with the new-experiment form, one experiment's page and its lifecycle buttons."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dashboard.auth.roles import role_required
from dashboard.extensions import db
from dashboard.services import experiments as service
from dashboard.ui import bp
from dashboard.ui.forms import FORM_FIELD_OF, ExperimentForm
from shared.errors import ExperimentError, ValidationError


@bp.route("/experiments", methods=["GET", "POST"])
@login_required
def experiments():
    form = ExperimentForm()
    status = 200
    if request.method == "POST":
        if not current_user.can("operator"):
            abort(403, description=f"Creating experiments needs the operator role; you have the "
                                   f"{current_user.role} role.")
        if form.validate_on_submit():
            try:
                experiment = service.create_experiment(form.to_body(), current_user.email,
                                                       start=bool(form.start_now.data))
                return redirect(url_for("ui.experiment", experiment_id=experiment.id))
            except ValidationError as exc:
                db.session.rollback()
                for field, message in exc.problems:  # all at once, each under its field
                    target = getattr(form, FORM_FIELD_OF.get(field, field), None) or form.name
                    target.errors = list(target.errors) + [message if target is not form.name or field == "name"
                                                           else f"{field}: {message}"]
        status = 400
    return render_template("experiments.html", experiments=service.recent_experiments(200), form=form), status


@bp.get("/experiments/<int:experiment_id>")
@login_required
def experiment(experiment_id: int):
    return render_template("experiment.html", e=service.experiment_detail(service.get_experiment(experiment_id)))


@bp.post("/experiments/<int:experiment_id>/<any(start, pause, resume, cancel):action>")
@role_required("operator")
def experiment_action(experiment_id: int, action: str):
    try:
        service.change_status(service.get_experiment(experiment_id), action, current_user.email)
    except ExperimentError as exc:
        flash(str(exc), "error")
    return redirect(url_for("ui.experiment", experiment_id=experiment_id))

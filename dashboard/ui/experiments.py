"""The experiments pages: the list with the new-experiment form, one experiment's page and its lifecycle buttons."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dashboard.auth.roles import role_required
from dashboard.extensions import db
from dashboard.services import experiment_states
from dashboard.services import experiments as service
from dashboard.services.trust import plant_facts
from dashboard.ui import bp
from dashboard.ui.forms import FORM_FIELD_OF, ExperimentForm
from shared.errors import ExperimentError, ValidationError


@bp.route("/experiments", methods=["GET", "POST"])
@login_required
def experiments():
    form = ExperimentForm()
    form.offer_plants(plant_facts())
    status, checked = 200, None
    if request.method == "POST":
        if not current_user.can("operator"):
            abort(403, description=f"Creating experiments needs the operator role; you have the "
                                   f"{current_user.role} role.")
        if request.form.get("intent") == "check" and form.validate_on_submit():  # the Check button without script
            checked = service.check_before_start(form.to_body())
            _show_errors(form, checked["errors"])
        elif form.validate_on_submit():
            try:
                experiment = service.create_experiment(form.to_body(), current_user.email,
                                                       start=bool(form.start_now.data))
                return redirect(url_for("ui.experiment", experiment_id=experiment.id))
            except ValidationError as exc:
                db.session.rollback()
                _show_errors(form, [{"field": f, "reason": r} for f, r in exc.problems])
        status = 400 if checked is None else 200
    archived = request.args.get("archived") == "1"
    return render_template("experiments.html", form=form, archived=archived, checked=checked,
                           experiments=service.list_rows(service.recent_experiments(200, archived=archived))), status


def _show_errors(form: ExperimentForm, errors: list[dict]) -> None:
    """Every problem at once, each under its field (one the form lacks under the name, prefixed with its field)."""
    for problem in errors:
        field, message = problem["field"], problem["reason"]
        target = getattr(form, FORM_FIELD_OF.get(field, field), None) or form.name
        target.errors = list(target.errors) + [message if target is not form.name or field == "name"
                                               else f"{field}: {message}"]


@bp.get("/experiments/<int:experiment_id>")
@login_required
def experiment(experiment_id: int):
    return render_template("experiment.html", e=service.experiment_detail(service.get_experiment(experiment_id)))


@bp.post("/experiments/<int:experiment_id>/<any(start, pause, resume, cancel):action>")
@role_required("operator")
def experiment_action(experiment_id: int, action: str):
    experiment = service.get_experiment(experiment_id)
    question = experiment_states.CONFIRM.get(action)
    if question and request.form.get("confirm") != "yes":  # the confirmation step, a page of its own (no JS needed)
        return render_template("confirm.html", title=f"{action.capitalize()} experiment #{experiment.id} "
                               f"({experiment.name})?", question=question, details=None, fields=None,
                               action_url=url_for("ui.experiment_action", experiment_id=experiment.id, action=action),
                               yes=f"Yes, {action} it", back_url=url_for("ui.experiment", experiment_id=experiment.id))
    try:
        service.change_status(experiment, action, current_user.email)
    except ExperimentError as exc:
        flash(str(exc), "error")
    return redirect(url_for("ui.experiment", experiment_id=experiment_id))


@bp.post("/experiments/<int:experiment_id>/<any(archive, unarchive):action>")
@role_required("operator")
def experiment_archive(experiment_id: int, action: str):
    try:
        experiment = service.set_archived(service.get_experiment(experiment_id), action == "archive",
                                          current_user.email)
    except ExperimentError as exc:
        flash(str(exc), "error")
    else:
        flash(f"experiment #{experiment.id} {'archived: it is hidden from the list, kept whole' if experiment.archived_at else 'is back in the list'}", "ok")
    return redirect(url_for("ui.experiment", experiment_id=experiment_id))

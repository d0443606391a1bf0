"""Pages of the plant floor (DESIGN §10): the Models page (per plant what it is assigned and what it reports, roll
back, pin; every release with its state), the release form on the experiment page and the confirmation of a
release or deploy (who switches, the validation F1 change per plant), and the alerts page (every plant's open
alerts, scored rows and drift, with their history). HTML only; the JSON is in dashboard.api.releases."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dashboard.auth.roles import role_required
from dashboard.extensions import db
from dashboard.services import deployment_views, deployments, models, plants
from dashboard.services.experiments import MAX_ID, get_experiment
from shared.errors import ExperimentError

bp = Blueprint("registry", __name__)
RECENT_ALERTS = 100  # rows of the alerts page's recent alerts, across plants
QUESTION = ("Release this model to the plants below? Those that switch change to it with their next heartbeat; "
            "the others keep the model they have.")


def _round_choice(raw: str | None) -> int | None:
    """The form's round: empty or "best" for the best round by validation F1, else a round number."""
    if raw in (None, "", "best"):
        return None
    if not raw.isdigit() or int(raw) > MAX_ID:
        raise ExperimentError(f"round must be a round number or 'best', got {raw[:20]!r}")
    return int(raw)


@bp.app_context_processor
def _pinned_plants() -> dict:
    """The release form's checkboxes leave a pinned plant unticked: releasing to it must be a choice."""
    return {"pinned_plants": lambda: {n for n, row in deployments.assignments().items() if row.pinned}}


def _plants_choice() -> list | None:
    """The form's ticked plants; None when the form has no plant checkboxes (the default: all but pinned)."""
    return request.form.getlist("plants") if request.form.get("plants_chosen") == "yes" else None


def _confirm(title: str, plan: deployments.DeployPreview, action_url: str, back_url: str, fields: dict):
    return render_template("confirm.html", title=title, question=QUESTION, details=plan.lines(),
                           fields=fields, yes="Yes, release it", action_url=action_url, back_url=back_url)


@bp.get("/releases")
@login_required
def releases_page():
    return render_template("registry.html", releases=models.registry(), plants=deployment_views.plant_models())


@bp.post("/experiments/<int:experiment_id>/release")
@role_required("operator")
def release(experiment_id: int):
    try:
        experiment, choice, named = get_experiment(experiment_id), _round_choice(request.form.get("round")), \
            _plants_choice()
        if request.form.get("confirm") != "yes":  # the confirmation step: who switches, and the metric change
            fields = {"round": request.form.get("round") or "best",
                      **({"plants_chosen": "yes", "plants": named} if named is not None else {})}
            return _confirm(f"Release a model of experiment #{experiment.id} ({experiment.name})?",
                            models.release_preview(experiment, choice, named),
                            url_for("registry.release", experiment_id=experiment.id),
                            url_for("ui.experiment", experiment_id=experiment.id), fields)
        row, plan = models.release(experiment, choice, current_user.email, named)
    except ExperimentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("ui.experiment", experiment_id=experiment_id))
    flash(f"released round {row.round_number} of experiment #{experiment_id} as model #{row.id}: "
          f"{', '.join(plan.switching) or 'no plant'} switch with their next heartbeat", "ok")
    return redirect(url_for("registry.releases_page"))


@bp.post("/releases/<int:release_id>/deploy")
@role_required("operator")
def deploy(release_id: int):
    try:
        row = models.get_release(release_id)
        named = deployments.chosen_plants(_plants_choice(), tuple(row.plants or ()))
        if request.form.get("confirm") != "yes":
            deployments.refuse_unreleasable(row.experiment)
            return _confirm(f"Deploy model #{row.id} (experiment #{row.experiment_id}, round {row.round_number})?",
                            deployments.preview(deployments.target_of(row), named),
                            url_for("registry.deploy", release_id=row.id), url_for("registry.releases_page"),
                            {"plants_chosen": "yes", "plants": list(named)} if named else {})
        plan = deployments.deploy(row, named, current_user.email)
    except ExperimentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"model #{row.id}: {', '.join(plan.switching) or 'no plant'} switch with their next heartbeat", "ok")
    return redirect(url_for("registry.releases_page"))


def _plant_action(change, done: str):
    try:
        result = change()
    except ExperimentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(done.format(**result) if isinstance(result, dict) else done.format(**result.to_dict()), "ok")
    return redirect(url_for("registry.releases_page"))


@bp.post("/factories/<name>/model/rollback")
@role_required("operator")
def rollback(name: str):
    return _plant_action(lambda: deployments.rollback(name, current_user.email),
                         "{plant} rolls back to model #{release_id} with its next heartbeat")


@bp.post("/factories/<name>/model/pin")
@role_required("operator")
def pin(name: str):
    return _plant_action(lambda: deployments.set_pinned(name, True, current_user.email),
                         "{plant} is pinned on model #{release_id}: a release to all plants holds it")


@bp.post("/factories/<name>/model/unpin")
@role_required("operator")
def unpin(name: str):
    return _plant_action(lambda: deployments.set_pinned(name, False, current_user.email),
                         "{plant} is no longer pinned (model #{release_id})")


@bp.post("/deployments/rollback")
@role_required("operator")
def rollback_all():
    return _plant_action(lambda: _counted(deployments.rollback_all(current_user.email)),
                         "rolled back {count} plant(s); pinned, held: {held}")


def _counted(result: dict) -> dict:
    return {"count": len(result["rolled_back"]), "held": ", ".join(result["held_pinned"]) or "none"}


@bp.get("/alerts")
@login_required
def alerts():
    by_alerts = plants.plants_by_open_alerts()
    history = plants.floor_history([p.id for p in by_alerts])
    series = [{"plant": p.name, "points": history.get(p.id, [])} for p in by_alerts if history.get(p.id)]
    recent = sorted(((p.name, a) for p in by_alerts for a in p.recent_alerts or () if isinstance(a, dict)),
                    key=lambda pa: pa[1].get("opened_at") or 0, reverse=True)[:RECENT_ALERTS]
    return render_template("alerts.html", plants=by_alerts, series=series, recent=recent,
                           total=sum(p.alerts_open or 0 for p in by_alerts),
                           opened=sum(p.alerts_opened or 0 for p in by_alerts))


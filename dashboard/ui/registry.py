"""Pages of the plant floor (DESIGN §10): the model registry (every release, the plants using it, roll back), the
release button's form on the experiment page, and the alerts page (every plant's open alerts, scored rows and
drift, with their history). HTML only; the JSON is in dashboard.api.releases."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dashboard.auth.roles import role_required
from dashboard.extensions import db
from dashboard.services import models, plants
from dashboard.services.experiment_states import CONFIRM
from dashboard.services.experiments import MAX_ID, get_experiment
from shared.errors import ExperimentError

bp = Blueprint("registry", __name__)
RECENT_ALERTS = 100  # rows of the alerts page's recent alerts, across plants


def _round_choice(raw: str | None) -> int | None:
    """The form's round: empty or "best" for the best round by validation F1, else a round number."""
    if raw in (None, "", "best"):
        return None
    if not raw.isdigit() or int(raw) > MAX_ID:
        raise ExperimentError(f"round must be a round number or 'best', got {raw[:20]!r}")
    return int(raw)


@bp.get("/releases")
@login_required
def releases_page():
    return render_template("registry.html", releases=models.registry())


@bp.post("/experiments/<int:experiment_id>/release")
@role_required("operator")
def release(experiment_id: int):
    try:
        experiment, choice = get_experiment(experiment_id), _round_choice(request.form.get("round"))
        if request.form.get("confirm") != "yes":  # the confirmation step: what switches, and the metric change
            return render_template("confirm.html", title=f"Release a model of experiment #{experiment.id} "
                                   f"({experiment.name})?", question=CONFIRM["release"],
                                   details=models.release_preview(experiment, choice),
                                   fields={"round": request.form.get("round") or "best"}, yes="Yes, release it",
                                   action_url=url_for("registry.release", experiment_id=experiment.id),
                                   back_url=url_for("ui.experiment", experiment_id=experiment.id))
        row = models.release(experiment, choice, current_user.email)
    except ExperimentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("ui.experiment", experiment_id=experiment_id))
    flash(f"released round {row.round_number} of experiment #{experiment_id} as model #{row.id}: its plants "
          "download it with their next heartbeat", "ok")
    return redirect(url_for("registry.releases_page"))


@bp.post("/releases/<int:release_id>/activate")
@role_required("operator")
def activate(release_id: int):
    try:
        row = models.activate(release_id, current_user.email)
    except ExperimentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"model #{row.id} (experiment #{row.experiment_id}, round {row.round_number}) is active again: its "
              "plants switch back with their next heartbeat", "ok")
    return redirect(url_for("registry.releases_page"))


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


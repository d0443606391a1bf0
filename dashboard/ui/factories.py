"""The plants' pages: the factories overview (the index), one plant's page, and its connectivity check."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dashboard.auth.roles import role_required
from dashboard.models import Factory
from dashboard.services import plants
from dashboard.ui import bp
from dashboard.ui.sparkline import sparkline


def plant_or_404(name: str) -> Factory:
    plant = plants.plant_named(name)
    if plant is None:
        abort(404)
    return plant


@bp.get("/")
@login_required
def index():
    factories = plants.all_plants()
    cpu = plants.recent_cpu(factories)
    return render_template("factories.html", factories=factories, dashboard_url=request.host_url.rstrip("/"),
                           spark={f.id: sparkline(cpu.get(f.id, [])) for f in factories},
                           experiments_of=plants.experiments_by_plant(factories),
                           counts=plants.status_counts(factories))


@bp.get("/factories/<name>")
@login_required
def factory(name: str):
    plant = plant_or_404(name)
    activity = plants.plant_activity(plant)
    return render_template("factory.html", f=plant, results=activity.results, dropouts=activity.dropouts,
                           reputation=activity.reputation)


@bp.post("/factories/<name>/check")
@role_required("operator")
def check_factory(name: str):
    """Connectivity check: log into the plant's datasite with the stored orchestrator account."""
    check = plants.check_connectivity(plant_or_404(name), current_user.email)
    flash(f"{name}: {check.outcome}: {check.message}", "ok" if check.reachable else "error")
    return redirect(url_for("ui.factory", name=name))

"""The operators page (admins): every operator and its role, and changing a role (DESIGN §8)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from dashboard.auth.roles import role_required
from dashboard.extensions import db
from dashboard.models import Operator
from dashboard.models.operators import ROLES
from dashboard.services.operators import RoleChangeRefused, set_role
from dashboard.ui.forms import RoleForm

bp = Blueprint("operators", __name__)


@bp.get("/operators")
@role_required("admin")
def operators():
    rows = db.session.scalars(db.select(Operator).order_by(Operator.email)).all()
    return render_template("operators.html", operators=rows, roles=ROLES)


@bp.post("/operators/<int:operator_id>/role")
@role_required("admin")
def change_role(operator_id: int):
    form = RoleForm()
    operator = db.session.get(Operator, operator_id) if 0 < operator_id < 2 ** 63 else None
    if operator is None:
        abort(404)
    if not form.validate_on_submit():
        abort(400, description="choose one of " + ", ".join(ROLES))
    try:
        set_role(operator, form.role.data, current_user.email)
        flash(f"{operator.email} is now {operator.role}", "ok")
    except RoleChangeRefused as exc:
        flash(str(exc), "error")
    return redirect(url_for("operators.operators"))

"""The operators page (admins): every operator, its role and state; creating one, changing a role, disabling or
enabling, resetting a password (DESIGN §8). The work is dashboard.services.operators, shared with the CLI and
the API; a password generated here is shown once, after the redirect (a reload shows it no more). It waits for
that redirect in the session encrypted with CREDENTIALS_KEY: Flask's session cookie is signed, not encrypted, and
would otherwise carry it readable (review)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user

from dashboard.auth.roles import role_required
from dashboard.auth.security import decrypt, encrypt
from dashboard.models.operators import ROLES
from dashboard.services import operators as service
from dashboard.services.operators import RoleChangeRefused
from dashboard.ui.forms import NewOperatorForm, RoleForm
from shared.errors import ValidationError

bp = Blueprint("operators", __name__)


def _page(form: NewOperatorForm, status: int = 200):
    shown = session.pop("new_password", None)
    new_password = {"email": shown["email"], "password": decrypt(shown["password"])} if shown else None
    response = current_app.make_response((render_template(
        "operators.html", operators=service.all_operators(), roles=ROLES, form=form, new_password=new_password),
        status))
    if new_password:
        response.headers["Cache-Control"] = "no-store"  # the page holds a password: no copy in any cache
    return response


def _show_once(email: str, password: str) -> None:
    session["new_password"] = {"email": email, "password": encrypt(password)}


@bp.get("/operators")
@role_required("admin")
def operators():
    return _page(NewOperatorForm())


@bp.post("/operators")
@role_required("admin")
def create():
    form = NewOperatorForm()
    if form.validate_on_submit():
        try:
            operator, generated = service.create_operator(form.email.data, form.role.data,
                                                          form.password.data or None, current_user.email)
        except ValidationError as exc:
            for field, message in exc.problems:  # all at once, each under its field
                target = getattr(form, field, form.email)
                target.errors = list(target.errors) + [message]
        else:
            flash(f"{operator.email} created ({operator.role})", "ok")
            if generated:
                _show_once(operator.email, generated)
            return redirect(url_for("operators.operators"))
    return _page(form, 400)


@bp.post("/operators/<int:operator_id>/role")
@role_required("admin")
def change_role(operator_id: int):
    form = RoleForm()
    operator = service.get_operator(operator_id)
    if not form.validate_on_submit():
        abort(400, description="choose one of " + ", ".join(ROLES))
    try:
        service.set_role(operator, form.role.data, current_user.email, by=current_user)
        flash(f"{operator.email} is now {operator.role}", "ok")
    except RoleChangeRefused as exc:
        flash(str(exc), "error")
    return redirect(url_for("operators.operators"))


def _set_disabled(operator_id: int, disabled: bool):
    operator = service.get_operator(operator_id)
    try:
        service.set_disabled(operator, disabled, current_user.email, by=current_user)
        flash(f"{operator.email} is {'disabled: it cannot log in and its API tokens are refused' if disabled else 'enabled'}",
              "ok")
    except RoleChangeRefused as exc:
        flash(str(exc), "error")
    return redirect(url_for("operators.operators"))


@bp.post("/operators/<int:operator_id>/disable")
@role_required("admin")
def disable(operator_id: int):
    return _set_disabled(operator_id, True)


@bp.post("/operators/<int:operator_id>/enable")
@role_required("admin")
def enable(operator_id: int):
    return _set_disabled(operator_id, False)


@bp.post("/operators/<int:operator_id>/password")
@role_required("admin")
def reset_password(operator_id: int):
    operator = service.get_operator(operator_id)
    if request.form.get("confirm") != "yes":  # the confirmation step, a page of its own
        return render_template("confirm.html", title=f"Reset the password of {operator.email}?",
                               question="A new password is generated and shown once; the current one stops working. "
                                        "Their sessions, API tokens and role stay as they are.", details=None,
                               fields=None, yes="Yes, reset it", back_url=url_for("operators.operators"),
                               action_url=url_for("operators.reset_password", operator_id=operator.id))
    _show_once(operator.email, service.reset_password(operator, current_user.email))
    flash(f"the password of {operator.email} is reset", "ok")
    return redirect(url_for("operators.operators"))

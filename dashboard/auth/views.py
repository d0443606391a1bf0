"""The "auth" blueprint: the login and logout pages, the API tokens page and the change of one's own password
(HTML only)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from dashboard.auth import accounts
from dashboard.auth.forms import LoginForm, PasswordForm, TokenForm
from dashboard.extensions import limiter, login_limit, login_manager
from dashboard.auth.security import safe_next

bp = Blueprint("auth", __name__)
login_manager.login_view = "auth.login"  # where @login_required sends a visitor who is not logged in


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])  # password guessing
def login():
    form = LoginForm()
    if form.validate_on_submit():
        operator = accounts.password_login(form.email.data, form.password.data)
        if operator is not None and operator.disabled:
            form.password.errors.append("this account is disabled: ask an admin to enable it")
        elif operator is not None:
            login_user(operator)
            return redirect(safe_next(request.args.get("next")) or url_for("ui.index"))  # no open redirect
        else:
            form.password.errors.append("wrong e-mail or password")
    return render_template("login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit(login_limit, methods=["POST"])  # guessing the current password from a stolen session
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        if form.new.data == form.current.data:
            form.new.errors.append("the new password is the current one")
        elif accounts.change_password(current_user, form.current.data, form.new.data):
            flash("your password is changed: use it at your next login", "ok")
            return redirect(url_for("auth.password"))
        else:
            form.current.errors.append("wrong current password")
    return render_template("password.html", form=form), 400 if form.errors else 200


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    form = TokenForm()
    if form.validate_on_submit():
        # shown once, after the redirect (a reload must not create another)
        session["new_token"] = accounts.issue_token(current_user, form.name.data.strip())
        return redirect(url_for("auth.tokens"))
    return render_template("tokens.html", form=form, tokens=accounts.tokens_visible_to(current_user),
                           new_token=session.pop("new_token", None))


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    row = accounts.revoke_token(current_user, token_id)
    if row is None:
        abort(404)
    flash(f"token {row.name!r} revoked", "ok")
    return redirect(url_for("auth.tokens"))

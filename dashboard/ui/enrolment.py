"""Pages for plant identity (DESIGN §4): one-time enrolment tokens, and approving a plant's re-keying."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, session, url_for
from flask_login import current_user

from dashboard.registry import enrolment
from dashboard.auth.roles import role_required
from dashboard.extensions import db
from dashboard.models.base import isoformat, utcnow
from dashboard.ui.forms import EnrolmentForm
from shared.errors import ConfigurationError, ValidationError
from shared.identity import fingerprint

bp = Blueprint("enrolment", __name__)


@bp.app_template_filter("key_fingerprint")
def key_fingerprint(public_hex: str | None) -> str:
    return fingerprint(public_hex) or "–"


@bp.route("/enrolment-tokens", methods=["GET", "POST"])
@role_required("admin")
def enrolment_tokens():
    form = EnrolmentForm()
    status = 200
    if form.validate_on_submit():
        hours = form.expires_in_hours.data
        try:
            row, token = enrolment.issue_enrolment_token(form.factory_name.data.strip(),
                                                        24 if hours is None else hours, current_user.email)
        except ValidationError as exc:
            db.session.rollback()
            field = form.expires_in_hours if exc.field == "expires_in_hours" else form.factory_name
            field.errors = list(field.errors) + [exc.message]
            status = 400
        else:
            db.session.commit()
            # shown once, after the redirect (a reload must not make another)
            session["new_enrolment_token"] = {"token": token, "factory_name": row.factory_name,
                                              "expires_at": isoformat(row.expires_at)}
            return redirect(url_for("enrolment.enrolment_tokens"))
    elif form.is_submitted():
        status = 400
    return render_template("enrolment.html", form=form, tokens=enrolment.enrolment_tokens(),
                           new_token=session.pop("new_enrolment_token", None), now=utcnow()), status


@bp.post("/factories/<name>/rekeys/<int:rekey_id>/<any(approve, discard):decision>")
@role_required("admin")
def decide_rekey(name: str, rekey_id: int, decision: str):
    decide = enrolment.approve_rekey if decision == "approve" else enrolment.discard_rekey
    try:
        rekey = decide(name, current_user.email, rekey_id)
    except ConfigurationError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        if decision == "approve":
            flash(f"re-keying of {name} approved ({enrolment.describe_rekey(rekey)}): the plant's next registration "
                  "signed by that key is accepted", "ok")
        else:
            flash(f"re-keying request #{rekey.id} of {name} discarded", "ok")
    return redirect(url_for("ui.factory", name=name))

"""Server-rendered pages: login, factories, experiments (HTML only; the JSON API is in dashboard.api)."""

from __future__ import annotations

import logging
import os
import threading

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, FloatField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, NumberRange, Optional

from dashboard.api.experiments import change_status, create_experiment, experiment_detail, get_experiment
from dashboard.experiment_config import ValidationError
from dashboard.extensions import db, login_manager
from dashboard.models import AuditEvent, Experiment, Factory, Operator, record_audit
from dashboard.models.base import utcnow
from shared.errors import ExperimentError

log = logging.getLogger(__name__)
bp = Blueprint("ui", __name__)
login_manager.login_view = "ui.login"
_start_lock = threading.Lock()


@login_manager.user_loader
def load_operator(operator_id: str):
    return db.session.get(Operator, int(operator_id))


def register_lazy_start(app) -> None:
    """With `flask run` (no explicit entry point), the first request does the one-time start-up: the first
    operator from the environment and, with DASHBOARD_SCHEDULER=inline, the scheduler in this process."""

    @app.before_request
    def once():
        if app.config.get("_started"):
            return
        with _start_lock:
            if app.config.get("_started"):
                return
            app.config["_started"] = True
            from dashboard.bootstrap import bootstrap

            bootstrap(app)
            if (app.config["DASHBOARD_SCHEDULER"] == "inline" and not app.testing
                    and os.environ.get("WERKZEUG_RUN_MAIN", "true") == "true"):
                from dashboard.orchestration.scheduler import start_scheduler

                start_scheduler(app)


class LoginForm(FlaskForm):
    email = StringField("E-mail", validators=[DataRequired(), Email(check_deliverability=False)])
    password = PasswordField("Password", validators=[DataRequired()])


class ExperimentForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired()])
    model_type = SelectField("Model", choices=[("cnn", "CNN (rows)"), ("lstm", "LSTM (windows)"),
                                               ("hybrid", "CNN-LSTM (windows)")])
    algorithm = SelectField("Algorithm", choices=[("fedavg", "FedAvg"), ("fedprox", "FedProx")])
    rounds = IntegerField("Rounds", default=5, validators=[NumberRange(1, 1000)])
    local_epochs = IntegerField("Local epochs", default=2, validators=[NumberRange(1, 100)])
    batch_size = IntegerField("Batch size", default=64, validators=[NumberRange(1, 65536)])
    learning_rate = FloatField("Learning rate", default=0.005)
    sequence_length = IntegerField("Sequence length (LSTM, CNN-LSTM)", default=10, validators=[Optional()])
    min_factories = IntegerField("Minimum plants per round", default=2, validators=[NumberRange(1, 10000)])
    factories = StringField("Plants (comma-separated, empty = all online)")
    start_now = BooleanField("Start now", default=True)


def ago(value) -> str:
    if value is None:
        return "never"
    seconds = int((utcnow() - value).total_seconds())
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


@bp.app_template_filter("ago")
def ago_filter(value):
    return ago(value)


@bp.app_template_filter("num")
def num_filter(value, digits: int = 3):
    return "–" if value is None else f"{value:.{digits}f}"


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        operator = db.session.scalar(db.select(Operator).filter_by(email=form.email.data))
        if operator and operator.check_password(form.password.data):
            login_user(operator)
            record_audit(operator.email, "operator.login")
            db.session.commit()
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("ui.index"))
        form.password.errors.append("wrong e-mail or password")
    return render_template("login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("ui.login"))


@bp.get("/")
@login_required
def index():
    factories = db.session.scalars(db.select(Factory).order_by(Factory.name)).all()
    return render_template("factories.html", factories=factories,
                           dashboard_url=request.host_url.rstrip("/"))


@bp.route("/experiments", methods=["GET", "POST"])
@login_required
def experiments():
    form = ExperimentForm()
    if form.validate_on_submit():
        body = {k: form.data[k] for k in ("name", "model_type", "algorithm", "rounds", "local_epochs", "batch_size",
                                          "learning_rate", "min_factories")}
        if form.sequence_length.data:
            body["sequence_length"] = form.sequence_length.data
        names = [n.strip() for n in (form.factories.data or "").split(",") if n.strip()]
        body["factories"] = names or "all"
        try:
            experiment = create_experiment(body, current_user.email)
            if form.start_now.data:
                change_status(experiment, "start", current_user.email)
            return redirect(url_for("ui.experiment", experiment_id=experiment.id))
        except ValidationError as exc:
            db.session.rollback()
            target = getattr(form, exc.field.split(".")[0], None)
            (target.errors if target is not None else form.name.errors).append(exc.message)
    rows = db.session.scalars(db.select(Experiment).order_by(Experiment.id.desc())).all()
    return render_template("experiments.html", experiments=rows, form=form)


@bp.get("/experiments/<int:experiment_id>")
@login_required
def experiment(experiment_id: int):
    return render_template("experiment.html", e=experiment_detail(get_experiment(experiment_id)))


@bp.post("/experiments/<int:experiment_id>/<any(start, pause, resume, cancel):action>")
@login_required
def experiment_action(experiment_id: int, action: str):
    try:
        change_status(get_experiment(experiment_id), action, current_user.email)
    except ExperimentError as exc:
        flash(str(exc))
    return redirect(url_for("ui.experiment", experiment_id=experiment_id))


@bp.get("/audit")
@login_required
def audit():
    events = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(200)).all()
    return render_template("audit.html", events=events)

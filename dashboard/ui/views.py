"""Server-rendered pages: login, factories, experiments (HTML only; the JSON API is in dashboard.api)."""

from __future__ import annotations

import logging
import os
import threading

from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, FloatField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Optional

from dashboard.api.experiments import change_status, create_experiment, experiment_detail, get_experiment
from shared.errors import ValidationError
from dashboard.extensions import db, limiter, login_limit, login_manager
from dashboard.models import (ApiToken, AuditEvent, Experiment, Factory, Heartbeat, Operator, Round,
                              RoundResult, record_audit)
from dashboard.models.base import utcnow
from dashboard.security import role_required, safe_next
from dashboard.ui.sparkline import sparkline
from shared.enums import Algorithm, ModelType, PrivacyMechanism, PrivacyMode, RobustMethod, ServerOptimizer
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


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired()], description="e.g. the script that will use it")


class LoginForm(FlaskForm):
    email = StringField("E-mail", validators=[DataRequired(), Email(check_deliverability=False)])
    password = PasswordField("Password", validators=[DataRequired()])


MODEL_LABELS = {"cnn": "CNN (one row at a time)", "lstm": "LSTM (windows of cycles)",
                "hybrid": "CNN-LSTM (windows of cycles)"}
MECHANISM_LABELS = {"gaussian": "Gaussian (RDP accounting)", "laplace": "Laplace (pure epsilon per round)"}


class ExperimentForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired()], description="A short name operators will recognise.")
    model_type = SelectField("Model", choices=[(m, MODEL_LABELS.get(m, m)) for m in ModelType.values()],
                             description="Window models need plants with a group or time column.")
    algorithm = SelectField("Algorithm", choices=[(a, a) for a in Algorithm.values()],
                            description="FedAvg weights plants by samples; FedProx adds a proximal term (mu).")
    server_optimizer = SelectField("Server optimiser", choices=[(o, o) for o in ServerOptimizer.values()])
    rounds = IntegerField("Rounds", default=5, validators=[Optional()], description="1 to 1000.")
    local_epochs = IntegerField("Local epochs", default=2, validators=[Optional()],
                                description="Passes over each plant's training split per round.")
    batch_size = IntegerField("Batch size", default=64, validators=[Optional()])
    learning_rate = FloatField("Learning rate", default=0.005, validators=[Optional()], description="Adam, per plant.")
    sequence_length = IntegerField("Sequence length", default=10, validators=[Optional()],
                                   description="Cycles per window (LSTM, CNN-LSTM).")
    hidden_size = IntegerField("Hidden units", default=64, validators=[Optional()],
                               description="Width of the model's hidden layer (4 to 2048).")
    mu = FloatField("FedProx mu", default=0.01, validators=[Optional()])
    feddyn_alpha = FloatField("FedDyn alpha", default=0.01, validators=[Optional()])
    server_lr = FloatField("Server learning rate", validators=[Optional()],
                           description="Step size of FedAdam / FedYogi / FedAvgM; empty: 0.01 for FedAdam and "
                                       "FedYogi, 1.0 for FedAvgM.")
    factories = StringField("Plants", description="Comma-separated names; empty for all online plants.")
    min_factories = IntegerField("Minimum plants per round", default=2, validators=[Optional()],
                                 description="A round waits until this many plants are online.")
    sampling_rate = FloatField("Sampling rate", default=1.0, validators=[Optional()],
                               description="Each round, each plant takes part with this probability (Poisson "
                                           "sampling); 1: every plant every round. Under central DP (Gaussian) "
                                           "it lowers epsilon.")
    secure_aggregation = BooleanField("Secure aggregation", default=False)
    privacy_mode = SelectField("Differential privacy", choices=[(m, m) for m in PrivacyMode.values()],
                               description="dp_sgd: each plant trains with Opacus (per-sample clipping and noise) and "
                                           "accounts its own epsilon; central: plants clip their update, the "
                                           "dashboard adds Gaussian noise.")
    privacy_epsilon = FloatField("Privacy budget (epsilon)", validators=[Optional()],
                                 description="Stops the experiment before a round would exceed it; empty: no limit.")
    privacy_mechanism = SelectField("Central DP mechanism",
                                    choices=[(m, MECHANISM_LABELS.get(m, m)) for m in PrivacyMechanism.values()],
                                    default="gaussian", validate_choice=False,  # the API validates it
                                    description="Laplace: plants clip in L1, each round spends the epsilon below.")
    privacy_round_epsilon = FloatField("Epsilon per round (Laplace)", default=1.0, validators=[Optional()])
    privacy_noise = FloatField("Noise multiplier", validators=[Optional()],
                               description="Empty with a privacy budget: derived from it over the rounds (central: "
                                           "by the dashboard; dp_sgd: by each plant). Empty without one: 1.0.")
    privacy_clip = FloatField("Clipping norm", default=1.0, validators=[Optional()],
                              description="dp_sgd: per-sample gradient norm; central: plant update norm.")
    robust_method = SelectField("Robust aggregation", choices=[(m, m) for m in RobustMethod.values()],
                                description="Median, trimmed mean and Krum resist malicious plants; every method "
                                            "also tracks each plant's reputation from its update norms.")
    robust_max_norm = FloatField("Norm bound", validators=[Optional()],
                                 description="norm_bound: the largest update norm kept; empty: the round's median "
                                             "(needed under secure aggregation).")
    start_now = BooleanField("Start now", default=True)

    def to_body(self) -> dict:
        body = {"name": self.name.data or "", "model_type": self.model_type.data, "algorithm": self.algorithm.data,
                "server_optimizer": self.server_optimizer.data,
                "secure_aggregation": bool(self.secure_aggregation.data),
                "privacy": {"mode": self.privacy_mode.data}, "robust": {"method": self.robust_method.data}}
        if self.robust_method.data == "norm_bound" and self.robust_max_norm.data is not None:
            body["robust"]["max_norm"] = self.robust_max_norm.data
        if self.privacy_mode.data != "none":
            body["privacy"].update({k: v for k, v in (("epsilon", self.privacy_epsilon.data),
                                                      ("noise_multiplier", self.privacy_noise.data),
                                                      ("max_grad_norm", self.privacy_clip.data)) if v is not None})
            if self.privacy_mode.data == "central" and self.privacy_mechanism.data == "laplace":
                body["privacy"]["mechanism"] = "laplace"
                if self.privacy_round_epsilon.data is not None:
                    body["privacy"]["round_epsilon"] = self.privacy_round_epsilon.data
        for key in ("rounds", "local_epochs", "batch_size", "learning_rate", "sequence_length", "hidden_size", "mu",
                    "feddyn_alpha",
                    "server_lr", "min_factories", "sampling_rate"):
            value = getattr(self, key).data
            if value is not None:
                body[key] = value
        names = [n.strip() for n in (self.factories.data or "").split(",") if n.strip()]
        body["factories"] = names or "all"
        return body


FORM_FIELD_OF = {"privacy.mode": "privacy_mode", "robust.method": "robust_method", "privacy": "privacy_mode",
                 "robust": "robust_method", "privacy.epsilon": "privacy_epsilon",
                 "privacy.noise_multiplier": "privacy_noise", "privacy.max_grad_norm": "privacy_clip",
                 "robust.max_norm": "robust_max_norm", "privacy.mechanism": "privacy_mechanism",
                 "privacy.round_epsilon": "privacy_round_epsilon"}


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
    if isinstance(value, bool) or not isinstance(value, (int, float)):  # None, missing (Undefined), text
        return "–"
    return f"{value:.{digits}f}"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])  # password guessing
def login():
    form = LoginForm()
    if form.validate_on_submit():
        operator = db.session.scalar(db.select(Operator).filter_by(email=form.email.data))
        if operator and operator.check_password(form.password.data):
            login_user(operator)
            record_audit(operator.email, "operator.login")
            db.session.commit()
            return redirect(safe_next(request.args.get("next")) or url_for("ui.index"))  # no open redirect
        form.password.errors.append("wrong e-mail or password")
    return render_template("login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("ui.login"))


def _recent_cpu(factories: list[Factory], points: int = 30) -> dict[int, list[float | None]]:
    """The last heartbeats' CPU of every factory, in one query (no N+1 on a page of 200 plants)."""
    if not factories:
        return {}
    longest = max(f.heartbeat_interval for f in factories)
    since = utcnow() - timedelta(seconds=longest * points * 1.5)
    rows = db.session.execute(db.select(Heartbeat.factory_id, Heartbeat.cpu_usage)
                              .where(Heartbeat.received_at >= since).order_by(Heartbeat.id)).all()
    series: dict[int, list[float | None]] = {}
    for factory_id, cpu in rows:
        series.setdefault(factory_id, []).append(cpu)
    return {k: v[-points:] for k, v in series.items()}


def _experiments_by_factory(factories: list[Factory]) -> dict[str, list[Experiment]]:
    active = db.session.scalars(db.select(Experiment).where(Experiment.status.in_(["running", "paused"]))).all()
    out: dict[str, list[Experiment]] = {}
    for e in active:
        names = [f.name for f in factories] if e.config["factories"] == "all" else e.config["factories"]
        for name in names:
            out.setdefault(name, []).append(e)
    return out


@bp.get("/")
@login_required
def index():
    factories = db.session.scalars(db.select(Factory).order_by(Factory.name)).all()
    cpu = _recent_cpu(factories)
    counts = {s: sum(f.status == s for f in factories) for s in ("online", "busy", "offline", "error")}
    return render_template("factories.html", factories=factories, dashboard_url=request.host_url.rstrip("/"),
                           spark={f.id: sparkline(cpu.get(f.id, [])) for f in factories},
                           experiments_of=_experiments_by_factory(factories), counts=counts)


def _factory_or_404(name: str) -> Factory:
    plant = db.session.scalar(db.select(Factory).filter_by(name=name))
    if plant is None:
        abort(404)
    return plant


@bp.get("/factories/<name>")
@login_required
def factory(name: str):
    plant = _factory_or_404(name)
    beats = db.session.scalars(db.select(Heartbeat).filter_by(factory_id=plant.id)
                               .order_by(Heartbeat.id.desc()).limit(60)).all()
    results = db.session.execute(
        db.select(RoundResult, Round, Experiment).join(Round, RoundResult.round_id == Round.id)
        .join(Experiment, Round.experiment_id == Experiment.id).where(RoundResult.factory_name == name)
        .order_by(Round.id.desc()).limit(100)).all()
    dropped = db.session.execute(db.select(Round, Experiment).join(Experiment)
                                 .order_by(Round.id.desc()).limit(500)).all()
    dropouts = [(r, e) for r, e in dropped if name in (r.dropouts or {})][:50]
    reputation = [(e, r, (r.aggregation or {}).get("reputation", {}).get(name)) for r, e in dropped
                  if name in ((r.aggregation or {}).get("reputation") or {})][:50]
    return render_template("factory.html", f=plant, beats=beats, results=results, dropouts=dropouts,
                           reputation=reputation,
                           spark=sparkline([b.cpu_usage for b in reversed(beats)], width=300, height=40))


@bp.post("/factories/<name>/check")
@role_required("operator")
def check_factory(name: str):
    """Connectivity check: log into the plant's datasite with the stored orchestrator account."""
    from dashboard.orchestration.syft_clients import check_login, transport_of
    from dashboard.plant_addresses import AddressRefused, check_plant_host, check_plant_port
    from dashboard.security import decrypt

    plant = _factory_or_404(name)
    try:  # never a port scanner: the registration's address rules, checked again (DNS may have changed)
        check_plant_host(plant.hostname, current_app.config["ALLOW_PRIVATE_PLANTS"])
        check_plant_port(plant.port)
    except AddressRefused as exc:
        outcome, message = "refused", str(exc)
    else:
        outcome, message = check_login(plant.name, plant.hostname, plant.port, plant.orchestrator_email,
                                       decrypt(plant.orchestrator_password_enc), transport_of(plant))
    record_audit(current_user.email, "factory.connectivity_check", name, outcome=outcome, message=message)
    db.session.commit()
    flash(f"{name}: {outcome}: {message}", "ok" if outcome == "reachable" else "error")
    return redirect(url_for("ui.factory", name=name))


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    form = TokenForm()
    if form.validate_on_submit():
        row, token = ApiToken.issue(current_user, form.name.data.strip())
        db.session.add(row)
        record_audit(current_user.email, "token.created", form.name.data.strip())
        db.session.commit()
        session["new_token"] = token  # shown once, after the redirect (a reload must not create another)
        return redirect(url_for("ui.tokens"))
    new_token = session.pop("new_token", None)
    query = db.select(ApiToken).order_by(ApiToken.id.desc())
    if not current_user.can("admin"):  # a token acts with its operator's role; admins see and revoke them all
        query = query.filter_by(operator_id=current_user.id)
    rows = db.session.scalars(query).all()
    return render_template("tokens.html", form=form, tokens=rows, new_token=new_token)


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    row = db.session.get(ApiToken, token_id) if 0 < token_id < 2 ** 63 else None
    if row is None or (row.operator_id != current_user.id and not current_user.can("admin")):
        abort(404)
    row.revoked = True
    record_audit(current_user.email, "token.revoked", row.name)
    db.session.commit()
    flash(f"token {row.name!r} revoked", "ok")
    return redirect(url_for("ui.tokens"))


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
                experiment = create_experiment(form.to_body(), current_user.email)
                if form.start_now.data:
                    change_status(experiment, "start", current_user.email)
                return redirect(url_for("ui.experiment", experiment_id=experiment.id))
            except ValidationError as exc:
                db.session.rollback()
                target = getattr(form, FORM_FIELD_OF.get(exc.field, exc.field), None) or form.name
                target.errors = list(target.errors) + [exc.message]
        status = 400
    rows = db.session.scalars(db.select(Experiment).order_by(Experiment.id.desc()).limit(200)).all()
    return render_template("experiments.html", experiments=rows, form=form), status


@bp.get("/experiments/<int:experiment_id>")
@login_required
def experiment(experiment_id: int):
    return render_template("experiment.html", e=experiment_detail(get_experiment(experiment_id)))


@bp.post("/experiments/<int:experiment_id>/<any(start, pause, resume, cancel):action>")
@role_required("operator")
def experiment_action(experiment_id: int, action: str):
    try:
        change_status(get_experiment(experiment_id), action, current_user.email)
    except ExperimentError as exc:
        flash(str(exc), "error")
    return redirect(url_for("ui.experiment", experiment_id=experiment_id))


@bp.get("/audit")
@login_required
def audit():
    events = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(200)).all()
    return render_template("audit.html", events=events)


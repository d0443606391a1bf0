"""The FactoryFL dashboard: create_app() wires the application and does nothing else (STYLE 13)."""

from __future__ import annotations

import logging
import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.env import env_str

log = logging.getLogger(__name__)


def create_app(overrides: dict | None = None) -> Flask:
    from dashboard import cli, ui
    from dashboard.lifecycle import startup
    from dashboard.registry import heartbeats
    from dashboard.api import enrolment, errors, experiments, factories, openapi
    from dashboard.auth import views as auth_pages
    from dashboard.config import Config, refuse_insecure_production
    from dashboard.extensions import csrf, db, limiter, login_manager, migrate
    from dashboard.auth.security import register_response_headers
    from dashboard.ui import enrolment as enrolment_pages
    from dashboard.ui import operators as operator_pages

    app = Flask(__name__, instance_path=env_str("DASHBOARD_INSTANCE_PATH") or os.path.abspath("instance"),
                template_folder="ui/templates", static_folder="ui/static")
    app.config.from_object(Config(app.instance_path, **(overrides or {})))
    refuse_insecure_production(app.config)
    if app.config["PROXY_FIX"]:  # client address, scheme and host from the proxies' X-Forwarded-* headers
        hops = app.config["PROXY_FIX"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    app.register_blueprint(factories.bp)
    app.register_blueprint(experiments.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(auth_pages.bp)  # login, logout, API tokens
    app.register_blueprint(ui.bp)  # the factories and experiments pages
    app.register_blueprint(operator_pages.bp)  # operators and their roles (admins)
    app.register_blueprint(enrolment.bp)  # plant identity: one-time enrolment tokens (API) ...
    app.register_blueprint(enrolment_pages.bp)  # ... and their page, re-key approvals
    from dashboard.api import audit as audit_api
    from dashboard.api import metrics
    from dashboard.api import releases as releases_api
    from dashboard.webhooks import sender as webhook
    from dashboard.ui import registry as registry_pages

    from dashboard.api import membership as membership_api

    app.register_blueprint(membership_api.bp)  # the administrator's certificates and revocation lists, relayed
    app.register_blueprint(releases_api.bp)  # the plant floor (DESIGN §10): released models, their bundles ...
    app.register_blueprint(registry_pages.bp)  # ... the model registry and alerts pages
    app.register_blueprint(audit_api.bp)  # GET /api/audit
    from dashboard.api import experiment_tools, operators as operators_api

    app.register_blueprint(operators_api.bp)  # operators (admins), as the Operators page
    app.register_blueprint(experiment_tools.bp)  # deleting and comparing experiments
    metrics.init_app(app)  # GET /metrics (Prometheus)
    webhook.init_app(app)  # DASHBOARD_ALERT_WEBHOOK
    heartbeats.init_app(app)  # heartbeats buffered per process, written in batches
    errors.register_error_handlers(app)
    register_response_headers(app)
    cli.register(app)
    startup.register_lazy_start(app)  # bootstrap and the inline scheduler, on the first request
    return app

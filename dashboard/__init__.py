"""The FactoryFL dashboard: create_app() wires the application and does nothing else (STYLE 13)."""

from __future__ import annotations

import logging
import os

from flask import Flask

log = logging.getLogger(__name__)


def create_app(overrides: dict | None = None) -> Flask:
    from dashboard import cli
    from dashboard.api import errors, experiments, factories, openapi
    from dashboard.config import Config
    from dashboard.extensions import csrf, db, limiter, login_manager, migrate
    from dashboard.ui import views

    app = Flask(__name__, instance_path=os.environ.get("DASHBOARD_INSTANCE_PATH") or os.path.abspath("instance"),
                template_folder="ui/templates", static_folder="ui/static")
    app.config.from_object(Config(app.instance_path, **(overrides or {})))
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    app.register_blueprint(factories.bp)
    app.register_blueprint(experiments.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(views.bp)
    errors.register_error_handlers(app)
    cli.register(app)
    views.register_lazy_start(app)
    return app

"""A dashboard process's one-time start-up (STYLE 13): the first operator and the configured plants
(dashboard.lifecycle.bootstrap) and, with DASHBOARD_SCHEDULER=inline, the scheduler in this process.

`python -m dashboard` and `python -m dashboard.lifecycle.scheduler` start up explicitly; `register_lazy_start` covers
`flask run` and WSGI servers pointed at create_app (no explicit entry point): the first request does it, once
per process, and never in tests or in Flask's reloader parent process."""

from __future__ import annotations

import os
import threading

from flask import Flask

_start_lock = threading.Lock()


def register_lazy_start(app: Flask) -> None:
    @app.before_request
    def start_once():
        if app.config.get("_started"):
            return
        with _start_lock:
            if app.config.get("_started"):
                return
            app.config["_started"] = True
            start(app)


def start(app: Flask, scheduler: bool | None = None) -> None:
    """Bootstrap, then the scheduler: `scheduler=True` in the scheduler's own process; None: as
    DASHBOARD_SCHEDULER says (inline: here, never in tests or in Flask's reloader parent). The one caller of
    start_scheduler."""
    from dashboard.lifecycle.bootstrap import bootstrap

    bootstrap(app)
    if scheduler is None:
        scheduler = (app.config["DASHBOARD_SCHEDULER"] == "inline" and not app.testing
                     and os.environ.get("WERKZEUG_RUN_MAIN", "true") == "true")
    if scheduler:
        from dashboard.orchestration.scheduler import start_scheduler

        start_scheduler(app)

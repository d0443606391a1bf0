"""The scheduler: APScheduler jobs with fixed ids, run inside an app context, started in exactly one
process: the web process with DASHBOARD_SCHEDULER=inline, or its own process for production,
`python -m dashboard.lifecycle.scheduler` (the gunicorn workers then run with DASHBOARD_SCHEDULER=off).
Either way it is started by dashboard.lifecycle.startup.start, and only there."""

from __future__ import annotations

import logging
import threading

from apscheduler.schedulers.background import BackgroundScheduler

from dashboard.orchestration.engine import RoundEngine
from dashboard.orchestration.liveness import mark_offline, prune_heartbeats

log = logging.getLogger(__name__)
_started: BackgroundScheduler | None = None
_lock = threading.Lock()


def build_scheduler(app) -> BackgroundScheduler:
    engine = RoundEngine(app)
    scheduler = BackgroundScheduler(daemon=True, job_defaults={"coalesce": True, "max_instances": 1,
                                                               "misfire_grace_time": 30})

    def in_context(fn):
        def job():
            with app.app_context():
                fn()
        return job

    tick = app.config["SCHEDULER_TICK"]
    scheduler.add_job(in_context(lambda: mark_offline(app.config["OFFLINE_AFTER_MISSED"])), "interval",
                      seconds=max(1.0, min(5.0, app.config["HEARTBEAT_INTERVAL"] / 2)), id="liveness")
    scheduler.add_job(in_context(prune_heartbeats), "interval", minutes=10, id="prune_heartbeats")
    scheduler.add_job(in_context(engine.tick), "interval", seconds=tick, id="rounds")
    scheduler.engine = engine
    return scheduler


def start_scheduler(app) -> BackgroundScheduler:
    """Start the scheduler once in this process; later calls return the running one."""
    global _started
    with _lock:
        if _started is None:
            _started = build_scheduler(app)
            _started.start()
            log.info("scheduler started (owner %s)", _started.engine.owner)
        return _started


def stop_scheduler() -> None:
    global _started
    with _lock:
        if _started is not None:
            _started.shutdown(wait=False)
            _started = None

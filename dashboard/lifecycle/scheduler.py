"""The scheduler's own process for production: `python -m dashboard.lifecycle.scheduler` runs the one-time
start-up with the scheduler (dashboard.orchestration.scheduler), until SIGTERM or SIGINT. The gunicorn workers then
run with DASHBOARD_SCHEDULER=off."""

from __future__ import annotations

import logging
import signal
import threading

from dashboard.orchestration import scheduler


def main() -> None:
    """The scheduler process: the one-time start-up with the scheduler, until SIGTERM or SIGINT."""
    from dashboard import create_app
    from dashboard.config import InsecureConfiguration
    from dashboard.lifecycle.startup import start

    # force: a library imported above (Opacus) may already have configured the root logger
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    try:
        app = create_app()
    except InsecureConfiguration:  # each problem is already logged on its own line
        raise SystemExit(2) from None
    with app.app_context():
        start(app, scheduler=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    scheduler.stop_scheduler()


if __name__ == "__main__":
    main()

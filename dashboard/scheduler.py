"""The dashboard's one scheduler process for production: `python -m dashboard.scheduler`
(the gunicorn workers run with DASHBOARD_SCHEDULER=off)."""

from __future__ import annotations

import logging
import signal
import threading

from dashboard import create_app
from dashboard.lifecycle.bootstrap import bootstrap
from dashboard.config import InsecureConfiguration
from dashboard.orchestration.scheduler import start_scheduler, stop_scheduler


def main() -> None:
    # force: a library imported above (Opacus) may already have configured the root logger
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    try:
        app = create_app()
    except InsecureConfiguration:  # each problem is already logged on its own line
        raise SystemExit(2) from None
    with app.app_context():
        bootstrap(app)
    start_scheduler(app)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    stop_scheduler()


if __name__ == "__main__":
    main()

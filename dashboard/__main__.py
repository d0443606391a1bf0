"""`python -m dashboard [--host H] [--port P]`: the embedded dashboard (development and the demo):
builds or upgrades the schema, does the one-time start-up and runs the scheduler in this process."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from dashboard import create_app
from dashboard.lifecycle.startup import start
from dashboard.config import InsecureConfiguration


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dashboard")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    try:
        app = create_app()
    except InsecureConfiguration:  # each problem is already logged on its own line
        raise SystemExit(2) from None
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()  # Alembic configures logging from alembic.ini: ours is set up after it
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            force=True)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: max instances" while a round runs
        start(app)  # the first operator, configured plants, and the scheduler when it runs inline
    app.config["_started"] = True
    # SIGTERM ends the process like Ctrl-C does, so atexit runs: the buffered heartbeats are written
    # (dashboard.registry.heartbeats); Python's default for SIGTERM is to die at once
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()

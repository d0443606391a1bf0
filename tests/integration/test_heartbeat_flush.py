"""Every accepted heartbeat is stored when gunicorn is stopped with SIGTERM, although its workers buffer them
(dashboard.registry.heartbeats, issue #17): they write their buffers as they exit."""

import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

from factoryfl_testing.harness import ROOT, free_port, stop
from tests.integration.test_topology import production_env

pytestmark = pytest.mark.integration
PLANTS = 3
SEED = """
from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import Factory
from dashboard.models.operators import token_digest
from dashboard.auth.security import encrypt
app = create_app()
with app.app_context():
    db.session.execute(db.insert(Factory), [
        {"name": f"plant_{i}", "hostname": "localhost", "port": 8080, "device": "cpu", "status": "online",
         "capabilities": {}, "orchestrator_email": "orchestrator@factoryfl.org",
         "orchestrator_password_enc": encrypt("x"), "heartbeat_token_hash": token_digest(f"token-{i}"),
         "heartbeat_interval": 30.0, "current_load": {}, "active_experiments": []} for i in range(%d)])
    db.session.commit()
""" % PLANTS


def wait_listening(server, port: int, log_file, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/api/openapi.json", timeout=5)
            return
        except requests.RequestException:
            if server.poll() is not None:
                raise AssertionError(log_file.read_text()[-2000:]) from None
            time.sleep(0.2)
    raise AssertionError("gunicorn did not start")


def test_sigterm_stores_every_heartbeat_the_workers_accepted(tmp_path):
    database = tmp_path / "registry.sqlite"
    env = {**production_env(tmp_path, f"sqlite:///{database}"),
           "DASHBOARD_HEARTBEAT_FLUSH_INTERVAL": "3600"}  # no periodic write: only the shutdown can store them
    subprocess.run([sys.executable, "-m", "flask", "--app", "dashboard", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=120)
    subprocess.run([sys.executable, "-c", SEED], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "a")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                               "--worker-class", "gthread", "--threads", "2", "dashboard:create_app()"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(server, port, tmp_path / "gunicorn.log")
        accepted = 0
        for i in range(150):  # a new connection each time: the kernel spreads them over both workers
            plant = i % PLANTS
            answer = requests.post(f"http://127.0.0.1:{port}/heartbeat", timeout=10,
                                   headers={"Authorization": f"Bearer token-{plant}"},
                                   json={"factory_name": f"plant_{plant}", "status": "online"})
            accepted += answer.status_code == 200
        count = "select count(*) from heartbeats"
        assert sqlite3.connect(database).execute(count).fetchone()[0] == 0  # all still in the workers' buffers
        assert stop(server, signal.SIGTERM) == 0
        assert accepted == 150
        assert sqlite3.connect(database).execute(count).fetchone()[0] == accepted
        statuses = sqlite3.connect(database).execute("select count(*) from factories where last_heartbeat is not null")
        assert statuses.fetchone()[0] == PLANTS
    finally:
        stop(server)

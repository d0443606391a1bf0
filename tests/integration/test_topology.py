"""The production topology as plain processes (no Docker engine here): PostgreSQL, gunicorn with 3 web
workers that never run rounds, separate scheduler processes, three plant agents."""

import os
import secrets
import subprocess
import sys
import time

import pytest
import requests
from cryptography.fernet import Fernet

from tests.integration.conftest import start_agents
from factoryfl_testing.harness import ADMIN, API_TOKEN, ENROLL, ROOT, Dashboard, stop
from factoryfl_testing.postgres import PostgresCluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    cluster = PostgresCluster(tmp_path_factory.mktemp("pg")).start()
    yield cluster
    cluster.stop()


def production_env(workdir, database_url) -> dict:
    return {**os.environ, "DATABASE_URL": database_url, "DASHBOARD_SCHEDULER": "off",
            "DASHBOARD_INSTANCE_PATH": str(workdir / "instance"), "SECRET_KEY": secrets.token_hex(32),
            "DASHBOARD_ALLOW_PRIVATE_PLANTS": "true", "DASHBOARD_ENV": "production",
            "CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "FACTORY_ENROLLMENT_TOKEN": ENROLL, "DASHBOARD_ADMIN_EMAIL": ADMIN[0],
            "DASHBOARD_ADMIN_PASSWORD": ADMIN[1], "DASHBOARD_API_TOKEN": API_TOKEN,
            "DASHBOARD_HEARTBEAT_INTERVAL": "1", "DASHBOARD_SCHEDULER_TICK": "0.5", "PYTHONUNBUFFERED": "1"}


class Gunicorn(Dashboard):
    """The same Dashboard helper, served by gunicorn with 3 workers against Postgres."""

    def start(self):
        env = self.env()
        subprocess.run([sys.executable, "-m", "flask", "--app", "dashboard", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=120)
        log = open(self.workdir / "gunicorn.log", "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
                                      "--workers", "3", "--timeout", "120", "dashboard:create_app()"],
                                     cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.wait_for(lambda: self._up(), 60, "gunicorn")
        return self

    def _up(self) -> bool:
        try:
            return requests.get(f"{self.url}/factories", headers=self.headers, timeout=1).status_code == 200
        except requests.RequestException:
            return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres):
    workdir = tmp_path_factory.mktemp("topology")
    env = production_env(workdir, postgres.url)
    web = Gunicorn(workdir, extra_env=env)
    web.workdir.mkdir(parents=True, exist_ok=True)
    schedulers, agents = [], []

    def start_scheduler(tag: str):
        log = open(workdir / f"scheduler-{tag}.log", "a")
        proc = subprocess.Popen([sys.executable, "-m", "dashboard.lifecycle.scheduler"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        schedulers.append(proc)
        return proc

    try:  # whatever fails while starting, everything started so far is stopped by PID
        web.start()
        start_scheduler("one")
        # plain rounds: plants that trust the dashboard (it refuses them over plants that verify membership)
        agents = start_agents(workdir, web, [(f"topo_{x}", ["--simulate", p, "--rows", "1500", "--seed", str(i),
                                                            "--trust-dashboard"])
                                             for i, (x, p) in enumerate((("a", "default"), ("b", "heavy_duty"),
                                                                         ("c", "hot_climate")))])
        for a in agents:
            web.wait_status(a.name, ("online",))
        yield web, start_scheduler, workdir
    finally:
        for a in agents:
            a.stop()
        for proc in schedulers:
            stop(proc, timeout=20)
        if web.proc:
            stop(web.proc)


def test_gunicorn_workers_and_one_scheduler_complete_an_experiment_on_postgres(stack):
    web, _, workdir = stack
    body = {"name": "topology", "rounds": 2, "local_epochs": 1, "min_factories": 3, "personalization": "none"}
    eid = web.api("POST", "/experiments", json=body).json()["id"]
    web.api("POST", f"/experiments/{eid}/start")
    e = web.wait_experiment(eid, timeout=300)
    assert [r["number"] for r in e["rounds"]] == [1, 2]
    assert sorted(e["rounds"][0]["participants"]) == ["topo_a", "topo_b", "topo_c"]
    assert "round engine" not in (workdir / "gunicorn.log").read_text()  # the web workers never ran a round


def test_two_schedulers_by_mistake_still_run_each_round_once(stack, postgres):
    web, start_scheduler, workdir = stack
    start_scheduler("two")
    time.sleep(3)
    body = {"name": "two schedulers", "rounds": 4, "local_epochs": 1, "min_factories": 3, "personalization": "none"}
    eid = web.api("POST", "/experiments", json=body).json()["id"]
    web.api("POST", f"/experiments/{eid}/start")
    e = web.wait_experiment(eid, timeout=400)
    assert [r["number"] for r in e["rounds"]] == [1, 2, 3, 4]
    assert e["attempts"] == []  # no round started twice, none aborted
    rows = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d", "factoryfl",
                           "-tAc", f"select number, count(*) from rounds where experiment_id={eid} group by number"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert sorted(rows) == ["1|1", "2|1", "3|1", "4|1"]
    logs = "".join((workdir / f"scheduler-{t}.log").read_text() for t in ("one", "two"))
    assert logs.count(f"experiment {eid} round") >= 4

"""Real processes on loopback for integration tests and benchmarks: a dashboard and factory agents, stopped by
PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]  # the repository
ENROLL = "integration-enroll-token"
API_TOKEN = "integration-api-token-0123456789"
ADMIN = ("ops@factoryfl.org", "integration-password")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, sig=signal.SIGINT, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def maps_torch(pid: int) -> bool:
    """Whether a process or any of its descendants (a plant: its agent and whatever it started) has torch loaded,
    read from outside: one of torch's shared libraries (libtorch*.so) in /proc/<pid>/maps (Linux)."""
    import psutil

    try:
        root = psutil.Process(pid)
        pids = [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:
        return False
    for one in pids:
        try:
            if "libtorch" in Path(f"/proc/{one}/maps").read_text():
                return True
        except OSError:  # gone meanwhile
            continue
    return False


@dataclass
class Dashboard:
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    extra_env: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {API_TOKEN}"}

    @property
    def ca_dir(self) -> Path:
        """The dashboard's federation CA (dashboard.registry.federation_ca): `ca.crt` verifies every datasite."""
        return self.workdir / "instance" / "federation_ca"

    def env(self) -> dict:
        env = {**os.environ, "DASHBOARD_INSTANCE_PATH": str(self.workdir / "instance"),
               "FACTORY_ENROLLMENT_TOKEN": ENROLL, "DASHBOARD_API_TOKEN": API_TOKEN,
               "DASHBOARD_ADMIN_EMAIL": ADMIN[0], "DASHBOARD_ADMIN_PASSWORD": ADMIN[1],
               "DASHBOARD_HEARTBEAT_INTERVAL": "1", "DASHBOARD_SCHEDULER_TICK": "0.5",
               "DASHBOARD_ROUND_TIMEOUT": "120", "DASHBOARD_LEASE_SECONDS": "8", "PYTHONUNBUFFERED": "1",
               "DASHBOARD_ALLOW_PRIVATE_PLANTS": "true"}  # the plants listen on loopback
        env["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{self.workdir / 'dashboard.sqlite'}"
        env.update(self.extra_env)
        return env

    def start(self) -> "Dashboard":
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "dashboard.log", "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "dashboard", "--port", str(self.port)], cwd=ROOT,
                                     env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                requests.get(f"{self.url}/factories", timeout=1)
                return self
            except requests.RequestException:
                if self.proc.poll() is not None:
                    raise RuntimeError((self.workdir / "dashboard.log").read_text()[-3000:])
                time.sleep(0.3)
        raise RuntimeError("dashboard did not start")

    def factories(self) -> dict[str, dict]:
        return {f["factory_name"]: f
                for f in requests.get(f"{self.url}/factories", headers=self.headers, timeout=5).json()}

    def wait_for(self, predicate, timeout: float = 120, what: str = "condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}")

    def wait_status(self, name: str, statuses: tuple[str, ...], timeout: float = 120) -> dict:
        return self.wait_for(lambda: (f := self.factories().get(name)) and f["status"] in statuses and f,
                             timeout, f"{name} to be {'/'.join(statuses)}")

    def api(self, method: str, path: str, **kwargs):
        return requests.request(method, f"{self.url}/api{path}", headers=self.headers, timeout=30, **kwargs)

    def experiment(self, experiment_id: int) -> dict:
        return self.api("GET", f"/experiments/{experiment_id}").json()

    def wait_experiment(self, experiment_id: int, statuses=("completed",), timeout: float = 300) -> dict:
        return self.wait_for(lambda: (e := self.experiment(experiment_id))["status"] in statuses and e, timeout,
                             f"experiment {experiment_id} to be {statuses}")


@dataclass
class Agent:
    name: str
    workdir: Path
    dashboard_url: str
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    reset: bool = True
    membership_answer: dict | None = None  # the dashboard's answer to the certificate upload (wait_ready)

    def federation(self):
        """The tests' federation administrator, one per work folder, outside the dashboard's instance folder."""
        from factoryfl_testing.membership import administrator

        return administrator(self.workdir / "federation")

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state" / self.name

    @property
    def log_file(self) -> Path:
        return self.workdir / "logs" / f"{self.name}.log"

    def command(self) -> list[str]:
        cmd = [sys.executable, str(ROOT / "factory_agent" / "FactoryDatasite.py"), "--factory_name", self.name,
               "--hostname", "localhost", "--port", str(self.port), "--dashboard_url", self.dashboard_url,
               "--enrollment-token", ENROLL, "--state-dir", str(self.state_dir),
               "--log-dir", str(self.workdir / "logs"), "--heartbeat-interval", "1", "--approval-interval", "0.5",
               # the federation administrator's key (factoryfl_testing.membership), pinned as a data owner would;
               # a test's own args come later and win (e.g. --trust-dashboard)
               "--federation-key", str(self.federation().public_key_path), *self.args]
        return cmd + (["--reset"] if self.reset else [])

    def start(self) -> "Agent":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_offset = len(self.log())  # a restart appends to the same log: look only at what follows
        self.out = open(self.workdir / f"{self.name}.console", "a")
        self.proc = subprocess.Popen(self.command(), cwd=self.workdir, stdout=self.out, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def console(self) -> str:
        path = self.workdir / f"{self.name}.console"
        return path.read_text() if path.exists() else ""

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if "ready in" in self.log()[self.log_offset:]:
                self.admit()
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent {self.name} exited {self.proc.returncode}: {self.console()[-3000:]}")
            time.sleep(0.3)
        raise RuntimeError(f"agent {self.name} not ready: {self.log()[-2000:]}")

    def admit(self) -> None:
        """As the federation's administrator: admit this plant from the request it wrote and upload the certificate
        to the dashboard, which relays it (a plant that did not register keeps the refusal in membership_answer)."""
        from factory_agent.plant.state import MEMBERSHIP_REQUEST_FILE
        from shared.membership.admin import load_request

        request = self.state_dir / MEMBERSHIP_REQUEST_FILE
        if not request.exists():
            return
        cert, _ = self.federation().admit(load_request(request))
        try:
            answer = requests.post(f"{self.dashboard_url}/api/membership/certificates", json=cert.to_wire(),
                                   headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
            self.membership_answer = {"status": answer.status_code, "body": answer.text[:500]}
        except requests.RequestException as exc:
            self.membership_answer = {"status": None, "body": str(exc)}

    def stop(self, sig=signal.SIGINT) -> int:
        return stop(self.proc, sig) if self.proc else 0

    def login(self, email: str, password: str):
        """A PySyft client of this plant's datasite over HTTPS, verified as the dashboard verifies it: against the
        federation CA (the copy the plant received when it registered), for the host it registered (localhost)."""
        from factory_agent.plant.state import PlantState
        from shared.syft_tls import login

        return login("localhost", self.port, email, password, ca_file=PlantState(self.state_dir).tls_ca_path())


def run_predict(bundle: Path, data: Path, out: Path):
    """`python -m shared.predict` as a plant engineer runs it; returns the scores as a data frame."""
    import pandas as pd

    result = subprocess.run([sys.executable, "-m", "shared.predict", "--model", str(bundle), "--data", str(data),
                             "--output", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return pd.read_csv(out)

"""The agent's start-up sequence and serve loop (DESIGN §3).

load data -> detect device -> launch datasite -> replace root password -> create accounts -> upload
data -> status endpoint -> approval policy -> register -> heartbeats -> serve until SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from datetime import datetime, timezone

import psutil

from factory_agent import AGENT_VERSION
from factory_agent.approval import ApprovalPolicy
from factory_agent.config import AgentConfig
from factory_agent.dashboard_client import (DashboardClient, Heartbeat, Registration, RegistrationAnswer,
                                            UnknownFactory)
from factory_agent.datasite import Datasite
from factory_agent.plant.policy import load_policy
from factory_agent.plant.state import BUSY_FILE_ENV, BYZANTINE_ENV, LOG_FILE_ENV, STATE_DIR_ENV, PlantState
from shared.data.csv_loader import PlantData, load_csv, load_frame
from shared.data.simulator import FAILURE_MODE_COLUMNS, GROUP_COLUMN, LABEL_COLUMN, TIME_COLUMN, simulate
from shared.enums import DataType, FactoryStatus, ModelType
from shared.errors import CommunicationError, FederatedLearningError

log = logging.getLogger(__name__)
MAX_BACKOFF = 60.0


class StepFailed(FederatedLearningError):
    def __init__(self, step: str, cause: Exception):
        super().__init__(f"step '{step}' failed: {cause}")
        self.step = step
        self.cause = cause


def detect_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_plant_data(config: AgentConfig) -> PlantData:
    if config.data:
        return load_csv(config.data, config.label_column, config.drop_columns, config.group_column,
                        config.time_column, seed=config.seed)
    frame = simulate(config.simulate, rows=config.rows, seed=config.seed)
    return load_frame(frame, LABEL_COLUMN, FAILURE_MODE_COLUMNS, GROUP_COLUMN, TIME_COLUMN, seed=config.seed)


def current_load() -> dict:
    return {"cpu_usage": psutil.cpu_percent(interval=None), "memory_usage": psutil.virtual_memory().percent,
            "disk_usage": psutil.disk_usage(os.getcwd()).percent}


class Agent:
    def __init__(self, config: AgentConfig):
        self.config = config
        self.state = PlantState(config.state_dir)
        self.datasite = Datasite(config, self.state)
        self.client = DashboardClient(config.dashboard_url, config.enrollment_token)
        self.stop_event = threading.Event()
        self.registration: Registration | None = None
        self.answer: RegistrationAnswer | None = None
        self.approval: ApprovalPolicy | None = None
        self.heartbeat_thread: threading.Thread | None = None
        self.started = time.monotonic()
        self.busy_file = self.state.directory / "busy"

    def _step(self, name: str, fn, *args):
        log.info("step: %s", name)
        try:
            return fn(*args)
        except FederatedLearningError as exc:
            raise StepFailed(name, exc) from exc
        except Exception as exc:  # a library error (PySyft, requests, OS): report it as this step's failure
            log.debug("step %s failed", name, exc_info=True)
            raise StepFailed(name, RuntimeError(f"{type(exc).__name__}: {exc}")) from exc

    # --- start-up -----------------------------------------------------------------------------
    def start(self) -> None:
        c = self.config
        data = self._step("load data", load_plant_data, c)
        log.info("data: %d rows, %d features, splits %s, failure rate %.2f %%", data.num_samples,
                 len(data.schema.feature_names), data.split_counts(), 100 * data.positive_rate())
        policy = self._step("load the plant's policy", load_policy, c.state_dir, c.policy_overrides)
        log.info("policy: %s", policy.describe())
        self.state.save_policy(policy)
        self.state.save_profile(c.factory_name, data.schema.feature_names)
        device = self._step("detect device", detect_device)
        log.info("device: %s", device)
        os.environ[BUSY_FILE_ENV] = str(self.busy_file.resolve())  # inherited by the datasite's process
        os.environ[STATE_DIR_ENV] = str(self.state.directory.resolve())  # PlantState inside the datasite
        os.environ[LOG_FILE_ENV] = str(c.log_file.resolve())  # the datasite's refusals land in the agent's log
        if c.byzantine:
            os.environ[BYZANTINE_ENV] = c.byzantine
            log.warning("!!! BYZANTINE MODE %r: this plant will send corrupted updates ON PURPOSE (tests and "
                        "demos only); it says so in its registration !!!", c.byzantine)
        else:
            os.environ.pop(BYZANTINE_ENV, None)
        self.busy_file.unlink(missing_ok=True)
        self._write_status(FactoryStatus.ONLINE.value)
        self._step("launch datasite", self.datasite.launch)
        log.info("datasite %s serving on %s:%d", c.factory_name, c.hostname, c.port)
        creds = self._step("secure accounts", self.datasite.secure_accounts)
        fingerprint = self._step("upload data", self.datasite.upload, data)
        log.info("dataset uploaded (fingerprint %s)", fingerprint)
        self._step("publish factory.status endpoint", self.datasite.publish_status_endpoint)
        self.approval = ApprovalPolicy(self.datasite.root, c.approval_interval, creds.orchestrator_email)
        self.approval.start()
        sequence_ready = bool(c.group_column or c.time_column or not c.data)
        self.registration = Registration(
            factory_name=c.factory_name, factory_hostname=c.public_hostname or self.datasite.login_host,
            factory_port=c.port,
            device=device, status=FactoryStatus.ONLINE.value,
            capabilities={
                "supported_models": ModelType.values() if sequence_ready else [ModelType.CNN.value],
                "data_type": (DataType.TIME_SERIES if sequence_ready else DataType.TABULAR).value,
                "num_samples": data.num_samples, "features": data.schema.feature_names,
                "schema": data.schema.to_dict(), "splits": data.split_counts(),
                "source": c.data and os.path.basename(c.data) or f"simulator:{c.simulate}",
                **({"byzantine": c.byzantine} if c.byzantine else {})},
            orchestrator={"email": creds.orchestrator_email, "password": creds.orchestrator_password},
            secagg_public_key=self.state.secagg_public_key(), agent_version=AGENT_VERSION, policy=policy.to_dict())
        self._step("register with dashboard", self._register_first)
        self.heartbeat_thread = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        self.heartbeat_thread.start()
        log.info("ready in %.1f s: serving until stopped (Ctrl-C)", time.monotonic() - self.started)

    def _register_first(self) -> None:
        """Register now; an unreachable dashboard is not fatal (the heartbeat loop keeps trying), a
        dashboard that refuses us is."""
        try:
            self._register()
        except CommunicationError as exc:
            log.warning("%s; serving anyway and retrying in the background", exc)

    def _register(self) -> None:
        self.answer = self.client.register(self.registration)
        log.info("registered with %s as factory #%d (heartbeat every %.0f s)", self.config.dashboard_url,
                 self.answer.factory_id, self.answer.heartbeat_interval)

    # --- heartbeats ---------------------------------------------------------------------------
    def _status(self) -> tuple[str, list]:
        if self.busy_file.exists():
            try:
                return FactoryStatus.BUSY.value, [json.loads(self.busy_file.read_text()).get("experiment")]
            except (OSError, ValueError):
                return FactoryStatus.BUSY.value, []
        return FactoryStatus.ONLINE.value, []

    def _write_status(self, status: str, load: dict | None = None) -> None:
        body = {"factory_name": self.config.factory_name, "status": status, "agent_version": AGENT_VERSION,
                "uptime_s": round(time.monotonic() - self.started, 1), "current_load": load or current_load(),
                "timestamp": datetime.now(timezone.utc).isoformat()}
        tmp = self.state.status_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(self.state.status_path())

    def send_heartbeat(self, status: str | None = None) -> None:
        if self.answer is None:
            self._register()
        busy_status, experiments = self._status()
        status = status or busy_status
        load = current_load()  # once per beat: psutil's CPU figure is the usage since its previous call
        self._write_status(status, load)
        beat = Heartbeat(factory_name=self.config.factory_name, timestamp=datetime.now(timezone.utc).isoformat(),
                         status=status, current_load=load,
                         active_experiments=[e for e in experiments if e is not None],
                         pending_code_requests=self.approval.reported() if self.approval else [])
        try:
            self.client.heartbeat(self.answer.heartbeat_token, beat)
        except UnknownFactory as exc:
            log.warning("%s: registering again", exc)
            self._register()
            self.client.heartbeat(self.answer.heartbeat_token, beat)

    def _heartbeat_loop(self) -> None:
        interval = self.answer.heartbeat_interval if self.answer else self.config.heartbeat_interval
        backoff, outage_since = interval, None
        while True:
            try:
                self.send_heartbeat()
                if outage_since is not None:
                    log.info("dashboard reachable again after %.0f s", time.monotonic() - outage_since)
                outage_since, backoff = None, interval
                interval = self.answer.heartbeat_interval
                wait = interval
            except FederatedLearningError as exc:
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.warning("heartbeat failed: %s; retrying with backoff (logged once per outage)", exc)
                wait = backoff
                backoff = min(backoff * 2, MAX_BACKOFF)
            if self.stop_event.wait(wait):
                return

    # --- shutdown -----------------------------------------------------------------------------
    def stop(self) -> None:
        self.stop_event.set()
        if self.heartbeat_thread is not None:
            self.heartbeat_thread.join(timeout=5)
        if self.answer is not None:
            try:
                self.send_heartbeat(FactoryStatus.STOPPING.value)
                log.info("sent the last heartbeat (stopping)")
            except FederatedLearningError as exc:
                log.warning("could not send the last heartbeat: %s", exc)
        if self.approval is not None:
            self.approval.stop()
        log.info("landing the datasite")
        self.datasite.land()
        log.info("stopped cleanly")


def run(config: AgentConfig) -> int:
    agent = Agent(config)
    stop_signal = threading.Event()

    def on_signal(signum, _frame):
        log.info("received %s: shutting down", signal.Signals(signum).name)
        stop_signal.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        agent.start()
        while not stop_signal.wait(1.0):
            pass
        return 0
    finally:
        agent.stop()

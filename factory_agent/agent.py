"""The agent's start-up sequence and serve loop (DESIGN §3).

load data -> detect device -> TLS certificate -> launch datasite (HTTPS) -> replace root password -> create
accounts -> upload data -> status endpoint -> approval policy -> register (the federation CA signs the datasite's
certificate) -> heartbeats (and a new certificate when a third of its validity is left) -> serve until
SIGINT/SIGTERM.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import signal
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import psutil

from factory_agent import AGENT_VERSION
from factory_agent.approval import ApprovalPolicy
from factory_agent.config import AgentConfig
from factory_agent.dashboard_client import (DashboardClient, Heartbeat, RekeyPending, Registration,
                                            RegistrationAnswer, UnknownFactory)
from factory_agent.datasite import Datasite
from factory_agent.device import detect_device
from factory_agent.plant.membership import enrol
from factory_agent.plant.policy import load_policy
from factory_agent.registration import load_plant_data, registration_of
from factory_agent.plant.state import (BUSY_FILE_ENV, BYZANTINE_ENV, LOG_FILE_ENV, STATE_DIR_ENV, PlantState, busy_file,
                                      policy_file)
from factory_agent.tls import PlantTLS, common_name, san_names
from shared.enums import FactoryStatus
from shared.errors import CommunicationError, ConfigurationError, FederatedLearningError
from shared.identity import fingerprint as key_fingerprint

log = logging.getLogger(__name__)
MAX_BACKOFF = 60.0
RENEWAL_RETRY_S = 300.0  # after a failed certificate renewal (the current certificate is still good for days)


class StepFailed(FederatedLearningError):
    def __init__(self, step: str, cause: Exception):
        super().__init__(f"step '{step}' failed: {cause}")
        self.step = step
        self.cause = cause


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def current_load() -> dict:
    return {"cpu_usage": psutil.cpu_percent(interval=None), "memory_usage": psutil.virtual_memory().percent,
            "disk_usage": psutil.disk_usage(os.getcwd()).percent}


class Agent:
    def __init__(self, config: AgentConfig):
        self.config = config
        self.state = PlantState(config.state_dir)
        # the name the dashboard reaches the datasite by: its certificate's SAN; --dev_mode serves plain HTTP
        self.server_name = config.public_hostname or Datasite.login_host_of(config)
        self.tls = None if config.dev_mode else PlantTLS(self.state, config.factory_name, self.server_name)
        self.datasite = Datasite(config, self.state, self.tls)
        self.next_renewal = 0.0
        self.client = DashboardClient(config.dashboard_url, config.enrollment_token, self.state.identity_private_key())
        self.rekey_reported = False  # the dashboard holds our registration for an operator: said once
        self.stop_event = threading.Event()
        self.registration: Registration | None = None
        self.answer: RegistrationAnswer | None = None
        self.approval: ApprovalPolicy | None = None
        self.heartbeat_thread: threading.Thread | None = None
        self.started = time.monotonic()
        self.busy_file = busy_file(self.state.directory)
        self.floor = None  # the plant floor (factory_agent.floor): released model, scoring, alerts

    def _step(self, name: str, fn, *args):
        log.info("step: %s", name)
        started = time.monotonic()
        try:
            result = fn(*args)
        except FederatedLearningError as exc:
            raise StepFailed(name, exc) from exc
        except Exception as exc:  # a library error (PySyft, requests, OS): report it as this step's failure
            log.debug("step %s failed", name, exc_info=True)
            raise StepFailed(name, RuntimeError(f"{type(exc).__name__}: {exc}")) from exc
        log.info("step done: %s in %.2f s", name, time.monotonic() - started)  # bench/startup.py reads these
        return result

    # --- start-up -----------------------------------------------------------------------------
    def start(self) -> None:
        c = self.config
        if urlsplit(c.dashboard_url).scheme == "http" and not _is_loopback(urlsplit(c.dashboard_url).hostname):
            log.warning("the dashboard is at %s: plain HTTP, so the registration (with the orchestrator's password) "
                        "crosses the network in clear; serve the dashboard over HTTPS (README: TLS)", c.dashboard_url)
        data = self._step("load data", load_plant_data, c)
        log.info("data: %d rows, %d features, splits %s, failure rate %.2f %%", data.num_samples,
                 len(data.schema.feature_names), data.split_counts(), 100 * data.positive_rate())
        policy = self._step("load the plant's policy", load_policy, policy_file(c.state_dir), c.policy_overrides)
        log.info("policy: %s", policy.describe())
        self.state.save_policy(policy)
        self.state.save_profile(c.factory_name, data.schema.feature_names)
        self._step("enrol in the federation", enrol, self.state, c.factory_name, c.federation_key, c.reset, policy)
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
        if self.tls is not None:
            log.info("TLS: the datasite serves %s", self._step("prepare TLS certificate", self.tls.prepare))
        else:
            log.warning("--dev_mode: the datasite serves plain HTTP; a dashboard that requires TLS refuses this plant")
        self._step("launch datasite", self.datasite.launch)
        log.info("datasite %s serving on %s (bound to %s:%d)", c.factory_name, self.datasite.url, c.hostname, c.port)
        creds = self._step("secure accounts", self.datasite.secure_accounts)
        fingerprint = self._step("upload data", self.datasite.upload, data)
        log.info("dataset uploaded (fingerprint %s)", fingerprint)
        self._step("publish factory.status endpoint", self.datasite.publish_status_endpoint)
        self.approval = ApprovalPolicy(self.datasite.root_logins(), c.approval_interval, creds.orchestrator_email)
        self.approval.start()
        self.registration = registration_of(c, data, device, policy, creds, self.state, self.server_name,
                                            self.tls.certificate_request() if self.tls else None)
        log.info("identity key fingerprint %s (%s): the dashboard binds the name %s to it",
                 key_fingerprint(self.registration.identity_public_key), self.state.identity_key_path, c.factory_name)
        self._step("register with dashboard", self._register_first)
        from factory_agent.floor.service import start_plant_floor  # DESIGN §10; no torch until it scores

        self.floor = self._step("start the plant floor", start_plant_floor, c, data)
        self.heartbeat_thread = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        self.heartbeat_thread.start()
        log.info("ready in %.1f s: serving until stopped (Ctrl-C)", time.monotonic() - self.started)

    def _register_first(self) -> None:
        """Register now; an unreachable dashboard is not fatal (the heartbeat loop keeps trying), a
        dashboard that refuses us is."""
        try:
            self._register()
        except RekeyPending as exc:
            self._report_rekey(exc)
        except CommunicationError as exc:
            log.warning("%s; serving anyway and retrying in the background", exc)

    def _report_rekey(self, exc: RekeyPending) -> None:
        """One line while the dashboard holds this plant's new key for an operator; the agent serves and
        registers again with growing pauses (at most MAX_BACKOFF)."""
        if not self.rekey_reported:
            self.rekey_reported = True
            log.warning("%s; serving, and registering again every %.0f s at most until it is approved", exc,
                        MAX_BACKOFF)

    def _register(self) -> None:
        self.answer = self.client.register(self.registration)
        self.rekey_reported = False
        log.info("registered with %s as factory #%d (heartbeat every %.0f s)", self.config.dashboard_url,
                 self.answer.factory_id, self.answer.heartbeat_interval)
        if self.tls is not None:
            self._serve_signed_certificate(self.answer.certificate_chain)

    # --- TLS: the certificate the federation CA signed (factory_agent.tls) ---------------------------------
    def _serve_signed_certificate(self, chain: str | None) -> None:
        if chain is None:
            raise ConfigurationError("the dashboard registered this plant without signing its certificate "
                                     "(no certificate_chain): it is older than this agent or admits plain HTTP; "
                                     "update it, or start this agent with --dev_mode (plain HTTP)")
        leaf = self.tls.install(chain)
        served = self.tls.wait_until_served(self.datasite.login_host, self.config.port, leaf)
        log.info("the datasite %s the certificate signed by the federation CA: CN=%s, SAN=%s, valid until %s UTC",
                 "serves" if served else "will serve (not picked up yet)", common_name(leaf),
                 ",".join(san_names(leaf)), f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M}")

    def _renew_certificate_if_due(self) -> None:
        """Register again for a new certificate once less than a third of the current one's validity is left."""
        if self.tls is None or time.monotonic() < self.next_renewal or not self.tls.needs_renewal():
            return
        log.info("the datasite's certificate is due for renewal: registering again for a new one")
        try:
            self._register()
        except (FederatedLearningError, OSError) as exc:  # the heartbeats go on: never end their thread here
            self.next_renewal = time.monotonic() + RENEWAL_RETRY_S
            log.warning("certificate renewal failed: %s; next try in %.0f s", exc, RENEWAL_RETRY_S)

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
                         active_experiments=tuple(e for e in experiments if e is not None),
                         pending_code_requests=tuple(self.approval.reported()) if self.approval else (),
                         floor=self.floor.report() if self.floor else None)
        try:
            answer = self.client.heartbeat(self.answer.heartbeat_token, beat)
        except UnknownFactory as exc:
            log.warning("%s: registering again", exc)
            self._register()
            answer = self.client.heartbeat(self.answer.heartbeat_token, beat)
        if self.floor is not None and status != FactoryStatus.STOPPING.value:
            self.floor.on_heartbeat_answer(answer, self.answer.heartbeat_token)  # a newly released model

    def _heartbeat_loop(self) -> None:
        interval = self.answer.heartbeat_interval if self.answer else self.config.heartbeat_interval
        backoff, outage_since = interval, None
        while True:
            try:
                self.send_heartbeat()
                self._renew_certificate_if_due()
                if outage_since is not None:
                    log.info("dashboard reachable again after %.0f s", time.monotonic() - outage_since)
                outage_since, backoff = None, interval
                interval = self.answer.heartbeat_interval
                wait = interval
            except FederatedLearningError as exc:
                if isinstance(exc, RekeyPending):
                    self._report_rekey(exc)
                elif outage_since is None:
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
        if self.floor is not None:
            self.floor.stop()
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

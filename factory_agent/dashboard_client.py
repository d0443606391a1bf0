"""Registration and heartbeats against the dashboard's HTTP API (DESIGN §4)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import requests

from factory_agent.approval import PendingCodeRequest
from shared.errors import CommunicationError, ConfigurationError, SecurityError

log = logging.getLogger(__name__)
TIMEOUT = 10


class UnknownFactory(CommunicationError):
    """The dashboard does not know this factory (404 on heartbeat): register again."""


@dataclass(frozen=True)
class Registration:
    factory_name: str
    factory_hostname: str
    factory_port: int
    device: str
    status: str
    capabilities: dict
    orchestrator: dict
    secagg_public_key: str
    agent_version: str
    policy: dict = field(default_factory=dict)  # the plant's own policy (DESIGN §9), for operators to see


@dataclass(frozen=True)
class RegistrationAnswer:
    factory_id: int
    heartbeat_token: str
    heartbeat_interval: float


@dataclass(frozen=True)
class Heartbeat:
    factory_name: str
    timestamp: str
    status: str
    current_load: dict
    active_experiments: list = field(default_factory=list)
    # code requests the approval policy left for the data owner (at most approval.MAX_REPORTED, fields bounded)
    pending_code_requests: list[PendingCodeRequest] = field(default_factory=list)


class DashboardClient:
    def __init__(self, base_url: str, enrollment_token: str):
        self.base_url = base_url
        self.enrollment_token = enrollment_token
        self.session = requests.Session()

    def _post(self, path: str, token: str, body: dict) -> requests.Response:
        try:
            return self.session.post(f"{self.base_url}{path}", json=body, timeout=TIMEOUT,
                                     headers={"Authorization": f"Bearer {token}"})
        except requests.RequestException as exc:
            raise CommunicationError(f"dashboard at {self.base_url} is unreachable: {exc.__class__.__name__}") from exc

    @staticmethod
    def _error(resp: requests.Response) -> str:
        try:
            body = resp.json()
            return str(body.get("error") or body)
        except ValueError:
            return resp.text[:200]

    def register(self, registration: Registration) -> RegistrationAnswer:
        resp = self._post("/register_factory", self.enrollment_token, asdict(registration))
        if resp.status_code in (200, 201):
            try:
                body = resp.json()
                return RegistrationAnswer(int(body["factory_id"]), body["heartbeat_token"],
                                          float(body["heartbeat_interval"]))
            except (ValueError, KeyError) as exc:
                raise ConfigurationError(f"{self.base_url} answered registration without a factory id: is "
                                         "--dashboard_url the FactoryFL dashboard?") from exc
        if resp.status_code in (401, 403):
            raise SecurityError(f"the dashboard refused the enrollment token ({self._error(resp)}); pass the "
                                "dashboard's FACTORY_ENROLLMENT_TOKEN with --enrollment-token")
        if resp.status_code == 404:
            raise ConfigurationError(f"{self.base_url} has no /register_factory (HTTP 404): is --dashboard_url "
                                     "the FactoryFL dashboard's address?")
        if resp.status_code == 409:
            raise ConfigurationError(f"the dashboard refused this agent: {self._error(resp)}")
        if 400 <= resp.status_code < 500:
            raise ConfigurationError(f"registration rejected (HTTP {resp.status_code}): {self._error(resp)}")
        raise CommunicationError(f"dashboard error during registration (HTTP {resp.status_code})")

    def heartbeat(self, token: str, heartbeat: Heartbeat) -> None:
        resp = self._post("/heartbeat", token, asdict(heartbeat))
        if resp.status_code == 200:
            return
        if resp.status_code == 404:
            raise UnknownFactory("the dashboard does not know this factory")
        if resp.status_code == 401:
            raise UnknownFactory("the dashboard refused the heartbeat token")
        raise CommunicationError(f"heartbeat answered HTTP {resp.status_code}: {self._error(resp)}")

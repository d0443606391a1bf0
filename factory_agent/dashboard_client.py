"""Registration and heartbeats against the dashboard's HTTP API (DESIGN §4); the messages are
shared.protocol.registry's (re-exported here for the agent's modules)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.errors import CommunicationError, ConfigurationError, SecurityError
from shared.identity import SIGNATURE_HEADER, TIMESTAMP_HEADER, canonical_json, public_key_hex, sign_registration
from shared.protocol.registry import FloorReport, Heartbeat, Registration, ReportedModel

log = logging.getLogger(__name__)
TIMEOUT = 10


class UnknownFactory(CommunicationError):
    """The dashboard does not know this factory (404 on heartbeat): register again."""


class RekeyPending(CommunicationError):
    """The dashboard knows this plant's name under another identity key (or could not check this one): it keeps
    the registration for an operator to approve (HTTP 409, detail.reason "rekey_pending"). Not fatal: the
    agent serves and registers again slowly until the approval is given."""


REKEY_PENDING = "rekey_pending"
__all__ = ["DashboardClient", "FloorReport", "Heartbeat", "RekeyPending", "Registration", "RegistrationAnswer",
           "ReportedModel", "UnknownFactory"]


@dataclass(frozen=True)
class RegistrationAnswer:
    factory_id: int
    heartbeat_token: str
    heartbeat_interval: float
    certificate_chain: str | None = None  # the datasite's certificate, then the federation CA's (PEM)


class DashboardClient:
    def __init__(self, base_url: str, enrollment_token: str, identity_key: Ed25519PrivateKey):
        self.base_url = base_url
        self.enrollment_token = enrollment_token
        self.identity_key = identity_key  # signs every registration (shared.identity)
        self.session = requests.Session()

    def _post(self, path: str, token: str, body: dict, signed: bool = False) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"}
        payload = {"json": body}
        if signed:  # the canonical form (shared.identity) on the wire: byte for byte what is signed
            headers.update(self.signature_headers(body), **{"Content-Type": "application/json"})
            payload = {"data": canonical_json(body)}
        try:
            return self.session.post(f"{self.base_url}{path}", timeout=TIMEOUT, headers=headers, **payload)
        except requests.RequestException as exc:
            raise CommunicationError(f"dashboard at {self.base_url} is unreachable: {exc.__class__.__name__}") from exc

    def signature_headers(self, body: dict) -> dict:
        """Proof of the identity key: a signature over this body and the current time, fresh for every call
        (the dashboard refuses a signature it has seen, and one more than 5 minutes off its clock)."""
        stamp = f"{time.time():.6f}"
        return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign_registration(self.identity_key, stamp, body)}

    @staticmethod
    def _reason(resp: requests.Response) -> str | None:
        try:
            detail = resp.json().get("detail")
        except (ValueError, AttributeError):
            return None
        return detail.get("reason") if isinstance(detail, dict) else None

    @staticmethod
    def _error(resp: requests.Response) -> str:
        try:
            body = resp.json()
            return str(body.get("error") or body)
        except ValueError:
            return resp.text[:200]

    def register(self, registration: Registration) -> RegistrationAnswer:
        body = registration.to_wire()
        if body["identity_public_key"] != public_key_hex(self.identity_key):
            raise ConfigurationError("the registration's identity_public_key is not this client's identity key")
        resp = self._post("/register_factory", self.enrollment_token, body, signed=True)
        if resp.status_code in (200, 201):
            try:
                body = resp.json()
                return RegistrationAnswer(int(body["factory_id"]), body["heartbeat_token"],
                                          float(body["heartbeat_interval"]), body.get("certificate_chain"))
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
            if self._reason(resp) == REKEY_PENDING:
                raise RekeyPending(f"re-keying needs an operator's approval on the dashboard: {self._error(resp)}")
            raise ConfigurationError(f"the dashboard refused this agent: {self._error(resp)}")
        if 400 <= resp.status_code < 500:
            raise ConfigurationError(f"registration rejected (HTTP {resp.status_code}): {self._error(resp)}")
        raise CommunicationError(f"dashboard error during registration (HTTP {resp.status_code})")

    def heartbeat(self, token: str, heartbeat: Heartbeat) -> dict:
        """Send a heartbeat; the dashboard's answer (an object; {} when it is not one), e.g. the released model."""
        resp = self._post("/heartbeat", token, heartbeat.to_wire())
        if resp.status_code == 200:
            try:
                answer = resp.json()
            except ValueError:
                return {}
            return answer if isinstance(answer, dict) else {}
        if resp.status_code == 404:
            raise UnknownFactory("the dashboard does not know this factory")
        if resp.status_code == 401:
            raise UnknownFactory("the dashboard refused the heartbeat token")
        raise CommunicationError(f"heartbeat answered HTTP {resp.status_code}: {self._error(resp)}")

"""Logged-in PySyft clients, one per plant, reused between rounds and rebuilt when a plant restarts.

The orchestrator logs in with the plant's DATA_SCIENTIST account, submits the vetted `fl_step` once
(the plant's agent approves exactly the shipped code, factory_agent.approval) and calls it by id every round.

Every datasite is reached over HTTPS and verified against the federation CA (dashboard.registry.federation_ca), for the
plant's own name in its certificate (federation_ca.plant_dns_name; shared.syft_tls): a certificate that does not
verify, or was issued to another plant, stops the login before the password is sent. Plain HTTP only with DASHBOARD_REQUIRE_TLS=false, and only to a plant that registered without a
certificate request (an agent in --dev_mode).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dashboard.registry.federation_ca import plant_dns_name
from shared import syft_tls
from shared.quiet import quiet
from shared.errors import CommunicationError, DataSiteError
from shared.protocol import Reply, Request, parse_reply
from shared.vetted import ASSET_NAMES, DATASET_NAME, VETTED_FUNCTIONS
from dashboard.errors import TLSRefused

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlantAddress:
    name: str
    hostname: str
    port: int
    email: str
    password: str
    registered_at: str  # a new registration means a restarted plant: log in again
    transport: str = "https"  # "http" only for a plant registered without a certificate (see DatasiteTrust)

    @property
    def key(self) -> tuple:
        return (self.name, self.hostname, self.port, self.registered_at)


def transport_of(factory) -> str:
    """How the dashboard reaches a plant: "https" unless it registered without a certificate (set at registration)."""
    return (factory.capabilities or {}).get("transport") or "https"


@dataclass(frozen=True)
class DatasiteTrust:
    """What a datasite must prove: a certificate from the federation CA (`ca_file`) for its registered name."""

    ca_file: Path
    require_tls: bool = True

    @classmethod
    def from_config(cls, config) -> "DatasiteTrust":
        from dashboard.registry.federation_ca import datasite_ca_file

        return cls(datasite_ca_file(config), bool(config["DASHBOARD_REQUIRE_TLS"]))

    def login(self, name: str, hostname: str, port: int, email: str, password: str, transport: str = "https"):
        """A logged-in client. TLSRefused when the certificate does not verify or plain HTTP is not allowed;
        PySyft's SyftException for a refused login; requests/socket errors when nobody answers."""
        import requests

        if transport != "https":
            if self.require_tls:
                raise TLSRefused(f"{name}: plain HTTP to a datasite is refused (DASHBOARD_REQUIRE_TLS); the plant "
                                 "must register again with a certificate request (an agent without --dev_mode)")
            with quiet(log):
                return syft_tls.plain_login(hostname, port, email, password)
        try:
            with quiet(log):
                return syft_tls.login(hostname, port, email, password, ca_file=self.ca_file,
                                      server_name=plant_dns_name(name))
        except requests.exceptions.SSLError as exc:
            reason = str(exc.__context__ or exc).split("(Caused by ")[-1].rstrip(")")[:300]
            raise TLSRefused(f"{name} at {hostname}:{port}: TLS verification failed, nothing was sent ({reason}); "
                             f"its certificate must come from this dashboard's federation CA ({self.ca_file}) and "
                             f"be issued to plant {name}: let the plant register again") from exc


class PlantConnection:
    def __init__(self, address: PlantAddress, approval_timeout: float, trust: DatasiteTrust):
        from syft.types.errors import SyftException

        self.address = address
        self.events: list[tuple[str, dict]] = []  # (audit action, detail) for the engine to record
        try:
            self.client = trust.login(address.name, address.hostname, address.port, address.email, address.password,
                                      address.transport)
        except TLSRefused:
            raise
        except SyftException as exc:
            raise CommunicationError(f"login to {address.name} refused: {exc.public_message}") from exc
        except Exception as exc:  # requests / socket errors surface as many types inside syft
            raise CommunicationError(f"{address.name} at {address.hostname}:{address.port} unreachable: "
                                     f"{type(exc).__name__}") from exc
        datasets = [d for d in self.client.datasets.get_all() if d.name == DATASET_NAME]
        if not datasets:
            raise DataSiteError(f"{address.name} has no dataset {DATASET_NAME!r}")
        self.assets = {name: datasets[-1].assets[name] for name in ASSET_NAMES}
        self._ensure_code(approval_timeout)

    def _find_code(self):
        """Our own submission of the shipped fl_step: chosen by its exact text, never by name alone (anyone with
        this login can submit other code named fl_step, and PySyft's `client.code.fl_step` calls the last one)."""
        shipped = inspect.getsource(VETTED_FUNCTIONS["fl_step"])
        codes = [c for c in self.client.code.get_all() if c.service_func_name == "fl_step" and c.raw_code == shipped]
        approved = [c for c in codes if c.status.approved]
        return (approved or codes or [None])[-1]

    def _submit_code(self):
        """Submit the shipped fl_step for approval: the code as the plant stores it, or None with PySyft's refusal.
        PySyft keeps one code per source and login and one request per code, so a code of this login's with the
        shipped source under another name or policy (a variant) makes PySyft refuse this submission, or hand the
        request to the variant. The plant removes such a variant (factory_agent.approval `unblock`): the caller
        retries."""
        import syft as sy
        from syft.service.policy.policy import MixedInputPolicy
        from syft.types.errors import SyftException

        function = sy.syft_function(
            input_policy=MixedInputPolicy(client=self.client, features=self.assets["features"],
                                          labels=self.assets["labels"], index=self.assets["index"],
                                          request=dict),
            output_policy=sy.SingleExecutionExactOutput())(VETTED_FUNCTIONS["fl_step"])
        try:
            with quiet(log):
                self.client.code.request_code_execution(function)
        except SyftException as exc:
            return None, str(exc.public_message)[:300]
        code = self._find_code()
        if code is None:  # PySyft gave the request to a variant holding the shipped source's hash
            return None, "PySyft filed the request under another code with the shipped source"
        log.info("submitted fl_step to %s for approval", self.address.name)
        self.events.append(("code.submitted", {"function": "fl_step", "code_hash": code.code_hash}))
        return code, None

    def _ensure_code(self, approval_timeout: float) -> None:
        deadline = time.monotonic() + approval_timeout
        code, refusal, warned = self._find_code(), None, False
        while code is None or not code.status.approved:
            if code is None:  # not submitted yet, or the plant removed a variant that blocked our submission
                code, refusal = self._submit_code()
                if refusal is not None and not warned:
                    warned = True
                    log.warning("%s refused the fl_step submission (%s); retrying until the plant removes what "
                                "blocks it, for up to %.0f s", self.address.name, refusal, approval_timeout)
                if code is not None and code.status.approved:
                    break
            if time.monotonic() > deadline:
                last = f"; its last refusal: {refusal}" if refusal else ""
                raise DataSiteError(f"{self.address.name} has not approved fl_step after {approval_timeout:.0f} s "
                                    f"(its agent approves only vetted code of the same FactoryFL version){last}")
            time.sleep(1.0)
            code = self._find_code()
        # PySyft names user code by function name and keeps the last of a name: bind the call to our code's id
        self.fl_step = self.client.code.fl_step.model_copy(
            update={"pre_kwargs": {"uid": code.id}, "signature": code.signature})
        if self.events:
            self.events.append(("code.approved", {"function": "fl_step", "by": "the plant's vetted-code policy"}))

    def call(self, request: Request) -> Reply:
        """One fl_step call: the typed request on the wire, the plant's answer validated into its typed reply
        (a plant is not trusted to answer well-formed data either); a refusal is a DataSiteError with the
        plant's reason."""
        from syft.types.errors import SyftException

        try:
            with quiet(log):
                result = self.fl_step(features=self.assets["features"], labels=self.assets["labels"],
                                      index=self.assets["index"], request=request.to_wire())
                value = result.get() if hasattr(result, "get") else result
        except SyftException as exc:
            raise CommunicationError(f"{self.address.name}: {exc.public_message}") from exc
        except Exception as exc:  # connection drops surface as requests/socket errors inside syft
            raise CommunicationError(f"{self.address.name} failed during the call: {type(exc).__name__}: {exc}") from exc
        if not isinstance(value, dict):
            raise CommunicationError(f"{self.address.name} answered {type(value).__name__}, not a result")
        if not value.get("ok"):
            raise DataSiteError(f"{self.address.name}: {str(value.get('error', 'unknown error'))[:2000]}")
        return parse_reply(request, value)


class ConnectionPool:
    def __init__(self, approval_timeout: float, trust: DatasiteTrust):
        self.approval_timeout = approval_timeout
        self.trust = trust
        self._connections: dict[str, PlantConnection] = {}
        self._lock = threading.Lock()

    def get(self, address: PlantAddress) -> PlantConnection:
        with self._lock:
            existing = self._connections.get(address.name)
            if existing is not None and existing.address.key == address.key:
                return existing
        connection = PlantConnection(address, self.approval_timeout, self.trust)
        with self._lock:
            self._connections[address.name] = connection
        return connection

    def drain_events(self) -> list[tuple[str, str, dict]]:
        """(plant, action, detail) that happened since the last call, for the audit log."""
        out = []
        with self._lock:
            for name, connection in self._connections.items():
                out.extend((name, action, detail) for action, detail in connection.events)
                connection.events = []
        return out

    def drop(self, name: str) -> None:
        with self._lock:
            self._connections.pop(name, None)


def check_login(plant_name: str, hostname: str, port: int, email: str, password: str,
                transport: str = "https") -> tuple[str, str]:
    """("reachable" | "auth failed" | "TLS refused" | "unreachable", why) for connectivity checks (in an app context:
    the federation CA and DASHBOARD_REQUIRE_TLS come from the app's config)."""
    from flask import current_app
    from syft.types.errors import SyftException

    try:
        DatasiteTrust.from_config(current_app.config).login(plant_name, hostname, port, email, password, transport)
        how = "HTTPS (certificate verified against the federation CA)" if transport == "https" else "plain HTTP"
        return "reachable", f"{hostname}:{port} answered over {how} and accepted the orchestrator login"
    except TLSRefused as exc:
        return "TLS refused", str(exc)
    except SyftException as exc:
        return "auth failed", f"{hostname}:{port} answered but refused the login: {exc.public_message}"
    except Exception as exc:  # connection errors come as several types from inside syft
        return "unreachable", f"{hostname}:{port} did not answer ({type(exc).__name__})"

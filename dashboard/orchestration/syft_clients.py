"""Logged-in PySyft clients, one per plant, reused between rounds and rebuilt when a plant restarts.

The orchestrator logs in with the plant's DATA_SCIENTIST account, submits the vetted `fl_step` once
(the plant's agent approves it by hash) and calls it every round.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from dataclasses import dataclass

from shared.quiet import quiet
from shared.errors import CommunicationError, DataSiteError
from shared.protocol import Reply, Request, parse_reply
from shared.vetted import ASSET_NAMES, DATASET_NAME, VETTED_FUNCTIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlantAddress:
    name: str
    hostname: str
    port: int
    email: str
    password: str
    registered_at: str  # a new registration means a restarted plant: log in again

    @property
    def key(self) -> tuple:
        return (self.name, self.hostname, self.port, self.registered_at)


class PlantConnection:
    def __init__(self, address: PlantAddress, approval_timeout: float):
        import syft as sy
        from syft.types.errors import SyftException

        self.address = address
        self.events: list[tuple[str, dict]] = []  # (audit action, detail) for the engine to record
        try:
            with quiet(log):
                self.client = sy.login(url=address.hostname, port=address.port, email=address.email,
                                       password=address.password)
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

    def _ensure_code(self, approval_timeout: float) -> None:
        import syft as sy
        from syft.service.policy.policy import MixedInputPolicy

        code = self._find_code()
        if code is None:
            function = sy.syft_function(
                input_policy=MixedInputPolicy(client=self.client, features=self.assets["features"],
                                              labels=self.assets["labels"], index=self.assets["index"],
                                              request=dict),
                output_policy=sy.SingleExecutionExactOutput())(VETTED_FUNCTIONS["fl_step"])
            with quiet(log):
                self.client.code.request_code_execution(function)
            log.info("submitted fl_step to %s for approval", self.address.name)
            code = self._find_code()
            self.events.append(("code.submitted", {"function": "fl_step", "code_hash": code.code_hash}))
        deadline = time.monotonic() + approval_timeout
        while not code.status.approved:
            if time.monotonic() > deadline:
                raise DataSiteError(f"{self.address.name} has not approved fl_step after {approval_timeout:.0f} s "
                                    "(its agent approves only vetted code of the same FactoryFL version)")
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
    def __init__(self, approval_timeout: float):
        self.approval_timeout = approval_timeout
        self._connections: dict[str, PlantConnection] = {}
        self._lock = threading.Lock()

    def get(self, address: PlantAddress) -> PlantConnection:
        with self._lock:
            existing = self._connections.get(address.name)
            if existing is not None and existing.address.key == address.key:
                return existing
        connection = PlantConnection(address, self.approval_timeout)
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


def check_login(hostname: str, port: int, email: str, password: str) -> tuple[str, str]:
    """("reachable" | "auth failed" | "unreachable", why) for connectivity checks."""
    import syft as sy
    from syft.types.errors import SyftException

    try:
        with quiet(log):
            sy.login(url=hostname, port=port, email=email, password=password)
        return "reachable", f"{hostname}:{port} answered and accepted the orchestrator login"
    except SyftException as exc:
        return "auth failed", f"{hostname}:{port} answered but refused the login: {exc.public_message}"
    except Exception as exc:  # connection errors come as several types from inside syft
        return "unreachable", f"{hostname}:{port} did not answer ({type(exc).__name__})"

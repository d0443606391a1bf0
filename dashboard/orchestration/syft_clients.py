"""Logged-in PySyft clients, one per plant, reused between rounds and rebuilt when a plant restarts.

The orchestrator logs in with the plant's DATA_SCIENTIST account, submits the vetted `fl_step` once
(the plant's agent approves it by hash) and calls it every round.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from shared.quiet import quiet
from shared.errors import CommunicationError, DataSiteError
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
        codes = [c for c in self.client.code.get_all() if c.service_func_name == "fl_step"]
        return codes[-1] if codes else None

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
        deadline = time.monotonic() + approval_timeout
        while not code.status.approved:
            if time.monotonic() > deadline:
                raise DataSiteError(f"{self.address.name} has not approved fl_step after {approval_timeout:.0f} s "
                                    "(its agent approves only vetted code of the same FactoryFL version)")
            time.sleep(1.0)
            code = self._find_code()

    def call(self, request: dict) -> dict:
        from syft.types.errors import SyftException

        try:
            with quiet(log):
                result = self.client.code.fl_step(features=self.assets["features"], labels=self.assets["labels"],
                                                  index=self.assets["index"], request=request)
                value = result.get() if hasattr(result, "get") else result
        except SyftException as exc:
            raise CommunicationError(f"{self.address.name}: {exc.public_message}") from exc
        except Exception as exc:  # connection drops surface as requests/socket errors inside syft
            raise CommunicationError(f"{self.address.name} failed during the call: {type(exc).__name__}: {exc}") from exc
        if not isinstance(value, dict):
            raise CommunicationError(f"{self.address.name} answered {type(value).__name__}, not a result")
        if not value.get("ok"):
            raise DataSiteError(f"{self.address.name}: {value.get('error', 'unknown error')}")
        return value


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

    def drop(self, name: str) -> None:
        with self._lock:
            self._connections.pop(name, None)


def check_login(hostname: str, port: int, email: str, password: str) -> tuple[bool, str]:
    """(reachable and accepted?, what happened) for the connectivity check on a plant's page."""
    import syft as sy
    from syft.types.errors import SyftException

    try:
        with quiet(log):
            sy.login(url=hostname, port=port, email=email, password=password)
        return True, f"reachable at {hostname}:{port}, orchestrator login accepted"
    except SyftException as exc:
        return False, f"reachable, but the login was refused: {exc.public_message}"
    except Exception as exc:  # connection errors come as several types from inside syft
        return False, f"unreachable at {hostname}:{port} ({type(exc).__name__})"

"""The plant's PySyft datasite: launch (in the agent's process, over HTTPS: factory_agent.https_datasite), accounts,
the private dataset and the status endpoint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass

import numpy as np

from factory_agent import https_datasite
from factory_agent.config import AgentConfig
from factory_agent.tls import PlantTLS
from shared import syft_tls
from shared.quiet import quiet
from factory_agent.plant.state import PlantState, datasite_dir, new_password
from shared.data.csv_loader import PlantData
from shared.errors import ConfigurationError, DataSiteError
from shared.vetted import DATASET_NAME

log = logging.getLogger(__name__)

DEFAULT_ROOT_EMAIL = "info@openmined.org"
DEFAULT_ROOT_PASSWORD = "changethis"  # PySyft 0.9.5's built-in root password, replaced at start


@dataclass(frozen=True)
class Credentials:
    root_password: str
    admin_email: str
    admin_password: str
    orchestrator_email: str
    orchestrator_password: str


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((socket.gethostbyname(host), port))
        except OSError as exc:
            raise ConfigurationError(f"port {port} on {host} is already in use ({exc.strerror}); "
                                     "stop what uses it or pass another --port") from exc


def data_fingerprint(data: PlantData) -> str:
    h = hashlib.sha256()
    for array in (data.features, data.labels, data.split, data.groups):
        h.update(np.ascontiguousarray(array).tobytes())
    h.update(json.dumps(data.schema.to_dict(), sort_keys=True).encode())
    return h.hexdigest()[:16]


class Datasite:
    def __init__(self, config: AgentConfig, state: PlantState, tls: PlantTLS | None):
        self.config = config
        self.state = state
        self.tls = tls  # None: --dev_mode, plain HTTP
        self.handle: https_datasite.InProcessDatasite | None = None
        self.credentials: Credentials | None = None
        self._root = None  # root's client, logged in once for the whole start-up (each login costs ~0.5 s)

    @staticmethod
    def login_host_of(config: AgentConfig) -> str:
        return "localhost" if config.hostname in ("0.0.0.0", "::") else config.hostname

    @property
    def login_host(self) -> str:
        """Where clients (this agent, then the dashboard) reach the datasite."""
        return self.login_host_of(self.config)

    def _prepare_environment(self) -> None:
        """Settings PySyft 0.9.5 reads from the environment, some of them once at import time."""
        # its database and blobs go under $TMPDIR/$SYFT_TEMP_ROOT/<server id>: an absolute root puts the
        # plant's private data in its state folder (mode 0700) instead of a shared /tmp
        os.environ["SYFT_TEMP_ROOT"] = str(datasite_dir(self.state.directory).resolve())
        # a stable identity, or every start draws a new server id and key and orphans the stored users
        # and data (its db_url option cannot reopen an existing SQLite store either: root is created twice)
        os.environ["SERVER_UID"], os.environ["SERVER_PRIVATE_KEY"] = self.state.datasite_identity()
        # root never has the well-known default password, not even for the seconds before it is replaced
        os.environ["DEFAULT_ROOT_PASSWORD"] = self.state.credentials().get("root_password") or new_password()

    def launch(self) -> None:
        check_port_free(self.config.hostname, self.config.port)
        self._prepare_environment()
        started = time.monotonic()
        https_datasite.import_syft()  # without torch: loaded when the plant first trains
        log.info("PySyft imported in %.2f s", time.monotonic() - started)  # bench/startup.py reads it
        import syft.server.server as syft_server

        # read at import: refresh in case syft was imported before this call (tests, notebooks)
        syft_server.server_uid_env = os.environ["SERVER_UID"]
        syft_server.signing_key_env = os.environ["SERVER_PRIVATE_KEY"]
        tls = self.tls is not None
        settings = https_datasite.ServerSettings(
            name=self.config.factory_name, host=self.config.hostname, port=self.config.port, reset=self.config.reset,
            dev_mode=self.config.dev_mode, certfile=self.state.tls_certificate_path() if tls else None,
            keyfile=self.state.tls_key_path() if tls else None)
        with quiet(log):
            self.handle = https_datasite.launch(settings, probe_host=self.login_host,
                                                ca_file=self.state.tls_trust_path() if tls else None,
                                                server_name=self.tls.server_name if tls else None)

    @property
    def url(self) -> str:
        return f"{'http' if self.tls is None else 'https'}://{self.login_host}:{self.config.port}"

    def login(self, email: str, password: str):
        with quiet(log):
            if self.tls is None:
                return syft_tls.plain_login(self.login_host, self.config.port, email, password)
            return syft_tls.login(self.login_host, self.config.port, email, password,
                                  ca_file=self.state.tls_trust_path(), server_name=self.tls.server_name)

    def root(self, fresh: bool = False):
        """Root's client: the one logged in at start-up, or a new login (`fresh`)."""
        if self.credentials is None:
            raise DataSiteError("the datasite's accounts are not set up yet")
        if fresh or self._root is None:
            self._root = self.login(DEFAULT_ROOT_EMAIL, self.credentials.root_password)
        return self._root

    def root_logins(self):
        """For a long-lived user of root (the approval policy): the start-up's client first, a new login after."""
        first = [self.root()]
        return lambda: first.pop() if first else self.root(fresh=True)

    def secure_accounts(self) -> Credentials:
        """Make sure root has a random password (never the default), then create the plant admin and the
        orchestrator account, or bring their passwords in line with the state folder."""
        from syft.service.user.user_roles import ServiceRole
        from syft.types.errors import SyftException

        stored = self.state.credentials()
        boot_password = os.environ.get("DEFAULT_ROOT_PASSWORD", "")
        root_password = None
        for candidate in (stored.get("root_password"), boot_password):
            if not candidate:
                continue
            try:
                self._root = self.login(DEFAULT_ROOT_EMAIL, candidate)
                root_password = candidate
                break
            except SyftException:
                continue
        if root_password is None:  # an older datasite created with PySyft's well-known default
            try:
                root = self.login(DEFAULT_ROOT_EMAIL, DEFAULT_ROOT_PASSWORD)
            except SyftException as exc:
                raise DataSiteError("cannot log in as root with the stored password; restart with --reset "
                                    "to rebuild the datasite") from exc
            root_password = new_password()
            with quiet(log):
                root.account.set_password(root_password, confirm=False)
            self._root = None  # logged in with the old password: log in again below
        log.info("root password is random, never PySyft's default (kept in %s)", self.state.credentials_path)
        creds = Credentials(
            root_password=root_password,
            admin_email=self.config.admin_email,
            admin_password=self.config.admin_password or stored.get("admin_password") or new_password(),
            orchestrator_email=self.config.orchestrator_email,
            orchestrator_password=(self.config.orchestrator_password or stored.get("orchestrator_password")
                                   or new_password()))
        self.state.save_credentials({"root_password": creds.root_password, "admin_email": creds.admin_email,
                                     "admin_password": creds.admin_password,
                                     "orchestrator_email": creds.orchestrator_email,
                                     "orchestrator_password": creds.orchestrator_password})
        self.credentials = creds
        root = self.root()
        existing = {u.email: u for u in root.users.get_all()}
        for name, email, password, role in (
                ("plant admin", creds.admin_email, creds.admin_password, ServiceRole.ADMIN),
                ("orchestrator", creds.orchestrator_email, creds.orchestrator_password, ServiceRole.DATA_SCIENTIST)):
            with quiet(log):
                if email in existing:
                    root.users.update(uid=existing[email].id, password=password)
                    log.info("%s account %s exists; password brought in line with the state folder", name, email)
                else:
                    root.users.create(name=name, email=email, password=password, password_verify=password,
                                      role=role)
                    log.info("created the %s account %s (%s)", name, email, role.name)
        return creds

    def upload(self, data: PlantData) -> str:
        """Upload the split data as a private dataset without a mock; keep an identical
        dataset that is already there (restarts without --reset), replace a different one."""
        sy = https_datasite.import_syft()

        fingerprint = data_fingerprint(data) + "-nomock"  # datasets uploaded with mocks by older agents are replaced
        root = self.root()
        for dataset in root.datasets.get_all():
            if dataset.name != DATASET_NAME:
                continue
            if fingerprint in (dataset.description.text if dataset.description else ""):
                log.info("dataset %s with fingerprint %s is already on the datasite: kept", DATASET_NAME, fingerprint)
                return fingerprint
            with quiet(log):
                root.api.services.dataset.delete(uid=dataset.id)
            log.info("replaced the previous dataset %s (the data changed)", DATASET_NAME)
        index = np.stack([data.split, data.groups], axis=1).astype(np.int64)
        description = (f"Private sensor data of {self.config.factory_name}: {data.num_samples} rows, "
                       f"{len(data.schema.feature_names)} features, splits {data.split_counts()}. "
                       f"No mock. fingerprint {fingerprint}")
        assets = []
        for name, values in (("features", data.features), ("labels", data.labels), ("index", index)):
            # No mock: PySyft 0.9.5 runs approved code a second time on the mock inputs whenever assets have a
            # mock (ActionService._user_code_execute), which doubled every round's training and let the mock
            # run overwrite the plant's FedDyn and DP-SGD state. With an empty mock that second run is skipped.
            asset = sy.Asset(name=name, data=values, mock=values[:0])
            asset.no_mock()
            assets.append(asset)
        dataset = sy.Dataset(name=DATASET_NAME, description=description, asset_list=assets)
        with quiet(log):
            root.upload_dataset(dataset)
        return fingerprint

    def publish_status_endpoint(self) -> None:
        """`factory.status`: the plant's live status (written by the agent), callable by the orchestrator."""
        sy = https_datasite.import_syft()

        @sy.api_endpoint(path="factory.status", description="Live status of this plant's agent",
                         settings={"status_file": str(self.state.status_path().resolve())})
        def factory_status(context) -> dict:
            import json

            with open(context.settings["status_file"]) as fh:
                return json.load(fh)

        root = self.root()
        with quiet(log):
            if any(e.path == "factory.status" for e in root.custom_api.get_all()):
                root.custom_api.delete(endpoint_path="factory.status")
            root.custom_api.add(endpoint=factory_status)

    def land(self) -> None:
        self._root = None
        if self.handle is not None:
            with quiet(log):
                self.handle.land()
            self.handle = None

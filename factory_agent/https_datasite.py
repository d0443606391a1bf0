"""PySyft 0.9.5's datasite server inside the agent's own process: HTTPS (DESIGN §4), or plain HTTP with --dev_mode.

How PySyft starts a server: `sy.orchestra.launch` → `serve_server` → a `multiprocessing.Process` running
`syft.server.uvicorn.run_uvicorn`, which writes the server's settings into SYFT_* environment variables (read by
its `app_factory`) and ends with `uvicorn.run("syft.server.uvicorn:app_factory", factory=True, ...)`, without any
certificate option. A second process holds a second copy of PySyft (and torch) in memory: about half of a plant's
memory (issue #17). So the agent runs the same server in a thread of its own process instead:

- the SYFT_* variables are set exactly as `run_uvicorn` sets them (same settings as `serve_server` gives it), and
  PySyft's own `app_factory` builds the app: its settings, reset handling and routes stay its own code;
- uvicorn serves that app from a thread, with `ssl_certfile`/`ssl_keyfile` unless --dev_mode; logging stays the
  agent's (no uvicorn log config), and the root log level PySyft lowers while it builds its server is restored;
- the uvicorn server checks the certificate file five times a second, on its own event loop (`on_tick`), and loads
  a renewed certificate into the live SSL context: new connections get it, open ones keep theirs, the datasite
  never restarts. Doing it on the loop means no other thread touches the context while connections are made;
- PySyft is imported without torch (`import_syft`): its only use of torch is an optional serializer for torch
  tensors, which the plant's protocol never sends (weights cross as numpy arrays). torch is loaded when the
  plant first trains (shared.networks).
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shared.errors import DataSiteError

log = logging.getLogger(__name__)

RELOAD_EVERY_TICKS = 2  # uvicorn ticks every 0.1 s: look at the certificate file five times a second
LAND_TIMEOUT_S = 10.0
_FILTERED_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error")  # PySyft sets these, and root, when it starts


def import_syft():
    """`import syft`, without letting it import torch when torch is not loaded yet (it only registers an optional
    serializer for torch tensors then): ~180 MB and ~2 s less for a plant that is not training."""
    if "syft" in sys.modules or "torch" in sys.modules:
        import syft

        return syft
    sys.modules["torch"] = None  # `import torch` raises ImportError, which PySyft's serde catches
    try:
        import syft
    finally:
        if sys.modules.get("torch", ...) is None:
            del sys.modules["torch"]
    return syft


@dataclass(frozen=True)
class ServerSettings:
    name: str
    host: str
    port: int
    reset: bool
    dev_mode: bool
    certfile: Path | None = None  # None: plain HTTP (--dev_mode)
    keyfile: Path | None = None


def _file_stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _tls_server_class():
    import uvicorn

    class CertificateReloadingServer(uvicorn.Server):
        """uvicorn's server, which loads a renewed certificate file into its SSL context from its event loop."""

        def __init__(self, config, certfile: str, keyfile: str):
            super().__init__(config)
            self.certfile, self.keyfile = certfile, keyfile
            self.stamp = _file_stamp(certfile)

        async def on_tick(self, counter: int) -> bool:
            if counter % RELOAD_EVERY_TICKS == 0:
                self.reload_if_changed()
            return await super().on_tick(counter)

        def reload_if_changed(self) -> None:
            stamp = _file_stamp(self.certfile)
            if stamp is None or stamp == self.stamp or self.config.ssl is None:
                return
            self.stamp = stamp
            try:
                self.config.ssl.load_cert_chain(self.certfile, self.keyfile)
            except (OSError, ssl.SSLError) as exc:  # keep serving the previous one; the agent says what went wrong
                log.error("the datasite could not load its renewed certificate %s: %s", self.certfile, exc)
                return
            log.info("the datasite now serves the certificate in %s (new connections)", self.certfile)

    return CertificateReloadingServer


def _syft_environment(settings: ServerSettings) -> None:
    """What `run_uvicorn` does before it serves, for the settings `serve_server` hands it when
    `sy.orchestra.launch(name, port, host, reset, dev_mode)` is called."""
    from syft.abstract_server import ServerSideType, ServerType
    from syft.deployment_type import DeploymentType
    from syft.server.utils import get_named_server_uid, remove_temp_dir_for_server

    os.environ["DEV_MODE"] = str(settings.dev_mode)  # as sy.orchestra.launch sets it
    reset = settings.reset
    if settings.dev_mode and reset:  # run_uvicorn's dev-mode reset: the named server's folder goes
        remove_temp_dir_for_server(get_named_server_uid(settings.name))
        reset = False
    kwargs = dict(name=settings.name, server_type=ServerType.DATASITE, processes=1, reset=reset,
                  dev_mode=settings.dev_mode, server_side_type=ServerSideType.HIGH_SIDE, enable_warnings=False,
                  in_memory_workers=True, log_level=None, queue_port=None, create_producer=False, n_consumers=0,
                  association_request_auto_approval=False, background_tasks=False, debug=False,
                  deployment_type=DeploymentType.PYTHON, db_url=None)
    for key, value in kwargs.items():
        os.environ[f"SYFT_{key.upper()}"] = json.dumps(value) if isinstance(value, dict) else str(value)


def _app_factory():
    """PySyft's app factory; its server sets the root logger (and uvicorn's) to CRITICAL, which in this process
    would silence the agent: put the levels back."""
    from syft.server.uvicorn import app_factory

    levels = {name: logging.getLogger(name).level for name in ("", *_FILTERED_LOGGERS)}
    try:
        return app_factory()
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


class InProcessDatasite:
    """The running datasite: a uvicorn server on a thread of the agent's process. `land()` stops it (PySyft's
    lifespan stops its server) and waits for the thread."""

    def __init__(self, server, url: str):
        self.server = server
        self.url = url
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, name="datasite", daemon=True)

    def _serve(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # noqa: BLE001 - reported by launch() or land(), never lost in the thread
            self.error = exc

    def land(self) -> None:
        if not self.thread.is_alive():
            return
        self.server.should_exit = True
        self.thread.join(LAND_TIMEOUT_S)
        if self.thread.is_alive():  # open keep-alive connections: stop waiting for them
            self.server.force_exit = True
            self.thread.join(LAND_TIMEOUT_S)
        if self.thread.is_alive():
            log.warning("the datasite's server did not stop within %.0f s", 2 * LAND_TIMEOUT_S)


def launch(settings: ServerSettings, *, probe_host: str, ca_file: Path | None = None, server_name: str | None = None,
           timeout: float = 60.0) -> InProcessDatasite:
    """Start the datasite on host:port and return once it answers (over HTTPS: verified against `ca_file` for
    `server_name` at probe_host:port); DataSiteError when it fails or does not answer within `timeout` s."""
    import uvicorn

    import_syft()
    _syft_environment(settings)
    options = dict(host=settings.host, port=settings.port, factory=True, log_config=None, lifespan="on")
    if settings.certfile is None:
        server = uvicorn.Server(uvicorn.Config(_app_factory, **options))
        url = f"http://{probe_host}:{settings.port}"
    else:
        config = uvicorn.Config(_app_factory, **options, ssl_certfile=str(settings.certfile),
                                ssl_keyfile=str(settings.keyfile))
        server = _tls_server_class()(config, str(settings.certfile), str(settings.keyfile))
        url = f"https://{probe_host}:{settings.port}"
    datasite = InProcessDatasite(server, url)
    datasite.thread.start()
    try:
        _wait_until_started(datasite, timeout)
        _check_answer(url, ca_file, server_name)
    except BaseException:
        datasite.land()
        raise
    return datasite


def _wait_until_started(datasite: InProcessDatasite, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not datasite.server.started:
        if not datasite.thread.is_alive():
            cause = datasite.error
            detail = f"{type(cause).__name__}: {cause}" if cause and not isinstance(cause, SystemExit) else \
                "see the log above"
            raise DataSiteError(f"the datasite's server stopped while starting ({detail})")
        if time.monotonic() > deadline:
            raise DataSiteError(f"the datasite did not start within {timeout:.0f} s")
        time.sleep(0.05)


def _check_answer(url: str, ca_file: Path | None, server_name: str | None) -> None:
    """One request as a client makes it: over HTTPS, the served certificate must be one this agent trusts."""
    import requests

    from shared.syft_tls import DatasiteSession

    try:
        if ca_file is None:
            answer = requests.get(f"{url}/api/v2/metadata", timeout=10)
        else:
            with DatasiteSession(ca_file, server_name, connect_retries=0) as session:
                answer = session.get(f"{url}/api/v2/metadata", timeout=10)
    except requests.exceptions.SSLError as exc:
        raise DataSiteError(f"the datasite at {url} answers with a certificate its own agent does not trust: "
                            f"{exc}") from exc
    except requests.RequestException as exc:
        raise DataSiteError(f"the datasite at {url} does not answer: {type(exc).__name__}") from exc
    if answer.status_code != 200:
        raise DataSiteError(f"the datasite at {url} answers HTTP {answer.status_code} to a metadata request")

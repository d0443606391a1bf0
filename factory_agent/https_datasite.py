"""PySyft 0.9.5's datasite server, over HTTPS (DESIGN §4).

How PySyft starts a server: `sy.orchestra.launch` → `serve_server` → a `multiprocessing.Process` running
`syft.server.uvicorn.run_uvicorn`, which writes the server's settings into SYFT_* environment variables (read by
its `app_factory`), detaches stdin, and ends with

    uvicorn.run("syft.server.uvicorn:app_factory", host=..., port=..., factory=True, reload=..., log_level=...)

No certificate option anywhere, and the parent's readiness check polls `http://` (20 failed tries against a TLS
server). The least invasive correct way in, used here:

- the parent starts that same `run_uvicorn` in a process of its own (same arguments as `serve_server` gives it,
  same start method: fork on Linux, spawn on macOS; the target is a module-level function so spawn works), and
  waits for the datasite over HTTPS, verified like any other client;
- in the child only, before `run_uvicorn` runs, `uvicorn.run` is replaced by a function that runs the very
  same app with `ssl_certfile`/`ssl_keyfile` (PySyft's settings, reset handling and app factory stay its own
  code, untouched; nothing in the agent's process is patched);
- the uvicorn server checks the certificate file five times a second, on its own event loop (`on_tick`), and loads
  a renewed certificate into the live SSL context: new connections get it, open ones keep theirs, the datasite
  never restarts. Doing it on the loop means no other thread touches the context while connections are made.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import ssl
import sys
import time
from pathlib import Path

from shared.errors import DataSiteError

log = logging.getLogger(__name__)

RELOAD_EVERY_TICKS = 2  # uvicorn ticks every 0.1 s: look at the certificate file five times a second
STARTUP_FAILURE = 3  # uvicorn's exit code when its server does not start


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


def serve(certfile: str, keyfile: str, syft_kwargs: dict) -> None:
    """The datasite process: PySyft's own `run_uvicorn`, whose final `uvicorn.run` serves over TLS."""
    import uvicorn
    from syft.server import uvicorn as syft_uvicorn

    server_class = _tls_server_class()
    log.setLevel(logging.INFO)  # PySyft raises the level in its server process; reloads belong in the agent's log

    def run_with_tls(app, **options) -> None:
        options.pop("reload", None)  # PySyft's dev-mode reloader: never with TLS (--dev_mode serves plain HTTP)
        options.pop("reload_dirs", None)
        config = uvicorn.Config(app, **options, ssl_certfile=certfile, ssl_keyfile=keyfile)
        server = server_class(config, certfile, keyfile)
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)

    uvicorn.run = run_with_tls  # this process only: it exists to run this one server
    syft_uvicorn.run_uvicorn(**syft_kwargs)


class HTTPSDatasite:
    """The running datasite process; `land()` stops it as PySyft's ServerHandle.land does (terminate, then kill)."""

    def __init__(self, process: multiprocessing.Process, url: str):
        self.process = process
        self.url = url

    def land(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(3)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(3)


def launch(name: str, host: str, port: int, reset: bool, certfile: Path, keyfile: Path, *, probe_host: str,
           ca_file: Path, server_name: str, timeout: float = 60.0) -> HTTPSDatasite:
    """Start the datasite on host:port over HTTPS and return once it answers, verified against `ca_file` for
    `server_name` at probe_host:port; DataSiteError when it exits or does not answer within `timeout` s."""
    from syft.abstract_server import ServerSideType, ServerType
    from syft.deployment_type import DeploymentType

    os.environ["DEV_MODE"] = "False"  # as sy.orchestra.launch(dev_mode=False) sets it
    started = multiprocessing.Event()
    # exactly what serve_server hands run_uvicorn for sy.orchestra.launch(name, port, host, reset, dev_mode=False)
    syft_kwargs = dict(name=name, server_type=ServerType.DATASITE, host=host, port=port, processes=1, reset=reset,
                       dev_mode=False, server_side_type=ServerSideType.HIGH_SIDE, enable_warnings=False,
                       in_memory_workers=True, log_level=None, queue_port=None, create_producer=False, n_consumers=0,
                       association_request_auto_approval=False, background_tasks=False, debug=False,
                       starting_uvicorn_event=started, deployment_type=DeploymentType.PYTHON, db_url=None)
    process = multiprocessing.Process(target=serve, args=(str(certfile), str(keyfile), syft_kwargs),
                                      name=f"datasite {name}")
    process.start()
    url = f"https://{probe_host}:{port}"
    datasite = HTTPSDatasite(process, url)
    try:
        _wait_until_answering(process, url, ca_file, server_name, timeout)
    except BaseException:
        datasite.land()
        raise
    return datasite


def _wait_until_answering(process, url: str, ca_file: Path, server_name: str, timeout: float) -> None:
    import requests

    from shared.syft_tls import DatasiteSession

    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise DataSiteError(f"the datasite process exited with code {process.exitcode} while starting (see the "
                                "log above)")
        with DatasiteSession(ca_file, server_name, connect_retries=0) as session:
            try:
                if session.get(f"{url}/api/v2/metadata", timeout=2).status_code == 200:
                    return
            except requests.exceptions.SSLError as exc:
                raise DataSiteError(f"the datasite at {url} answers with a certificate its own agent does not "
                                    f"trust: {exc}") from exc
            except requests.RequestException as exc:
                last = type(exc).__name__
        time.sleep(0.1)
    raise DataSiteError(f"the datasite did not answer at {url} within {timeout:.0f} s ({last})")

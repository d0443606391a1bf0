"""Logging into a PySyft 0.9.5 datasite over HTTPS, verified against the federation CA (DESIGN §4).

PySyft's HTTP client (`syft.client.client.HTTPConnection`) uses `requests` and passes `verify=True` on each call,
so it trusts the system store, or whatever REQUESTS_CA_BUNDLE names for the whole process. We want neither:
a datasite must present a certificate from the federation CA, for the name it was registered under, and
nothing else in the process (webhooks, the dashboard's own clients) should trust that CA. So each datasite
connection gets its own `requests.Session`:

- its https:// adapter verifies against the CA file only, whatever `verify=` PySyft passes (also under PySyft's
  IGNORE_TLS_ERRORS), and checks the certificate names `server_name` (the registered host, which may differ
  from the address dialled: the agent reaches its own datasite on localhost);
- its http:// adapter refuses: nothing on a verified connection falls back to plain HTTP;
- it ignores the environment (REQUESTS_CA_BUNDLE, proxies).

PySyft's `HTTPConnection.session` returns `session_cache` when set, which covers logins, metadata, the API and
blob transfers; only `make_call` (every API call after login: weights, results) posts with the module-level
`requests.post`, bypassing the session. `_route_api_calls_through_the_session` makes `make_call` use the
connection's own session on connections that carry a `DatasiteSession`, and leaves every other connection alone.
PySyft 0.9.5 also drops the port of an https URL whenever it copies one (`_https_url_class`).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.util.retry import Retry

_patch_lock = threading.Lock()


class PlainHTTPRefused(requests.exceptions.ConnectionError):
    """A verified datasite connection was asked to send something over plain HTTP."""


class _FederationAdapter(HTTPAdapter):
    __attrs__ = HTTPAdapter.__attrs__ + ["ca_file", "server_name", "connect_retries"]

    def __init__(self, ca_file: str, server_name: str | None, connect_retries: int):
        self.ca_file, self.server_name, self.connect_retries = ca_file, server_name, connect_retries
        # as PySyft's own session: retries for connections that fail to open; none for a certificate that fails
        # verification ("other" errors), which would only repeat the same refusal seconds later
        super().__init__(max_retries=Retry(total=connect_retries, connect=connect_retries, other=0,
                                           backoff_factor=0.5))

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        if self.server_name:
            pool_kwargs["assert_hostname"] = self.server_name
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        return super().send(request, stream=stream, timeout=timeout, verify=self.ca_file, cert=cert, proxies=proxies)


class _RefusePlainHTTP(BaseAdapter):
    def send(self, request, *args, **kwargs):
        raise PlainHTTPRefused(f"plain HTTP to a datasite is refused ({request.url.split('?')[0]}): datasites are "
                               "reached over HTTPS only")

    def close(self) -> None:
        pass


class DatasiteSession(requests.Session):
    """HTTPS to one datasite, trusting `ca_file` only (see the module's docstring)."""

    def __init__(self, ca_file: str | Path, server_name: str | None = None, connect_retries: int = 3):
        super().__init__()
        self.trust_env = False
        self.mount("https://", _FederationAdapter(str(ca_file), server_name, connect_retries))
        self.mount("http://", _RefusePlainHTTP())


def _route_api_calls_through_the_session() -> None:
    from syft.client import client as syft_client

    connection_class = syft_client.HTTPConnection
    with _patch_lock:
        if getattr(connection_class.make_call, "_through_session", False):
            return
        original = connection_class.make_call

        def make_call(self, signed_call):
            session = self.session_cache
            if not isinstance(session, DatasiteSession) or self.rtunnel_token:
                return original(self, signed_call)
            # PySyft 0.9.5's make_call, with the connection's session in place of the module-level requests.post.
            # "Connection: close" keeps its one-connection-per-call behaviour: an API call is never sent on a pooled
            # connection the server is closing for idleness, where it would fail and must not be retried (fl_step
            # calls are not idempotent: a plant masks once per attempt)
            response = session.post(str(self.api_url), data=syft_client._serialize(obj=signed_call, to_bytes=True),
                                    headers={**(self.headers or {}), "Connection": "close"})
            if response.status_code != 200:
                raise requests.ConnectionError(f"Failed to fetch metadata. Response returned with code "
                                               f"{response.status_code}")
            return syft_client._deserialize(response.content, from_bytes=True)

        make_call._through_session = True
        connection_class.make_call = make_call


@functools.lru_cache(maxsize=None)
def _https_url_class():
    from syft.types.server_url import ServerURL

    class HTTPSServerURL(ServerURL):
        """PySyft 0.9.5's ServerURL copies itself by re-parsing its text, and `from_url` sets port 443 for every
        https URL: each `with_path` of https://host:8081 would dial :443. This URL's copies keep their port.
        (Never serialized: a connection's URL stays in the client.)"""

        def __copy__(self):
            return type(self)(protocol=self.protocol, host_or_ip=self.host_or_ip, port=self.port, path=self.path,
                              query=self.query)

    return HTTPSServerURL


def login(host: str, port: int, email: str, password: str, *, ca_file: str | Path, server_name: str | None = None):
    """A logged-in PySyft client of the datasite at https://host:port whose certificate chains to `ca_file` and
    names `server_name` (default: `host`). A certificate that does not verify raises requests' SSLError before
    the password is sent; a refused login raises PySyft's SyftException, as `sy.login` does."""
    from syft.client.client import HTTPConnection

    _route_api_calls_through_the_session()
    url = _https_url_class()(protocol="https", host_or_ip=host, port=int(port))
    connection = HTTPConnection(url=url, session_cache=DatasiteSession(ca_file, server_name or host))
    client_type = connection.get_client_type().unwrap()
    # cache=False: PySyft's client cache is keyed by e-mail, password and URL, not by what the connection trusts
    return client_type(connection=connection).login(email=email, password=password, cache=False)


def plain_login(host: str, port: int, email: str, password: str):
    """Plain HTTP, as PySyft does by default: development only (an agent's --dev_mode, DASHBOARD_REQUIRE_TLS=false)."""
    import syft as sy

    return sy.login(url=host, port=port, email=email, password=password)

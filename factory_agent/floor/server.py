"""`--score-port PORT`: a small HTTP endpoint on 127.0.0.1 for the plant's own systems (SCADA/MES adapters).

    POST /score   Content-Type: text/csv (a CSV with a header line), or application/json ({"rows": [{...}, ...]}
                  or a bare list of row objects) -> {"model": {id, sha256, kind}, "threshold", "scores": [{row,
                  [group], [time], probability, prediction}, ...], "alerts_opened": [...], "alerts_cleared": [...]}
    GET /metrics  the agent's Prometheus metrics (factory_agent.floor.metrics)
    GET /health   the model in use and the floor's counts
    GET /alerts   the newest 100 alerts in full (machine, times, probabilities, peak, model, source)
    GET /alerts/<id>  one alert in full: the id a heartbeat reported to the dashboard (DESIGN §10)

It binds to 127.0.0.1 only, whatever --hostname says: it is for programs on the plant's machine. A browser on
that machine cannot be turned against it either: bodies must be text/csv or application/json (a cross-site page
cannot send those without a preflight this server never grants), and the Host header must name loopback (no DNS
rebinding). Bodies are capped (411 without a length, 413 over the cap), and so are the rows per request.
Only the model's columns (and its group and time columns) are kept from a body, as it is parsed: a JSON body's
row count and keys per row are checked object by object, before any frame is built (rows that each name other
keys would otherwise make a rows x keys frame, hundreds of MiB from a few KiB).
Scores sent here are stored and raise alerts like any others."""

from __future__ import annotations

import io
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd

from factory_agent.floor.metrics import AgentMetrics
from factory_agent.floor.scoring import FloorScorer, NoModelYet
from shared.errors import DataError, FederatedLearningError

log = logging.getLogger(__name__)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
MAX_ROW_KEYS = 1024  # keys in one JSON row object (a row's other keys are dropped as it is parsed)
CELL_TYPES = (str, int, float, bool, type(None))


class Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


def host_of(header: str) -> str:
    """The host of a Host header, without its port ("[::1]:8080" -> "[::1]")."""
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if ":" in header else header


def frame_from_body(body: bytes, content_type: str, max_rows: int, columns: frozenset[str]) -> pd.DataFrame:
    """The rows of a CSV or JSON body as a frame of `columns` only (those the body has)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "text/csv":
        try:
            frame = pd.read_csv(io.BytesIO(body), low_memory=False, skipinitialspace=True, nrows=max_rows + 1,
                                usecols=lambda name: str(name).strip() in columns)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(f"the body is not a readable CSV: {exc}") from exc
        frame.columns = [str(c).strip() for c in frame.columns]
    elif kind == "application/json":
        frame = pd.DataFrame.from_records(json_rows(body, max_rows, columns))
    else:
        raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: text/csv or application/json")
    if frame.shape[1] == 0:
        raise DataError(f"the body has none of the model's columns ({', '.join(sorted(columns))})")
    if frame.empty:
        raise DataError("no rows to score")
    if len(frame) > max_rows:
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"{len(frame)} rows; at most {max_rows} per request")
    return frame


def json_rows(body: bytes, max_rows: int, columns: frozenset[str]) -> list[dict]:
    """{"rows": [...]} or a bare list of row objects; each object is checked and cut down to `columns` as the
    parser makes it, so no more than max_rows objects of at most len(columns) keys are ever kept."""
    made = 0

    def row_object(pairs: list[tuple]) -> dict:
        nonlocal made
        made += 1
        if made > max_rows + 1:  # + 1: the {"rows": ...} envelope
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"more than {max_rows} rows; at most {max_rows} per "
                                                               "request")
        if len(pairs) > MAX_ROW_KEYS:
            raise DataError(f"a row object has {len(pairs)} keys; at most {MAX_ROW_KEYS}")
        return {key: value for key, value in pairs if key in columns or key == "rows"}

    try:
        payload = json.loads(body, object_pairs_hook=row_object)
    except (ValueError, RecursionError) as exc:
        raise DataError("the body is not valid JSON") from exc
    rows = payload.get("rows") if isinstance(payload, dict) else payload
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataError('send {"rows": [{column: value, ...}, ...]} or a list of row objects')
    if len(rows) > max_rows:
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"{len(rows)} rows; at most {max_rows} per request")
    if not rows:
        raise DataError("no rows to score")
    for row in rows:
        if "rows" not in columns:
            row.pop("rows", None)
        if not all(isinstance(value, CELL_TYPES) for value in row.values()):
            raise DataError("a row's values must be numbers, strings, true/false or null")
    return rows


class FloorHTTPServer(ThreadingHTTPServer):
    """Binds to 127.0.0.1 only; carries what its requests need."""

    daemon_threads = True

    def __init__(self, port: int, scorer: FloorScorer, metrics: AgentMetrics, max_bytes: int, max_rows: int):
        self.scorer, self.metrics, self.max_bytes, self.max_rows = scorer, metrics, max_bytes, max_rows
        super().__init__(("127.0.0.1", port), FloorHandler)


class FloorHandler(BaseHTTPRequestHandler):
    server: FloorHTTPServer
    server_version = "FactoryFL-floor"

    def log_message(self, fmt, *args):  # the agent's log, at debug level (no request lines at INFO)
        log.debug("loopback %s " + fmt, self.address_string(), *args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, value) -> None:
        self._send(status, json.dumps(value, default=str).encode())

    def _check_host(self) -> None:
        if host_of(self.headers.get("Host") or "") not in LOOPBACK_HOSTS:
            raise Refused(HTTPStatus.FORBIDDEN, "this endpoint answers requests to 127.0.0.1 or localhost only")

    def do_GET(self):  # noqa: N802 (http.server's names)
        try:
            self._check_host()
        except Refused as exc:
            return self._json(exc.status, {"error": str(exc)})
        if self.path == "/metrics":
            return self._send(HTTPStatus.OK, self.server.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        if self.path == "/health":
            return self._json(HTTPStatus.OK, self.server.scorer.heartbeat_fields() or {"released_model": None})
        if self.path == "/alerts":
            return self._json(HTTPStatus.OK, {"alerts": self.server.scorer.store.alerts()})
        if self.path.startswith("/alerts/"):
            wanted = self.path.removeprefix("/alerts/")
            alert = self.server.scorer.store.alert(int(wanted)) if wanted.isascii() and wanted.isdigit() \
                and len(wanted) < 19 else None
            if alert is None:
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"no alert {wanted[:40]!r} at this plant"})
            return self._json(HTTPStatus.OK, alert)
        return self._json(HTTPStatus.NOT_FOUND, {"error": "POST /score, GET /metrics, GET /health, GET /alerts[/<id>]"})

    def _frame(self) -> pd.DataFrame:
        self._check_host()
        if self.path != "/score":
            raise Refused(HTTPStatus.NOT_FOUND, "POST /score")
        schema = self.server.scorer.model().bundle.schema  # NoModelYet before the body is read
        columns = frozenset(c for c in (*schema.input_columns, schema.group_column, schema.time_column) if c)
        length = self.headers.get("Content-Length")
        if not length or not length.isdigit():
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length")
        if int(length) > self.server.max_bytes:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"at most {self.server.max_bytes} bytes per request")
        return frame_from_body(self.rfile.read(int(length)), self.headers.get("Content-Type", ""),
                               self.server.max_rows, columns)

    def do_POST(self):  # noqa: N802
        try:
            batch = self.server.scorer.score(self._frame(), "api")
        except Refused as exc:
            self.close_connection = True
            return self._json(exc.status, {"error": str(exc)})
        except NoModelYet as exc:
            self.close_connection = True  # the body was not read
            return self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
        except FederatedLearningError as exc:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except (ValueError, KeyError) as exc:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": f"{type(exc).__name__}: {exc}"})
        self._json(HTTPStatus.OK, {
            "model": batch.model.report(), "threshold": batch.model.bundle.threshold,
            "scores": json.loads(batch.scores.to_json(orient="records")),
            "alerts_opened": [c.machine for c in batch.changes if c.opened],
            "alerts_cleared": [c.machine for c in batch.changes if not c.opened]})


class ScoringServer:
    def __init__(self, port: int, scorer: FloorScorer, max_bytes: int, max_rows: int):
        self.metrics = AgentMetrics(scorer)
        self.httpd = FloorHTTPServer(port, scorer, self.metrics, max_bytes, max_rows)
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> "ScoringServer":
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="score-endpoint", daemon=True)
        self.thread.start()
        log.info("scoring endpoint on http://127.0.0.1:%d (POST /score, GET /metrics, GET /health, GET /alerts; "
                 "loopback only)", self.port)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

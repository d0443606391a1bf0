"""Every API error is JSON {"error", "detail"} with a 4xx code (DESIGN §4); a 500 is a bug."""

from __future__ import annotations

import logging

from flask import jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from dashboard.errors import status_of
from shared.errors import FederatedLearningError, ValidationError

log = logging.getLogger(__name__)
JSON_PREFIXES = ("/api/",)
# the agents' and the registry's JSON routes outside /api/; only these paths themselves: the plants' pages live under
# /factories/<name> and answer HTML (their forms flash and redirect)
JSON_PATHS = frozenset({"/register_factory", "/heartbeat", "/factories"})


def wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES) or request.path.rstrip("/") in JSON_PATHS


def json_error(status: int, error: str, detail=None):
    resp = jsonify({"error": error, "detail": detail})
    resp.status_code = status
    return resp


def register_error_handlers(app) -> None:
    @app.errorhandler(FederatedLearningError)
    def on_domain_error(exc: FederatedLearningError):
        detail = {"field": exc.field, "reason": exc.message,  # the first problem, and all of them
                  "problems": [{"field": f, "reason": r} for f, r in exc.problems]} \
            if isinstance(exc, ValidationError) else \
            getattr(exc, "detail", None)  # e.g. a re-keying waiting for approval (dashboard.registry.identity)
        if not wants_json():
            return f"{exc}", status_of(exc)
        return json_error(status_of(exc), str(exc), detail)

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException):
        if wants_json():
            return json_error(exc.code or 500, exc.name, exc.description)
        return exc

    @app.errorhandler(OperationalError)
    def on_database_unavailable(exc: OperationalError):
        """A read-only, full or unreachable database: the transaction is rolled back (nothing half-written) and
        the caller is told what is wrong, with 503 so clients retry later."""
        from dashboard.extensions import db

        db.session.rollback()
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        log.error("database unavailable on %s %s: %s", request.method, request.path, reason)
        message = f"the dashboard's database cannot be written or reached: {reason}"
        if wants_json():
            return json_error(503, message, "retry later; the operator has been told in the dashboard log")
        return f"Service unavailable: {message}", 503

    @app.errorhandler(Exception)
    def on_unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return json_error(500, "internal error", "the dashboard logged the details")
        return "Internal error: the dashboard logged the details.", 500

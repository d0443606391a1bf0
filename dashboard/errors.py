"""The dashboard's own errors (the shared hierarchy is shared.errors) and the one table that turns every
FactoryFL error into an HTTP status (dashboard.api.errors answers with it as JSON {"error", "detail"})."""

from __future__ import annotations

from shared.errors import (CommunicationError, ConfigurationError, DataError, ExperimentError, FederatedLearningError,
                           ModelError, SecurityError, ValidationError)


class AddressRefused(ValueError):
    """The hostname may not be used for a plant; the message says why and names the address."""


class Unauthorized(SecurityError):
    """No valid session, API token or heartbeat token."""


class Forbidden(SecurityError):
    """Authenticated, without the role the action needs."""


class RoleChangeRefused(SecurityError):
    """A change of roles that would leave the dashboard without an admin, or similar."""


class OperatorNotFound(FederatedLearningError):
    """No operator with that id."""


class RekeyRequired(SecurityError):
    """A registration under a known plant name that did not prove the plant's identity key."""

    def __init__(self, message: str, detail: dict):
        super().__init__(message)
        self.detail = detail


class PlantDecommissioned(SecurityError):
    """A heartbeat or registration of a decommissioned plant without a fresh one-time enrolment token
    (dashboard.registry.lifecycle)."""


class AlreadyDecommissioned(ConfigurationError):
    """Decommissioning a plant that is decommissioned already."""


class NotFound(ExperimentError):
    """No experiment with that id."""


class ReleaseNotFound(ExperimentError):
    """No release with that id."""


class NothingToRelease(ExperimentError):
    """The experiment has no round that can be released (none completed, or none with validation metrics)."""


class PlantNotFound(NotFound):
    """No plant of that name: none registered, none ever deployed a model."""


class NothingToRollBack(NothingToRelease):
    """A roll back, pin or deploy that cannot be done: no earlier release, no assigned release, or the
    experiment is cancelled (409 with the reason)."""


class VersionConflict(ConfigurationError):
    """An agent of a version this dashboard cannot drive."""


class IdentityNotFound(ConfigurationError):
    """No enrolment token or pending re-key with that id."""


class InsecureConfiguration(ConfigurationError):
    """The dashboard refuses to run in production with a missing, published or weak secret."""

    def __init__(self, problems: list[str]):
        super().__init__("the dashboard refuses to start in production (DASHBOARD_ENV=production or gunicorn):\n"
                         + "\n".join(problems))
        self.problems = problems


class FederationCAUnavailable(ConfigurationError):
    """The CA cannot sign now (its key does not decrypt, its folder is incomplete): the dashboard's problem,
    so 503 and the agent retries; the operator reads the reason in the dashboard's log."""


class RegistryUnavailable(CommunicationError):
    """The registry cannot store heartbeats now (its database is full or unreachable): retry later."""


class TLSRefused(CommunicationError):
    """A datasite's certificate did not verify against the federation CA, or plain HTTP was refused."""


class RoundFailed(FederatedLearningError):
    """A round cannot complete; `state` holds what it got so far (the incoming model's evaluation may still be
    recorded), `budget_refusals` the plants whose privacy ledger refused to train. Never reaches HTTP."""

    def __init__(self, reason: str, state, budget_refusals: list[str] | None = None):
        super().__init__(reason)
        self.state = state
        self.budget_refusals = budget_refusals or []


# Every error's HTTP status: the first class in this table the error is an instance of (most specific first).
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Unauthorized, 401), (Forbidden, 403), (RoleChangeRefused, 409), (RekeyRequired, 409),
    (PlantDecommissioned, 403), (AlreadyDecommissioned, 409),
    (NotFound, 404), (ReleaseNotFound, 404), (OperatorNotFound, 404), (IdentityNotFound, 404),
    (NothingToRelease, 409),
    (VersionConflict, 409), (FederationCAUnavailable, 503), (RegistryUnavailable, 503),
    (SecurityError, 403),
    (ValidationError, 400), (DataError, 400), (ConfigurationError, 400), (ModelError, 400),
    (ExperimentError, 409),
    (CommunicationError, 502),
    (FederatedLearningError, 400),
)


def status_of(exc: Exception) -> int:
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 500)

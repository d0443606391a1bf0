"""One exception hierarchy for FactoryFL (seed 003).

The dashboard turns these into JSON with a 4xx code; the agent into one line on stderr
and a non-zero exit code.
"""


class FederatedLearningError(Exception):
    """Base of every FactoryFL error."""


class ModelError(FederatedLearningError):
    """A model cannot be built, loaded, saved or run (shape mismatch, bad bundle)."""


class DataSiteError(FederatedLearningError):
    """The plant's PySyft datasite cannot be launched, configured or used."""


class CommunicationError(FederatedLearningError):
    """A peer cannot be reached or answered badly (dashboard, datasite, network)."""


class AggregationError(FederatedLearningError):
    """Updates cannot be combined (too few, incompatible, protocol failure)."""


class ExperimentError(FederatedLearningError):
    """An experiment's configuration or lifecycle is invalid."""


class ConfigurationError(FederatedLearningError):
    """A setting is missing, malformed or contradicts another one."""


class SecurityError(FederatedLearningError):
    """Authentication, authorisation, privacy budget or integrity failure."""


class DataError(FederatedLearningError):
    """Input data is unusable; the message names the column and row where it can."""


class ProtocolError(SecurityError):
    """A message between the dashboard and a plant is malformed or breaks the closed protocol."""


class PolicyRefusal(SecurityError):
    """A plant's own policy refuses a request (DESIGN §9): the message says which rule and why."""


class ValidationError(ExperimentError):
    """A setting or request field is missing, malformed or contradicts another; `field` names it (a nested one
    as "privacy.epsilon"), `message` says why; `problems` holds every one found in the same body. The API
    answers 400 with them."""

    def __init__(self, field_name: str, message: str, problems: list[tuple[str, str]] | None = None):
        more = f" (and {len(problems) - 1} more problem(s))" if problems and len(problems) > 1 else ""
        super().__init__(f"{field_name}: {message}{more}")
        self.field = field_name
        self.message = message
        self.problems = problems or [(field_name, message)]  # every (field, message) found, the first above

    @classmethod
    def of(cls, found: list["ValidationError"]) -> "ValidationError":
        """One error carrying all of a body's problems (the form shows each under its field)."""
        problems = [pair for error in found for pair in error.problems]
        return cls(*problems[0], problems)


class MembershipError(SecurityError):
    """A membership certificate or revocation list does not check against the federation's key (shared.membership),
    or the administrator's files are missing or malformed."""


class VerificationError(SecurityError):
    """A model a request names is not one the plant can derive itself from the experiment's public seed and the
    signed transcripts of its secure sums (shared.verification)."""

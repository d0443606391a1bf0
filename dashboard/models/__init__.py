"""Database models (shared/models.py holds the neural networks)."""

from dashboard.models.audit import AuditEvent, record_audit
from dashboard.models.experiments import Experiment, ModelVersion, Round, RoundResult
from dashboard.models.factories import Factory, Heartbeat
from dashboard.models.identity import EnrolmentToken, FactoryRekey, SeenSignature
from dashboard.models.membership import RevocationRecord
from dashboard.models.operators import ApiToken, Operator
from dashboard.models.personalization import PersonalResult
from dashboard.models.releases import Deployment, FloorSample, Release

__all__ = ["ApiToken", "AuditEvent", "Deployment", "EnrolmentToken", "Experiment", "Factory", "FactoryRekey", "FloorSample",
           "Heartbeat", "ModelVersion", "Operator", "PersonalResult", "Release", "RevocationRecord", "Round", "RoundResult", "SeenSignature", "record_audit"]

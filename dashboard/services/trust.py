"""Refuse, before anything is stored or started, an experiment that its plants which do not trust this dashboard
would refuse themselves (issue 24, item 5): the rule is shared.experiment.trust's, read against the registry
here, for the API's create and start and the web form alike (dashboard.services.experiments calls it)."""

from __future__ import annotations

import logging

from dashboard.extensions import db
from dashboard.models import Factory
from dashboard.services.preflight import PlantFacts
from shared.enums import FactoryStatus
from shared.errors import ValidationError
from shared.experiment import parse_experiment
from shared.experiment.config import ExperimentConfig
from shared.experiment.trust import PlantTrust, refusals, unverifiable

log = logging.getLogger(__name__)
SERVING = (FactoryStatus.ONLINE.value, FactoryStatus.BUSY.value)


def selected_plants(config: ExperimentConfig) -> list[PlantTrust]:
    """The registered plants the experiment's rounds may draw: those it lists, or with "all" every plant online now
    (as dashboard.orchestration.selection). A listed name the registry does not hold yet is not judged here (its
    mode is not known before it registers); `start` checks again, and the plant refuses what its policy refuses."""
    query = db.select(Factory).where(Factory.decommissioned_at.is_(None)).order_by(Factory.name)
    query = query.where(Factory.status.in_(SERVING)) if config.factories == "all" else \
        query.where(Factory.name.in_(config.factories))
    return [f.trust for f in db.session.scalars(query)]


def plant_facts() -> list[PlantFacts]:
    """Every registered plant as the pre-flight check reads it (dashboard.services.preflight): status, trust, policy,
    data, and whether an admin decommissioned it (dashboard.registry.lifecycle)."""
    factories = list(db.session.scalars(db.select(Factory).order_by(Factory.name)))
    return [PlantFacts(f.name, f.status, f.trust, f.policy if isinstance(f.policy, dict) else {},
                       f.capabilities if isinstance(f.capabilities, dict) else {},
                       decommissioned=f.decommissioned_at is not None) for f in factories]


def secure_by_default(body: dict, config: ExperimentConfig) -> ExperimentConfig:
    """The settings with secure aggregation on when the body does not name it and a selected plant does not trust
    this dashboard (such a plant computes only on models it verified, each from a secure sum: it refuses a plain
    round), unless the body's own choices need single updates (a robust rule, central DP, SCAFFOLD, one plant per
    round): then the settings stay as parsed and check_trust names why. A body that names secure_aggregation gets
    exactly what it names."""
    if "secure_aggregation" in body or config.secure_aggregation:
        return config
    if all(plant.trusts for plant in selected_plants(config)):
        return config
    try:
        secure = parse_experiment({**body, "secure_aggregation": True})
    except ValidationError:
        return config  # a choice that contradicts secure aggregation: the trust refusal below names it
    if unverifiable(secure):
        return config
    log.info("experiment %r: secure aggregation on by default (a selected plant does not trust the dashboard)",
             config.name)
    return secure


def check_trust(config: ExperimentConfig) -> None:
    """ValidationError (400, field "factories") naming the selected plants that do not trust this dashboard and
    their policy, when they would refuse this experiment; nothing otherwise."""
    found = refusals(config, selected_plants(config))
    if found:
        log.info("experiment %r refused: %s", config.name, found[0].message)
        raise ValidationError.of(found)

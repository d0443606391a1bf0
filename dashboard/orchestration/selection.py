"""The select stage: which plants may take part in an experiment's next round, and (at sampling_rate q < 1)
which of them are drawn."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from dashboard.extensions import db
from dashboard.models import Experiment, Factory
from dashboard.orchestration import budget
from dashboard.orchestration.channel import Participant
from dashboard.orchestration.syft_clients import PlantAddress, transport_of
from dashboard.registry import membership
from dashboard.auth.security import decrypt
from shared.enums import FactoryStatus, ModelType
from shared.privacy.sampling import poisson_sample, probability_of_at_least

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Eligible:
    plants: list[Factory]
    unsuited: list[str]  # online, but without what the experiment needs


def eligible(experiment: Experiment) -> Eligible:
    """Online (or busy) plants of the experiment, not decommissioned, that can train its model (and mask, under
    secure aggregation)."""
    config = experiment.settings
    query = db.select(Factory).where(Factory.status.in_([FactoryStatus.ONLINE.value, FactoryStatus.BUSY.value]),
                                     Factory.decommissioned_at.is_(None))  # retired plants leave every cohort
    if config.factories != "all":
        query = query.where(Factory.name.in_(config.factories))
    factories = db.session.scalars(query.order_by(Factory.name)).all()
    fit = [f for f in factories
           if config.model_type in (f.capabilities or {}).get("supported_models", ModelType.tabular())
           and (f.capabilities or {}).get("schema")
           and (f.secagg_public_key or not config.secure_aggregation)]
    return Eligible(fit, [f.name for f in factories if f not in fit])


def waiting_message(experiment: Experiment, found: Eligible) -> str:
    config = experiment.settings
    needs = ("a secure-aggregation key or " if config.secure_aggregation else "") + \
        f"the group/time columns a {config.model_type} model needs"
    unsuited = f"; online but without {needs}: {', '.join(found.unsuited)}" if found.unsuited else ""
    return (f"waiting for plants: {len(found.plants)} of at least {config.min_factories} online "
            f"({', '.join(f.name for f in found.plants) or 'none'}){unsuited}")


def participant(factory: Factory) -> Participant:
    address = PlantAddress(name=factory.name, hostname=factory.hostname, port=factory.port,
                           email=factory.orchestrator_email,
                           password=decrypt(factory.orchestrator_password_enc),
                           registered_at=factory.registered_at.isoformat(), transport=transport_of(factory))
    return Participant(name=factory.name, public_key=factory.secagg_public_key, address=address,
                       certificate=membership.certificate(factory))


def draw(experiment: Experiment, factories: list[Factory], sampler: random.Random) -> tuple[list[Factory] | None, str]:
    """This round's plants: every eligible one, or at sampling_rate q < 1 a Poisson draw (each plant
    independently with probability q, from the CSPRNG). (None, why) when no round runs this tick."""
    config = experiment.settings
    rate = config.sampling_rate
    if rate >= 1.0:
        return factories, ""
    step = budget.privacy_step(experiment)
    accounted = step is not None and step[0] == "draw"
    if accounted:
        if not budget.allows(experiment, step):
            return None, ""
        budget.account_draw(experiment, step)
    drawn = poisson_sample(factories, rate, sampler)
    if len(drawn) >= config.min_factories:
        return drawn, ""
    chance = probability_of_at_least(config.min_factories, len(factories), rate)
    return None, (f"drew {len(drawn)} of {len(factories)} eligible plants at sampling rate {rate} "
                  f"({', '.join(f.name for f in drawn) or 'none'}), fewer than min_factories "
                  f"{config.min_factories}: no round this tick, a new draw at the next "
                  f"(a draw reaches {config.min_factories} with probability {chance:.0%})"
                  + ("; every draw counts against the privacy budget" if accounted else ""))

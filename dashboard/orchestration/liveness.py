"""Liveness: a factory is offline after 3 missed heartbeat intervals (rq / Flower SuperNode style)."""

from __future__ import annotations

import logging
from datetime import timedelta

from dashboard.extensions import db
from dashboard.models import Factory, Heartbeat
from dashboard.models.base import utcnow
from shared.enums import FactoryStatus

log = logging.getLogger(__name__)
KEEP_HEARTBEATS = 500  # per factory, for sparklines and history


def mark_offline(missed: int = 3) -> list[str]:
    now = utcnow()
    changed = []
    for factory in db.session.scalars(db.select(Factory).where(Factory.status != FactoryStatus.OFFLINE.value)):
        deadline = timedelta(seconds=missed * factory.heartbeat_interval)
        if factory.last_heartbeat is None or now - factory.last_heartbeat > deadline:
            factory.status = FactoryStatus.OFFLINE.value
            changed.append(factory.name)
            log.warning("factory %s is offline: no heartbeat for %d intervals", factory.name, missed)
    db.session.commit()
    return changed


def prune_heartbeats(keep: int = KEEP_HEARTBEATS) -> None:
    for factory_id in db.session.scalars(db.select(Factory.id)):
        cutoff = db.session.scalar(db.select(Heartbeat.id).filter_by(factory_id=factory_id)
                                   .order_by(Heartbeat.id.desc()).offset(keep).limit(1))
        if cutoff is not None:
            db.session.execute(db.delete(Heartbeat).where(Heartbeat.factory_id == factory_id,
                                                          Heartbeat.id <= cutoff))
    db.session.commit()

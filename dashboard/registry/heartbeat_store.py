"""What the heartbeat buffer (dashboard.registry.heartbeats) stores and how: the accepted heartbeat, the per-process cache
of plants' token digests, and the write of one batch (one multi-row INSERT, one UPDATE per plant)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from dashboard.extensions import db
from dashboard.models import Factory, Heartbeat
from shared.enums import FactoryStatus

log = logging.getLogger(__name__)
CACHE_LIMIT = 100_000  # plants whose token digest a process keeps
BULK_RELOAD_S = 60.0  # a cache miss loads every plant at most this often (else: that one plant)


@dataclass(frozen=True)
class AcceptedHeartbeat:
    factory_id: int
    received_at: datetime
    status: str  # as the plant reported it (stopping included)
    cpu_usage: float | None
    memory_usage: float | None
    disk_usage: float | None
    active_experiments: list = field(default_factory=list)
    pending_code_requests: list | None = None  # None: unchanged since the registry last stored it

    def row(self) -> dict:
        return {"factory_id": self.factory_id, "received_at": self.received_at, "status": self.status,
                "cpu_usage": self.cpu_usage, "memory_usage": self.memory_usage, "disk_usage": self.disk_usage}

    def factory_values(self) -> dict:
        status = FactoryStatus.OFFLINE.value if self.status == FactoryStatus.STOPPING.value else self.status
        return {"b_id": self.factory_id, "b_at": self.received_at, "last_heartbeat": self.received_at,
                "status": status, "active_experiments": self.active_experiments[:50],
                "current_load": {"cpu_usage": self.cpu_usage, "memory_usage": self.memory_usage,
                                 "disk_usage": self.disk_usage}}


@dataclass
class CachedPlant:
    factory_id: int
    name: str
    token_digest: str
    heartbeat_interval: float
    pending_code_requests: list | None
    decommissioned_at: datetime | None = None  # its heartbeat is refused (dashboard.registry.lifecycle)


class TokenCache:
    """name -> CachedPlant for this process (dashboard.registry.heartbeats: when an entry is dropped). A miss loads every
    plant at once (at most once a minute): a process that starts, or a worker gunicorn restarts, has a warm cache
    after one query instead of one query per plant."""

    def __init__(self) -> None:
        self._by_name: dict[str, CachedPlant] = {}
        self._name_of: dict[int, str] = {}
        self._lock = threading.Lock()
        self._loaded_at = -BULK_RELOAD_S

    def get(self, name: str, refresh: bool = False) -> CachedPlant | None:
        if not refresh and (plant := self._by_name.get(name)) is not None:
            return plant
        if not refresh and time.monotonic() - self._loaded_at >= BULK_RELOAD_S:
            self._loaded_at = time.monotonic()
            self._store(db.session.execute(_PLANTS.limit(CACHE_LIMIT)).all())
            if (plant := self._by_name.get(name)) is not None:
                return plant
        rows = db.session.execute(_PLANTS.where(Factory.name == name)).all()
        if not rows:
            self.forget(name)
            return None
        self._store(rows)
        return self._by_name.get(name)

    def _store(self, rows) -> None:
        with self._lock:
            if len(self._by_name) + len(rows) > CACHE_LIMIT:
                self._by_name.clear()
                self._name_of.clear()
            for row in rows:
                self._by_name[row.name] = CachedPlant(row.id, row.name, row.heartbeat_token_hash,
                                                      row.heartbeat_interval, row.pending_code_requests,
                                                      row.decommissioned_at)
                self._name_of[row.id] = row.name

    def forget(self, name: str) -> None:
        with self._lock:
            plant = self._by_name.pop(name, None)
            if plant is not None:
                self._name_of.pop(plant.factory_id, None)

    def revalidate(self, digests: dict[int, str]) -> None:
        """Drop the plants whose stored token digest is no longer the cached one."""
        with self._lock:
            for factory_id, digest in digests.items():
                name = self._name_of.get(factory_id)
                plant = self._by_name.get(name) if name is not None else None
                if plant is not None and plant.token_digest != digest:
                    del self._by_name[name]
                    del self._name_of[factory_id]


_PLANTS = db.select(Factory.id, Factory.name, Factory.heartbeat_token_hash, Factory.heartbeat_interval,
                    Factory.pending_code_requests, Factory.decommissioned_at)


def write_batch(beats: list[AcceptedHeartbeat]) -> dict[int, str]:
    """One transaction: the heartbeats of plants that still exist (one multi-row INSERT per 1,000 rows), then one
    UPDATE per plant with its latest heartbeat. Returns the plants' current token digests (for the cache)."""
    ids = sorted({b.factory_id for b in beats})
    digests = dict(db.session.execute(db.select(Factory.id, Factory.heartbeat_token_hash)
                                      .where(Factory.id.in_(ids))).all())
    kept = [b for b in beats if b.factory_id in digests]
    if len(kept) < len(beats):
        log.warning("%d heartbeats of plants removed meanwhile were not stored", len(beats) - len(kept))
    if kept:  # SQLAlchemy's "insertmanyvalues": multi-row INSERT statements of up to 1,000 rows, compiled once
        db.session.connection().execute(db.insert(Heartbeat.__table__), [b.row() for b in kept])
    latest: dict[int, dict] = {}
    pending: dict[int, dict] = {}
    for beat in kept:  # in arrival order: the last one of a plant wins
        latest[beat.factory_id] = beat.factory_values()
        if beat.pending_code_requests is not None:
            pending[beat.factory_id] = {"b_id": beat.factory_id, "b_at": beat.received_at,
                                        "pending_code_requests": beat.pending_code_requests}
    # in the order of the plants' ids, in every process: two workers' writes never wait for each other in a cycle
    _update_latest([latest[i] for i in sorted(latest)])
    _update_latest([pending[i] for i in sorted(pending)])
    db.session.commit()
    return digests


def _update_latest(values: list[dict]) -> None:
    """One UPDATE per plant (Core executemany; the keys that name columns are the SET clause)."""
    if values:
        table = Factory.__table__
        newer = db.or_(table.c.last_heartbeat.is_(None), table.c.last_heartbeat <= db.bindparam("b_at"))
        # a heartbeat accepted just before its plant was decommissioned does not make it look online again
        db.session.connection().execute(db.update(table).where(table.c.id == db.bindparam("b_id"), newer,
                                                               table.c.decommissioned_at.is_(None)), values)

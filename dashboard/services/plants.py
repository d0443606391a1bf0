"""The registered plants (factories) as operators read them: the listing (GET /factories and the factories page),
each plant's recent CPU, the experiments it takes part in, its activity (heartbeats, round results, dropouts,
reputation), the connectivity check and the floor history (DESIGN §4, §10).

Registration and heartbeats (the write path) are dashboard.api.factories and dashboard.registry.heartbeats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from dashboard.extensions import db
from dashboard.models import Experiment, Factory, FloorSample, Heartbeat, Round, RoundResult, record_audit
from dashboard.models.base import utcnow
from shared.enums import ExperimentStatus, FactoryStatus

ACTIVE = (ExperimentStatus.RUNNING.value, ExperimentStatus.PAUSED.value)
STATUSES = (FactoryStatus.ONLINE.value, FactoryStatus.BUSY.value, FactoryStatus.OFFLINE.value,
            FactoryStatus.ERROR.value)


@dataclass(frozen=True)
class PlantActivity:
    """What the plant's page shows under its details: newest first."""

    heartbeats: list[Heartbeat]
    results: list[tuple[RoundResult, Round, Experiment]]  # its own result in each round it trained
    dropouts: list[tuple[Round, Experiment]]  # rounds it was asked to join and dropped out of
    reputation: list[tuple[Experiment, Round, float | None]]  # its reputation after each round that tracked it


@dataclass(frozen=True)
class ConnectivityCheck:
    outcome: str  # reachable | refused | what syft_clients.check_login reports
    message: str

    @property
    def reachable(self) -> bool:
        return self.outcome == "reachable"


def _read_your_writes() -> None:
    """This process's buffered heartbeats are written first (dashboard.registry.heartbeats), so that what a plant just
    reported shows."""
    from dashboard.registry import heartbeats

    heartbeats.buffer_of(current_app).flush()


def plant_named(name: str) -> Factory | None:
    _read_your_writes()
    return db.session.scalar(db.select(Factory).filter_by(name=name))


def all_plants() -> list[Factory]:
    _read_your_writes()
    return list(db.session.scalars(db.select(Factory).order_by(Factory.name)).all())


def plants_by_open_alerts() -> list[Factory]:
    """Every plant, the most open alerts first (plants that never reported any last)."""
    _read_your_writes()
    return list(db.session.scalars(db.select(Factory).order_by(Factory.alerts_open.desc().nulls_last(),
                                                               Factory.name)).all())


def listing() -> list[dict]:
    """GET /factories."""
    return [f.to_dict() for f in all_plants()]


def status_counts(plants: list[Factory]) -> dict[str, int]:
    """How many plants are in each status; decommissioned plants apart (and only when there are any)."""
    counts = {s: sum(f.status == s and not f.decommissioned for f in plants) for s in STATUSES}
    retired = sum(f.decommissioned for f in plants)
    return {**counts, "decommissioned": retired} if retired else counts


def recent_cpu(plants: list[Factory], points: int = 30) -> dict[int, list[float | None]]:
    """The last heartbeats' CPU of every plant, in one query (no N+1 on a page of 200 plants)."""
    if not plants:
        return {}
    longest = max(f.heartbeat_interval for f in plants)
    since = utcnow() - timedelta(seconds=longest * points * 1.5)
    rows = db.session.execute(db.select(Heartbeat.factory_id, Heartbeat.cpu_usage)
                              .where(Heartbeat.received_at >= since).order_by(Heartbeat.id)).all()
    series: dict[int, list[float | None]] = {}
    for factory_id, cpu in rows:
        series.setdefault(factory_id, []).append(cpu)
    return {k: v[-points:] for k, v in series.items()}


def experiments_by_plant(plants: list[Factory]) -> dict[str, list[Experiment]]:
    """The running and paused experiments each plant takes part in (an experiment over "all": every plant)."""
    active = db.session.scalars(db.select(Experiment).where(Experiment.status.in_(ACTIVE))).all()
    out: dict[str, list[Experiment]] = {}
    for e in active:
        names = [f.name for f in plants if not f.decommissioned] if e.config["factories"] == "all" \
            else e.config["factories"]
        for name in names:
            out.setdefault(name, []).append(e)
    return out


def plant_activity(plant: Factory) -> PlantActivity:
    name = plant.name
    beats = db.session.scalars(db.select(Heartbeat).filter_by(factory_id=plant.id)
                               .order_by(Heartbeat.id.desc()).limit(60)).all()
    results = db.session.execute(
        db.select(RoundResult, Round, Experiment).join(Round, RoundResult.round_id == Round.id)
        .join(Experiment, Round.experiment_id == Experiment.id).where(RoundResult.factory_name == name)
        .order_by(Round.id.desc()).limit(100)).all()
    recent = db.session.execute(db.select(Round, Experiment).join(Experiment)
                                .order_by(Round.id.desc()).limit(500)).all()
    dropouts = [(r, e) for r, e in recent if name in (r.dropouts or {})][:50]
    reputation = [(e, r, (r.aggregation or {}).get("reputation", {}).get(name)) for r, e in recent
                  if name in ((r.aggregation or {}).get("reputation") or {})][:50]
    return PlantActivity(list(beats), list(results), dropouts, reputation)


def check_connectivity(plant: Factory, actor: str) -> ConnectivityCheck:
    """Log into the plant's datasite with the stored orchestrator account; audited. Never a port scanner: the
    registration's address rules are checked again first (DNS may have changed since)."""
    from dashboard.orchestration.syft_clients import check_login, transport_of
    from dashboard.registry.addresses import AddressRefused, check_plant_host, check_plant_port
    from dashboard.auth.security import decrypt

    try:
        check_plant_host(plant.hostname, current_app.config["ALLOW_PRIVATE_PLANTS"])
        check_plant_port(plant.port)
    except AddressRefused as exc:
        outcome, message = "refused", str(exc)
    else:
        outcome, message = check_login(plant.name, plant.hostname, plant.port, plant.orchestrator_email,
                                       decrypt(plant.orchestrator_password_enc), transport_of(plant))
    record_audit(actor, "factory.connectivity_check", plant.name, outcome=outcome, message=message)
    db.session.commit()
    return ConnectivityCheck(outcome, message)


def floor_history(factory_ids: list[int], points: int = 200) -> dict[int, list[dict]]:
    """The last `points` floor samples of each plant, oldest first."""
    out: dict[int, list[dict]] = {}
    for factory_id in factory_ids:
        rows = db.session.scalars(db.select(FloorSample).filter_by(factory_id=factory_id)
                                  .order_by(FloorSample.id.desc()).limit(points)).all()
        out[factory_id] = [r.to_dict() for r in reversed(rows)]
    return out

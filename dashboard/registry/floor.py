"""The plant floor's side of the heartbeat (DESIGN §10).

- `on_heartbeat` is the heartbeat hook: it stores what the plant reports from its floor (the model it scores
  with, only when that is a release this plant may use: one that exists and lists it; scored rows, open alerts,
  alerts ever opened and the newest alerts by id, drift and its baseline), keeps a small history for the charts
  (read back by dashboard.services.plants.floor_history), calls the webhook when alerts were opened since the last
  beat (`alert.opened`, counting those opened and cleared in between) or the drift ratio crossed into "drifted"
  (`drift.high`, dashboard.models.drift), and answers which released model the plant should use (`release_for`:
  the one it is assigned, decision 0022).
- Releasing a model, the registry and a release's bytes are dashboard.services.models; deploying, rolling back
  and pinning are dashboard.services.deployments, which calls `forget_assignments` so that this process's
  heartbeats answer with the change at once.
"""

from __future__ import annotations

import logging
import time

from flask import current_app

from dashboard.extensions import db
from dashboard.models import Deployment, Factory, FloorSample, Release
from dashboard.models.base import utcnow
from dashboard.models.drift import DriftReading, crossed_into_drift
from dashboard.webhooks.sender import WebhookEvent, notify_after_commit
from shared.protocol.registry import FloorReport, ReportedModel

log = logging.getLogger(__name__)
KEEP_SAMPLES = 500  # per plant, for the charts
PRUNE_EVERY = 50  # samples inserted between two prunings (by id)
ASSIGNED_CACHE = "factoryfl_assigned_releases"
ASSIGNED_CACHE_SECONDS = 1.0  # heartbeats read the assignments at most once a second per process
CLOCK_SKEW = 300.0  # seconds a plant's clock may run ahead of the dashboard's
REFUSED_CLAIMS = "factoryfl_refused_release_claims"  # plant id -> the last claim logged as refused


def release_for(name: str) -> dict:
    """The heartbeat answer's part: the release this plant is assigned (its newest deployment,
    dashboard.services.deployments), or None."""
    assigned = _assignments().get(name)
    if assigned is None:
        return {"released_model": None}
    model_id, digest, size = assigned
    return {"released_model": {"id": model_id, "sha256": digest, "size": size}}


def forget_assignments() -> None:
    """After a deploy, roll back or pin: this process's heartbeats read the assignments again."""
    current_app.extensions.pop(ASSIGNED_CACHE, None)


def _assignments() -> dict[str, tuple]:
    """Plant -> (id, sha256, size) of the release its newest deployment names; cached for a second (another
    worker's deploy reaches this one's heartbeats within that second)."""
    cached = current_app.extensions.get(ASSIGNED_CACHE)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    newest = db.select(db.func.max(Deployment.id)).group_by(Deployment.factory_name)
    rows = {name: (model_id, digest, size) for name, model_id, digest, size in db.session.execute(
        db.select(Deployment.factory_name, Release.id, Release.sha256, Release.size)
        .join(Release, Release.id == Deployment.release_id).where(Deployment.id.in_(newest)))}
    current_app.extensions[ASSIGNED_CACHE] = (time.monotonic() + ASSIGNED_CACHE_SECONDS, rows)
    return rows


# --- the heartbeat hook ---------------------------------------------------------------------------------------
def on_heartbeat(factory_id: int, name: str, report: FloorReport | None) -> dict:
    """Store the plant's floor report (in the heartbeat's transaction); answer its released model."""
    if report is not None:
        record_report(factory_id, name, report)
    return release_for(name)


def record_report(factory_id: int, name: str, report: FloorReport) -> None:
    """Store what changed, with a history sample; new alerts or a drift crossing call the webhook after commit."""
    stored = db.session.execute(db.select(
        Factory.released_model_id, Factory.released_model_sha256, Factory.released_model_kind, Factory.scored_rows,
        Factory.alerts_open, Factory.drift, Factory.drift_baseline, Factory.alerts_opened, Factory.recent_alerts)
        .where(Factory.id == factory_id)).one()
    model = checked_model(factory_id, name, report.released_model, stored)
    values = {"scored_rows": report.scored_rows, "alerts_open": report.alerts_open, "drift": report.drift,
              "drift_baseline": report.drift_baseline, "alerts_opened": report.alerts_opened,
              "recent_alerts": None if report.alerts is None else [_received(a.to_wire()) for a in report.alerts],
              "released_model_id": model.id if model else None,
              "released_model_sha256": model.sha256 if model else None,
              "released_model_kind": model.kind if model else None}
    if all(getattr(stored, key) == value for key, value in values.items()):
        return
    db.session.execute(db.update(Factory).where(Factory.id == factory_id).values(**values))
    counts = ("scored_rows", "alerts_open", "drift")
    if any(getattr(stored, key) != values[key] for key in counts):
        sample = db.session.execute(db.insert(FloorSample).values(factory_id=factory_id, at=utcnow(),
                                                                  **{k: values[k] for k in counts}))
        sample_id = sample.inserted_primary_key[0] if sample.inserted_primary_key else None
        if sample_id and sample_id % PRUNE_EVERY == 0:
            prune_samples(factory_id)
    opened = new_alerts(stored, report)
    if opened:
        known = {a.get("id") for a in stored.recent_alerts or () if isinstance(a, dict)}
        notify_after_commit(db.session(), WebhookEvent("alert.opened", name, {
            "opened": opened, "alert_ids": [a.id for a in report.alerts or () if a.id not in known],
            "alerts_open": report.alerts_open, "previously_open": stored.alerts_open or 0,
            "scored_rows": report.scored_rows, "drift": report.drift,
            "released_model": model.id if model else None}))
    before, after = DriftReading(stored.drift, stored.drift_baseline), DriftReading(report.drift, report.drift_baseline)
    if crossed_into_drift(before, after):
        notify_after_commit(db.session(), WebhookEvent("drift.high", name, {
            **after.to_dict(), "released_model": model.id if model else None}))


def _received(alert: dict) -> dict:
    """An alert's times as stored: no later than now plus CLOCK_SKEW, so that a plant cannot date its alerts in the
    future to stay on top of the alerts page (sorted by opening time) above every other plant's (review)."""
    latest = time.time() + CLOCK_SKEW
    return {**alert, **{k: min(alert[k], latest) for k in ("opened_at", "cleared_at") if alert.get(k) is not None}}


def new_alerts(stored, report: FloorReport) -> int:
    """Alerts opened since the last heartbeat: by the plant's count of alerts ever opened (those opened and cleared
    between two beats included), else (an agent that does not count them, or its first count) by the rise of its
    open alerts. A count that went down is a plant whose floor store began again: all it counts are new."""
    if report.alerts_opened is not None and stored.alerts_opened is not None:
        rise = report.alerts_opened - stored.alerts_opened
        return rise if rise >= 0 else report.alerts_opened
    if report.alerts_open is None:
        return 0
    return max(report.alerts_open - (stored.alerts_open or 0), 0)


def checked_model(factory_id: int, name: str, model: ReportedModel | None, stored) -> ReportedModel | None:
    """The reported model if it is a release this plant may use (it exists, lists the plant, and a global model
    has its SHA-256), else None, logged once per claim. What is stored was checked when it was stored."""
    if model is None or (stored.released_model_id, stored.released_model_sha256, stored.released_model_kind) == \
            (model.id, model.sha256, model.kind):
        return model
    release = db.session.execute(db.select(Release.sha256, Release.plants).where(Release.id == model.id)).first()
    if release is not None and name in (release.plants or ()) and \
            (model.kind != "global" or release.sha256 == model.sha256):
        return model
    logged = current_app.extensions.setdefault(REFUSED_CLAIMS, {})
    if logged.get(factory_id) != (model.id, model.sha256, model.kind):
        logged[factory_id] = (model.id, model.sha256, model.kind)
        log.warning("plant %s reports scoring with model #%d (sha256 %s…, %s), not a release %s may use: "
                    "stored as no model", name, model.id, model.sha256[:12], model.kind, name)
    return None


def prune_samples(factory_id: int, keep: int = KEEP_SAMPLES) -> None:
    cutoff = db.session.scalar(db.select(FloorSample.id).filter_by(factory_id=factory_id)
                               .order_by(FloorSample.id.desc()).offset(keep).limit(1))
    if cutoff is not None:
        db.session.execute(db.delete(FloorSample).where(FloorSample.factory_id == factory_id,
                                                        FloorSample.id <= cutoff))


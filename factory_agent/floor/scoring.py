"""Scoring at the plant: one batch of new rows through the plant's model with shared.predict's own function (the
same encoding, scaling, windows and threshold as `python -m shared.predict`), then the batch's alerts and drift
totals into the plant's store. Used by the watch folder, the live stream and the loopback endpoint alike."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import pandas as pd

from factory_agent.floor.alerts import AlertChange, alert_changes, in_time_order, machine_keys
from factory_agent.floor.delivery import InstalledModel, ModelDelivery
from factory_agent.floor.drift import DriftReference, FeatureTotals, drift_baseline, drift_score
from factory_agent.floor.store import FloorStore
from shared.errors import ConfigurationError
from shared.protocol.registry import MAX_REPORTED_ALERTS

log = logging.getLogger(__name__)


class NoModelYet(ConfigurationError):
    """No released model has reached this plant yet: nothing can be scored."""


@dataclass(frozen=True)
class ScoredBatch:
    model: InstalledModel
    scores: pd.DataFrame  # the columns of DESIGN §7: row, [group], [time], probability, prediction
    changes: list[AlertChange]
    seconds: float
    source: str  # "file:<name>", "stream" or "api"


class FloorScorer:
    def __init__(self, delivery: ModelDelivery, store: FloorStore, drift_window: int = 5_000,
                 reference: DriftReference | None = None, share_alert_details: bool = False):
        self.delivery = delivery
        self.store = store
        self.drift_window = drift_window
        self.reference = reference  # the plant's validation split: the drift baseline of each model
        self.share_alert_details = share_alert_details  # the policy's: machine and peak leave with the alert ids
        self._baselines: dict[tuple[int, str], float | None] = {}  # per (model id, sha256): computed once
        self.lock = threading.Lock()  # one batch at a time: alert transitions follow each other
        self.listeners: list = []  # called with each ScoredBatch (the agent's metrics)

    def model(self) -> InstalledModel:
        model = self.delivery.current
        if model is None:
            raise NoModelYet("no released model has reached this plant yet: release one on the dashboard "
                             "(Models page, or POST /api/experiments/<id>/release)")
        return model

    def score(self, frame: pd.DataFrame, source: str) -> ScoredBatch:
        """Score `frame` (extra columns ignored; a missing one is a DataError naming it) and record the batch."""
        model = self.model()  # NoModelYet before torch is loaded: a plant without a model stays lean
        from shared.predict import score_frame  # torch is loaded with the first batch, not at the agent's start

        bundle = model.bundle
        started = time.perf_counter()
        scores = score_frame(bundle, frame, model.network)  # built at the model's first batch, then kept
        encoded = bundle.schema.encode(frame, fill_values=bundle.fill_values)
        totals = FeatureTotals.of(encoded[scores["row"].to_numpy()] if len(scores) else encoded[:0])
        ordered = in_time_order(scores, bundle.schema.time_column)
        machines = machine_keys(ordered, bundle.schema.group_column)
        with self.lock:
            changes, _, peaks = alert_changes(self.store.open_alerts(), machines, ordered["probability"].to_numpy(),
                                              ordered["row"].to_numpy(), bundle.threshold)
            self.store.record(model.id, source, ordered, machines, bundle.schema.time_column, changes, totals, peaks)
        batch = ScoredBatch(model, scores, changes, time.perf_counter() - started, source)
        for change in changes:
            log.info("%s alert for machine %s (probability %.7g, threshold %.7g, %s)",
                     "OPENED" if change.opened else "cleared", change.machine, change.probability, bundle.threshold,
                     source)
        for listener in self.listeners:
            listener(batch)
        return batch

    def drift(self) -> float | None:
        model = self.delivery.current
        if model is None:
            return None
        totals = self.store.recent_totals(model.id, self.drift_window)
        if totals is None:
            return None
        score = drift_score(totals, model.bundle.scaler.mean, model.bundle.scaler.scale)
        return None if score is None else round(score, 4)

    def drift_baseline(self) -> float | None:
        """The drift score of this plant's validation split against the model in use (None without either)."""
        model = self.delivery.current
        if model is None or self.reference is None:
            return None
        key = (model.id, model.sha256)
        if key not in self._baselines:
            bundle = model.bundle
            score = drift_baseline(self.reference, bundle.schema.feature_names, bundle.fill_values,
                                   bundle.scaler.mean, bundle.scaler.scale)
            self._baselines = {key: None if score is None else round(score, 4)}  # only the model in use is kept
        return self._baselines[key]

    def heartbeat_fields(self) -> dict:
        """What a heartbeat may carry from the floor (DESIGN §10): the model in use, counts, the drift score and its
        baseline, and the newest alerts as ids and times (their machine and peak only under the plant's policy
        share_alert_details); never a row or a score."""
        model = self.delivery.current
        if model is None:
            return {}
        scored, open_alerts = self.store.counts()
        opened, newest = self.store.alert_report(MAX_REPORTED_ALERTS)
        return {"released_model": model.report(), "scored_rows": scored, "alerts_open": open_alerts,
                "drift": self.drift(), "drift_baseline": self.drift_baseline(), "alerts_opened": opened,
                "alerts": [self._reported(a) for a in newest]}

    def _reported(self, alert: dict) -> dict:
        reported = {"id": alert["id"], "opened_at": round(alert["opened_at"], 3), "model_id": alert["model_id"],
                    "cleared_at": None if alert["cleared_at"] is None else round(alert["cleared_at"], 3)}
        if self.share_alert_details:
            peak = alert["peak_probability"]
            reported |= {"machine": alert["machine"],
                         "peak": round(alert["opened_probability"] if peak is None else peak, 6)}
        return reported

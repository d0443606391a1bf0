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
from factory_agent.floor.drift import FeatureTotals, drift_score
from factory_agent.floor.store import FloorStore
from shared.errors import ConfigurationError

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
    def __init__(self, delivery: ModelDelivery, store: FloorStore, drift_window: int = 5_000):
        self.delivery = delivery
        self.store = store
        self.drift_window = drift_window
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
            changes, _ = alert_changes(self.store.open_alerts(), machines, ordered["probability"].to_numpy(),
                                       ordered["row"].to_numpy(), bundle.threshold)
            self.store.record(model.id, source, ordered, machines, bundle.schema.time_column, changes, totals)
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

    def heartbeat_fields(self) -> dict:
        """What a heartbeat may carry from the floor: the model in use, counts and the drift score (never rows)."""
        model = self.delivery.current
        if model is None:
            return {}
        scored, open_alerts = self.store.counts()
        return {"released_model": model.report(), "scored_rows": scored, "alerts_open": open_alerts,
                "drift": self.drift()}

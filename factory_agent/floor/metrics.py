"""The agent's Prometheus metrics (served on the loopback scoring port, factory_agent.floor.server): the released
model in use, rows scored and alerts open (from the plant's store), the drift score, and this process's scoring
batches (a histogram of their duration, rows by source)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from factory_agent.floor.scoring import FloorScorer, ScoredBatch


class _FloorCollector:
    def __init__(self, scorer: FloorScorer):
        self.scorer = scorer

    def collect(self):
        scored, open_alerts = self.scorer.store.counts()
        yield GaugeMetricFamily("factoryfl_floor_scored_rows", "Rows scored at this plant (all time)", value=scored)
        yield GaugeMetricFamily("factoryfl_floor_alerts_open", "Machines with an open alert", value=open_alerts)
        drift = self.scorer.drift()
        if drift is not None:
            yield GaugeMetricFamily("factoryfl_floor_drift", "Drift score of the recently scored data", value=drift)
        model = self.scorer.delivery.current
        info = GaugeMetricFamily("factoryfl_floor_model", "The model this plant scores with (value 1)",
                                 labels=["id", "sha256", "kind"])
        if model is not None:
            info.add_metric([str(model.id), model.sha256, model.kind], 1)
        yield info


class AgentMetrics:
    def __init__(self, scorer: FloorScorer):
        self.registry = CollectorRegistry(auto_describe=False)
        self.rows = Counter("factoryfl_floor_rows_scored", "Rows scored by this process, by source",
                            ["source"], registry=self.registry)
        self.seconds = Histogram("factoryfl_floor_batch_seconds", "Seconds to score one batch",
                                 buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=self.registry)
        self.registry.register(_FloorCollector(scorer))
        scorer.listeners.append(self.observe)

    def observe(self, batch: ScoredBatch) -> None:
        self.seconds.observe(batch.seconds)
        self.rows.labels(source=batch.source.split(":", 1)[0]).inc(len(batch.scores))  # file:<name> -> file

    def render(self) -> bytes:
        return generate_latest(self.registry)

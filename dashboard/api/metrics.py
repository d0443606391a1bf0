"""`GET /metrics`: the dashboard in Prometheus's text format (prometheus-client).

Who may read it: anyone sending `Authorization: Bearer <DASHBOARD_METRICS_TOKEN>`; and, in development without
a proxy (not PRODUCTION, DASHBOARD_PROXY_FIX 0), clients on loopback too. Everyone else gets 404 (the endpoint
does not advertise itself). A client address proves nothing once a proxy is in front: behind a same-host proxy
every client is 127.0.0.1, and with DASHBOARD_PROXY_FIX too high a client's own `X-Forwarded-For: 127.0.0.1` is
believed. So in production, and whenever DASHBOARD_PROXY_FIX is set, only the token opens it (without a token
configured /metrics answers 404 there).

What it holds, read from the database at scrape time (the same numbers in every worker):
plants by status, rounds by status, a histogram of completed rounds' durations, plants' open alerts, scored rows
and drift, and per plant the seconds since its last heartbeat; plus `factoryfl_heartbeats_received_total`, a
counter of this process (per gunicorn worker: sum them in the query).
"""

from __future__ import annotations

import ipaddress

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from dashboard.extensions import csrf, db
from dashboard.models import Factory, Round
from dashboard.models.base import utcnow
from dashboard.auth.roles import bearer_token
from dashboard.auth.security import constant_time_equal

bp = Blueprint("metrics", __name__)
csrf.exempt(bp)
EXTENSION = "factoryfl_metrics"
DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
MAX_ROUNDS_READ = 100_000  # the histogram reads at most this many most recent rounds


def _histogram(durations: list[float]) -> HistogramMetricFamily:
    buckets = []
    for bound in DURATION_BUCKETS:
        buckets.append((str(float(bound)), sum(1 for d in durations if d <= bound)))
    buckets.append(("+Inf", len(durations)))
    total = float(sum(durations))
    return HistogramMetricFamily("factoryfl_round_duration_seconds", "Duration of completed rounds",
                                 buckets=buckets, sum_value=total)


class DatabaseCollector:
    """Reads the registry's numbers at scrape time, inside the request's app context."""

    def collect(self):
        plants = GaugeMetricFamily("factoryfl_plants", "Plants by status", labels=["status"])
        for status, count in db.session.execute(db.select(Factory.status, db.func.count()).group_by(Factory.status)):
            plants.add_metric([status], count)
        yield plants
        rounds = GaugeMetricFamily("factoryfl_rounds", "Round attempts by status (completed, failed, aborted, running)",
                                   labels=["status"])
        for status, count in db.session.execute(db.select(Round.status, db.func.count()).group_by(Round.status)):
            rounds.add_metric([status], count)
        yield rounds
        finished = db.session.execute(db.select(Round.started_at, Round.finished_at)
                                      .where(Round.status == "completed", Round.finished_at.is_not(None))
                                      .order_by(Round.id.desc()).limit(MAX_ROUNDS_READ)).all()
        yield _histogram([max((end - start).total_seconds(), 0.0) for start, end in finished])
        yield from self._plants()

    @staticmethod
    def _plants():
        now = utcnow()
        families = {key: GaugeMetricFamily(f"factoryfl_plant_{key}", text, labels=["plant"]) for key, text in (
            ("alerts_open", "Open alerts the plant reports"), ("scored_rows", "Rows the plant has scored"),
            ("drift", "Drift score of the plant's scored data (factory_agent.floor.drift)"),
            ("heartbeat_age_seconds", "Seconds since the plant's last heartbeat"))}
        total_alerts = 0
        for f in db.session.execute(db.select(Factory.name, Factory.alerts_open, Factory.scored_rows, Factory.drift,
                                              Factory.last_heartbeat)):
            for key in ("alerts_open", "scored_rows", "drift"):
                if getattr(f, key) is not None:
                    families[key].add_metric([f.name], getattr(f, key))
            if f.last_heartbeat is not None:
                families["heartbeat_age_seconds"].add_metric([f.name], (now - f.last_heartbeat).total_seconds())
            total_alerts += f.alerts_open or 0
        yield from families.values()
        yield GaugeMetricFamily("factoryfl_alerts_open", "Open alerts over all plants", value=total_alerts)


class DashboardMetrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=False)
        self.heartbeats = Counter("factoryfl_heartbeats_received", "Heartbeats this process accepted",
                                  registry=self.registry)
        self.registry.register(DatabaseCollector())


def init_app(app) -> None:
    app.extensions[EXTENSION] = DashboardMetrics()
    app.register_blueprint(bp)


def count_heartbeat() -> None:
    metrics = current_app.extensions.get(EXTENSION)
    if metrics is not None:
        metrics.heartbeats.inc()


def _may_read() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    sent = bearer_token()
    if token and sent:
        return constant_time_equal(sent, token)
    if current_app.config.get("PRODUCTION") or current_app.config.get("PROXY_FIX"):
        return False  # no loopback exemption where the client address may be a proxy's or a forged header's
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
def metrics():
    if not _may_read():
        abort(404)
    return Response(generate_latest(current_app.extensions[EXTENSION].registry), content_type=CONTENT_TYPE_LATEST)

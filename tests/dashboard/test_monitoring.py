"""Monitoring the plant floor from the dashboard: /metrics (Prometheus) and the operators' webhook."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import Experiment, Round
from dashboard.models.base import utcnow
from dashboard.webhooks.sender import EXTENSION, WebhookEvent, WebhookSender, WebhookSettings
from shared.errors import ConfigurationError
from tests.dashboard.conftest import register
from tests.dashboard.test_releases import beat

OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}


class Receiver:
    """A webhook endpoint: answers `statuses` in turn (then 200), or hangs for `delay` seconds."""

    def __init__(self, statuses=(), delay=0.0):
        self.posts, self.statuses, self.delay = [], list(statuses), delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(outer.delay)
                outer.posts.append(body)
                self.send_response(outer.statuses.pop(0) if outer.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook/secret-path"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture()
def hooked(app, receiver):
    sender = WebhookSender(WebhookSettings(receiver.url, timeout=2, retries=2, backoff=0.05))
    app.extensions[EXTENSION] = sender
    yield sender
    sender.stop()


def test_metrics_are_served_to_loopback_and_to_the_metrics_token_only(app, client):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 404
    app.config["METRICS_TOKEN"] = "scrape-token-0123456789"
    assert client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer wrong"}).status_code == 404
    resp = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer scrape-token-0123456789"})
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain")


def proxied_app(tmp_path, monkeypatch, hops: str, **config):
    """A dashboard behind `hops` reverse proxies (DASHBOARD_PROXY_FIX), its schema built."""
    from flask_migrate import upgrade

    monkeypatch.setenv("DASHBOARD_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("DASHBOARD_PROXY_FIX", hops)
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.sqlite'}", **config})
    with app.app_context():
        upgrade()
    return app


def test_attack_behind_a_proxy_loopback_or_a_forged_forwarded_for_does_not_open_metrics(tmp_path, monkeypatch):
    app = proxied_app(tmp_path, monkeypatch, "2")  # one proxy in fact, two configured: X-Forwarded-For is believed
    client = app.test_client()
    assert client.get("/metrics").status_code == 404  # the same-host proxy's own 127.0.0.1
    forged = {"X-Forwarded-For": "127.0.0.1, 203.0.113.7"}
    assert client.get("/metrics", environ_base=OUTSIDE, headers=forged).status_code == 404
    app.config["METRICS_TOKEN"] = "scrape-token-0123456789"
    assert client.get("/metrics", headers=forged).status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"}).status_code == 200
    with app.app_context():
        db.engine.dispose()


def test_attack_in_production_loopback_alone_does_not_open_metrics(app, client):
    app.config["PRODUCTION"] = True
    assert client.get("/metrics").status_code == 404  # no token configured: 404, whoever asks
    app.config["METRICS_TOKEN"] = "scrape-token-0123456789"
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"}).status_code == 200


def test_metrics_hold_plants_rounds_durations_heartbeats_and_alerts(app, client, api):
    token = register(client, "plant_a").get_json()["heartbeat_token"]
    register(client, "plant_b")
    beat(client, token, released_model={"id": 1, "sha256": "ab" * 32}, scored_rows=500, alerts_open=3, drift=0.5)
    eid = client.post("/api/experiments", json={"name": "m", "rounds": 2}, headers=api).get_json()["id"]
    with app.app_context():
        start = utcnow()
        db.session.add(Round(experiment_id=eid, number=1, status="completed", started_at=start,
                             finished_at=start + timedelta(seconds=42)))
        db.session.add(Round(experiment_id=eid, number=2, status="failed", started_at=start))
        db.session.commit()
    text = client.get("/metrics").text
    for line in ('factoryfl_plants{status="online"} 2.0', 'factoryfl_rounds{status="completed"} 1.0',
                 'factoryfl_rounds{status="failed"} 1.0', 'factoryfl_round_duration_seconds_bucket{le="60.0"} 1.0',
                 'factoryfl_round_duration_seconds_bucket{le="30.0"} 0.0', "factoryfl_round_duration_seconds_count 1.0",
                 'factoryfl_plant_alerts_open{plant="plant_a"} 3.0', "factoryfl_alerts_open 3.0",
                 'factoryfl_plant_drift{plant="plant_a"} 0.5', "factoryfl_heartbeats_received_total 1.0"):
        assert line in text, line


def test_a_webhook_url_that_is_not_http_is_refused_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHBOARD_INSTANCE_PATH", str(tmp_path))
    for url in ("file:///etc/passwd", "gopher://x", "ftp://host/x", "http://"):
        with pytest.raises(ConfigurationError, match="DASHBOARD_ALERT_WEBHOOK"):
            create_app({"ALERT_WEBHOOK": url, "SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_delivery_retries_a_failing_endpoint_and_never_blocks_the_caller():
    slow = Receiver(statuses=(503, 500), delay=0.0)
    try:
        sender = WebhookSender(WebhookSettings(slow.url, timeout=2, retries=3, backoff=0.05))
        assert sender.send(WebhookEvent("plant.offline", "plant_a")) and sender.flush(10)
        assert len(slow.posts) == 3 and sender.delivered == 1  # 503, 500, then 200
    finally:
        slow.close()
    hanging = Receiver(delay=3.0)
    try:
        sender = WebhookSender(WebhookSettings(hanging.url, timeout=0.5, retries=0))
        started = time.perf_counter()
        sender.send(WebhookEvent("plant.offline", "plant_a"))
        assert time.perf_counter() - started < 0.2  # queued, not sent in the caller's thread
        assert sender.flush(10) and sender.failed == 1  # the timeout gave up on it
    finally:
        hanging.close()


def test_new_alerts_a_plant_going_offline_and_a_failed_experiment_call_the_webhook(app, client, api, receiver,
                                                                                   hooked):
    token = register(client, "plant_a").get_json()["heartbeat_token"]
    report = {"released_model": {"id": 1, "sha256": "ab" * 32}, "scored_rows": 10, "drift": 0.1}
    beat(client, token, alerts_open=2, **report)
    beat(client, token, alerts_open=2, **report)  # the same count: no new alert
    beat(client, token, alerts_open=1, **report)  # fewer: cleared, no call
    eid = client.post("/api/experiments", json={"name": "doomed", "rounds": 1}, headers=api).get_json()["id"]
    with app.app_context():
        from dashboard.orchestration.liveness import mark_offline
        from dashboard.models import Factory

        db.session.execute(db.update(Factory).values(last_heartbeat=utcnow().replace(year=2000)))
        db.session.commit()
        assert mark_offline() == ["plant_a"]
        experiment = db.session.get(Experiment, eid)
        experiment.status = "failed"
        db.session.rollback()  # a rolled-back failure calls no one
        experiment = db.session.get(Experiment, eid)
        db.session.expire(experiment)  # as after the round engine's earlier commits
        experiment.status = "failed"
        db.session.commit()
    assert hooked.flush(10)
    events = [(p["event"], p["subject"]) for p in receiver.posts]
    assert events == [("alert.opened", "plant_a"), ("plant.offline", "plant_a"), ("experiment.failed", "doomed")]
    assert receiver.posts[0]["detail"]["alerts_open"] == 2 and receiver.posts[2]["detail"]["experiment_id"] == eid


def test_attack_a_plant_flapping_its_alerts_gets_one_webhook_per_interval_with_the_rises_counted(app, client,
                                                                                                receiver):
    now = [1000.0]
    sender = WebhookSender(WebhookSettings(receiver.url, timeout=2, retries=0, alert_interval=300),
                           clock=lambda: now[0])
    app.extensions[EXTENSION] = sender
    try:
        token = register(client, "plant_a").get_json()["heartbeat_token"]
        for _ in range(20):  # 0 -> 1 -> 0 -> 1 ...: twenty rises
            beat(client, token, alerts_open=1, scored_rows=10)
            beat(client, token, alerts_open=0, scored_rows=10)
        assert sender.flush(10)
        assert [(p["event"], p["detail"]["rises"]) for p in receiver.posts] == [("alert.opened", 1)]
        now[0] += 301  # the interval ends: the held rises go out as one event
        deadline = time.monotonic() + 10
        while len(receiver.posts) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sender.flush(10)
        assert [(p["event"], p["detail"]["rises"]) for p in receiver.posts] == [("alert.opened", 1),
                                                                                ("alert.opened", 19)]
    finally:
        sender.stop()


def test_attack_a_queue_full_of_alerts_still_takes_offline_and_failed_events(monkeypatch):
    sender = WebhookSender(WebhookSettings("http://hook.invalid/x", alert_interval=300))
    monkeypatch.setattr(sender, "_start", lambda: None)  # nothing drains the queue: it only fills
    for i in range(1_500):  # many plants' alerts, as a flood of names would make them
        sender.send(WebhookEvent("alert.opened", f"plant_{i}"))
    assert sender.send(WebhookEvent("plant.offline", "plant_x"))
    assert sender.send(WebhookEvent("experiment.failed", "doomed"))
    queued = list(sender.queue.items)
    assert len(queued) == 1_000 and [e.kind for e in queued[-2:]] == ["plant.offline", "experiment.failed"]
    assert queued[0].subject == "plant_502"  # the oldest alerts made room
    for i in range(1_000):
        sender.send(WebhookEvent("plant.offline", f"plant_{i}"))
    assert all(e.kind != "alert.opened" for e in sender.queue.items)  # alerts go before any outage
    assert not sender.send(WebhookEvent("alert.opened", "late"))  # a queue of outages takes no alert


def alert(i, cleared=None, **details):
    return {"id": i, "opened_at": 1.7e9 + i, "cleared_at": cleared, "model_id": None, **details}


def test_alerts_opened_and_cleared_between_two_heartbeats_still_call_the_webhook_with_their_ids(app, client, api,
                                                                                               receiver, hooked):
    token = register(client, "plant_a").get_json()["heartbeat_token"]
    beat(client, token, alerts_open=0, alerts_opened=3, scored_rows=10, alerts=[alert(3, 1.8e9), alert(2, 1.8e9)])
    assert hooked.flush(10) and receiver.posts == []  # the first count is the plant's past, not news
    # two alerts opened and cleared, one still open: the open count went 0 -> 1, the plant says 3 were opened
    beat(client, token, alerts_open=1, alerts_opened=6, scored_rows=20,
         alerts=[alert(6), alert(5, 1.8e9), alert(4, 1.8e9), alert(3, 1.8e9)])
    assert hooked.flush(10)
    (post,) = receiver.posts
    assert post["event"] == "alert.opened" and post["detail"]["opened"] == 3
    assert post["detail"]["alert_ids"] == [6, 5, 4]
    plant = client.get("/factories", headers=api).get_json()[0]
    assert plant["alerts_opened"] == 6 and [a["id"] for a in plant["recent_alerts"]] == [6, 5, 4, 3]
    assert "machine" not in plant["recent_alerts"][0]  # the plant did not share it


def test_drift_is_read_against_the_plants_baseline_and_calls_the_webhook_once_per_crossing(app, client, api,
                                                                                          receiver):
    sender = WebhookSender(WebhookSettings(receiver.url, timeout=2, retries=0, alert_interval=0))
    app.extensions[EXTENSION] = sender
    token = register(client, "plant_a").get_json()["heartbeat_token"]
    for drift in (0.7, 0.8, 1.2, 1.7, 1.9, 0.75, 1.8):  # baseline 0.8: ratios 0.88 .. 2.38
        beat(client, token, scored_rows=10, drift=drift, drift_baseline=0.8)
    assert sender.flush(10)
    sender.stop()
    assert [(p["event"], p["detail"]["ratio"]) for p in receiver.posts] == [("drift.high", 2.125),
                                                                            ("drift.high", 2.25)]
    reading = client.get("/factories", headers=api).get_json()[0]["drift_reading"]
    assert reading == {"score": 1.8, "baseline": 0.8, "ratio": 2.25, "level": "drifted", "elevated_at": 1.5,
                       "drifted_at": 2.0}


def test_attack_hostile_alert_reports_are_refused_and_change_nothing(app, client, api):
    token = register(client, "plant_a").get_json()["heartbeat_token"]
    for bad in ({"alerts": [alert(1, machine="<script>", peak=7)]}, {"alerts_opened": -1},
                {"alerts": "x"}, {"drift_baseline": float("inf")}, {"alerts": [alert(0)]}):
        response = beat(client, token, scored_rows=1, **bad)
        assert response.status_code == 400 and response.get_json()["error"]
    plant = client.get("/factories", headers=api).get_json()[0]
    assert plant["recent_alerts"] == [] and plant["alerts_opened"] is None


def test_attack_a_plant_cannot_date_its_alerts_in_the_future_to_stay_on_top(app, client, api):
    token = register(client, "plant_a").get_json()["heartbeat_token"]
    beat(client, token, alerts_open=1, alerts_opened=1, scored_rows=1, alerts=[alert(1, opened_at=9e10)])
    stored = client.get("/factories", headers=api).get_json()[0]["recent_alerts"][0]
    assert stored["opened_at"] <= time.time() + 301

"""The plant page's load chart: a plant's heartbeats over a chosen range, averaged into buckets
(dashboard.services.load_history), and the readable policy list beside it (dashboard.ui.policy_view)."""

from datetime import datetime, timedelta

from dashboard.services.load_history import bucketed
from dashboard.ui.policy_view import policy_rows, value_text
from tests.dashboard.conftest import register
from tests.dashboard.test_pages import login
from tests.dashboard.test_releases import beat


def test_samples_are_averaged_per_time_bucket_and_missing_values_left_out():
    t0 = datetime(2026, 1, 1)
    samples = [(t0 + timedelta(minutes=m), (float(m), None if m % 2 else 50.0, 10.0)) for m in range(60)]
    points = bucketed(samples, t0, t0 + timedelta(hours=1), 6)
    assert len(points) == 6 and points[0]["cpu_usage"] == 4.5 and points[0]["memory_usage"] == 50.0
    assert points[-1]["at"].startswith("2026-01-01T00:59") and all(p["disk_usage"] == 10.0 for p in points)
    assert bucketed([], t0, t0 + timedelta(hours=1), 6) == []


def test_the_load_api_answers_a_range_of_a_plants_heartbeats_and_refuses_other_ranges(app, client, api):
    token = register(client, "plant_a").get_json()["heartbeat_token"]
    for cpu in (10.0, 30.0):
        beat(client, token, current_load={"cpu_usage": cpu, "memory_usage": 40.0, "disk_usage": None})
    answer = client.get("/api/factories/plant_a/load?hours=1", headers=api).get_json()
    assert answer["hours"] == 1 and answer["heartbeats"] >= 2 and answer["points"]
    assert 10.0 <= answer["points"][-1]["cpu_usage"] <= 30.0 and answer["points"][-1]["disk_usage"] is None
    assert client.get("/api/factories/plant_a/load", headers=api).get_json()["hours"] == 6
    for bad in ("0", "2", "-1", "1e3", "24h", "9" * 30):
        response = client.get(f"/api/factories/plant_a/load?hours={bad}", headers=api)
        assert response.status_code == 400 and "hours" in response.get_json()["error"]
    assert client.get("/api/factories/nobody/load", headers=api).status_code == 404
    assert client.get("/api/factories/plant_a/load").status_code == 401


def test_the_plant_page_charts_load_over_a_range_instead_of_a_heartbeat_table(app, client):
    login(client)
    register(client, "plant_a")
    page = client.get("/factories/plant_a").text
    assert 'data-api="/api/factories/plant_a/load"' in page and 'data-hours="168"' in page
    assert "<h2>Heartbeats</h2>" not in page


def test_policy_values_read_with_their_units():
    assert value_text(1e13) == "1 × 10^13" and value_text(2_000_000) == "2,000,000" and value_text(1e-5) == \
        "1 × 10^-5" and value_text(True) == "yes" and value_text(0.5) == "0.5"
    rows = policy_rows({"max_epsilon": 10.0, "zzz": 1, "verify_models": True, "max_model_parameters": 2_000_000})
    assert rows == [("Verifies every model it computes on", "yes", "verify_models"),
                    ("Largest ε one experiment may ask", "10 ε", "max_epsilon"),
                    ("Largest model", "2,000,000 parameters", "max_model_parameters"), ("zzz", "1", "zzz")]

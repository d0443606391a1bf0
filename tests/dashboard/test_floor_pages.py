"""The plant floor's pages with the test client: the Release button, the registry with roll back, the alerts page
and the floor columns of the factories and plant pages."""

from tests.dashboard.conftest import register
from tests.dashboard.test_pages import login
from tests.dashboard.test_releases import beat, seed_experiment


def test_the_release_button_releases_the_best_round_and_the_registry_rolls_back(app, client, api):
    login(client)
    token = register(client, "plant_a").get_json()["heartbeat_token"]
    eid = seed_experiment(app, client, api)
    page = client.get(f"/experiments/{eid}").text
    assert 'id="release-form"' in page and 'value="best"' in page
    resp = client.post(f"/experiments/{eid}/release", data={"round": "best"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/releases")
    client.post(f"/experiments/{eid}/release", data={"round": "1"})
    listed = client.get("/api/releases", headers=api).get_json()
    assert [(r["round"], r["active"]) for r in listed] == [(1, True), (3, False)]
    beat(client, token, released_model={"id": listed[0]["id"], "sha256": listed[0]["sha256"]}, scored_rows=5,
         alerts_open=0, drift=0.0)
    registry = client.get("/releases").text
    assert "Roll back to this" in registry and "plant_a</a>" in registry and "ops@factoryfl.org" in registry
    assert client.post(f"/releases/{listed[1]['id']}/activate").status_code == 302
    assert client.get("/api/releases", headers=api).get_json()[1]["active"]
    bad = client.post(f"/experiments/{eid}/release", data={"round": "12; drop"}, follow_redirects=True)
    assert "round must be a round number" in bad.text


def test_alerts_show_on_the_alerts_factories_and_plant_pages(app, client, api):
    login(client)
    token = register(client, "plant_a").get_json()["heartbeat_token"]
    register(client, "plant_b")
    assert "No model released yet" in client.get("/releases").text
    assert 'id="floor-empty"' in client.get("/factories/plant_a").text
    release = client.post(f"/api/experiments/{seed_experiment(app, client, api)}/release", headers=api).get_json()
    beat(client, token, released_model={"id": release["id"], "sha256": release["sha256"]}, scored_rows=1200,
         alerts_open=3, drift=0.21)  # only a release the plant may use is stored (test_releases.py)
    alerts = client.get("/alerts").text
    assert 'id="alerts-total">3<' in alerts and 'data-series=\'[{"plant": "plant_a"' in alerts
    factories = client.get("/").text
    assert "3 alerts</a>" in factories and "1200 rows scored" in factories and "model <a" in factories
    assert 'open alerts</a> 3</span>' in factories
    plant = client.get("/factories/plant_a").text
    assert 'id="floor-alerts">3<' in plant and 'data-api="/api/factories/plant_a/floor"' in plant


def test_a_viewer_sees_the_registry_without_release_or_roll_back_buttons(app, client, api):
    from dashboard.lifecycle.bootstrap import ensure_operator

    eid = seed_experiment(app, client, api)
    client.post(f"/api/experiments/{eid}/release", json={"round": 1}, headers=api)
    client.post(f"/api/experiments/{eid}/release", json={"round": 2}, headers=api)
    with app.app_context():
        ensure_operator("viewer@factoryfl.org", "a viewer password", role="viewer")
        from dashboard.extensions import db

        db.session.commit()
    client.post("/login", data={"email": "viewer@factoryfl.org", "password": "a viewer password"})
    assert "Roll back to this" not in client.get("/releases").text
    assert 'id="release-form"' not in client.get(f"/experiments/{eid}").text
    assert client.post(f"/experiments/{eid}/release", data={}).status_code == 403

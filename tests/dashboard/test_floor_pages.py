"""The plant floor's pages with the test client: the Release button, the registry with roll back, the alerts page
and the floor columns of the factories and plant pages."""

from tests.dashboard.conftest import register
from tests.dashboard.test_pages import login
from tests.dashboard.test_releases import beat, seed_experiment


def test_the_release_form_releases_to_the_ticked_plants_after_a_confirmation_and_the_models_page_rolls_back(
        app, client, api):
    login(client)
    tokens = {n: register(client, n).get_json()["heartbeat_token"] for n in ("plant_a", "plant_b")}
    eid = seed_experiment(app, client, api)
    page = client.get(f"/experiments/{eid}").text
    assert 'id="release-form"' in page and 'value="best"' in page
    assert all(f'value="{name}" style="width:auto" checked' in page for name in ("plant_a", "plant_b"))
    form = {"round": "best", "plants_chosen": "yes", "plants": ["plant_a"]}
    asked = client.post(f"/experiments/{eid}/release", data=form)  # the confirmation step first
    assert asked.status_code == 200 and 'id="confirm-form"' in asked.text
    assert "plant_a: no model → validation F1" in asked.text and "plant_b" not in asked.text
    assert 'name="plants" value="plant_a"' in asked.text  # the ticked plants travel with the confirmation
    resp = client.post(f"/experiments/{eid}/release", data={**form, "confirm": "yes"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/releases")
    assert beat(client, tokens["plant_b"], name="plant_b").get_json()["released_model"] is None
    asked = client.post(f"/experiments/{eid}/release", data={"round": "1"}).text  # no checkboxes: the default
    assert "plant_a: model #" in asked and "plants that switch with their next heartbeat: plant_a, plant_b" in asked
    client.post(f"/experiments/{eid}/release", data={"round": "1", "confirm": "yes"})
    listed = client.get("/api/releases", headers=api).get_json()
    assert [(r["round"], r["state_text"]) for r in listed] == [(1, "in use at 2 plants"), (3, "superseded")]
    beat(client, tokens["plant_a"], released_model={"id": listed[0]["id"], "sha256": listed[0]["sha256"]},
         scored_rows=5, alerts_open=0, drift=0.0)
    registry = client.get("/releases").text
    assert f"Roll back to #{listed[1]['id']}" in registry and "plant_a</a>" in registry
    assert "ops@factoryfl.org" in registry and 'id="rollback-all"' in registry and "superseded" in registry
    assert client.post("/factories/plant_a/model/pin").status_code == 302
    assert 'class="badge paused pinned"' in client.get("/releases").text
    page = client.get(f"/experiments/{eid}").text  # a pinned plant starts unticked
    assert 'value="plant_a" style="width:auto">' in page and "(pinned)" in page
    assert client.post("/factories/plant_a/model/rollback").status_code == 302
    assert beat(client, tokens["plant_a"]).get_json()["released_model"]["id"] == listed[1]["id"]
    assert "rolled back 0 plant(s); pinned, held: plant_a" in client.post("/deployments/rollback",
                                                                           follow_redirects=True).text
    confirm = client.post(f"/releases/{listed[0]['id']}/deploy").text
    assert "plant_a: model #" in confirm and "held" in confirm
    bad = client.post(f"/experiments/{eid}/release", data={"round": "12; drop"}, follow_redirects=True)
    assert "round must be a round number" in bad.text
    none = client.post(f"/experiments/{eid}/release", data={"plants_chosen": "yes"}, follow_redirects=True)
    assert "must name 1 to" in none.text


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
    registry = client.get("/releases").text
    assert "Roll back to #" not in registry and "Deploy to its plants" not in registry and ">Pin<" not in registry
    assert 'id="release-form"' not in client.get(f"/experiments/{eid}").text
    assert client.post(f"/experiments/{eid}/release", data={}).status_code == 403

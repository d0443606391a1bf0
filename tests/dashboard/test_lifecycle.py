"""A plant's lifecycle (dashboard.registry.lifecycle): decommissioning by the API and the plant's page, what a
decommissioned plant is refused, bringing it back with a fresh one-time enrolment token, and its display name and
site (operators), hostile values included."""

import pytest

from dashboard.extensions import db
from dashboard.lifecycle.bootstrap import ensure_operator
from dashboard.models import AuditEvent, Experiment, Factory
from dashboard.orchestration import selection
from tests.dashboard.conftest import ADMIN, ENROLL, identity_key, register

PASSWORD = "a lifecycle-test password"


def beat(client, token, name="plant_a"):
    return client.post("/heartbeat", json={"factory_name": name, "status": "online"},
                       headers={"Authorization": f"Bearer {token}"})


def login(client, email=ADMIN[0], password=ADMIN[1]):
    return client.post("/login", data={"email": email, "password": password})


def as_role(app, role):
    """A client logged in as an operator holding `role`."""
    with app.app_context():
        ensure_operator(f"{role}@factoryfl.org", PASSWORD, role=role)
        db.session.commit()
    client = app.test_client()
    login(client, f"{role}@factoryfl.org", PASSWORD)
    return client


def plant(app, name="plant_a") -> Factory:
    with app.app_context():
        row = db.session.scalar(db.select(Factory).filter_by(name=name))
        db.session.expunge(row)
        return row


def audited(app, action):
    with app.app_context():
        return db.session.scalars(db.select(AuditEvent).filter_by(action=action)).all()


def enrolment_token(client, api, name="plant_a"):
    resp = client.post("/api/enrolment-tokens", json={"factory_name": name}, headers=api)
    assert resp.status_code == 201
    return resp.get_json()["token"]


# --- decommissioning ---------------------------------------------------------------------------------
def test_an_admin_decommissions_a_plant_by_api_its_history_is_kept_and_it_shows_greyed(app, client, api):
    token = register(client).get_json()["heartbeat_token"]
    assert beat(client, token).status_code == 200
    resp = client.post("/api/factories/plant_a/decommission", headers=api)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["decommissioned_at"] and body["decommissioned_by"].startswith(ADMIN[0]) and body["status"] == "offline"
    listed = client.get("/factories", headers=api).get_json()
    assert [f["decommissioned_at"] is not None for f in listed] == [True]  # still listed: its history is kept
    assert len(audited(app, "factory.decommissioned")) == 1
    again = client.post("/api/factories/plant_a/decommission", headers=api)
    assert again.status_code == 409 and "already" in again.get_json()["error"]
    assert client.post("/api/factories/ghost/decommission", headers=api).status_code == 404
    assert client.post("/api/factories/bad%20name!/decommission", headers=api).status_code == 400
    login(client)
    page = client.get("/").text
    assert 'class="decommissioned-row" data-factory="plant_a"' in page and "badge decommissioned" in page
    assert 'id="decommissioned-banner"' in client.get("/factories/plant_a").text


def test_only_an_admin_may_decommission(app, client):
    register(client)
    for role in ("viewer", "operator"):
        assert as_role(app, role).post("/factories/plant_a/decommission", data={"confirm": "yes"}).status_code == 403
    assert plant(app).decommissioned_at is None
    assert 'id="decommission-form"' not in as_role(app, "operator").get("/factories/plant_a").text
    assert 'id="decommission-form"' in as_role(app, "admin").get("/factories/plant_a").text


def test_the_page_asks_for_confirmation_saying_what_happens_then_decommissions(app, client):
    register(client)
    login(client)
    ask = client.post("/factories/plant_a/decommission")
    assert ask.status_code == 200 and 'id="confirm-form"' in ask.text
    for consequence in ("future round", "history is kept", "revoked", "one-time enrolment token"):
        assert consequence in ask.text
    assert plant(app).decommissioned_at is None  # nothing happened yet
    done = client.post("/factories/plant_a/decommission", data={"confirm": "yes"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/factories/plant_a")
    assert plant(app).decommissioned_by == ADMIN[0]
    page = client.get("/factories/plant_a").text
    assert "is decommissioned" in page and 'id="decommission-form"' not in page  # flashed; no second button
    twice = client.post("/factories/plant_a/decommission", data={"confirm": "yes"}, follow_redirects=True)
    assert twice.mimetype == "text/html" and "already" in twice.text  # an HTML page with the flash, not JSON


def test_a_decommissioned_plant_s_heartbeat_is_refused_with_a_clear_403(app, client, api):
    token = register(client).get_json()["heartbeat_token"]
    client.post("/api/factories/plant_a/decommission", headers=api)
    resp = beat(client, token)
    assert resp.status_code == 403 and resp.is_json
    assert "decommissioned" in resp.get_json()["error"] and "one-time enrolment token" in resp.get_json()["error"]
    assert ADMIN[0] not in resp.get_json()["error"]  # the caller is not authenticated: no operator's e-mail
    assert plant(app).decommissioned_at.isoformat()[:16] not in resp.get_json()["error"]  # nor when (review)
    assert plant(app).status == "offline"


def test_an_experiment_naming_a_decommissioned_plant_is_refused_at_creation_and_at_start(app, client, api):
    register(client, "plant_a")
    register(client, "plant_b")
    pending = client.post("/api/experiments", json={"name": "before", "rounds": 1,
                                                    "factories": ["plant_a", "plant_b"]}, headers=api)
    assert pending.status_code == 201
    client.post("/api/factories/plant_a/decommission", headers=api)
    made = client.post("/api/experiments", json={"name": "after", "rounds": 1, "factories": ["plant_a", "plant_b"]},
                       headers=api)
    assert made.status_code == 400 and made.get_json()["detail"]["field"] == "factories"
    assert "plant_a" in made.get_json()["error"] and "decommissioned" in made.get_json()["error"]
    started = client.post(f"/api/experiments/{pending.get_json()['id']}/start", headers=api)
    assert started.status_code == 400 and "decommissioned" in started.get_json()["error"]
    assert client.post("/api/experiments", json={"name": "all", "rounds": 1}, headers=api).status_code == 201


def test_running_experiments_leave_a_decommissioned_plant_out_of_their_next_cohorts(app, client, api):
    for name in ("plant_a", "plant_b", "plant_c"):
        register(client, name)
    listed = client.post("/api/experiments", json={"name": "listed", "rounds": 3,
                                                   "factories": ["plant_a", "plant_b", "plant_c"]}, headers=api)
    every = client.post("/api/experiments", json={"name": "every", "rounds": 3}, headers=api)
    for made in (listed, every):
        assert client.post(f"/api/experiments/{made.get_json()['id']}/start", headers=api).status_code == 200
    client.post("/api/factories/plant_b/decommission", headers=api)
    with app.app_context():
        # whatever its status says (a worker that had not heard of it yet, an older row): never in a cohort
        db.session.execute(db.update(Factory).filter_by(name="plant_b").values(status="online"))
        db.session.commit()
        for made in (listed, every):
            cohort = selection.eligible(db.session.get(Experiment, made.get_json()["id"]))
            assert [f.name for f in cohort.plants] == ["plant_a", "plant_c"]


def test_a_heartbeat_accepted_just_before_decommissioning_does_not_make_the_plant_online_again(app, client, api):
    from dashboard.models.base import utcnow
    from dashboard.registry.heartbeat_store import AcceptedHeartbeat, write_batch

    register(client)
    factory_id = plant(app).id
    client.post("/api/factories/plant_a/decommission", headers=api)
    with app.app_context():  # what the buffer writes a moment after the decommissioning committed
        write_batch([AcceptedHeartbeat(factory_id, utcnow(), "online", 1.0, 2.0, 3.0)])
    assert plant(app).status == "offline"


# --- bringing it back ----------------------------------------------------------------------------------
def test_only_a_one_time_enrolment_token_made_after_decommissioning_brings_a_plant_back(app, client, api):
    register(client)
    earlier = enrolment_token(client, api)  # made before: revoked by the decommissioning
    client.post("/api/factories/plant_a/decommission", headers=api)
    assert register(client, token=ENROLL).status_code == 403  # the shared token and its own key's signature
    assert register(client, token=earlier).status_code == 403
    fresh = enrolment_token(client, api)
    assert register(client, token=enrolment_token(client, api, "plant_b")).status_code == 403  # another name's
    back = register(client, key=identity_key("plant_a", generation=1), token=fresh)  # it may bring a new key
    assert back.status_code == 200
    assert beat(client, back.get_json()["heartbeat_token"]).status_code == 200
    row = plant(app)
    assert row.decommissioned_at is None and row.decommissioned_by is None and row.status == "online"
    events = audited(app, "factory.recommissioned")
    assert len(events) == 1 and events[0].detail["decommissioned_by"].startswith(ADMIN[0])
    assert len(audited(app, "factory.rekeyed")) == 1  # the new identity key, bound as at a first enrolment
    client.post("/api/factories/plant_a/decommission", headers=api)
    assert register(client, key=identity_key("plant_a", generation=1), token=fresh).status_code == 403  # used


# --- display name and site ----------------------------------------------------------------------------
def test_an_operator_sets_and_clears_the_display_name_and_site_and_the_name_stays(app, client, api):
    register(client)
    operator = as_role(app, "operator")
    resp = operator.patch("/api/factories/plant_a", json={"display_name": "  Line 3 press  ", "site": "Kraków, hall B"})
    assert resp.status_code == 200
    assert (resp.get_json()["display_name"], resp.get_json()["site"], resp.get_json()["factory_name"]) == \
        ("Line 3 press", "Kraków, hall B", "plant_a")
    page = operator.get("/").text
    assert "Line 3 press" in page and "Kraków, hall B" in page
    assert 'id="plant-display-name">Line 3 press<' in operator.get("/factories/plant_a").text
    assert client.patch("/api/factories/plant_a", json={"site": ""}, headers=api).get_json()["site"] is None
    cleared = client.patch("/api/factories/plant_a", json={"display_name": None}, headers=api).get_json()
    assert cleared["display_name"] is None and cleared["site"] is None
    events = audited(app, "factory.relabelled")
    assert len(events) == 3 and events[0].detail["display_name"] == {"from": None, "to": "Line 3 press"}


@pytest.mark.parametrize("body,field", [
    ({"display_name": "x" * 81}, "display_name"), ({"site": "y" * 121}, "site"),
    ({"display_name": "bell\x07"}, "display_name"), ({"site": "two\nlines"}, "site"),
    ({"display_name": "\u202eevil"}, "display_name"),  # a right-to-left override: not printable
    ({"display_name": 7}, "display_name"), ({"site": ["a"]}, "site"), ({"site": {"a": 1}}, "site"),
    ({"display_name": True}, "display_name"), ({"name": "plant_z"}, "name"), ({}, "body"),
])
def test_hostile_labels_are_400_naming_the_field_and_change_nothing(app, client, api, body, field):
    register(client)
    resp = client.patch("/api/factories/plant_a", json=body, headers=api)
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == field
    row = plant(app)
    assert row.display_name is None and row.site is None and row.name == "plant_a"


def test_every_bad_label_is_named_at_once_and_a_body_that_is_not_json_is_400(client, api):
    register(client)
    resp = client.patch("/api/factories/plant_a", json={"display_name": 1, "site": "z" * 500}, headers=api)
    assert [p["field"] for p in resp.get_json()["detail"]["problems"]] == ["display_name", "site"]
    assert client.patch("/api/factories/plant_a", data="display_name=x", headers=api).status_code == 400
    assert client.patch("/api/factories/ghost", json={"site": "a"}, headers=api).status_code == 404


def test_a_viewer_cannot_change_labels_by_api_or_page(app, client):
    register(client)
    viewer = as_role(app, "viewer")
    resp = viewer.patch("/api/factories/plant_a", json={"site": "a"})
    assert resp.status_code == 403 and "operator role" in resp.get_json()["error"]
    assert viewer.post("/factories/plant_a/labels", data={"site": "a"}).status_code == 403
    assert 'id="plant-labels-form"' not in viewer.get("/factories/plant_a").text
    assert plant(app).site is None


def test_the_labels_form_saves_and_a_bad_value_comes_back_as_a_flash_on_the_html_page(app, client):
    register(client)
    operator = as_role(app, "operator")
    saved = operator.post("/factories/plant_a/labels", data={"display_name": "Press 3", "site": "Hall B"})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/factories/plant_a")
    assert (plant(app).display_name, plant(app).site) == ("Press 3", "Hall B")
    bad = operator.post("/factories/plant_a/labels", data={"display_name": "tab\there", "site": "s" * 200},
                        follow_redirects=True)
    assert bad.status_code == 200 and bad.mimetype == "text/html"
    assert "display name: must be printable text" in bad.text and "site: must be at most 120" in bad.text
    assert (plant(app).display_name, plant(app).site) == ("Press 3", "Hall B")


def test_errors_of_pages_under_factories_are_html_and_the_registry_routes_stay_json(app, client, api):
    login(client)
    for resp in (client.get("/factories/nope"), client.post("/factories/nope/labels", data={"site": "a"}),
                 client.post("/factories/nope/decommission", data={"confirm": "yes"})):
        assert resp.status_code == 404 and resp.mimetype == "text/html"
    assert client.post("/heartbeat", json={}).is_json and app.test_client().get("/factories").is_json


def test_decommissioning_is_no_outage_and_the_plant_downloads_no_model(app, client, api):
    """Review: the status set to offline by decommissioning must not call the webhook's plant.offline, and a token
    a racing re-registration might have written must not fetch a bundle."""
    from dashboard.webhooks.sender import EXTENSION, WebhookSender, WebhookSettings
    from tests.dashboard.test_monitoring import Receiver
    from tests.dashboard.test_releases import seed_experiment

    receiver = Receiver()
    sender = WebhookSender(WebhookSettings(receiver.url, timeout=2, retries=0))
    app.extensions[EXTENSION] = sender
    try:
        token = register(client).get_json()["heartbeat_token"]
        release = client.post(f"/api/experiments/{seed_experiment(app, client, api, plants=('plant_a',))}/release",
                              headers=api).get_json()
        assert client.get(f"/api/models/{release['id']}/bundle",
                          headers={"Authorization": f"Bearer {token}"}).status_code == 200
        client.post("/api/factories/plant_a/decommission", headers=api)
        assert sender.flush(10) and [p["event"] for p in receiver.posts] == []
        with app.app_context():  # as a re-registration racing the decommission would leave it
            from dashboard.models.operators import token_digest

            db.session.execute(db.update(Factory).filter_by(name="plant_a").values(
                heartbeat_token_hash=token_digest(token)))
            db.session.commit()
        refused = client.get(f"/api/models/{release['id']}/bundle", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403 and "decommissioned" in refused.get_json()["error"]
    finally:
        sender.stop()
        receiver.close()


def test_a_release_holds_a_decommissioned_plant(app, client, api):
    from tests.dashboard.test_releases import seed_experiment

    register(client, "plant_a")
    register(client, "plant_b")
    eid = seed_experiment(app, client, api, plants=("plant_a", "plant_b"))
    client.post("/api/factories/plant_b/decommission", headers=api)
    release = client.post(f"/api/experiments/{eid}/release", headers=api).get_json()
    assigned = {d["plant"]: d["assigned"] for d in client.get("/api/deployments", headers=api).get_json()["plants"]}
    assert assigned["plant_a"]["release_id"] == release["id"] and assigned.get("plant_b") is None
    preview = client.post(f"/api/releases/{release['id']}/deploy", json={}, headers=api).get_json()
    held = {p["plant"]: p for p in preview["plants"]}
    assert not held["plant_b"]["switches"] and "decommissioned" in held["plant_b"]["why"]


def test_pages_offer_a_decommissioned_plant_no_action(app, client, api):
    from tests.dashboard.test_releases import seed_experiment

    register(client, "plant_a")
    register(client, "plant_b")
    client.post(f"/api/experiments/{seed_experiment(app, client, api, plants=('plant_a', 'plant_b'))}/release",
                headers=api)
    client.post("/api/factories/plant_b/decommission", headers=api)
    login(client)
    models = client.get("/releases").text
    row = models[models.index('<tr data-plant="plant_b">'):].split("</tr>", 1)[0]
    assert "badge decommissioned" in row and "Pin" not in row and "Roll back" not in row
    form = client.get("/experiments").text
    assert '<option value="plant_a">' in form and 'value="plant_b"' not in form

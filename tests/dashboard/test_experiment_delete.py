"""Deleting an experiment (issue 27 item 6; admins): the confirmation page says what goes and what stays; the
rounds, metrics, models and unused releases go, the audit log stays; refused while it runs or is paused and while
a plant is assigned one of its releases or reports using one."""

from dashboard.extensions import db
from dashboard.models import AuditEvent, Experiment, ModelVersion, Release, Round, RoundResult
from tests.dashboard.conftest import ADMIN
from tests.dashboard.test_auth_table import operators_with_every_role
from tests.dashboard.test_releases import beat, seed_experiment, tokens  # noqa: F401 (a fixture)


def counts(app, eid):
    with app.app_context():
        return tuple(db.session.scalar(db.select(db.func.count()).select_from(m).filter_by(experiment_id=eid))
                     for m in (Round, ModelVersion, Release))


def test_delete_removes_rounds_metrics_models_and_unused_releases_and_keeps_the_audit(app, client, api, tokens):
    eid = seed_experiment(app, client, api)
    with app.app_context():
        round_id = db.session.scalar(db.select(Round.id).filter_by(experiment_id=eid, number=1))
        db.session.add(RoundResult(round_id=round_id, factory_name="plant_a", num_samples=10, steps=1, metrics={}))
        db.session.commit()
    first = client.post(f"/api/experiments/{eid}/release", json={"round": 1}, headers=api).get_json()
    client.post(f"/api/experiments/{eid}/release", json={"round": 2}, headers=api)
    refused = client.delete(f"/api/experiments/{eid}", headers=api)
    assert refused.status_code == 409 and "are assigned one of its releases" in refused.get_json()["error"]
    other = seed_experiment(app, client, api, name="other")
    client.post(f"/api/experiments/{other}/release", headers=api)  # its plants now run the other experiment's model
    assert counts(app, eid) == (4, 4, 2)
    resp = client.delete(f"/api/experiments/{eid}", headers=api)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["deleted"] and body["removed"]["rounds"] == 4 and first["sha256"] in body["removed"]["releases"]
    assert counts(app, eid) == (0, 0, 0) and client.get(f"/api/experiments/{eid}", headers=api).status_code == 404
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(RoundResult)) == 0
        assert db.session.get(Experiment, other) is not None and counts(app, other)[0] == 4
    events = client.get("/api/audit", query_string={"experiment": eid}, headers=api).get_json()["events"]
    actions = [e["action"] for e in events]
    assert actions[0] == "experiment.deleted" and "experiment.created" in actions and "model.released" in actions
    deleted = events[0]["detail"]
    assert deleted["best_round"] == 3 and deleted["best_val_f1"] == 0.7 and deleted["config"]["name"] == "trained"
    assert client.delete(f"/api/experiments/{eid}", headers=api).status_code == 404


def test_delete_is_refused_while_running_or_paused_or_while_a_plant_uses_a_release(app, client, api, tokens):
    eid = client.post("/api/experiments", json={"name": "live", "rounds": 2}, headers=api).get_json()["id"]
    client.post(f"/api/experiments/{eid}/start", headers=api)
    resp = client.delete(f"/api/experiments/{eid}", headers=api)
    assert resp.status_code == 409 and "running: cancel it" in resp.get_json()["error"]
    client.post(f"/api/experiments/{eid}/pause", headers=api)
    assert client.delete(f"/api/experiments/{eid}", headers=api).status_code == 409
    client.post(f"/api/experiments/{eid}/cancel", headers=api)
    assert client.delete(f"/api/experiments/{eid}", headers=api).status_code == 200  # cancelled: it may go
    used = seed_experiment(app, client, api, name="used")
    release = client.post(f"/api/experiments/{used}/release", headers=api).get_json()
    newer = seed_experiment(app, client, api, name="newer")
    client.post(f"/api/experiments/{newer}/release", headers=api)  # assigned another; plant_a still reports it
    assert beat(client, tokens["plant_a"], released_model={"id": release["id"], "sha256": release["sha256"]}
                ).status_code == 200
    resp = client.delete(f"/api/experiments/{used}", headers=api)
    assert resp.status_code == 409 and "plant_a report using" in resp.get_json()["error"], resp.get_json()
    pending = client.post("/api/experiments", json={"name": "never ran"}, headers=api).get_json()["id"]
    assert client.delete(f"/api/experiments/{pending}", headers=api).status_code == 200


def test_only_admins_delete_and_the_page_confirms_saying_what_goes_and_what_stays(app, client, api):
    eid = seed_experiment(app, client, api)
    roles = operators_with_every_role(app)
    resp = client.delete(f"/api/experiments/{eid}", headers={"Authorization": f"Bearer {roles['operator']}"})
    assert resp.status_code == 403 and "admin" in resp.get_json()["error"]
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    assert 'id="delete-experiment"' in client.get(f"/experiments/{eid}").text
    page = client.get(f"/experiments/{eid}/delete")
    assert page.status_code == 200 and "4 round(s)" in page.text and "4 model version(s)" in page.text
    assert "the audit log" in page.text and 'id="confirm-yes"' in page.text
    assert client.post(f"/experiments/{eid}/delete").status_code == 302 and counts(app, eid)[0] == 4  # not confirmed
    done = client.post(f"/experiments/{eid}/delete", data={"confirm": "yes"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/experiments")
    assert counts(app, eid) == (0, 0, 0) and "deleted; its audit events are kept" in client.get("/experiments").text
    live = client.post("/api/experiments", json={"name": "live"}, headers=api).get_json()["id"]
    client.post(f"/api/experiments/{live}/start", headers=api)
    refused = client.get(f"/experiments/{live}/delete")
    assert refused.status_code == 409 and 'id="delete-refused"' in refused.text and 'id="confirm-yes"' not in refused.text
    viewer = app.test_client()
    viewer.post("/login", data={"email": "viewer@factoryfl.org", "password": "a role-test password"})
    assert 'id="delete-experiment"' not in viewer.get(f"/experiments/{live}").text
    with app.app_context():
        assert db.session.scalar(db.select(AuditEvent).filter_by(action="experiment.deleted")).actor == ADMIN[0]


def test_a_deleted_experiments_id_is_never_given_to_the_next_one(client, api):
    """The audit log finds an experiment's events by its id: a new experiment must not inherit them."""
    first = client.post("/api/experiments", json={"name": "kept"}, headers=api).get_json()["id"]
    newest = client.post("/api/experiments", json={"name": "deleted"}, headers=api).get_json()["id"]
    assert client.delete(f"/api/experiments/{newest}", headers=api).status_code == 200
    after = client.post("/api/experiments", json={"name": "after"}, headers=api).get_json()["id"]
    assert after > newest > first
    events = client.get("/api/audit", query_string={"experiment": after}, headers=api).get_json()["events"]
    assert [e["action"] for e in events] == ["experiment.created"]


def test_attack_deleting_an_experiment_a_plant_could_be_rolled_back_to_is_refused(app, client, api, tokens):
    """Review: R1 (first), R2 (second), roll back to R1, R3 (third). Deleting the first experiment would remove
    R1's rows, and a roll back would then return the plants to R2, the model they were rolled back from."""
    first, second, third = (seed_experiment(app, client, api, name=n) for n in ("first", "second", "third"))
    client.post(f"/api/experiments/{first}/release", headers=api)
    client.post(f"/api/experiments/{second}/release", headers=api)
    assert client.post("/api/deployments/rollback", headers=api).status_code == 200  # back to R1
    client.post(f"/api/experiments/{third}/release", headers=api)
    refused = client.delete(f"/api/experiments/{first}", headers=api)
    assert refused.status_code == 409 and "were rolled back to one of its releases" in refused.get_json()["error"]
    assert client.delete(f"/api/experiments/{second}", headers=api).status_code == 200  # rolled back from: it may go
    back = client.post("/api/factories/plant_a/model/rollback", headers=api)
    assert back.status_code == 200, back.get_json()
    first_release = [r for r in client.get("/api/releases", headers=api).get_json() if r["experiment_id"] == first]
    assert back.get_json()["release_id"] == first_release[0]["id"]  # R1, never the deleted R2


def test_a_deleted_experiments_release_ids_are_never_given_again(app, client, api, tokens):
    """Review: on SQLite the next release took a deleted release's id, so audit events by release id named two
    models (the migration makes releases and deployments AUTOINCREMENT)."""
    kept, gone = seed_experiment(app, client, api, name="kept"), seed_experiment(app, client, api, name="gone")
    client.post(f"/api/experiments/{kept}/release", headers=api)
    last = client.post(f"/api/experiments/{gone}/release", headers=api).get_json()["id"]  # the newest id
    assert client.post("/api/deployments/rollback", headers=api).status_code == 200  # every plant back on "kept"
    assert client.delete(f"/api/experiments/{gone}", headers=api).status_code == 200
    again = client.post(f"/api/experiments/{kept}/release", headers=api).get_json()["id"]
    assert again > last  # without AUTOINCREMENT SQLite gives the deleted release's id again

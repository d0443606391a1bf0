"""Deployments per plant (issue 27 item 1, decision 0022) with the test client: a release to a subset of plants,
the confirmation preview's numbers, a pinned plant held, roll back per plant and for all, each plant's heartbeat
answer, the audit trail, and hostile requests refused with a 400 naming the field."""

import pytest

from dashboard.extensions import db
from dashboard.models import Experiment, Round, RoundResult
from tests.dashboard.conftest import register
from tests.dashboard.test_releases import PLANTS, beat, seed_experiment

# each plant's own validation F1 per round (rounds 1..3), recorded beside the pooled one
PER_PLANT = {1: {"plant_a": 0.5, "plant_b": 0.3}, 2: {"plant_a": 0.6, "plant_b": 0.45},
             3: {"plant_a": 0.8, "plant_b": 0.6}}


@pytest.fixture()
def tokens(client):
    return {name: register(client, name).get_json()["heartbeat_token"] for name in (*PLANTS, "plant_c")}


@pytest.fixture()
def eid(app, client, api, tokens):
    """A completed experiment of three rounds over plant_a and plant_b, with per-plant validation F1."""
    experiment_id = seed_experiment(app, client, api, val_f1=(0.4, 0.5, 0.7))
    with app.app_context():
        for row in db.session.scalars(db.select(Round).filter_by(experiment_id=experiment_id)):
            for name, f1 in PER_PLANT[row.number].items():
                db.session.add(RoundResult(round_id=row.id, factory_name=name, num_samples=10, steps=1,
                                           metrics={"val_f1": f1}))
        db.session.commit()
    return experiment_id


def release(client, api, eid, **body):
    resp = client.post(f"/api/experiments/{eid}/release", json=body, headers=api)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def assigned(client, tokens, name) -> int | None:
    model = beat(client, tokens[name], name=name).get_json()["released_model"]
    return model and model["id"]


def test_a_release_to_a_subset_switches_only_those_plants(client, api, tokens, eid):
    asked = client.post(f"/api/experiments/{eid}/release", json={"round": 1, "plants": ["plant_b"], "preview": True},
                        headers=api)
    assert asked.status_code == 200 and asked.get_json()["switching"] == ["plant_b"]
    assert asked.get_json()["release_id"] is None and client.get("/api/releases", headers=api).get_json() == []
    first = release(client, api, eid, round=1, plants=["plant_b"])
    assert first["deployment"]["switching"] == ["plant_b"] and first["plants"] == list(PLANTS)
    assert (assigned(client, tokens, "plant_a"), assigned(client, tokens, "plant_b")) == (None, first["id"])
    assert assigned(client, tokens, "plant_c") is None  # never trained it: never assigned it


def test_the_preview_shows_each_plants_f1_change_and_nothing_switches_until_confirmed(client, api, tokens, eid):
    first = release(client, api, eid, round=1)
    third = release(client, api, eid, round=3, plants=["plant_a"])
    preview = client.post(f"/api/releases/{third['id']}/deploy", json={}, headers=api).get_json()
    assert preview["confirmed"] is False and preview["switching"] == ["plant_b"] and preview["held"] == ["plant_a"]
    by_plant = {p["plant"]: p for p in preview["plants"]}
    assert by_plant["plant_a"]["why"] == "already runs it"
    b = by_plant["plant_b"]
    assert (b["current_release_id"], b["current_val_f1"], b["new_val_f1"]) == (first["id"], 0.3, 0.6)
    assert b["change"] == pytest.approx(0.3) and b["switches"]
    assert assigned(client, tokens, "plant_b") == first["id"]  # a preview changes nothing
    done = client.post(f"/api/releases/{third['id']}/deploy", json={"confirm": True}, headers=api).get_json()
    assert done["confirmed"] and done["switching"] == ["plant_b"]
    assert assigned(client, tokens, "plant_b") == third["id"]


def test_a_pinned_plant_is_held_by_a_default_release_and_switched_only_when_named(client, api, tokens, eid):
    first = release(client, api, eid, round=1)
    pinned = client.post("/api/factories/plant_b/model/pin", headers=api)
    assert pinned.status_code == 200 and pinned.get_json()["pinned"]
    third = release(client, api, eid, round=3)
    assert third["deployment"]["switching"] == ["plant_a"] and third["deployment"]["held"] == ["plant_b"]
    assert (assigned(client, tokens, "plant_a"), assigned(client, tokens, "plant_b")) == (third["id"], first["id"])
    named = client.post(f"/api/releases/{third['id']}/deploy", json={"plants": ["plant_b"], "confirm": True},
                        headers=api).get_json()
    assert named["switching"] == ["plant_b"] and assigned(client, tokens, "plant_b") == third["id"]
    plants = {p["plant"]: p for p in client.get("/api/deployments", headers=api).get_json()["plants"]}
    assert plants["plant_b"]["assigned"]["pinned"]  # still pinned, on the model it was named for
    assert not client.post("/api/factories/plant_b/model/unpin", headers=api).get_json()["pinned"]


def test_roll_back_undoes_the_newest_deploy_one_at_a_time(client, api, tokens, eid):
    ids = [release(client, api, eid, round=n, plants=["plant_a"])["id"] for n in (1, 2, 3)]
    for expected in (ids[1], ids[0]):
        assert client.post("/api/factories/plant_a/model/rollback", headers=api).get_json()["release_id"] == expected
        assert assigned(client, tokens, "plant_a") == expected
    refused = client.post("/api/factories/plant_a/model/rollback", headers=api)
    assert refused.status_code == 409 and "no earlier one" in refused.get_json()["error"]


def test_roll_back_all_returns_every_plant_not_pinned_and_holds_the_pinned(client, api, tokens, eid):
    first = release(client, api, eid, round=1)
    third = release(client, api, eid, round=3)
    client.post("/api/factories/plant_a/model/pin", headers=api)
    result = client.post("/api/deployments/rollback", headers=api).get_json()
    assert [r["plant"] for r in result["rolled_back"]] == ["plant_b"] and result["held_pinned"] == ["plant_a"]
    assert (assigned(client, tokens, "plant_a"), assigned(client, tokens, "plant_b")) == (third["id"], first["id"])
    again = client.post("/api/deployments/rollback", headers=api).get_json()
    assert again["rolled_back"] == [] and again["nothing_earlier"] == ["plant_b"]
    # named, a pinned plant is rolled back too
    assert client.post("/api/factories/plant_a/model/rollback", headers=api).get_json()["release_id"] == first["id"]
    states = {r["id"]: r["state_text"] for r in client.get("/api/releases", headers=api).get_json()}
    assert states == {first["id"]: "in use at 2 plants", third["id"]: "superseded"}


def test_a_release_no_plant_was_ever_deployed_is_never_used(client, api, tokens, eid):
    assert client.post("/api/factories/plant_a/model/pin", headers=api).status_code == 409  # nothing assigned
    only = release(client, api, eid, round=1, plants=["plant_a"])
    client.post("/api/factories/plant_a/model/pin", headers=api)
    held = release(client, api, eid, round=3, plants=["plant_b"])
    client.post("/api/factories/plant_b/model/pin", headers=api)
    unused = client.post(f"/api/experiments/{eid}/release", json={"round": 2}, headers=api).get_json()
    assert unused["deployment"]["switching"] == []
    states = {r["id"]: r["state"] for r in client.get("/api/releases", headers=api).get_json()}
    assert states == {only["id"]: "in_use", held["id"]: "in_use", unused["id"]: "never_used"}


def test_every_deploy_roll_back_and_pin_is_audited(client, api, tokens, eid):
    release(client, api, eid, round=1)
    release(client, api, eid, round=3, plants=["plant_a"])
    client.post("/api/factories/plant_a/model/pin", headers=api)
    client.post("/api/factories/plant_a/model/unpin", headers=api)
    client.post("/api/factories/plant_a/model/rollback", headers=api)
    events = client.get("/api/audit?per_page=200", headers=api).get_json()["events"]
    actions = [(e["action"], e["target"]) for e in reversed(events) if e["action"].startswith(("model.", "deploy"))]
    assert actions == [("model.released", "trained"), ("deployment.deployed", "plant_a"),
                       ("deployment.deployed", "plant_b"), ("model.deployed", "trained"),
                       ("model.released", "trained"), ("deployment.deployed", "plant_a"),
                       ("model.deployed", "trained"), ("deployment.pinned", "plant_a"),
                       ("deployment.unpinned", "plant_a"), ("deployment.rolled_back", "plant_a")]
    deployed = [e for e in events if e["action"] == "model.deployed"][0]  # the newest
    assert deployed["detail"]["switched"] == ["plant_a"] and deployed["detail"]["held"] == []
    assert deployed["actor"].startswith("ops@")
    about_b = client.get("/api/audit?plant=plant_b&action=deployment", headers=api).get_json()["events"]
    assert [e["action"] for e in about_b] == ["deployment.deployed"]  # the plant filter finds its deploys


def test_a_cancelled_experiment_or_one_without_rounds_is_not_released(app, client, api, tokens, eid):
    bare = client.post("/api/experiments", json={"name": "no rounds", "rounds": 2}, headers=api).get_json()["id"]
    resp = client.post(f"/api/experiments/{bare}/release", headers=api)
    assert resp.status_code == 409 and "no completed round" in resp.get_json()["error"]
    first = release(client, api, eid, round=1, plants=["plant_a"])
    with app.app_context():
        db.session.get(Experiment, eid).status = "cancelled"
        db.session.commit()
    resp = client.post(f"/api/experiments/{eid}/release", headers=api)
    assert resp.status_code == 409 and "cancelled" in resp.get_json()["error"]
    resp = client.post(f"/api/releases/{first['id']}/deploy", json={"confirm": True}, headers=api)
    assert resp.status_code == 409 and assigned(client, tokens, "plant_b") is None


@pytest.mark.parametrize("body,field", [
    ({"plants": "plant_a"}, "plants"), ({"plants": [1]}, "plants"), ({"plants": [["plant_a"]]}, "plants"),
    ({"plants": ["../../etc/passwd"]}, "plants"), ({"plants": ["plant_c"]}, "plants"),  # did not train it
    ({"plants": ["plant_zz"]}, "plants"), ({"plants": []}, "plants"), ({"plants": ["plant_a"] * 5000}, "plants"),
    ({"plants": {"plant_a": True}}, "plants"), ({"confirm": "yes"}, "confirm"), ({"confirm": 1}, "confirm"),
    ({"plants": ["plant_a"], "everyone": True}, "everyone"), ({"preview": "yes"}, "preview"),
])
def test_attack_hostile_deploy_requests_are_refused_naming_the_field_and_nothing_switches(client, api, tokens, eid,
                                                                                          body, field):
    first = release(client, api, eid, round=1, plants=["plant_a"])
    resp = client.post(f"/api/releases/{first['id']}/deploy", json={**body, "confirm": body.get("confirm", True)},
                       headers=api)
    assert resp.status_code == 400 and resp.is_json and resp.get_json()["detail"]["field"] == field
    if field == "plants":  # the release itself refuses the same plants before storing anything
        again = client.post(f"/api/experiments/{eid}/release", json=body, headers=api)
        assert again.status_code == 400 and again.get_json()["detail"]["field"] == "plants"
    assert len(client.get("/api/releases", headers=api).get_json()) == 1
    assert (assigned(client, tokens, "plant_a"), assigned(client, tokens, "plant_b")) == (first["id"], None)


def test_attack_plant_actions_refuse_bad_and_unknown_names(client, api, tokens, eid):
    assert client.post("/api/factories/no_such_plant/model/rollback", headers=api).status_code == 404
    bad = client.post("/api/factories/a%20b;drop/model/pin", headers=api)
    assert bad.status_code == 400 and bad.get_json()["detail"]["field"] == "name"
    nothing = client.post("/api/factories/plant_c/model/pin", headers=api)  # registered, never deployed
    assert nothing.status_code == 409 and "no model deployed" in nothing.get_json()["error"]
    assert client.post("/api/releases/1/deploy", data="[1]", content_type="application/json",
                       headers=api).status_code == 400

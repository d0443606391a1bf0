"""Released models (DESIGN §10) with the test client: release, the registry, roll back, heartbeat answers and
reports, the plants' bundle download and who may have it."""

import hashlib

import numpy as np
import pytest

from dashboard.extensions import db
from dashboard.models import Experiment, ModelVersion, Round
from shared.bundle import ModelBundle
from tests.dashboard.conftest import register

PLANTS = ("plant_a", "plant_b")


def beat(client, token, name="plant_a", **fields):
    body = {"factory_name": name, "status": "online", "current_load": {}, **fields}
    return client.post("/heartbeat", json=body, headers={"Authorization": f"Bearer {token}"})


def seed_experiment(app, client, api, val_f1=(0.4, 0.7, 0.7, None), plants=PLANTS, name="trained",
                    named=None) -> int:
    """An experiment whose rounds 1..n completed with these pooled validation F1s (None: no val metrics), each
    with a stored model, over `plants`; its configuration lists `named` (default: all plants)."""
    from shared.data.scaler import Scaler
    from shared.data.schema import FeatureSchema
    from shared.models import ModelSpec, build_model, get_weights
    from shared.serialization import weights_to_bytes

    body = {"name": name, "rounds": len(val_f1), **({"factories": list(named)} if named else {})}
    eid = client.post("/api/experiments", json=body, headers=api).get_json()["id"]
    with app.app_context():
        experiment = db.session.get(Experiment, eid)
        experiment.schema = FeatureSchema(label_column="y", numeric_columns=("a", "b")).to_dict()
        experiment.scaler = Scaler(np.zeros(2), np.ones(2)).to_dict()
        experiment.status, experiment.current_round = "completed", len(val_f1)
        weights = get_weights(build_model(ModelSpec("cnn", 2, hidden_size=64)))
        for number, f1 in enumerate(val_f1, start=1):
            metrics = {"test_f1": 0.5} if f1 is None else {"val_f1": f1, "test_f1": f1 - 0.05}
            db.session.add(Round(experiment_id=eid, number=number, status="completed", participants=list(plants),
                                 metrics=metrics, threshold=0.4))
            db.session.add(ModelVersion(experiment_id=eid, round_number=number, weights=weights_to_bytes(weights),
                                        threshold=0.4))
        db.session.commit()
    return eid


@pytest.fixture()
def tokens(client):
    return {name: register(client, name).get_json()["heartbeat_token"] for name in (*PLANTS, "plant_c")}


def test_release_defaults_to_the_best_validation_f1_with_ties_to_the_later_round(app, client, api, tokens):
    eid = seed_experiment(app, client, api)  # rounds 2 and 3 tie at 0.7; round 4 has no val metrics
    resp = client.post(f"/api/experiments/{eid}/release", headers=api)
    assert resp.status_code == 201, resp.get_json()
    release = resp.get_json()
    assert release["round"] == 3 and release["metrics"]["val_f1"] == 0.7
    assert release["deployment"]["switching"] == list(PLANTS)  # default: every plant that trained it
    assert sorted(release["plants"]) == list(PLANTS) and release["released_by"].startswith("ops@")
    served = client.get(f"/api/experiments/{eid}/model?round=3", headers=api).data  # what the download serves
    assert release["sha256"] == hashlib.sha256(served).hexdigest() and release["size"] == len(served)


def test_an_explicit_round_is_released_and_a_missing_one_is_refused(app, client, api, tokens):
    eid = seed_experiment(app, client, api)
    assert client.post(f"/api/experiments/{eid}/release", json={"round": 1}, headers=api).get_json()["round"] == 1
    assert client.post(f"/api/experiments/{eid}/release", json={"round": 9}, headers=api).status_code == 409
    bad = client.post(f"/api/experiments/{eid}/release", json={"round": "1; drop"}, headers=api)
    assert bad.status_code == 400 and bad.get_json()["detail"]["field"] == "round"
    assert client.post("/api/experiments/999/release", headers=api).status_code == 404


def test_an_experiment_without_validation_metrics_has_nothing_to_release(app, client, api, tokens):
    eid = seed_experiment(app, client, api, val_f1=(None,))
    resp = client.post(f"/api/experiments/{eid}/release", headers=api)
    assert resp.status_code == 409 and "val_f1" in resp.get_json()["error"]


def test_heartbeat_answers_name_the_active_release_only_to_the_experiments_plants(app, client, api, tokens):
    assert beat(client, tokens["plant_a"]).get_json()["released_model"] is None
    eid = seed_experiment(app, client, api)
    release = client.post(f"/api/experiments/{eid}/release", headers=api).get_json()
    answer = beat(client, tokens["plant_a"]).get_json()
    assert answer["released_model"] == {"id": release["id"], "sha256": release["sha256"], "size": release["size"]}
    assert beat(client, tokens["plant_c"], name="plant_c").get_json()["released_model"] is None


def test_roll_back_returns_a_plant_to_its_earlier_release_and_the_registry_lists_every_one(app, client, api,
                                                                                            tokens):
    eid = seed_experiment(app, client, api)
    first = client.post(f"/api/experiments/{eid}/release", json={"round": 1}, headers=api).get_json()
    second = client.post(f"/api/experiments/{eid}/release", headers=api).get_json()
    assert beat(client, tokens["plant_a"]).get_json()["released_model"]["id"] == second["id"]
    resp = client.post("/api/factories/plant_a/model/rollback", headers=api)
    assert resp.status_code == 200 and resp.get_json()["release_id"] == first["id"]
    assert beat(client, tokens["plant_a"]).get_json()["released_model"]["id"] == first["id"]
    assert beat(client, tokens["plant_b"], name="plant_b").get_json()["released_model"]["id"] == second["id"]
    listed = client.get("/api/releases", headers=api).get_json()
    assert [(r["id"], r["state_text"]) for r in listed] == [(second["id"], "in use at 1 plant"),
                                                             (first["id"], "in use at 1 plant")]
    assert listed[0]["experiment"] == "trained"
    assert client.post("/api/releases/424242/deploy", headers=api).status_code == 404


def test_a_plant_downloads_its_release_with_its_heartbeat_token_and_the_bytes_match_the_hash(app, client, api,
                                                                                              tokens):
    eid = seed_experiment(app, client, api)
    release = client.post(f"/api/experiments/{eid}/release", headers=api).get_json()
    resp = client.get(f"/api/models/{release['id']}/bundle", headers={"Authorization": f"Bearer {tokens['plant_b']}"})
    assert resp.status_code == 200 and hashlib.sha256(resp.data).hexdigest() == release["sha256"]
    assert ModelBundle.from_bytes(resp.data).source["round"] == release["round"]


def test_attack_a_plant_cannot_download_another_experiments_model(app, client, api, tokens):
    eid = seed_experiment(app, client, api)
    release = client.post(f"/api/experiments/{eid}/release", headers=api).get_json()
    url = f"/api/models/{release['id']}/bundle"
    outsider = client.get(url, headers={"Authorization": f"Bearer {tokens['plant_c']}"})
    assert outsider.status_code == 403 and outsider.is_json and "plant_c" in outsider.get_json()["error"]
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer forged"}).status_code == 401
    assert client.get(url, headers=api).status_code == 401  # an operator's token is not a plant's
    assert client.get("/api/models/99/bundle", headers={"Authorization": f"Bearer {tokens['plant_a']}"}
                      ).status_code == 404


def test_heartbeats_report_the_floor_and_factories_shows_it_with_a_history(app, client, api, tokens):
    release = client.post(f"/api/experiments/{seed_experiment(app, client, api)}/release", headers=api).get_json()
    model_id, digest = release["id"], release["sha256"]
    resp = beat(client, tokens["plant_a"], released_model={"id": model_id, "sha256": digest, "kind": "global"},
                scored_rows=1200, alerts_open=2, drift=0.125)
    assert resp.status_code == 200
    beat(client, tokens["plant_a"], released_model={"id": model_id, "sha256": digest}, scored_rows=1300,
         alerts_open=1, drift=0.25)
    beat(client, tokens["plant_a"], released_model={"id": model_id, "sha256": digest}, scored_rows=1300,
         alerts_open=1, drift=0.25)  # unchanged: no new sample
    plant = {f["factory_name"]: f for f in client.get("/factories", headers=api).get_json()}["plant_a"]
    assert plant["released_model"] == {"id": model_id, "sha256": digest, "kind": "global"}
    assert (plant["scored_rows"], plant["alerts_open"], plant["drift"]) == (1300, 1, 0.25)
    history = client.get("/api/factories/plant_a/floor", headers=api).get_json()["history"]
    assert [(h["scored_rows"], h["alerts_open"]) for h in history] == [(1200, 2), (1300, 1)]
    assert beat(client, tokens["plant_a"]).status_code == 200  # an agent without a model says nothing: kept
    assert client.get("/api/factories/plant_a/floor", headers=api).get_json()["alerts_open"] == 1


@pytest.mark.parametrize("fields,field", [
    ({"released_model": {"id": "../../etc/passwd", "sha256": "ab" * 32}}, "released_model.id"),
    ({"released_model": {"id": 1, "sha256": "AB" * 32}}, "released_model.sha256"),
    ({"released_model": {"id": 1, "sha256": "ab" * 32, "kind": "mine"}}, "released_model.kind"),
    ({"released_model": {"id": 1, "sha256": "ab" * 32, "rows": [1, 2]}}, "released_model"),
    ({"released_model": [1]}, "released_model"),
    ({"released_model": {"id": 2 ** 31, "sha256": "ab" * 32}}, "released_model.id"),  # past the 32-bit column
    ({"scored_rows": -1}, "scored_rows"), ({"scored_rows": 10 ** 16}, "scored_rows"),
    ({"alerts_open": True}, "alerts_open"), ({"alerts_open": 1.5}, "alerts_open"),
    ({"drift": float("inf")}, "drift"), ({"drift": "high"}, "drift"), ({"drift": -0.1}, "drift"),
])
def test_hostile_floor_reports_are_refused_naming_the_field_and_nothing_is_stored(client, api, tokens, fields,
                                                                                  field):
    resp = client.post("/heartbeat", headers={"Authorization": f"Bearer {tokens['plant_a']}"},
                       data=__import__("json").dumps({"factory_name": "plant_a", **fields}).replace(
                           "Infinity", "1e999"), content_type="application/json")
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == field
    plant = {f["factory_name"]: f for f in client.get("/factories", headers=api).get_json()}["plant_a"]
    assert plant["released_model"] is None and plant["scored_rows"] is None


def test_attack_a_plant_named_in_the_experiment_but_never_in_its_rounds_gets_no_release(app, client, api, tokens):
    # a listed name must be registered (decision 0024): the squatter registers it first, then never trains
    squatter = register(client, "plant_x").get_json()["heartbeat_token"]
    eid = seed_experiment(app, client, api, plants=PLANTS, named=(*PLANTS, "plant_x"))
    release = client.post(f"/api/experiments/{eid}/release", headers=api).get_json()
    assert sorted(release["plants"]) == list(PLANTS)  # the plants that trained it, not every name listed
    assert beat(client, squatter, name="plant_x").get_json()["released_model"] is None
    resp = client.get(f"/api/models/{release['id']}/bundle", headers={"Authorization": f"Bearer {squatter}"})
    assert resp.status_code == 403


def test_attack_a_plant_cannot_claim_a_release_that_is_not_its_own(app, client, api, tokens, caplog):
    mine = client.post(f"/api/experiments/{seed_experiment(app, client, api)}/release", headers=api).get_json()
    eid = seed_experiment(app, client, api, plants=("plant_b", "plant_c"), name="theirs")
    theirs = client.post(f"/api/experiments/{eid}/release", headers=api).get_json()

    def reported(**model):
        assert beat(client, tokens["plant_a"], released_model=model, scored_rows=5).status_code == 200
        return {f["factory_name"]: f for f in client.get("/factories", headers=api).get_json()}["plant_a"]

    assert reported(id=mine["id"], sha256=mine["sha256"])["released_model"]["id"] == mine["id"]
    assert reported(id=4242, sha256="ab" * 32)["released_model"] is None  # no such release
    assert reported(id=4242, sha256="ab" * 32)["scored_rows"] == 5  # the counts are still kept
    assert reported(id=theirs["id"], sha256=theirs["sha256"])["released_model"] is None  # not for plant_a
    assert reported(id=mine["id"], sha256="cd" * 32)["released_model"] is None  # not its bytes
    assert sum("not a release plant_a may use" in r.getMessage() for r in caplog.records) == 3  # a repeat: once
    registry = {r["id"]: r for r in client.get("/api/releases", headers=api).get_json()}
    assert registry[theirs["id"]]["plants_using"] == []

"""DP-SGD's own training settings (issue 15 item 7) at the dashboard's boundaries: the API and its OpenAPI
document, the form, and each plant's privacy spent on the experiment page."""

import pytest

from dashboard.extensions import db
from dashboard.models import Experiment
from shared.experiment import PrivacyConfig
from shared.experiment.fields import DP_SGD_MAX_GRAD_NORM
from shared.privacy.accounting import epsilon_of
from tests.dashboard.conftest import ADMIN


def create(client, headers, **body):
    return client.post("/api/experiments", json={"name": "dp", **body}, headers=headers)


def test_the_api_stores_dp_sgds_own_settings_and_refuses_hostile_ones(client, api):
    config = create(client, api, privacy={"mode": "dp_sgd", "epsilon": 4}).get_json()["config"]["privacy"]
    defaults = PrivacyConfig()
    assert (config["batch_size"], config["learning_rate"], config["local_epochs"], config["max_grad_norm"]) == (
        defaults.batch_size, defaults.learning_rate, defaults.local_epochs, DP_SGD_MAX_GRAD_NORM)
    for bad in ({"batch_size": -1}, {"batch_size": 2 ** 40}, {"batch_size": "512"}, {"learning_rate": 5},
                {"learning_rate": None}, {"local_epochs": 0}, {"local_epochs": [1]}):
        resp = create(client, api, privacy={"mode": "dp_sgd", "epsilon": 4, **bad})
        assert resp.status_code == 400, bad
        assert resp.get_json()["detail"]["field"] == f"privacy.{next(iter(bad))}", bad
    resp = create(client, api, privacy={"mode": "central", "batch_size": 512})
    assert resp.status_code == 400 and "only with privacy.mode dp_sgd" in resp.get_json()["error"]
    props = client.get("/api/openapi.json").get_json()["components"]["schemas"]["ExperimentRequest"]["properties"]
    privacy = props["privacy"]["properties"]
    assert all("description" in privacy[k] for k in ("batch_size", "learning_rate", "local_epochs"))
    assert privacy["batch_size"]["type"] == "integer" and privacy["learning_rate"]["maximum"] == 1


def test_the_form_sends_dp_sgds_settings_and_its_own_clip_when_left_empty(app, client):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    page = client.get("/experiments").text
    for field in ("privacy_batch_size", "privacy_learning_rate", "privacy_local_epochs"):
        assert f'name="{field}"' in page
    form = {"name": "dpf", "model_type": "cnn", "algorithm": "fedavg", "server_optimizer": "none",
            "privacy_mode": "dp_sgd", "privacy_epsilon": "4", "robust_method": "none", "privacy_batch_size": "256",
            "privacy_learning_rate": "0.01", "privacy_local_epochs": "1"}
    assert client.post("/experiments", data=form).status_code == 302
    with app.app_context():
        privacy = db.session.scalars(db.select(Experiment).filter_by(name="dpf")).one().config["privacy"]
    assert (privacy["batch_size"], privacy["learning_rate"], privacy["local_epochs"]) == (256, 0.01, 1)
    assert privacy["max_grad_norm"] == DP_SGD_MAX_GRAD_NORM
    resp = client.post("/experiments", data={**form, "name": "bad", "privacy_batch_size": "0"})
    assert resp.status_code == 400 and 'data-field="privacy_batch_size"' in resp.text


def test_the_page_shows_each_plants_epsilon_spent_against_the_target(app, client, api):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    eid = create(client, api, privacy={"mode": "dp_sgd", "epsilon": 4}).get_json()["id"]
    page = client.get(f"/experiments/{eid}").text
    assert 'id="privacy-by-plant"' in page and "No plant has trained yet." in page
    defaults = PrivacyConfig()
    assert (f"DP-SGD training: {defaults.local_epochs} local epoch(s) · expected batch {defaults.batch_size} · "
            f"learning rate {defaults.learning_rate} · per-sample clip {DP_SGD_MAX_GRAD_NORM}") in page
    histories = {"plant_a": [[1.9, 0.5, 4], [1.9, 0.5, 4]], "plant_b": [[2.5, 0.25, 8]]}
    with app.app_context():
        db.session.get(Experiment, eid).privacy_history = histories
        db.session.commit()
    spent = client.get(f"/api/experiments/{eid}", headers=api).get_json()["privacy_spent"]
    a = spent["plants"]["plant_a"]
    assert a["epsilon"] == pytest.approx(epsilon_of(histories["plant_a"], 1e-5))
    assert (a["rounds"], a["steps"], a["noise_multiplier"], a["sample_rate"]) == (2, 8, 1.9, 0.5)
    assert spent["epsilon"] == max(p["epsilon"] for p in spent["plants"].values())
    page = client.get(f"/experiments/{eid}").text
    assert "<td>plant_a</td>" in page and "<td>plant_b</td>" in page and f"{a['epsilon']:.2f}" in page
    assert "<td>1.90</td>" in page and "<td>0.250</td>" in page

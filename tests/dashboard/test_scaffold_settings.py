"""SCAFFOLD at the dashboard: in the experiment form and the OpenAPI document with help, stored as the API takes
it, and its server control variate kept between rounds with the experiment (as FedDyn's server term is)."""

import numpy as np

from dashboard.extensions import db
from dashboard.models import Experiment
from dashboard.orchestration import recording
from shared.strategies import ServerState
from tests.dashboard.conftest import ADMIN


def test_the_form_and_the_openapi_document_offer_scaffold_with_help(app, client, api):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    page = client.get("/experiments").text
    assert 'value="scaffold"' in page and "SCAFFOLD corrects each plant" in page
    form = {"name": "drift", "model_type": "cnn", "algorithm": "scaffold", "server_optimizer": "none",
            "privacy_mode": "none", "robust_method": "none", "class_weight": "pooled"}
    assert client.post("/experiments", data=form).status_code == 302
    with app.app_context():
        config = db.session.scalars(db.select(Experiment).filter_by(name="drift")).one().config
    assert config["algorithm"] == "scaffold"
    resp = client.post("/experiments", data={**form, "name": "bad", "privacy_mode": "central"})
    assert resp.status_code == 400 and "scaffold cannot be combined with privacy.mode central" in resp.text
    props = client.get("/api/openapi.json").get_json()["components"]["schemas"]["ExperimentRequest"]["properties"]
    assert "scaffold" in props["algorithm"]["enum"] and "control variates" in props["algorithm"]["description"]
    created = client.post("/api/experiments", json={"name": "s", "algorithm": "scaffold", "secure_aggregation": True,
                                                    "min_factories": 2}, headers=api)
    assert created.status_code == 400  # review H1: the two unmasked sums would give each plant's update
    error = created.get_json()
    assert error["detail"]["field"] == "algorithm" and "secure_aggregation" in error["error"]
    created = client.post("/api/experiments", json={"name": "s", "algorithm": "scaffold", "min_factories": 2},
                          headers=api)
    assert created.status_code == 201 and created.get_json()["config"]["algorithm"] == "scaffold"


def test_the_server_control_variate_is_stored_with_the_experiment_between_rounds(app, client, api):
    eid = client.post("/api/experiments", json={"name": "c", "algorithm": "scaffold"}, headers=api).get_json()["id"]
    c = np.linspace(-1, 1, 7)
    with app.app_context():
        experiment = db.session.get(Experiment, eid)
        recording.save_server_state(experiment, ServerState(c=c, reputation={"p": 1.0}))
        db.session.commit()
        loaded = recording.load_server_state(db.session.get(Experiment, eid))
    np.testing.assert_allclose(loaded.c, c)

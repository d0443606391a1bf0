"""The learning settings of issue #15 at the dashboard: early stopping at the record stage
(dashboard.orchestration.recording) and the best round (the experiment completes once pooled validation F1 has not
improved for `patience` rounds, says so, and the API's detail and default model download name the best round);
class weight, learning-rate decay and patience in the experiment form and the OpenAPI document."""

import numpy as np

from dashboard.extensions import db
from dashboard.models import Experiment, ModelVersion, Round
from dashboard.orchestration import recording
from dashboard.orchestration.workflow import RoundPlan, RoundState
from tests.dashboard.conftest import ADMIN
from shared.bundle import ModelBundle
from shared.data.scaler import Scaler
from shared.data.schema import FeatureSchema
from shared.models import ModelSpec, build_model, get_weights
from shared.protocol import RoundRef, TrainReply
from shared.serialization import weights_to_bytes
from shared.strategies import Aggregated, ServerState
from shared.strategies.base import AggregationReport


def experiment_after_two_rounds(app, client, api, patience: int, scores: tuple[float, float]) -> int:
    """An experiment of 5 rounds whose rounds 1 and 2 are recorded with these validation F1s, round 3 running."""
    eid = client.post("/api/experiments", json={"name": "stop", "rounds": 5, "patience": patience,
                                                 "min_factories": 1}, headers=api).get_json()["id"]
    weights = get_weights(build_model(ModelSpec("cnn", 2), seed=0))
    with app.app_context():
        experiment = db.session.get(Experiment, eid)
        experiment.status, experiment.current_round = "running", 2
        experiment.schema = FeatureSchema(label_column="y", numeric_columns=("a", "b")).to_dict()
        experiment.scaler = {**Scaler(np.zeros(2), np.ones(2)).to_dict(), "pos_weight": 9.0}
        for number in (0, 1, 2):
            db.session.add(ModelVersion(experiment_id=eid, round_number=number, weights=weights_to_bytes(weights)))
        for number, f1 in zip((1, 2), scores):
            db.session.add(Round(experiment_id=eid, number=number, status="completed", participants=["p"],
                                 metrics={"val_f1": f1}))
        db.session.commit()
        row = recording.start_round(experiment, ["p"])
        recording.record_round(experiment, row, trained_round_three(weights), None)
    return eid


def trained_round_three(weights) -> RoundState:
    plan = RoundPlan(ref=RoundRef(1, 3), config=None, model=None, participants=[], federation_size=1,
                     server_state=ServerState(), timeout=60)
    reply = TrainReply(num_samples=10, steps=1, train_loss=0.3, train_seconds=0.1, weights=weights)
    report = AggregationReport(used=["p"], excluded={}, norms={}, outliers=[], reputation={})
    return RoundState(plan, trained={"p": reply}, strategy="fedavg",
                      aggregated=Aggregated(weights=weights, state=ServerState(), report=report))


def test_no_improvement_for_patience_rounds_completes_the_experiment_and_names_the_best_round(app, client, api):
    eid = experiment_after_two_rounds(app, client, api, patience=1, scores=(0.6, 0.5))
    detail = client.get(f"/api/experiments/{eid}", headers=api).get_json()
    assert detail["status"] == "completed" and detail["current_round"] == 3 and detail["best_round"] == 1
    assert detail["message"].startswith("stopped early at round 3: best round 1")
    download = client.get(f"/api/experiments/{eid}/model", headers=api)
    assert download.status_code == 200 and "round-1" in download.headers["Content-Disposition"]
    assert ModelBundle.from_bytes(download.data).source["round"] == 1
    assert "round-3" in client.get(f"/api/experiments/{eid}/model?round=3", headers=api).headers[
        "Content-Disposition"]


def test_an_improving_experiment_or_one_without_patience_runs_on(app, client, api):
    for patience, scores in ((1, (0.5, 0.6)), (0, (0.6, 0.5))):
        eid = experiment_after_two_rounds(app, client, api, patience=patience, scores=scores)
        detail = client.get(f"/api/experiments/{eid}", headers=api).get_json()
        assert detail["status"] == "running" and detail["current_round"] == 3 and detail["message"] is None
        assert detail["best_round"] == (2 if patience else 1)


def test_the_form_and_the_openapi_document_offer_every_new_setting_with_help(app, client):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    page = client.get("/experiments").text
    for field in ("class_weight", "lr_decay", "patience"):
        assert f'name="{field}"' in page
    assert "pooled validation F1" in page and "min_release_rows" in page
    form = {"name": "learn", "model_type": "cnn", "algorithm": "fedavg", "server_optimizer": "none",
            "privacy_mode": "none", "robust_method": "none", "class_weight": "local", "lr_decay": "0.8",
            "patience": "3"}
    assert client.post("/experiments", data=form).status_code == 302
    with app.app_context():
        config = db.session.scalars(db.select(Experiment).filter_by(name="learn")).one().config
    assert (config["class_weight"], config["lr_decay"], config["patience"]) == ("local", 0.8, 3)
    resp = client.post("/experiments", data={**form, "name": "bad", "lr_decay": "1.5"})
    assert resp.status_code == 400 and 'data-field="lr_decay"' in resp.text
    props = client.get("/api/openapi.json").get_json()["components"]["schemas"]["ExperimentRequest"]["properties"]
    assert props["class_weight"]["enum"] == ["pooled", "local"] and props["patience"]["type"] == "integer"
    assert props["lr_decay"]["maximum"] == 1 and all("description" in props[k]
                                                    for k in ("class_weight", "lr_decay", "patience"))


def test_the_forms_default_algorithm_runs_feddyn_and_falls_back_to_fedavg_with_a_robust_rule_or_dp(app, client):
    """The select's default (feddyn) is not a choice: left at it with median or DP the experiment runs fedavg (the
    API's default), never a 400 for a combination the operator did not ask for; feddyn picked with median is."""
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    page = client.get("/experiments").text
    assert '<option selected value="feddyn">' in page and "the best on validation F1" in page
    form = {"model_type": "mlp", "algorithm": "feddyn", "server_optimizer": "none", "privacy_mode": "none",
            "robust_method": "none", "class_weight": "pooled", "personalization": "none"}
    cases = {"plain": ({}, "feddyn"), "median": ({"robust_method": "median"}, "fedavg"),
             "central": ({"privacy_mode": "central", "privacy_epsilon": "8"}, "fedavg")}
    for name, (extra, _) in cases.items():
        assert client.post("/experiments", data={**form, "name": name, **extra}).status_code == 302
    with app.app_context():
        for name, (_, algorithm) in cases.items():
            assert db.session.scalars(db.select(Experiment).filter_by(name=name)).one().config["algorithm"] == algorithm
    props = client.get("/api/openapi.json").get_json()["components"]["schemas"]["ExperimentRequest"]["properties"]
    assert props["algorithm"]["default"] == "feddyn" and "fedavg" in props["algorithm"]["description"]


def test_the_forms_prefilled_schedule_keeps_the_tuned_decay_and_a_changed_one_names_it(app, client):
    """Issue 25: a browser posts the prefilled rate, batch and epochs; left as they are they are not a choice (lr_decay
    0.9, the table's), while a changed rate is explicit and gets no decay it did not name (decision 0019)."""
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    form = {"model_type": "mlp", "algorithm": "feddyn", "server_optimizer": "none", "privacy_mode": "none",
            "robust_method": "none", "class_weight": "pooled", "personalization": "none", "learning_rate": "0.005",
            "batch_size": "64", "local_epochs": "2"}
    for name, extra in (("prefilled", {}), ("changed", {"learning_rate": "0.001"})):
        assert client.post("/experiments", data={**form, "name": name, **extra}).status_code == 302
    with app.app_context():
        stored = {name: db.session.scalars(db.select(Experiment).filter_by(name=name)).one().config
                  for name in ("prefilled", "changed")}
    assert (stored["prefilled"]["lr_decay"], stored["prefilled"]["learning_rate"]) == (0.9, 0.005)
    assert (stored["changed"]["lr_decay"], stored["changed"]["learning_rate"]) == (1.0, 0.001)

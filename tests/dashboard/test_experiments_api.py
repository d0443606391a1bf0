import numpy as np
import pytest

from dashboard.extensions import db
from dashboard.models import AuditEvent


def create(client, headers, **body):
    payload = {"name": "exp", **body}
    return client.post("/api/experiments", json=payload, headers=headers)


def test_create_answers_201_with_id_and_defaults(client, api):
    resp = create(client, api, model_type="lstm", rounds=3)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["id"] >= 1 and body["status"] == "pending" and body["current_round"] == 0
    assert body["config"]["sequence_length"] == 10 and body["rounds"] == [] and body["privacy_spent"] is None
    assert client.get(f"/api/experiments/{body['id']}", headers=api).get_json()["name"] == "exp"


@pytest.mark.parametrize("body,field", [
    ({"model_type": "transformer"}, "model_type"),
    ({"rounds": 0}, "rounds"),
    ({"rounds": "5"}, "rounds"),
    ({"learning_rate": -1}, "learning_rate"),
    ({"batch_size": True}, "batch_size"),
    ({"factories": []}, "factories"),
    ({"factories": ["a"], "min_factories": 2}, "min_factories"),
    ({"secure_aggregation": True, "robust": {"method": "median"}}, "robust.method"),
    ({"secure_aggregation": True, "robust": {"method": "trimmed_mean"}}, "robust.method"),
    ({"secure_aggregation": True, "robust": {"method": "krum"}, "min_factories": 4}, "robust.method"),
    ({"secure_aggregation": True, "robust": {"method": "norm_bound"}}, "robust.max_norm"),
    ({"secure_aggregation": True, "min_factories": 1}, "min_factories"),
    ({"privacy": {"mode": "quantum"}}, "privacy.mode"),
    ({"privacy": {"mode": "central", "mechanism": "cauchy"}}, "privacy.mechanism"),
    ({"privacy": {"mode": "dp_sgd", "mechanism": "laplace"}}, "privacy.mechanism"),
    ({"privacy": {"mode": "central", "mechanism": "laplace", "epsilon": 1, "round_epsilon": 2}}, "privacy.round_epsilon"),
    ({"privacy": {"mode": "dp_sgd"}, "model_type": "lstm"}, "privacy.mode"),
    ({"privacy": {"mode": "dp_sgd"}, "algorithm": "fedprox"}, "privacy.mode"),
    ({"colour": "blue"}, "colour"),
    ({"name": ""}, "name"),
])
def test_invalid_settings_are_400_naming_the_field(client, api, body, field):
    resp = create(client, api, **body)
    assert resp.status_code == 400
    assert resp.get_json()["detail"]["field"] == field
    assert field.split(".")[0] in resp.get_json()["error"]


def test_median_with_secure_aggregation_explains_why(client, api):
    resp = create(client, api, secure_aggregation=True, robust={"method": "median"})
    assert "secure aggregation hides" in resp.get_json()["error"]


@pytest.mark.parametrize("body", [
    {"secure_aggregation": True},
    {"secure_aggregation": True, "algorithm": "fednova", "server_optimizer": "fedadam"},
    {"secure_aggregation": True, "robust": {"method": "norm_bound", "max_norm": 5.0}},
    {"secure_aggregation": True, "privacy": {"mode": "central", "noise_multiplier": 1.0, "epsilon": 8}},
])
def test_what_secure_aggregation_can_be_combined_with_is_accepted(client, api, body):
    resp = create(client, api, **body)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["config"]["secure_aggregation"] is True


def test_the_api_needs_a_session_or_a_bearer_token(client):
    assert create(client, {}).status_code == 401
    assert create(client, {"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/experiments").status_code == 401
    assert client.get("/api/experiments").is_json


def test_lifecycle_transitions_and_audit(app, client, api):
    eid = create(client, api).get_json()["id"]
    assert client.post(f"/api/experiments/{eid}/pause", headers=api).status_code == 409
    for action, status in (("start", "running"), ("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        resp = client.post(f"/api/experiments/{eid}/{action}", headers=api)
        assert resp.status_code == 200 and resp.get_json()["status"] == status
    assert client.post(f"/api/experiments/{eid}/start", headers=api).status_code == 409
    with app.app_context():
        actions = [e.action for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]
    assert actions[-5:] == ["experiment.created", "experiment.start", "experiment.pause", "experiment.resume",
                            "experiment.cancel"]


def test_unknown_experiment_and_missing_model_are_404_json(client, api):
    assert client.get("/api/experiments/999", headers=api).status_code == 404
    eid = create(client, api).get_json()["id"]
    resp = client.get(f"/api/experiments/{eid}/model", headers=api)
    assert resp.status_code == 404 and "no model" in resp.get_json()["error"]
    assert client.get("/api/nothing-here").is_json


def test_openapi_document_lists_the_experiment_paths(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/experiments/{experiment_id}/model" in spec["paths"]


def test_openapi_enums_and_nested_settings_come_from_the_settings_and_the_enums(client):
    from shared.enums import Algorithm, PrivacyMechanism, RobustMethod, ServerOptimizer

    props = client.get("/api/openapi.json").get_json()["components"]["schemas"]["ExperimentRequest"]["properties"]
    assert props["algorithm"]["enum"] == Algorithm.values() and "fedavgm" in props["server_optimizer"]["enum"]
    assert props["server_optimizer"]["enum"] == ServerOptimizer.values()
    assert props["robust"]["properties"]["method"]["enum"] == RobustMethod.values()
    assert props["privacy"]["properties"]["mechanism"]["enum"] == PrivacyMechanism.values()
    assert props["privacy"]["additionalProperties"] is False and props["server_momentum"]["type"] == "number"


@pytest.mark.parametrize("body,other", [
    ({"algorithm": "fednova", "robust": {"method": "median"}}, "robust.method median"),
    ({"algorithm": "feddyn", "robust": {"method": "krum"}, "min_factories": 4}, "robust.method krum"),
    ({"algorithm": "fednova", "privacy": {"mode": "central"}}, "privacy.mode central"),
    ({"algorithm": "scaffold", "privacy": {"mode": "central"}}, "privacy.mode central"),
    ({"algorithm": "scaffold", "robust": {"method": "trimmed_mean"}}, "robust.method trimmed_mean"),
])
def test_contradicting_settings_are_400_naming_both_fields(client, api, body, other):
    resp = create(client, api, **body)
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == "algorithm"
    assert resp.get_json()["error"].startswith(f"algorithm: {body['algorithm']} cannot be combined with {other}: ")


def test_fedavgm_and_feddyn_under_central_dp_are_accepted(client, api):
    config = create(client, api, server_optimizer="fedavgm").get_json()["config"]
    assert config["server_lr"] == 1.0 and config["server_momentum"] == 0.9
    resp = create(client, api, algorithm="feddyn", privacy={"mode": "central"})
    assert resp.status_code == 201 and resp.get_json()["config"]["privacy"]["mode"] == "central"


@pytest.mark.parametrize("body", [
    {"algorithm": "fednova"}, {"algorithm": "feddyn", "feddyn_alpha": 0.05},
    {"server_optimizer": "fedadam", "server_lr": 0.05}, {"server_optimizer": "fedyogi"},
    {"robust": {"method": "median"}}, {"robust": {"method": "trimmed_mean", "trim_ratio": 0.25}},
    {"robust": {"method": "krum", "byzantine": 1}, "min_factories": 4},
    {"robust": {"method": "norm_bound", "max_norm": 2.0, "outlier_method": "iqr"}},
])
def test_every_algorithm_server_optimizer_and_robust_method_is_accepted(client, api, body):
    resp = create(client, api, **body)
    assert resp.status_code == 201, resp.get_json()


@pytest.mark.parametrize("body,field", [
    ({"robust": {"method": "krum", "byzantine": 2}, "min_factories": 4}, "min_factories"),
    ({"robust": {"method": "trimmed_mean", "trim_ratio": 0.6}}, "robust.trim_ratio"),
    ({"robust": {"method": "median", "colour": 1}}, "robust.colour"),
    ({"robust": {"method": "median", "outlier_method": "vibes"}}, "robust.outlier_method"),
])
def test_bad_robust_options_name_their_field(client, api, body, field):
    resp = create(client, api, **body)
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == field


def test_central_privacy_is_accepted_and_contradictions_are_refused(client, api):
    body = create(client, api, privacy={"mode": "central", "epsilon": 8, "noise_multiplier": 1.2}).get_json()
    assert body["config"]["privacy"] == {"mode": "central", "epsilon": 8.0, "delta": 1e-5, "max_grad_norm": 1.0,
                                         "noise_multiplier": 1.2, "mechanism": "gaussian", "round_epsilon": 1.0,
                                         "noise_multiplier_source": "operator"}
    assert body["privacy_spent"]["epsilon"] == 0.0
    resp = create(client, api, privacy={"mode": "central"}, robust={"method": "median"})
    assert resp.status_code == 400 and "noise is calibrated" in resp.get_json()["error"]
    resp = create(client, api, privacy={"mode": "central", "delta": 0.5})
    assert resp.get_json()["detail"]["field"] == "privacy.delta"
    laplace = create(client, api, privacy={"mode": "central", "mechanism": "laplace", "round_epsilon": 0.5,
                                           "epsilon": 2}).get_json()
    assert laplace["config"]["privacy"]["mechanism"] == "laplace"
    assert laplace["privacy_spent"] == {"epsilon": 0.0, "mechanism": "laplace", "delta": 0.0, "target_epsilon": 2.0,
                                        "level": "plant", "sampling_rate": 1.0, "amplified_by_sampling": False,
                                        "noise_multiplier": None, "noise_multiplier_source": None,
                                        "rounds_accounted": 0, "draws_accounted": 0}


def test_laplace_rounds_are_accounted_and_the_budget_stops_the_experiment(app, client, api):
    """The engine's privacy step and budget check for the Laplace mechanism, without plants: four rounds of
    0.5 fit epsilon 2, a fifth does not."""
    from dashboard.extensions import db
    from dashboard.models import Experiment
    from dashboard.orchestration import budget

    eid = create(client, api, privacy={"mode": "central", "mechanism": "laplace", "round_epsilon": 0.5,
                                       "epsilon": 2}).get_json()["id"]
    with app.app_context():
        experiment = db.session.get(Experiment, eid)
        step = budget.privacy_step(experiment)
        assert step == ("laplace", 0.5)
        experiment.privacy_history = [list(step)] * 4
        db.session.commit()
        assert budget.allows(experiment, step) is False
        assert experiment.status == "budget_exhausted" and "2.500 > target 2" in experiment.message
    spent = client.get(f"/api/experiments/{eid}", headers=api).get_json()["privacy_spent"]
    assert spent["epsilon"] == 2.0 and spent["rounds_accounted"] == 4


def test_the_bundle_holds_the_model_the_experiment_trained_including_its_width(app, client, api):
    """hidden_size reaches the bundle's spec (a bundle of a wide model must load in shared.predict)."""
    from dashboard.services.models import build_bundle
    from dashboard.extensions import db
    from dashboard.models import Experiment, ModelVersion
    from shared.bundle import ModelBundle
    from shared.data.scaler import Scaler
    from shared.data.schema import FeatureSchema
    from shared.models import ModelSpec, build_model, get_weights, set_weights
    from shared.serialization import weights_to_bytes

    eid = create(client, api, hidden_size=128).get_json()["id"]
    with app.app_context():
        experiment = db.session.get(Experiment, eid)
        experiment.schema = FeatureSchema(label_column="y", numeric_columns=("a", "b")).to_dict()
        experiment.scaler = Scaler(np.zeros(2), np.ones(2)).to_dict()
        weights = get_weights(build_model(experiment.settings.model_spec(2)))  # the default model, 128 wide
        db.session.add(ModelVersion(experiment_id=eid, round_number=0, weights=weights_to_bytes(weights)))
        db.session.commit()
        blob, _ = build_bundle(experiment, None)
    bundle = ModelBundle.from_bytes(blob)
    assert bundle.spec.hidden_size == 128 and bundle.spec == ModelSpec("mlp", 2, hidden_size=128, num_layers=2)
    set_weights(build_model(bundle.spec), bundle.weights)  # what shared.predict does


def test_deeply_nested_json_and_huge_round_numbers_are_400_not_500(client, api):
    resp = client.post("/api/experiments", data="[" * 5000 + "]" * 5000, headers=api, content_type="application/json")
    assert resp.status_code == 400 and "nested" in resp.get_json()["error"]
    eid = create(client, api).get_json()["id"]
    resp = client.get(f"/api/experiments/{eid}/model?round={'9' * 30}", headers=api)
    assert resp.status_code in (400, 409) and resp.is_json


def test_the_form_offers_every_choice_of_the_enums_and_leaves_fedavgm_its_own_learning_rate(app, client):
    from dashboard.models import Experiment
    from shared.enums import ServerOptimizer
    from tests.dashboard.conftest import ADMIN

    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    page = client.get("/experiments").text
    assert all(f'value="{o}"' in page for o in ServerOptimizer.values())
    form = {"name": "momentum", "model_type": "cnn", "algorithm": "fedavg", "server_optimizer": "fedavgm",
            "privacy_mode": "none", "robust_method": "none", "min_factories": "2"}
    assert client.post("/experiments", data=form).status_code == 302
    with app.app_context():
        config = db.session.scalars(db.select(Experiment).filter_by(name="momentum")).one().config
    assert config["server_optimizer"] == "fedavgm" and config["server_lr"] == 1.0
    resp = client.post("/experiments", data={**form, "algorithm": "fednova", "robust_method": "median"})
    assert resp.status_code == 400 and 'data-field="algorithm"' in resp.text and "robust.method median" in resp.text

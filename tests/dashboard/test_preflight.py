"""The pre-flight check (issue 27, item 2): POST /api/experiments/preflight says, before anything is stored, what each
chosen plant's reported policy and data will refuse and why, with every field error at once; creation refuses a plant
the registry does not hold. The rules alone: dashboard.services.preflight over PlantFacts."""

import pytest

from dashboard.extensions import db
from dashboard.models import Experiment, Factory
from dashboard.services.preflight import PlantFacts, check, parse, unknown_plants
from shared.experiment import parse_experiment
from shared.experiment.trust import PlantTrust
from tests.dashboard.conftest import register

PLANTS = ("plant_a", "plant_b", "plant_c")


def plants(client, names=PLANTS, **overrides):
    for name in names:
        assert register(client, name, **overrides).status_code in (200, 201)


def preflight(client, api, **body):
    resp = client.post("/api/experiments/preflight", json={"name": "t", "rounds": 3, **body}, headers=api)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def facts(name="plant_a", status="online", policy=None, **capabilities):
    caps = {"supported_models": ["cnn", "mlp", "lstm", "hybrid"], "features": ["a", "b"], **capabilities}
    return PlantFacts(name, status, PlantTrust(name, True), policy or {}, caps)


# --- the API -------------------------------------------------------------------------------------------------------

def test_a_typod_plant_is_an_error_with_the_closest_name_and_creation_refuses_it(client, api):
    plants(client)
    answer = preflight(client, api, factories=["plant_a", "plnat_b"], min_factories=2)
    assert answer["ok"] is False and answer["refusals"] == []
    assert answer["errors"] == [{"field": "factories",
                                 "reason": "'plnat_b' is not a registered plant; did you mean 'plant_b'?"}]
    made = client.post("/api/experiments", json={"name": "t", "factories": ["plant_a", "plnat_b"], "min_factories": 2},
                       headers=api)
    assert made.status_code == 400 and "did you mean 'plant_b'?" in made.get_json()["error"]
    with client.application.app_context():
        assert db.session.scalar(db.select(db.func.count(Experiment.id))) == 0  # nothing stored


def test_every_error_comes_at_once_the_unknown_plant_with_the_field_errors(client, api):
    plants(client)
    answer = preflight(client, api, rounds=0, learning_rate=-1, factories=["nowhere"], min_factories=1)
    fields = [e["field"] for e in answer["errors"]]
    assert {"rounds", "learning_rate", "factories"} <= set(fields)
    assert "no plant" not in answer["errors"][-1]["reason"] and "registered: plant_a" in answer["errors"][-1]["reason"]


def test_over_budget_dp_sgd_is_refused_by_the_plant_whose_epsilon_cap_it_exceeds(client, api):
    plants(client, names=("plant_a", "plant_b"))
    plants(client, names=("plant_c",), policy={"max_epsilon": 2.0})
    answer = preflight(client, api, privacy={"mode": "dp_sgd", "epsilon": 5.0}, model_type="mlp")
    assert answer["ok"] is False and answer["errors"] == []
    assert answer["refusals"] == [{"plant": "plant_c", "field": "privacy.epsilon",
                                   "reason": "a DP budget of epsilon 5 over 3 rounds; its policy allows at most 2 per "
                                             "experiment (max_epsilon)"}]
    assert preflight(client, api, privacy={"mode": "dp_sgd", "epsilon": 2.0}, model_type="mlp")["ok"] is True


def test_a_plant_that_requires_dp_refuses_an_experiment_without_it(client, api):
    plants(client, names=("plant_a", "plant_b"))
    plants(client, names=("plant_r",), policy={"require_dp": True})
    refused = preflight(client, api)["refusals"]
    assert [(r["plant"], r["field"]) for r in refused] == [("plant_r", "privacy.mode")]
    assert "requires record-level DP (DP-SGD)" in refused[0]["reason"] and "privacy.mode is none" in refused[0]["reason"]
    assert preflight(client, api, privacy={"mode": "dp_sgd", "epsilon": 4.0}, model_type="mlp")["ok"] is True


def test_plants_that_do_not_trust_the_dashboard_are_listed_one_refusal_per_plant(client, api):
    plants(client, trust_dashboard=False, federation_key="0123456789abcdef")
    answer = preflight(client, api, secure_aggregation=False)
    assert {r["plant"] for r in answer["refusals"]} == set(PLANTS)
    assert all("secure_aggregation is off" in r["reason"] for r in answer["refusals"])


def test_window_models_need_a_group_or_time_column_and_offline_plants_are_warnings(client, api):
    plants(client, names=("plant_a", "plant_b"))
    rows_only = {"supported_models": ["cnn", "mlp"], "data_type": "tabular", "num_samples": 100, "features": ["a"],
                 "schema": {"label_column": "y", "numeric_columns": ["a"], "categorical": {}}}
    plants(client, names=("plant_c",), capabilities=rows_only)
    answer = preflight(client, api, model_type="lstm")
    assert [(r["plant"], r["field"]) for r in answer["refusals"]] == [("plant_c", "model_type")]
    assert "no group or time column" in answer["refusals"][0]["reason"]
    with client.application.app_context():  # its heartbeats stopped (dashboard.orchestration.liveness)
        db.session.scalar(db.select(Factory).filter_by(name="plant_c")).status = "offline"
        db.session.commit()
    listed = preflight(client, api, factories=["plant_a", "plant_c"], min_factories=2)
    assert "plant_c is offline: rounds go on without it until it is back" in listed["warnings"]
    assert any("1 of the chosen plants are online now" in w for w in listed["warnings"])


@pytest.mark.parametrize("kwargs", [
    {"data": "not json", "content_type": "text/plain"},
    {"data": "{not json", "content_type": "application/json"},
    {"json": ["a", "list"]},
    {"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"},
])
def test_a_hostile_body_is_a_400_in_json(client, api, kwargs):
    resp = client.post("/api/experiments/preflight", headers=api, **kwargs)
    assert resp.status_code == 400 and resp.is_json and resp.get_json()["detail"]["field"] == "body"


def test_a_hostile_object_is_answered_as_field_errors_and_the_check_needs_the_operator_role(client, api):
    answer = preflight(client, api, factories=[1, {"x": 2}], privacy="dp", unknown_field=True)
    assert answer["ok"] is False and answer["errors"]
    assert client.post("/api/experiments/preflight", json={"name": "t"}).status_code == 401


# --- the rules alone -------------------------------------------------------------------------------------------------

def test_the_closest_registered_name_is_suggested_and_a_far_one_lists_the_registry():
    found = unknown_plants(["plant_A", "zzz"], ["plant_a", "plant_b"])
    assert [e.message for e in found] == ["'plant_A' is not a registered plant; did you mean 'plant_a'?",
                                          "'zzz' is not a registered plant; registered: plant_a, plant_b"]
    assert unknown_plants(["x"], [])[0].message.endswith("no plant has registered yet")
    many = unknown_plants([f"p{i}" for i in range(5000)], ["plant_a"])
    assert len(many) == 21 and many[-1].message == "and 4980 more names that are not registered plants"
    with pytest.raises(Exception) as raised:
        parse({"name": "t", "factories": ["plant_x"], "min_factories": 1, "rounds": 0}, ["plant_a"])
    assert {f for f, _ in raised.value.problems} == {"rounds", "factories"}


def test_model_size_epochs_and_delta_against_each_plants_limits():
    config = parse_experiment({"name": "t", "hidden_size": 2048, "model_type": "cnn",
                               "privacy": {"mode": "dp_sgd", "epsilon": 1.0, "delta": 1e-4, "local_epochs": 30}})
    small = facts(policy={"max_model_parameters": 1000, "max_local_epochs": 20, "dp_delta": 1e-5,
                          "max_dp_batch_values": 1_000_000})
    fields = {r.field: r.reason for r in check(config, [small, facts("plant_b")]).refusals}
    assert set(fields) == {"hidden_size", "privacy.local_epochs", "privacy.delta", "privacy.batch_size"}
    assert "a DP-SGD batch of 1024 x" in fields["privacy.batch_size"]  # DP-SGD's own batch and epochs
    assert "allows at most 1,000 (max_model_parameters)" in fields["hidden_size"]


def test_a_secure_experiment_below_a_trusting_plants_min_cohort_and_a_decommissioned_plant():
    config = parse_experiment({"name": "t", "secure_aggregation": True, "min_factories": 2,
                               "factories": ["plant_a", "plant_b"]})
    trusting = PlantFacts("plant_a", "online", PlantTrust("plant_a", True, min_cohort=3), {}, facts().capabilities)
    small = PlantFacts("plant_b", "online", PlantTrust("plant_b", True, min_cohort=2), {}, facts().capabilities)
    answer = check(config, [trusting, small])
    assert [(r.plant, r.field) for r in answer.refusals] == [("plant_a", "min_factories")]
    assert "cohorts of 3 or more (min_cohort)" in answer.refusals[0].reason
    decommissioned = PlantFacts("plant_b", "offline", PlantTrust("plant_b", True), {}, {}, decommissioned=True)
    answer = check(parse_experiment({"name": "t", "factories": ["plant_b"], "min_factories": 1}), [decommissioned])
    assert answer.refusals[0].reason.startswith("decommissioned") and not answer.ok


def test_the_openapi_document_lists_the_check(client):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/experiments/preflight"]["post"]
    assert set(operation["responses"]) == {"200", "400", "401", "403"}
    assert set(spec["components"]["schemas"]["Preflight"]["properties"]) == {"ok", "errors", "refusals", "warnings"}

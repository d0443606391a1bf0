"""Personalization at the dashboard (issue #15 item 4): the engine's step after the last round (on the best round's
model, over the channel), the record stage refusing forged per-plant results, the experiment page and the JSON
API showing global / personalized / local-only per plant; and the whole step over in-process plants."""

import numpy as np
import pytest

from dashboard.extensions import db
from dashboard.models import Experiment, ModelVersion, PersonalResult, Round
from dashboard.orchestration import recording
from dashboard.orchestration.channel import Participant, PhaseResult
from dashboard.orchestration.engine import RoundEngine
from factoryfl_testing.federation import InProcessFederation
from factoryfl_testing.inprocess import InProcessChannel, InProcessPlant
from shared.data.scaler import Scaler
from shared.data.schema import FeatureSchema
from shared.experiment import parse_experiment
from shared.models import ModelSpec, build_model, get_weights
from shared.protocol import ModelScores, PersonalizeReply, PersonalizeRequest
from shared.serialization import weights_to_bytes
from tests.dashboard.conftest import ADMIN


def reply(personal_f1=0.7, mode="fedper") -> PersonalizeReply:
    return PersonalizeReply(mode=mode, scores={"global": ModelScores(0.5, 0.8, 0.45, 0.79, 0.4),
                                               "personalized": ModelScores(personal_f1, 0.85, 0.6, 0.84, 0.35),
                                               "local": ModelScores(0.4, 0.7, 0.38, 0.71, 0.3)})


class ScriptedChannel:
    """Answers every personalization request from the plants asked, plus a forged answer for a stranger."""

    def __init__(self):
        self.requests = []

    def dispatch(self, participants, make_request, timeout, on_answer=None):
        result = PhaseResult()
        for p in participants:
            self.requests.append((p.name, make_request(p)))
            result.answers[p.name] = reply()
        result.answers["intruder"] = reply(personal_f1=1.0)
        return result

    def drain_events(self):
        return []


def finished_experiment(app, client, api) -> int:
    """A completed experiment of 3 rounds by plant_a and plant_b whose round 2 has the best validation F1."""
    eid = client.post("/api/experiments", json={"name": "mine", "rounds": 3, "min_factories": 1,
                                                 "personalization": "fedper"}, headers=api).get_json()["id"]
    with app.app_context():
        experiment = db.session.get(Experiment, eid)
        experiment.status, experiment.current_round = "completed", 3
        experiment.schema = FeatureSchema(label_column="y", numeric_columns=("a", "b")).to_dict()
        experiment.scaler = {**Scaler(np.zeros(2), np.ones(2)).to_dict(), "pos_weight": 9.0}
        for number in range(4):
            weights = get_weights(build_model(ModelSpec("cnn", 2), seed=number))
            db.session.add(ModelVersion(experiment_id=eid, round_number=number, weights=weights_to_bytes(weights)))
        for number, f1 in ((1, 0.5), (2, 0.7), (3, 0.6)):
            db.session.add(Round(experiment_id=eid, number=number, status="completed",
                                 participants=["plant_a", "plant_b"], metrics={"val_f1": f1}))
        db.session.commit()
    return eid


def test_the_engine_personalizes_the_best_round_and_records_only_plants_that_took_part(app, client, api):
    eid = finished_experiment(app, client, api)
    channel = ScriptedChannel()
    with app.app_context():
        engine = RoundEngine(app, channel=channel)
        experiment = db.session.get(Experiment, eid)
        engine.personalize(experiment, [Participant("plant_a", "00" * 32), Participant("plant_b", "11" * 32)])
        rows = db.session.scalars(db.select(PersonalResult).filter_by(experiment_id=eid)).all()
        assert sorted(r.factory_name for r in rows) == ["plant_a", "plant_b"]  # no "intruder"
        assert {r.round_number for r in rows} == {2} and {r.mode for r in rows} == {"fedper"}
    (name, request), _ = channel.requests
    assert isinstance(request, PersonalizeRequest) and request.mode == "fedper" and request.train.pos_weight == 9.0
    best = get_weights(build_model(ModelSpec("cnn", 2), seed=2))
    assert all(np.array_equal(request.model.weights[k], best[k]) for k in best)
    assert request.local_epochs == 3 * 2 + 4  # rounds x local epochs + the fine-tune's epochs

    detail = client.get(f"/api/experiments/{eid}", headers=api).get_json()
    by_plant = {p["factory"]: p for p in detail["personalization"]}
    assert set(by_plant) == {"plant_a", "plant_b"}
    assert by_plant["plant_a"]["scores"]["personalized"]["val_f1"] == 0.7
    assert by_plant["plant_a"]["scores"]["local"]["threshold"] == 0.3 and by_plant["plant_a"]["round"] == 2
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    page = client.get(f"/experiments/{eid}").text
    assert 'id="personalization"' in page and "Personalized val F1" in page and "Local-only val F1" in page
    assert "plant_a" in page and "0.700" in page


def test_forged_results_and_replies_of_another_kind_are_refused(app, client, api):
    eid = finished_experiment(app, client, api)
    with app.app_context():
        experiment = db.session.get(Experiment, eid)
        recorded = recording.record_personalization(experiment, 3, {"plant_a": reply(), "stranger": reply(),
                                                                    "plant_b": {"val_f1": 1.0}})
        assert recorded == ["plant_a"]
        assert db.session.scalar(db.select(db.func.count()).select_from(PersonalResult)) == 1


def test_an_experiment_without_personalization_shows_no_table_and_the_form_offers_it(app, client, api):
    eid = client.post("/api/experiments", json={"name": "plain", "personalization": "none"},
                      headers=api).get_json()["id"]
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    assert 'id="personalization"' not in client.get(f"/experiments/{eid}").text
    page = client.get("/experiments").text
    assert 'name="personalization"' in page and 'name="personalization_epochs"' in page and "FedPer" in page
    props = client.get("/api/openapi.json").get_json()["components"]["schemas"]["ExperimentRequest"]["properties"]
    assert props["personalization"]["enum"] == ["none", "finetune", "fedper"]
    assert "description" in props["personalization"] and props["personalization_epochs"]["maximum"] == 100
    bad = client.post("/api/experiments", json={"name": "x", "personalization": "steal"}, headers=api)
    assert bad.status_code == 400 and "personalization" in bad.get_json()["error"]


def test_a_dp_sgd_experiment_does_not_personalize_from_the_api_or_the_form(app, client, api):
    """Review H2: personalization trains without DP, so a dp_sgd experiment's epsilon would not cover it."""
    privacy = {"mode": "dp_sgd", "epsilon": 8.0}
    created = client.post("/api/experiments", json={"name": "dp", "privacy": privacy}, headers=api)
    assert created.status_code == 201 and created.get_json()["config"]["personalization"] == "none"
    bad = client.post("/api/experiments", json={"name": "dp", "privacy": privacy, "personalization": "fedper"},
                      headers=api)
    error = bad.get_json()
    assert bad.status_code == 400 and error["detail"]["field"] == "personalization"
    assert "privacy.mode dp_sgd" in error["error"]
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    form = {"name": "dp form", "model_type": "mlp", "algorithm": "fedavg", "server_optimizer": "none",
            "privacy_mode": "dp_sgd", "privacy_epsilon": "8", "robust_method": "none", "class_weight": "pooled",
            "personalization": "finetune"}  # the select's default
    assert client.post("/experiments", data=form).status_code == 302
    with app.app_context():
        config = db.session.scalars(db.select(Experiment).filter_by(name="dp form")).one().config
    assert config["personalization"] == "none"


@pytest.mark.parametrize("mode", ["finetune", "fedper"])
def test_in_process_plants_personalize_and_never_fall_below_the_global_model_on_validation(tmp_path, mode):
    plants = [InProcessPlant.simulated(f"i{i}", profile, 400, i, tmp_path)
              for i, profile in enumerate(("default", "heavy_duty"))]
    federation = InProcessFederation(InProcessChannel(plants))
    config = parse_experiment({"name": "p", "rounds": 2, "local_epochs": 1, "min_factories": 2,
                                     "personalization": mode, "personalization_epochs": 2})
    run = federation.run(config)
    answers = federation.personalize(run, config)
    assert set(answers) == {"i0", "i1"} and run.personalized_from in run.models
    for name, answer in answers.items():
        scores = answer.scores
        assert answer.mode == mode
        if scores["global"].val_f1 is not None:
            assert scores["personalized"].val_f1 >= scores["global"].val_f1
        assert (tmp_path / name / "personal" / f"experiment-{run.experiment}-personalized.safetensors").is_file()


class RefusingChannel(ScriptedChannel):
    def dispatch(self, participants, make_request, timeout, on_answer=None):
        return PhaseResult(dropouts={p.name: "refused by the plant's policy: personalize was already called"
                                     for p in participants})


def test_plants_that_all_refuse_leave_the_experiment_completed_with_their_reasons(app, client, api):
    eid = finished_experiment(app, client, api)
    with app.app_context():
        experiment = db.session.get(Experiment, eid)
        RoundEngine(app, channel=RefusingChannel()).personalize(experiment, [Participant("plant_a", "00" * 32)])
        assert experiment.status == "completed" and "plant_a: refused by the plant's policy" in experiment.message
        assert db.session.scalar(db.select(db.func.count()).select_from(PersonalResult)) == 0

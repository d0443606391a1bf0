"""The personalization step at the plant (factory_agent.plant.personal) against hostile requests: an experiment the
plant never trained in, epochs over its policy, a model that does not fit, repeated requests to extract metrics;
and what it keeps (its two models, owner-only) and answers (scores only, never weights)."""

import stat

import numpy as np
import pytest

from factory_agent.plant.personal_models import PersonalModels
from shared.protocol import PersonalizeReply, PersonalizeRequest, RoundRef, TrainRequest, TrainSettings, parse_reply
from tests.factory_agent.plant.test_handlers import data, plant, refused  # noqa: F401 (fixtures)

FINE = TrainSettings(epochs=1, batch_size=64, learning_rate=0.005, seed=1)


def trained(plant, experiment=1):
    answer = plant.call(TrainRequest(RoundRef(experiment, 1), plant.model(), TrainSettings(epochs=1)))
    assert answer["ok"], answer
    return answer


def personalize(plant, experiment=1, mode="finetune", train=FINE, local_epochs=2, model=None):
    return PersonalizeRequest(experiment=experiment, model=model or plant.model(), mode=mode, train=train,
                              local_epochs=local_epochs)


def test_a_plant_that_trained_answers_three_models_scores_and_keeps_its_models_owner_only(plant):
    trained(plant)
    request = personalize(plant)
    answer = plant.call(request)
    assert answer["ok"], answer
    assert not {"weights", "masked"} & set(answer) and set(answer["scores"]) == {"global", "personalized", "local"}
    reply = parse_reply(request, answer)
    assert isinstance(reply, PersonalizeReply)
    scores = reply.scores
    # the fine-tune keeps the epoch its own validation F1 prefers, the global model itself included
    assert scores["personalized"].val_f1 >= scores["global"].val_f1
    for kind in ("personalized", "local"):
        path = PersonalModels(plant.state.directory).path(1, kind)
        assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_experiment_the_plant_never_trained_in_is_refused(plant):
    trained(plant, experiment=1)
    refused(plant.call(personalize(plant, experiment=2)), "took no part in experiment 2")


def test_repeated_requests_count_against_the_plants_caps(plant):
    trained(plant)
    assert plant.call(personalize(plant))["ok"]
    refused(plant.call(personalize(plant)), "personalize was already called 1 time(s)")
    refused(plant.call(personalize(plant, mode="fedper")), "already called")


def test_epochs_over_the_policy_are_refused_before_any_work(plant):
    trained(plant)
    plant.policy(max_local_epochs=3, max_personal_epochs=10)
    refused(plant.call(personalize(plant, train=TrainSettings(epochs=4))), "4 fine-tuning epochs", "at most 3")
    refused(plant.call(personalize(plant, local_epochs=900)), "max_personal_epochs")


def test_a_batch_below_the_policys_minimum_is_refused_before_any_claim(plant):
    """Review L1: at batch 1, 120 epochs are 120 x rows Adam steps; the minimum batch bounds the steps."""
    trained(plant)
    tiny = TrainSettings(epochs=1, batch_size=1, learning_rate=0.005, seed=1)
    refused(plant.call(personalize(plant, train=tiny)), "batch of 1", "min_personal_batch")
    assert plant.call(personalize(plant))["ok"]  # batch 64: the refusal spent nothing
    huge = personalize(plant).to_wire()
    huge["local_epochs"] = 10 ** 9
    refused(plant.call(None, raw=huge), "local_epochs")


def test_a_model_that_does_not_fit_is_refused(plant):
    trained(plant)
    weights = dict(plant.weights)
    weights["head.4.weight"] = np.zeros((1, 3), np.float32)
    refused(plant.call(personalize(plant, model=plant.model(weights=weights))), "head.4.weight")
    plant.policy(max_model_parameters=100)
    refused(plant.call(personalize(plant)), "parameters")


def test_a_scaler_other_than_the_experiments_is_refused(plant):
    trained(plant)
    other = plant.scaler.__class__(mean=plant.scaler.mean + 1.0, scale=plant.scaler.scale)
    refused(plant.call(personalize(plant, model=plant.model(scaler=other))), "changed its features, scaler")
    assert plant.call(personalize(plant))["ok"]  # review L4: the refused request did not spend the one per experiment


def test_a_plant_that_requires_dp_refuses_to_personalize_before_any_claim(plant):
    """Review H2: the fine-tune and the local-only model train on the plant's rows without DP."""
    trained(plant)
    plant.policy(require_dp=True)
    refused(plant.call(personalize(plant)), "require_dp")
    refused(plant.call(personalize(plant, mode="fedper")), "require_dp")
    plant.policy(require_dp=False)
    assert plant.call(personalize(plant))["ok"]  # nothing was claimed by the refusals


@pytest.mark.parametrize("change, words", [
    ({"mode": "everything"}, "mode"),
    ({"train": {"epochs": 1, "dp_noise_multiplier": 1.0}}, "trains plainly"),
    ({"extra": 1}, "unknown field"),
    ({"experiment": -1}, "experiment"),
])
def test_malformed_personalize_requests_are_refused(plant, change, words):
    trained(plant)
    refused(plant.call(None, raw={**personalize(plant).to_wire(), **change}), words)

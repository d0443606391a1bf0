"""The plant's choice of model (factory_agent.floor.personal, --model-choice): a released model of an experiment
the plant personalized is replaced by its own model when its choice says so; anything odd falls back to the
released model."""

import numpy as np
import pytest

from factory_agent.config import parse_config
from factory_agent.floor.delivery import ModelDelivery
from factory_agent.floor.personal import ModelChooser
from factory_agent.floor.settings import FloorSettings
from factory_agent.plant.personal_models import PersonalModels
from tests.factory_agent.floor.conftest import install, make_bundle


def keep_personal(state_dir, bundle, global_f1=0.5, personal_f1=0.7, threshold=0.3, weights=None, experiment=1):
    weights = weights or {k: v + 0.01 for k, v in bundle.weights.items()}
    scores = {"global": {"val_f1": global_f1, "threshold": 0.5}, "personalized": {"val_f1": personal_f1,
                                                                                  "threshold": threshold}}
    PersonalModels(state_dir).save(experiment, "personalized", weights, {"scores": scores, "mode": "finetune"})
    return weights


def delivery_for(tmp_path, choice):
    state = tmp_path / "state"
    return ModelDelivery(state / "models", "http://dashboard.invalid", 8 << 20, chooser=ModelChooser(state, choice))


@pytest.mark.parametrize("choice, global_f1, personal_f1, kind", [
    ("best", 0.5, 0.7, "personalized"), ("best", 0.7, 0.5, "global"), ("personalized", 0.7, 0.5, "personalized"),
    ("global", 0.1, 0.9, "global")])
def test_the_plant_scores_with_its_choice(tmp_path, choice, global_f1, personal_f1, kind):
    bundle = make_bundle()
    weights = keep_personal(tmp_path / "state", bundle, global_f1, personal_f1)
    model = install(delivery_for(tmp_path, choice), bundle)
    assert model.kind == kind and model.report()["kind"] == kind
    if kind == "personalized":
        assert model.bundle.threshold == 0.3 and model.bundle.source["personalized"] == "finetune"
        assert all(np.array_equal(model.bundle.weights[k], weights[k]) for k in weights)
    else:
        assert model.bundle.threshold == bundle.threshold


def test_a_released_model_of_another_experiment_is_used_as_released(tmp_path):
    bundle = make_bundle()
    keep_personal(tmp_path / "state", bundle, experiment=7)
    assert install(delivery_for(tmp_path, "personalized"), bundle).kind == "global"


def test_a_personal_model_that_does_not_fit_the_released_bundle_falls_back_to_the_global_model(tmp_path):
    bundle = make_bundle()
    wrong = {k: v for k, v in bundle.weights.items() if not k.startswith("head.")}
    keep_personal(tmp_path / "state", bundle, weights=wrong)
    assert install(delivery_for(tmp_path, "personalized"), bundle).kind == "global"


def test_a_forged_experiment_id_in_the_bundle_is_never_a_path(tmp_path):
    bundle = make_bundle()
    bundle.source = {"experiment_id": "../../etc", "round": 1}
    assert install(delivery_for(tmp_path, "personalized"), bundle).kind == "global"
    bundle.source = {"experiment_id": True}
    assert install(delivery_for(tmp_path, "personalized"), bundle).kind == "global"


def test_the_flag_reaches_the_floor_and_defaults_to_best(tmp_path):
    assert FloorSettings.from_agent_config(parse_config(["--state-dir", str(tmp_path)])).model_choice == "best"
    config = parse_config(["--state-dir", str(tmp_path), "--model-choice", "global"])
    assert FloorSettings.from_agent_config(config).model_choice == "global"
    with pytest.raises(SystemExit):
        parse_config(["--model-choice", "mine"])

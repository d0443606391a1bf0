"""Every tabular model through one round of every aggregation setting (strategies, server optimisers, secure
aggregation, DP-SGD, central DP, robust rules) over in-process plants: the model the round returns has the
spec's weights, all finite, and training moved them."""

from __future__ import annotations

import numpy as np
import pytest

from factoryfl_testing.federation import InProcessFederation
from factoryfl_testing.inprocess import InProcessChannel, InProcessPlant
from shared.enums import ModelType
from shared.experiment import parse_experiment
from shared.model_spec import weight_shapes

SETTINGS = {
    "fedavg": {}, "fedprox": {"algorithm": "fedprox"}, "fednova": {"algorithm": "fednova"},
    "feddyn": {"algorithm": "feddyn"}, "fedadam": {"server_optimizer": "fedadam"},
    "fedyogi": {"server_optimizer": "fedyogi"}, "fedavgm": {"server_optimizer": "fedavgm"},
    "secure": {"secure_aggregation": True},
    "dp_sgd": {"privacy": {"mode": "dp_sgd", "noise_multiplier": 1.0}},
    "central": {"privacy": {"mode": "central", "noise_multiplier": 0.1, "max_grad_norm": 5.0}},
    "central+secure": {"secure_aggregation": True,
                       "privacy": {"mode": "central", "noise_multiplier": 0.1, "max_grad_norm": 5.0}},
    "median": {"robust": {"method": "median"}}, "trimmed_mean": {"robust": {"method": "trimmed_mean"}},
    "krum": {"robust": {"method": "krum", "byzantine": 0}}, "norm_bound": {"robust": {"method": "norm_bound"}},
}


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    root = tmp_path_factory.mktemp("model_types")
    plants = [InProcessPlant.simulated(f"m{i}", profile, 300, i, root)
              for i, profile in enumerate(("default", "heavy_duty", "hot_climate"))]
    return InProcessFederation(InProcessChannel(plants))


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("model_type", ModelType.tabular())
def test_each_row_model_completes_a_round_of_each_aggregation_setting(federation, model_type, setting):
    config = parse_experiment({"name": "types", "model_type": model_type, "rounds": 1, "local_epochs": 1,
                                     "min_factories": 3, "hidden_size": 16, **SETTINGS[setting]})
    run = federation.run(config)
    before, after = run.models[0], run.model
    assert after.spec == before.spec and after.spec.model_type == model_type
    assert {k: v.shape for k, v in after.weights.items()} == weight_shapes(after.spec)
    assert all(np.isfinite(v).all() for v in after.weights.values())
    assert any(not np.array_equal(after.weights[k], before.weights[k]) for k in after.weights)
    assert sorted(run.rounds[0].trained) == ["m0", "m1", "m2"]

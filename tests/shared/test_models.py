import numpy as np
import pytest
import torch

from shared.errors import ModelError
from shared.models import ModelSpec, build_model, get_weights, set_weights


@pytest.mark.parametrize("model_type,shape", [("cnn", (7, 5)), ("lstm", (7, 12, 5)), ("hybrid", (7, 12, 5))])
def test_each_family_gives_one_logit_per_input(model_type, shape):
    spec = ModelSpec(model_type, num_features=5, sequence_length=1 if model_type == "cnn" else 12)
    assert build_model(spec, seed=0)(torch.randn(*shape)).shape == (7,)


def test_same_seed_same_initial_weights_and_weights_round_trip_as_numpy():
    spec = ModelSpec("lstm", 4, 6)
    a, b = get_weights(build_model(spec, seed=1)), get_weights(build_model(spec, seed=1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    model = build_model(spec, seed=2)
    set_weights(model, a)
    assert all(np.array_equal(get_weights(model)[k], a[k]) for k in a)


def test_mismatched_weights_and_bad_specs_are_model_errors():
    model = build_model(ModelSpec("cnn", 4))
    weights = get_weights(build_model(ModelSpec("cnn", 5)))
    with pytest.raises(ModelError, match="has shape"):
        set_weights(model, weights)
    with pytest.raises(ModelError, match="sequence_length >= 2"):
        ModelSpec("lstm", 4, 1)
    with pytest.raises(ModelError, match="unknown model_type"):
        ModelSpec("transformer", 4)

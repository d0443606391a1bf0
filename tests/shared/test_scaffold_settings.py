"""SCAFFOLD as an experiment setting (shared.experiment) and on the wire (shared.protocol): contradictions refused
naming both fields, storage, the bound its control variate deltas are clipped to, and a hostile plant's reply."""

import numpy as np
import pytest

from shared.errors import ProtocolError
from shared.experiment import parse_experiment, CHOICES, ExperimentConfig, ValidationError
from shared.experiment.training import SCAFFOLD_DEFAULT_CLIP, plant_training, strategy_for, update_clip
from shared.models import ModelSpec, build_model, get_weights
from shared.protocol import ModelPart, RoundRef, ScalerMsg, TrainRequest, TrainSettings, parse_reply, parse_request


def parse(**body):
    return parse_experiment({"name": "x", **body})


@pytest.mark.parametrize("method", ["median", "trimmed_mean", "krum"])
def test_scaffold_with_a_robust_rule_that_replaces_the_average_is_refused_naming_both(method):
    with pytest.raises(ValidationError) as caught:
        parse(algorithm="scaffold", robust={"method": method}, min_factories=4)
    assert caught.value.field == "algorithm"
    assert caught.value.message.startswith(f"scaffold cannot be combined with robust.method {method}: ")


@pytest.mark.parametrize("privacy", [{"mode": "central"}, {"mode": "central", "mechanism": "laplace"}])
def test_scaffold_under_central_dp_is_refused_naming_both(privacy):
    with pytest.raises(ValidationError) as caught:
        parse(algorithm="scaffold", privacy=privacy)
    assert caught.value.field == "algorithm"
    assert caught.value.message.startswith("scaffold cannot be combined with privacy.mode central: ")
    assert "un-noised" in caught.value.message


def test_scaffold_with_secure_aggregation_is_refused_naming_both():
    """Review H1: the unmasked sums of the control deltas and of the weighted updates give each update."""
    with pytest.raises(ValidationError) as caught:
        parse(algorithm="scaffold", secure_aggregation=True)
    assert caught.value.field == "algorithm"
    assert caught.value.message.startswith("scaffold cannot be combined with secure_aggregation: ")
    assert "solve for each plant's update" in caught.value.message


@pytest.mark.parametrize("body", [
    {"privacy": {"mode": "dp_sgd", "epsilon": 8.0}},
    {"robust": {"method": "norm_bound", "max_norm": 5.0}},
    {"server_optimizer": "fedavgm", "lr_decay": 0.8},
])
def test_scaffold_with_dp_sgd_norm_bound_or_a_server_optimiser_is_accepted(body):
    config = parse(algorithm="scaffold", **body)
    assert strategy_for(config, 3).algorithm == "scaffold"
    assert ExperimentConfig.from_dict(config.to_dict()) == config


def test_scaffold_is_a_choice_and_its_deltas_are_clipped_to_the_update_bound():
    assert "scaffold" in CHOICES["algorithm"].values()
    config = parse(algorithm="scaffold")
    assert update_clip(config) == SCAFFOLD_DEFAULT_CLIP
    assert plant_training(config, 1, 0).clip_update_norm == SCAFFOLD_DEFAULT_CLIP
    assert strategy_for(config, 4).inner.clip == SCAFFOLD_DEFAULT_CLIP  # inside the (pass-through) robust wrapper
    assert update_clip(parse(algorithm="scaffold", robust={"method": "norm_bound", "max_norm": 5.0})) == 5.0
    assert update_clip(parse()) is None  # FedAvg without secure aggregation is unchanged


def model(n=3):
    spec = ModelSpec("cnn", n)
    return ModelPart(tuple(f"f{i}" for i in range(n)), ScalerMsg(np.zeros(n), np.ones(n)), spec,
                     get_weights(build_model(spec, seed=0)))


def test_the_control_variate_survives_the_wire_and_is_checked_against_the_model():
    part = model()
    control = {k: np.full_like(v, 0.25) for k, v in part.weights.items()}
    parsed = parse_request(TrainRequest(RoundRef(3, 2), part, TrainSettings(), control=control).to_wire())
    assert sorted(parsed.control) == sorted(control)
    assert all(np.all(v == 0.25) for v in parsed.control.values())
    assert parse_request(TrainRequest(RoundRef(3, 2), part, TrainSettings()).to_wire()).control is None
    wire = TrainRequest(RoundRef(3, 2), part, TrainSettings(), control=control).to_wire()
    wire["control"] = "not arrays"
    with pytest.raises(ProtocolError, match="control"):
        parse_request(wire)


def reply_wire(part: ModelPart, **extra) -> dict:
    return {"ok": True, "op": "train", "num_samples": 10, "steps": 2, "train_loss": 0.1, "train_seconds": 1.0,
            "weights": part.weights, **extra}


def test_a_plant_must_answer_a_scaffold_round_with_a_finite_control_delta_and_no_other_round_with_one():
    part = model()
    control = {k: np.zeros_like(v) for k, v in part.weights.items()}
    asked = TrainRequest(RoundRef(3, 2), part, TrainSettings(), control=control)
    with pytest.raises(ProtocolError, match="lacks its control variate delta"):
        parse_reply(asked, reply_wire(part))
    bad = {k: np.full_like(v, np.nan) for k, v in part.weights.items()}
    with pytest.raises(ProtocolError, match="not finite"):
        parse_reply(asked, reply_wire(part, control_delta=bad))
    assert parse_reply(asked, reply_wire(part, control_delta=control)).control_delta is not None
    with pytest.raises(ProtocolError, match="nobody asked for"):
        parse_reply(TrainRequest(RoundRef(3, 2), part, TrainSettings()), reply_wire(part, control_delta=control))


def test_one_plant_pushing_c_for_many_rounds_keeps_it_within_the_clip_and_plants_accept_it():
    """Review M1: one plant sends max-norm control deltas in the same direction every round; c stays within the
    update clip (far below the plants' 1e4 per value), so the next training request is still accepted."""
    from shared.aggregation.base import ClientUpdate
    from shared.aggregation.vectors import flatten, float_keys, unflatten
    from shared.strategies import ServerState

    part = model()
    keys = float_keys(part.weights)
    size = len(flatten(part.weights, keys))
    push, honest = np.zeros(size), np.zeros(size)
    push[0] = SCAFFOLD_DEFAULT_CLIP  # max norm, one direction
    strategy, state = strategy_for(parse(algorithm="scaffold"), 2), ServerState()
    for _ in range(400):  # + clip / N per round without the bound: 2e4 after 400 rounds
        ups = [ClientUpdate(name, part.weights, 10, steps=1, control=unflatten(dc, part.weights, keys))
               for name, dc in (("evil", push), ("honest", honest))]
        state = strategy.aggregate(part.weights, ups, state).state
    assert np.linalg.norm(state.c) <= SCAFFOLD_DEFAULT_CLIP + 1e-6
    control = {k: v.astype(np.float32) for k, v in unflatten(state.c, part.weights, keys).items()}
    parsed = parse_request(TrainRequest(RoundRef(3, 401), part, TrainSettings(), control=control).to_wire())
    assert parsed.control is not None

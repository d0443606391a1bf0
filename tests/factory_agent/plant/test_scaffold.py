"""SCAFFOLD at the plant (factory_agent.plant.scaffold) against hostile control variates: the server's c is
checked before any work (names and shapes of the model, finite, bounded, zero in round 1); the plant's own c_i
stays in its state folder, per experiment, and only its clipped change leaves."""

from __future__ import annotations

import numpy as np

from shared.aggregation.vectors import flatten
from shared.protocol import RoundRef, TrainRequest, TrainSettings, parse_reply
from shared.protocol.requests import MAX_CONTROL
from tests.factory_agent.plant import test_handlers
from tests.factory_agent.plant.test_handlers import refused, secagg

data, plant = test_handlers.data, test_handlers.plant  # the handlers' fixtures: one plant over simulated rows

LR = 0.01


def zeros(plant) -> dict:
    return {k: np.zeros_like(v, dtype=np.float32) for k, v in plant.weights.items()}


def filled(plant, value: float) -> dict:
    return {k: np.full_like(v, value, dtype=np.float32) for k, v in plant.weights.items()}


def train(plant, experiment: int, round_number: int, control: dict, attempt: int = 1, **settings) -> dict:
    """A training call from a model of its own per round (a plant trains from one model in one round only)."""
    weights = {k: v + np.float32(1e-3 * round_number) for k, v in plant.weights.items()}
    request = TrainRequest(RoundRef(experiment, round_number, attempt), plant.model(weights=weights),
                           TrainSettings(learning_rate=LR, **settings), control=control)
    return plant.call(request)


def norm(arrays: dict) -> float:
    return float(np.sqrt(sum(float((v.astype(np.float64) ** 2).sum()) for v in arrays.values())))


def test_a_control_variate_of_the_wrong_shape_or_parameters_is_refused(plant):
    bad = zeros(plant)
    name = sorted(bad)[0]
    bad[name] = np.zeros(bad[name].size + 1, dtype=np.float32)
    refused(train(plant, 201, 2, bad), "control", "shape")
    missing = zeros(plant)
    missing.pop(name)
    refused(train(plant, 202, 2, missing), "control must hold exactly the model's parameters")
    extra = {**zeros(plant), "backdoor.weight": np.zeros(3, dtype=np.float32)}
    refused(train(plant, 203, 2, extra), "control must hold exactly the model's parameters")
    assert plant.state.scaffold_control(201, 3) == {}  # nothing trained, nothing kept


def test_a_control_variate_with_nan_infinity_or_huge_values_is_refused(plant):
    for i, value in enumerate((np.nan, np.inf, 10 * MAX_CONTROL)):
        control = zeros(plant)
        name = sorted(control)[0]
        control[name] = control[name].copy()
        control[name].flat[0] = value
        answer = train(plant, 210 + i, 2, control)
        refused(answer, "control")
        assert "finite" in answer["error"] or "beyond" in answer["error"]
    control = {k: np.full(v.shape, 1e300) for k, v in plant.weights.items()}  # float64, inf as float32
    refused(train(plant, 214, 2, control), "control")
    refused(train(plant, 215, 2, {k: v.astype(object) for k, v in zeros(plant).items()}), "control")


def test_a_nonzero_control_variate_in_round_one_is_refused(plant):
    refused(train(plant, 220, 1, filled(plant, 0.5)), "zero in round 1")
    assert train(plant, 221, 1, zeros(plant))["ok"]


def test_c_for_an_experiment_the_plant_never_trained_starts_from_its_own_zero_c_i(plant):
    """A plant that joins at round 3 (or a dashboard that sends c for an experiment unknown to the plant): c_i = 0,
    and the reply is option II's Delta c_i = -c + (x - y) / (K lr) exactly; another experiment's c_i is never read."""
    assert train(plant, 230, 1, zeros(plant))["ok"]  # experiment 230 has a c_i now
    c = filled(plant, 0.01)
    answer = train(plant, 231, 3, c)
    assert answer["ok"], answer
    reply = parse_reply(TrainRequest(RoundRef(231, 3), plant.model(), TrainSettings(), control=c), answer)
    keys = sorted(c)
    x, y = flatten(plant.weights, keys) + 3e-3, flatten(reply.weights, keys)
    expected = -flatten(c, keys) + (x - y) / (reply.steps * LR)
    np.testing.assert_allclose(flatten(reply.control_delta, keys), expected, rtol=1e-4, atol=1e-4)
    kept = plant.state.scaffold_control(231, 4)
    np.testing.assert_allclose(flatten(kept, keys), flatten(reply.control_delta, keys), atol=1e-6)
    assert set(answer) >= {"control_delta"} and not any("c_i" in k or k == "control" for k in answer)


def test_the_delta_is_clipped_to_the_update_bound_and_c_i_follows_the_clipped_delta(plant):
    answer = train(plant, 240, 1, zeros(plant), clip_update_norm=0.5)
    assert answer["ok"]
    assert norm(answer["control_delta"]) <= 0.5 + 1e-4
    kept = plant.state.scaffold_control(240, 2)
    np.testing.assert_allclose(norm(kept), norm(answer["control_delta"]), rtol=1e-5)


def test_another_attempt_of_a_round_starts_from_the_c_i_that_round_started_from(plant):
    assert train(plant, 250, 1, zeros(plant))["ok"]
    after_round_one = plant.state.scaffold_control(250, 2)
    assert norm(after_round_one) > 0
    first = train(plant, 250, 2, filled(plant, 0.01))
    assert first["ok"]
    # the round's first attempt failed at the server: attempt 2 starts from round 1's c_i again
    again = plant.state.scaffold_control(250, 2)
    for k, v in after_round_one.items():
        np.testing.assert_array_equal(again[k], v)
    second = train(plant, 250, 2, filled(plant, 0.01), attempt=2)
    assert second["ok"]
    for k, v in first["control_delta"].items():  # same start, same seed: the same delta, not one on top
        np.testing.assert_allclose(second["control_delta"][k], v, atol=1e-5)
    kept = plant.state.scaffold_control(250, 3)
    for k, v in after_round_one.items():
        np.testing.assert_allclose(kept[k], v + second["control_delta"][k], atol=1e-5)


def test_a_request_with_both_control_and_secagg_is_refused_before_any_claim(plant):
    """Review H1: unmasked, sum_k Delta c_k and sum_k a_k d_k are two linear functions of the updates; the plant
    refuses to mask under SCAFFOLD, before it claims the attempt or trains."""
    request = TrainRequest(RoundRef(260, 1), plant.model(), TrainSettings(learning_rate=LR), secagg(plant.state),
                           control=zeros(plant))
    answer = plant.call(request)
    refused(answer, "control", "secagg")
    assert plant.state.masked_setup(request.ref.context) is None
    plain = plant.call(TrainRequest(RoundRef(260, 1), plant.model(), TrainSettings(learning_rate=LR),
                                    control=zeros(plant)))  # the same attempt, unmasked: nothing was spent
    assert plain["ok"], plain

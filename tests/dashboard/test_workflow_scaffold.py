"""SCAFFOLD through the round workflow over in-process plants (the real plant handlers and state): c travels in
every training request, each plant keeps its own c_i, and the server's c stays the mean of the plants' c_i.
Never with secure aggregation: refused by the settings (tests/shared/test_scaffold_settings.py) and by the plants
(tests/factory_agent/plant/test_scaffold.py)."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.orchestration.workflow import RoundState, RoundWorkflow
from factoryfl_testing.federation import InProcessFederation
from factoryfl_testing.inprocess import InProcessChannel, InProcessPlant
from shared.aggregation.vectors import flatten, float_keys
from shared.experiment import ExperimentConfig, parse_experiment


@pytest.fixture(scope="module")
def plants(tmp_path_factory):
    root = tmp_path_factory.mktemp("scaffold")
    return [InProcessPlant.simulated(f"s{i}", profile, 300, i, root)
            for i, profile in enumerate(("default", "heavy_duty", "hot_climate"))]


def settings(**body) -> ExperimentConfig:
    return parse_experiment({"name": "scaffold", "rounds": 2, "local_epochs": 1, "min_factories": 2,
                                   "algorithm": "scaffold", **body})


@pytest.fixture(scope="module")
def plain(plants):
    return InProcessFederation(InProcessChannel(plants)).run(settings())


def test_c_reaches_every_plant_and_stays_the_mean_of_the_plants_own_c_i(plants, plain):
    keys = float_keys(plain.models[0].weights)
    assert [r.strategy for r in plain.rounds] == ["scaffold", "scaffold"]
    first, second = plain.rounds
    c1 = first.aggregated.state.c
    assert c1 is not None and np.linalg.norm(c1) > 0
    workflow = RoundWorkflow(InProcessChannel(plants), lambda: np.random.default_rng(0))
    sent = workflow.train_request(RoundState(second.plan), 0).control
    np.testing.assert_allclose(flatten(sent, keys), c1, atol=1e-6)  # round 2 trains with round 1's c
    assert not np.any(flatten(workflow.train_request(RoundState(first.plan), 0).control, keys))  # round 1: 0
    # every plant took part in every round (|S| = N): c = (1/N) sum_i c_i, with each c_i only in its plant's state
    kept = [flatten(p.state.scaffold_control(plain.experiment, 3), keys) for p in plants]
    np.testing.assert_allclose(second.aggregated.state.c, np.mean(kept, axis=0), rtol=1e-4, atol=1e-5)
    assert all(np.linalg.norm(k) > 0 for k in kept)



def test_a_stored_c_past_the_plants_limit_is_sent_within_the_clip(plants, plain):
    """Review M1: a c stored before it was bounded (|c| > 1e4, which every plant refuses) is sent clipped to the
    update bound, so the experiment does not stall."""
    from dataclasses import replace

    from shared.experiment.training import SCAFFOLD_DEFAULT_CLIP
    from shared.protocol import parse_request
    from shared.strategies import ServerState

    plan = plain.rounds[-1].plan
    keys = float_keys(plan.model.weights)
    huge = np.full(len(flatten(plan.model.weights, keys)), 1e6)
    stored = replace(plan, server_state=ServerState(c=huge))
    request = RoundWorkflow(InProcessChannel(plants), lambda: np.random.default_rng(0)).train_request(
        RoundState(stored), 0)
    assert np.linalg.norm(flatten(request.control, keys)) <= SCAFFOLD_DEFAULT_CLIP * (1 + 1e-6)
    assert parse_request(request.to_wire()).control is not None  # what a plant checks on receipt

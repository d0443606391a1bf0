"""The round workflow (dashboard.orchestration.workflow) over in-process plants: its stages, one call per plant
per round, the lagged evaluation, dropouts and failures, without PySyft or a database."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from dashboard.orchestration.workflow import RoundFailed, RoundPlan, RoundState, RoundWorkflow
from factoryfl_testing.federation import InProcessFederation
from factoryfl_testing.inprocess import InProcessChannel, InProcessPlant
from shared.experiment import ExperimentConfig, parse_experiment
from shared.protocol import RoundRef
from shared.strategies import ServerState


class CountingChannel(InProcessChannel):
    """Counts every request each plant gets, by operation."""

    def __init__(self, plants):
        super().__init__(plants)
        self.calls: Counter = Counter()

    def dispatch(self, participants, make_request, timeout, on_answer=None):
        def counted(p):
            request = make_request(p)
            self.calls[(p.name, request.op)] += 1
            return request
        return super().dispatch(participants, counted, timeout, on_answer)


@pytest.fixture(scope="module")
def plants(tmp_path_factory):
    root = tmp_path_factory.mktemp("workflow")
    return [InProcessPlant.simulated(f"w{i}", profile, 400, i, root)
            for i, profile in enumerate(("default", "heavy_duty", "hot_climate"))]


def settings(**body) -> ExperimentConfig:
    return parse_experiment({"name": "workflow", "rounds": 3, "local_epochs": 1, "min_factories": 2, **body})


def test_one_training_call_per_plant_per_round_and_one_evaluation_call_at_the_end(plants):
    channel = CountingChannel(plants)
    run = InProcessFederation(channel).run(settings())
    for p in plants:
        assert channel.calls[(p.name, "train")] == 3
        assert channel.calls[(p.name, "evaluate")] == 1  # the last round's model only
        assert channel.calls[(p.name, "stats")] == 1
    # every model was scored: the initial one by round 1's training calls, the last by the evaluation call
    assert sorted(run.evaluations) == [0, 1, 2, 3]
    assert all(m["val_samples"] > 0 for e in run.evaluations.values() for m in e.per_factory.values())
    assert all(e.aggregate["val_f1"] is not None for e in run.evaluations.values())
    assert run.rounds[0].strategy == "feddyn"  # the default algorithm


def test_secure_aggregation_reaches_the_same_model_as_plain_aggregation(plants):
    fed = InProcessFederation(InProcessChannel(plants))
    plain = fed.run(settings(rounds=1, robust={"method": "norm_bound", "max_norm": 100.0}))
    secure = fed.run(settings(rounds=1, secure_aggregation=True))
    assert secure.rounds[0].revealed_by == sorted(p.name for p in plants)
    for key, value in plain.model.weights.items():
        np.testing.assert_allclose(secure.model.weights[key], value, atol=1e-4)


def test_a_refusing_plant_is_a_dropout_and_too_few_plants_fail_the_round(plants):
    fed = InProcessFederation(InProcessChannel(plants))
    config = settings(rounds=1)
    model = fed.prepare(config, 900)
    participants = fed.channel.participants()
    plan = RoundPlan(ref=RoundRef(900, 1), config=config, model=model, participants=participants,
                     federation_size=3, server_state=ServerState(), timeout=60)
    state = RoundWorkflow(fed.channel, lambda: np.random.default_rng(0)).run(plan)
    assert sorted(state.trained) == [p.name for p in plants] and state.outgoing is not None
    # the same round again: every plant refuses a second training from the same weights (its own ledger)
    again = RoundPlan(ref=RoundRef(900, 1), config=config, model=model, participants=participants,
                      federation_size=3, server_state=ServerState(), timeout=60)
    with pytest.raises(RoundFailed) as failed:
        RoundWorkflow(fed.channel, lambda: np.random.default_rng(0)).run(again)
    assert "plants returned an update" in str(failed.value)
    assert set(failed.value.state.dropouts) == {p.name for p in plants}


def test_contradictory_settings_never_reach_a_round():
    from shared.experiment import ValidationError

    with pytest.raises(ValidationError) as refused:
        parse_experiment({"name": "x", "algorithm": "fednova", "robust": {"method": "median"}})
    assert "fednova" in str(refused.value) and "median" in str(refused.value)


def test_early_stopping_ends_the_run_patience_rounds_after_the_best_and_keeps_the_best_model(tmp_path):
    """A learning rate too small to move the model: validation F1 stays where round 1 left it, so with patience 1
    the run stops once round 2's model has been scored (at round 3), and round 1 is the first best."""
    plants = [InProcessPlant.simulated(f"s{i}", "default", 200, i, tmp_path) for i in range(2)]
    fed = InProcessFederation(InProcessChannel(plants))
    run = fed.run(settings(rounds=6, patience=1, learning_rate=2e-7, lr_decay=1.0))
    assert run.stopped_at == 3 and len(run.rounds) == 3 and sorted(run.models) == [0, 1, 2, 3]
    scores = run.validation_scores()
    assert sorted(scores) == [1, 2] and scores[1] == scores[2]
    assert run.best_round == 2  # a tie: the later round is served (as the release does)
    full = fed.run(settings(rounds=3, patience=0, learning_rate=2e-7, lr_decay=1.0))
    assert full.stopped_at is None and len(full.rounds) == 3


def test_every_training_request_carries_the_pooled_class_weight_of_round_zero(plants):
    fed = InProcessFederation(InProcessChannel(plants))
    config = settings(rounds=1, class_weight="pooled")  # named: the body names its local_epochs (issue 25)
    model, pos_weight = fed.round_zero(config, 901)
    plan = RoundPlan(ref=RoundRef(901, 1), config=config, model=model, participants=fed.channel.participants(),
                     federation_size=3, server_state=ServerState(), timeout=60, pos_weight=7.5)
    workflow = RoundWorkflow(fed.channel, lambda: np.random.default_rng(0))
    assert [workflow.train_request(RoundState(plan), i).train.pos_weight for i in range(3)] == [7.5] * 3
    local = dataclasses.replace(plan, config=settings(rounds=1, class_weight="local"))
    assert workflow.train_request(RoundState(local), 0).train.pos_weight is None
    assert pos_weight is None or 1.0 < pos_weight <= 50.0

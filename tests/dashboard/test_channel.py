"""The plant channels: in process (the plants' own handlers, no PySyft) and over PySyft (with a stand-in pool)."""

import threading
import time

import numpy as np
import pytest

from dashboard.orchestration import syft_clients
from dashboard.orchestration.channel import Participant, SyftChannel
from dashboard.orchestration.syft_clients import ConnectionPool, PlantAddress
from factory_agent.plant.policy import PlantPolicy
from factoryfl_testing.inprocess import InProcessChannel, InProcessPlant
from shared.data.scaler import FeatureStats, Scaler, combine_stats
from shared.errors import CommunicationError, DataSiteError
from shared.models import ModelSpec, build_model, get_weights
from shared.protocol import (EvaluateReply, EvaluateRequest, ModelPart, RoundRef, ScalerMsg, StatsReply,
                             StatsRequest, TrainReply, TrainRequest, TrainSettings)


@pytest.fixture(scope="module")
def plants(tmp_path_factory):
    root = tmp_path_factory.mktemp("plants")
    return [InProcessPlant.simulated("plant_a", "default", 600, 1, root),
            InProcessPlant.simulated("plant_b", "hot_climate", 600, 2, root,
                                     PlantPolicy(max_local_epochs=1, max_calls_per_hour=10 ** 6, trust_dashboard=True))]


def model_of(names, answers) -> ModelPart:
    scaler = Scaler.from_stats(combine_stats([FeatureStats(a.count, a.sum, a.sum_sq) for a in answers.values()]))
    spec = ModelSpec("cnn", len(names))
    return ModelPart(tuple(names), ScalerMsg(scaler.mean, scaler.scale), spec, get_weights(build_model(spec, seed=0)))


def test_in_process_plants_answer_stats_training_and_evaluation_typed(plants):
    channel = InProcessChannel(plants)
    names = plants[0].features
    stats = channel.dispatch(channel.participants(), lambda p: StatsRequest(1, tuple(names)), 60)
    assert set(stats.answers) == {"plant_a", "plant_b"} and not stats.dropouts
    assert all(isinstance(a, StatsReply) and a.count > 0 for a in stats.answers.values())
    model = model_of(names, stats.answers)
    seen = []
    trained = channel.dispatch(channel.participants(), lambda p: TrainRequest(RoundRef(1, 1), model,
                                                                               TrainSettings(), evaluate=True),
                               60, lambda name, ok: seen.append((name, ok)))
    assert seen == [("plant_a", True), ("plant_b", True)]
    for reply in trained.answers.values():
        assert isinstance(reply, TrainReply) and reply.weights and isinstance(reply.evaluation, EvaluateReply)
    scored = channel.dispatch(channel.participants(["plant_a"]),
                              lambda p: EvaluateRequest(RoundRef(1, 1), model), 60)
    assert isinstance(scored.answers["plant_a"], EvaluateReply)
    assert channel.drain_events() == []


def test_a_refusing_plant_is_a_dropout_with_its_reason(plants):
    channel = InProcessChannel(plants)
    names = plants[0].features
    stats = channel.dispatch(channel.participants(), lambda p: StatsRequest(2, tuple(names)), 60)
    model = model_of(names, stats.answers)
    seen = []
    phase = channel.dispatch(channel.participants(), lambda p: TrainRequest(RoundRef(2, 1), model,
                                                                             TrainSettings(epochs=2)),
                             60, lambda name, ok: seen.append((name, ok)))
    assert list(phase.answers) == ["plant_a"]
    assert "plant_b" in phase.dropouts["plant_b"] and "at most 1" in phase.dropouts["plant_b"]
    assert seen == [("plant_a", True), ("plant_b", False)]


def test_a_plant_the_channel_does_not_hold_is_a_dropout(plants):
    phase = InProcessChannel(plants).dispatch([Participant("plant_z")], lambda p: StatsRequest(3, ("x",)), 60)
    assert not phase.answers and "no such plant" in phase.dropouts["plant_z"]


def test_an_in_process_plant_keys_its_participant_by_its_own_secure_aggregation_key(plants):
    participant = plants[0].participant()
    assert participant.name == "plant_a" and participant.public_key == plants[0].state.secagg_public_key()
    assert len(participant.public_key) == 64 and participant.address is None


# --- over PySyft, with a stand-in for the connection pool ----------------------------------------------------

def address(name: str, registered_at: str = "2025-01-01T00:00:00") -> PlantAddress:
    return PlantAddress(name=name, hostname="localhost", port=1, email="o@factoryfl.org", password="x",
                        registered_at=registered_at)


class FakeConnection:
    def __init__(self, behaviour):
        self.behaviour = behaviour

    def call(self, request):
        return self.behaviour(request)


class FakePool:
    def __init__(self, behaviours):
        self.behaviours, self.dropped = behaviours, []

    def get(self, plant_address):
        return FakeConnection(self.behaviours[plant_address.name])

    def drop(self, name):
        self.dropped.append(name)

    def drain_events(self):
        return [("plant_a", "code.approved", {"function": "fl_step"})]


def stats_reply(request):
    n = len(request.features)
    return StatsReply(count=5, sum=np.zeros(n), sum_sq=np.zeros(n), num_samples={"train": 5, "validation": 0,
                                                                                 "test": 0})


def test_a_plant_that_does_not_answer_in_time_is_a_dropout_and_is_logged_in_again_next_time():
    release = threading.Event()

    def stuck(request):
        release.wait(10)
        return stats_reply(request)

    pool = FakePool({"plant_a": stats_reply, "plant_b": stuck})
    started = time.monotonic()
    phase = SyftChannel(pool).dispatch([Participant("plant_a", address=address("plant_a")),
                                        Participant("plant_b", address=address("plant_b"))],
                                       lambda p: StatsRequest(1, ("x",)), timeout=0.3)
    release.set()
    assert time.monotonic() - started < 5
    assert list(phase.answers) == ["plant_a"] and phase.dropouts == {"plant_b": "no answer within 0.3 s"}
    assert pool.dropped == ["plant_b"]


def test_a_refusal_keeps_the_plants_connection_a_broken_connection_does_not():
    def refuses(request):
        raise DataSiteError("plant_a: refused by the plant's policy: 3 local epochs")

    def breaks(request):
        raise CommunicationError("plant_b failed during the call: ConnectionError")

    pool = FakePool({"plant_a": refuses, "plant_b": breaks})
    phase = SyftChannel(pool).dispatch([Participant("plant_a", address=address("plant_a")),
                                        Participant("plant_b", address=address("plant_b"))],
                                       lambda p: StatsRequest(1, ("x",)), timeout=10)
    assert "3 local epochs" in phase.dropouts["plant_a"] and "ConnectionError" in phase.dropouts["plant_b"]
    assert pool.dropped == ["plant_b"]


def test_a_participant_without_an_address_is_a_dropout_over_pysyft():
    pool = FakePool({})
    phase = SyftChannel(pool).dispatch([Participant("plant_a")], lambda p: StatsRequest(1, ("x",)), timeout=10)
    assert "no datasite address" in phase.dropouts["plant_a"] and pool.dropped == []


def test_the_syft_channel_hands_on_the_pools_audit_events():
    assert SyftChannel(FakePool({})).drain_events() == [("plant_a", "code.approved", {"function": "fl_step"})]


def test_the_pool_keeps_a_plants_login_until_it_registers_again(monkeypatch):
    made = []

    class Connection:
        def __init__(self, plant_address, approval_timeout, trust):
            self.address, self.events = plant_address, []
            made.append(plant_address.name)

    monkeypatch.setattr(syft_clients, "PlantConnection", Connection)
    pool = ConnectionPool(approval_timeout=1, trust=None)
    first = pool.get(address("plant_a"))
    assert pool.get(address("plant_a")) is first and made == ["plant_a"]  # rounds and experiments reuse it
    assert pool.get(address("plant_a", "2025-02-01T00:00:00")) is not first  # a restarted plant: log in again
    pool.drop("plant_a")
    pool.get(address("plant_a", "2025-02-01T00:00:00"))
    assert made == ["plant_a"] * 3


def test_secure_aggregation_runs_in_process_with_each_plants_own_keys(tmp_path):
    from shared.secagg.plant import aggregation_weight, contribution
    from shared.secagg.protocol import RevealedShares, unmask
    from shared.secagg.quantize import fraction_bits
    from shared.protocol import RevealRequest, SecAggRequest

    plants = [InProcessPlant.simulated(f"plant_{i}", "default", 600, i, tmp_path) for i in range(3)]
    channel = InProcessChannel(plants)
    names = plants[0].features
    stats = channel.dispatch(channel.participants(), lambda p: StatsRequest(10, tuple(names)), 60)
    model = model_of(names, stats.answers)
    participants = channel.participants()
    setup = SecAggRequest({p.name: p.public_key for p in participants}, 2, fraction_bits(3, 100.0), "samples", 100.0)
    settings = TrainSettings(seed=3)
    masked = channel.dispatch(participants, lambda p: TrainRequest(RoundRef(10, 1), model, settings, setup), 60)
    assert len(masked.answers) == 3 and all(a.weights is None for a in masked.answers.values())
    survivors = sorted(masked.answers)
    revealed = channel.dispatch(participants, lambda p: RevealRequest(
        RoundRef(10, 1), setup, tuple(survivors), {u: masked.answers[u].sealed[p.name] for u in survivors}), 60)
    total = unmask(sorted(setup.participants), {u: a.masked for u, a in masked.answers.items()},
                   [RevealedShares.from_dict(r.revealed) for r in revealed.answers.values()], 2, setup.fraction_bits)
    # the same training in the clear (another experiment, same seed): the unmasked sum is the sum of its updates
    plain = channel.dispatch(participants, lambda p: TrainRequest(RoundRef(11, 1), model, settings), 60)
    expected = sum(contribution(model.weights, a.weights, 100.0, aggregation_weight("samples", a.num_samples, a.steps))
                   for a in plain.answers.values())
    assert np.allclose(total, expected, atol=1e-3)

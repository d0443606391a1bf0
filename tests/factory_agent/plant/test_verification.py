"""Verified models at the plant (factory_agent.plant.verification) on in-process plants whose policy verifies models:
a verified federation reaches exactly the model a trusting one does, and every model the dashboard did not derive
from the members' signed secure sums is refused before a row is read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from factory_agent.plant.chain_store import ChainStore
from factoryfl_testing.federation import InProcessFederation
from factoryfl_testing.inprocess import UNCAPPED, InProcessChannel, InProcessPlant
from factoryfl_testing.membership import administrator, certify, enrol
from shared.errors import DataSiteError
from shared.experiment import parse_experiment
from shared.experiment.training import plant_training, verifiable_strategy
from shared.protocol import EvaluateRequest, ModelProof, RoundRef, TrainRequest

VERIFYING = dataclasses.replace(UNCAPPED, trust_dashboard=False, verify_models=True, min_cohort=3)


def settings(**body):
    return parse_experiment({"name": "verified", "rounds": 2, "local_epochs": 1, "min_factories": 3,
                             "secure_aggregation": True, "algorithm": "fedavg", **body})


def _plants(root, policy, admin=None):
    plants = [InProcessPlant.simulated(f"v{i}", profile, 300, i, root, policy)
              for i, profile in enumerate(("default", "heavy_duty", "hot_climate"))]
    for p in plants:
        if admin is not None:
            p.certificate = enrol(admin, p.state, p.name)
    return plants


@pytest.fixture(scope="module")
def admin(tmp_path_factory):
    return administrator(tmp_path_factory.mktemp("admin"))


@pytest.fixture(scope="module")
def verifying(tmp_path_factory, admin):
    return _plants(tmp_path_factory.mktemp("verifying"), VERIFYING, admin)


@pytest.fixture(scope="module")
def trusting(tmp_path_factory):
    return _plants(tmp_path_factory.mktemp("trusting"), UNCAPPED)


@pytest.fixture(scope="module")
def verified_run(verifying):
    fed = InProcessFederation(InProcessChannel(verifying), verified=True)
    config = settings()
    return fed, config, fed.run(config)


def _weights_equal(a, b):
    return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_verified_federation_reaches_exactly_the_model_a_trusting_one_does(verified_run, trusting):
    _, config, run = verified_run
    assert all(not s.dropouts for s in run.rounds), [s.dropouts for s in run.rounds]
    assert all(s.transcript is not None for s in run.rounds)
    plain = InProcessFederation(InProcessChannel(trusting)).run(config)
    assert _weights_equal(run.model.weights, plain.model.weights)
    # every plant derived every round itself, and its copy is the dashboard's
    for plant in verified_run[0].channel.plants.values():
        store = ChainStore(plant.state.directory, run.experiment)
        assert store.load().head == config.rounds
        assert _weights_equal(store.weights(config.rounds), run.model.weights)


@pytest.mark.parametrize("body", [{"algorithm": "feddyn"}, {"algorithm": "fednova", "server_optimizer": "fedadam"},
                                  {"algorithm": "fedprox", "server_optimizer": "fedavgm"}])
def test_server_state_is_replayed_for_every_verifiable_strategy(verifying, body):
    fed = InProcessFederation(InProcessChannel(verifying), verified=True)
    run = fed.run(settings(**body))
    assert all(not s.dropouts for s in run.rounds), [s.dropouts for s in run.rounds]
    assert len(run.rounds) == 2 and run.rounds[-1].outgoing is not None


def test_unverifiable_settings_have_no_strategy_to_replay():
    assert verifiable_strategy(settings()) is not None
    assert verifiable_strategy(settings(secure_aggregation=False)) is None
    assert verifiable_strategy(settings(robust={"method": "median"}, secure_aggregation=False)) is None
    assert verifiable_strategy(settings(algorithm="scaffold", secure_aggregation=False)) is None


def _refusal(plant, request) -> str:
    with pytest.raises(DataSiteError) as info:
        plant.answer(request)
    return str(info.value)


def _round_one(fed, config, run, plant, **changes):
    """Round 1's training request for `plant`, as the dashboard would send it, with `changes` to the model part."""
    model = dataclasses.replace(run.models[0], **changes)
    state = run.rounds[0]
    proof = ModelProof(seed=config.seed, strategy=verifiable_strategy(config))
    train = plant_training(state.plan.config, 1, 0, state.plan.pos_weight, state.fit)
    return TrainRequest(ref=RoundRef(run.experiment, 1, 9), model=model, train=train, secagg=state.secagg,
                        evaluate=False, proof=proof)


def test_crafted_weights_are_refused_before_any_row_is_read(verified_run):
    fed, config, run = verified_run
    plant = fed.channel.plants["v0"]
    crafted = {k: v + np.float32(0.01) for k, v in run.models[0].weights.items()}
    why = _refusal(plant, _round_one(fed, config, run, plant, weights=crafted))
    assert "unverified model" in why and "round 0" in why
    # the same weights for evaluation, and any round
    why = _refusal(plant, EvaluateRequest(RoundRef(run.experiment, 2, 7), dataclasses.replace(
        run.models[2], weights=crafted), proof=ModelProof(config.seed, verifiable_strategy(config))))
    assert "unverified model" in why


def test_a_request_without_proof_or_with_another_scaler_seed_or_strategy_is_refused(verified_run):
    fed, config, run = verified_run
    plant = fed.channel.plants["v1"]
    ref = RoundRef(run.experiment, 2, 8)  # each call its own attempt: a refused evaluation still counts as a call
    assert "no proof" in _refusal(plant, EvaluateRequest(ref, run.models[2]))
    proof = ModelProof(config.seed, verifiable_strategy(config))
    scaler = dataclasses.replace(run.models[2].scaler, scale=run.models[2].scaler.scale * 3)
    assert "scaler" in _refusal(plant, EvaluateRequest(dataclasses.replace(ref, attempt=10), dataclasses.replace(
        run.models[2], scaler=scaler), proof))
    assert "seed" in _refusal(plant, EvaluateRequest(dataclasses.replace(ref, attempt=11), run.models[2],
                                                     dataclasses.replace(proof, seed=7)))
    other = dict(proof.strategy, server_optimizer="fedadam")
    assert "strategy" in _refusal(plant, EvaluateRequest(dataclasses.replace(ref, attempt=12), run.models[2],
                                                         dataclasses.replace(proof, strategy=other)))
    # the genuine model, with the genuine proof, is answered
    assert plant.answer(EvaluateRequest(RoundRef(run.experiment, 2, 6), run.models[2], proof)).val


def _fresh_chain_request(fed, config, run, transcripts, plant_name="v2"):
    """Evaluate round 1's model at a plant that has not derived it: a new experiment id is not possible (the
    transcript binds it), so the plant's chain is rewound to round 0 first."""
    plant = fed.channel.plants[plant_name]
    store = ChainStore(plant.state.directory, run.experiment)
    chain = store.load()
    store._save(dataclasses.replace(chain, head=0))
    attempt = _fresh_chain_request.attempts = getattr(_fresh_chain_request, "attempts", 20) + 1
    request = EvaluateRequest(RoundRef(run.experiment, 1, attempt), run.models[1],
                              ModelProof(config.seed, verifiable_strategy(config), tuple(transcripts)))
    return plant, request


def test_a_forged_masked_update_or_reveal_or_an_invented_member_is_refused(verified_run, admin, tmp_path):
    fed, config, run = verified_run
    genuine = run.rounds[0].transcript
    name = sorted(genuine.contributions)[0]
    forged = dict(genuine.contributions)
    forged[name] = dataclasses.replace(forged[name], masked=forged[name].masked + np.uint64(1))
    plant, request = _fresh_chain_request(fed, config, run, [dataclasses.replace(genuine, contributions=forged)])
    assert "not signed by that member" in _refusal(plant, request)
    holder = sorted(genuine.reveals)[0]
    reveals = dict(genuine.reveals)
    reveals[holder] = dataclasses.replace(reveals[holder], revealed={**reveals[holder].revealed, "x": 99})
    plant, request = _fresh_chain_request(fed, config, run, [dataclasses.replace(genuine, reveals=reveals)])
    assert "not signed by that member" in _refusal(plant, request)
    # an invented member: a certificate from another federation key
    other = administrator(tmp_path / "other")
    certificates = dict(genuine.secagg.certificates)
    certificates[name] = certify(other, name, genuine.secagg.participants[name]).to_wire()
    secagg = dataclasses.replace(genuine.secagg, certificates=certificates)
    plant, request = _fresh_chain_request(fed, config, run, [dataclasses.replace(genuine, secagg=secagg)])
    assert "membership" in _refusal(plant, request)
    # fewer summed updates than the plant's min_cohort
    two = {n: genuine.contributions[n] for n in sorted(genuine.contributions)[:2]}
    plant, request = _fresh_chain_request(fed, config, run, [dataclasses.replace(genuine, contributions=two)])
    assert "min_cohort" in _refusal(plant, request)
    # a relayed secure setup that would rescale the sum: other fraction bits, or another clip than the experiment's
    for changes, why in (({"fraction_bits": genuine.secagg.fraction_bits - 8}, "fraction bits"),
                         ({"clip": genuine.secagg.clip * 1000}, "clip")):
        secagg = dataclasses.replace(genuine.secagg, **changes)
        plant, request = _fresh_chain_request(fed, config, run, [dataclasses.replace(genuine, secagg=secagg)])
        assert why in _refusal(plant, request)
    # the genuine transcript still verifies
    plant, request = _fresh_chain_request(fed, config, run, [genuine])
    assert plant.answer(request).val


def test_personalization_runs_only_on_a_derived_model(verified_run):
    fed, config, run = verified_run
    replies = fed.personalize(run, dataclasses.replace(config, personalization="finetune"))
    assert sorted(replies) == ["v0", "v1", "v2"]


def test_the_floor_scores_only_a_released_model_the_plant_derived(verified_run):
    from factory_agent.plant.verification import verified_release
    from shared.bundle import ModelBundle
    from shared.data.scaler import Scaler
    from shared.data.schema import merge_schemas
    from shared.errors import ModelError

    fed, config, run = verified_run
    plants = list(fed.channel.plants.values())
    model, directory = run.model, plants[0].state.directory
    schema = merge_schemas([p.data.schema for p in plants])
    assert schema.feature_names == list(model.features)

    def bundle(weights=None, source=None, scaler=None):
        return ModelBundle(spec=model.spec, schema=schema, scaler=scaler or Scaler(np.asarray(model.scaler.mean,
                           np.float64), np.asarray(model.scaler.scale, np.float64)), weights=weights or model.weights,
                           source={"experiment_id": run.experiment, "round": config.rounds} if source is None else source)

    rounded = {k: (v * (1 + 1e-8)).astype(v.dtype) for k, v in model.weights.items()}  # the relay's float rounding
    kept = verified_release(bundle(rounded), directory)
    assert _weights_equal(kept.weights, ChainStore(directory, run.experiment).weights(config.rounds))  # its own copy
    crafted = {k: v.copy() for k, v in model.weights.items()}
    first = next(iter(crafted))
    crafted[first].flat[0] += 0.5
    with pytest.raises(ModelError, match="no model of experiment"):
        verified_release(bundle(crafted), directory)
    with pytest.raises(ModelError, match="verified no model of experiment"):
        verified_release(bundle(source={"experiment_id": run.experiment + 10_000}), directory)
    with pytest.raises(ModelError, match="names no experiment"):
        verified_release(bundle(source={}), directory)
    other = Scaler(np.asarray(model.scaler.mean, np.float64) + 1, np.asarray(model.scaler.scale, np.float64))
    with pytest.raises(ModelError, match="scaler"):
        verified_release(bundle(scaler=other), directory)


def test_a_refused_request_pins_nothing_and_a_pruned_chain_is_never_pinned_again_otherwise(verified_run):
    """Found in review: a refused request for a fresh experiment id used to leave a chain (round 0 of the caller's
    seed and scaler) that a release could then name; and a chain pruned by ~32 fresh ids could be pinned again to
    another seed, turning the members' old transcripts into a model no one trained."""
    fed, config, run = verified_run
    plant = fed.channel.plants["v0"]
    proof = ModelProof(config.seed, verifiable_strategy(config))
    crafted = dataclasses.replace(run.models[0], weights={k: v + np.float32(0.5) for k, v in run.models[0].weights.items()})
    fresh = run.experiment + 5000
    assert "unverified model" in _refusal(plant, EvaluateRequest(RoundRef(fresh, 0, 1), crafted, proof))
    assert ChainStore(plant.state.directory, fresh).load() is None  # refused: nothing kept
    # the experiment's own chain, pruned away, is rebuilt only as it was pinned
    ChainStore(plant.state.directory, run.experiment).discard()
    from shared.verification import genesis

    other = dataclasses.replace(run.models[0], weights=genesis(run.models[0].spec, config.seed + 1))
    why = _refusal(plant, EvaluateRequest(RoundRef(run.experiment, 0, 30), other,
                                          dataclasses.replace(proof, seed=config.seed + 1)))
    assert "pinned at round 0 to another seed" in why
    assert plant.answer(EvaluateRequest(RoundRef(run.experiment, 0, 31), run.models[0], proof)).val  # as pinned


def test_the_floor_refuses_the_untrained_round_zero_as_a_release(verified_run):
    from factory_agent.plant.verification import verified_release
    from shared.bundle import ModelBundle
    from shared.data.scaler import Scaler
    from shared.data.schema import merge_schemas
    from shared.errors import ModelError

    fed, config, run = verified_run
    plants = list(fed.channel.plants.values())
    zero = run.models[0]
    bundle = ModelBundle(spec=zero.spec, schema=merge_schemas([p.data.schema for p in plants]),
                         scaler=Scaler(np.asarray(zero.scaler.mean, np.float64), np.asarray(zero.scaler.scale,
                                                                                             np.float64)),
                         weights=zero.weights, source={"experiment_id": run.experiment, "round": 0})
    with pytest.raises(ModelError, match="round 0"):
        verified_release(bundle, plants[1].state.directory)


def test_a_twin_experiment_over_all_members_but_one_is_not_summed(tmp_path, admin, caplog):
    """Found in review: training is deterministic given the seed and round 0 is the seed's model whatever the
    experiment id, so a second experiment from the same seed over all members but one would give a sum that,
    subtracted from the first, is that one member's update. A verifying plant reveals one sum per model it trained
    from, over one survivor list: the twin's round is refused; the same experiment again over the same members runs."""
    policy = dataclasses.replace(VERIFYING, min_cohort=2)  # a federation of 3 with min_cohort 2: the twin has 2
    plants = _plants(tmp_path, policy, admin)
    fed = InProcessFederation(InProcessChannel(plants), verified=True)
    first = fed.run(settings(rounds=1))
    assert not first.rounds[0].dropouts
    again = fed.run(settings(rounds=1))  # the same members: the same sum, nothing new
    assert _weights_equal(again.model.weights, first.model.weights)
    with pytest.raises(Exception, match="revealed their shares"):
        fed.run(settings(rounds=1, min_factories=2), names=["v1", "v2"])
    assert "already revealed a sum over ['v0', 'v1', 'v2'] trained from this same model" in caplog.text
    assert fed.run(settings(rounds=1, min_factories=2, seed=11), names=["v1", "v2"]).model is not None

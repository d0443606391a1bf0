"""Verified rounds over real PySyft datasites (README, "Verified rounds"): three plants started with no policy flag
(the default policy verifies models; the harness pins only the federation administrator's key, as a data owner
does at enrolment) run a secure experiment end to end through a real dashboard, each deriving every global model
itself; then, with the orchestrator's PySyft login (what the dashboard's database holds), every attack of issue 24
that needs the plant to compute on a model of the caller's choosing is refused at a real plant."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from factory_agent.plant.chain_store import ChainStore
from tests.integration.conftest import plants_online

pytestmark = pytest.mark.integration
PLANTS = [(f"verifier_{c}", ["--simulate", profile, "--rows", "400", "--seed", str(i)])
          for i, (c, profile) in enumerate(zip("abc", ("default", "heavy_duty", "hot_climate")))]


@pytest.fixture(scope="module")
def plants(workdir, dashboard):
    with plants_online(workdir, dashboard, PLANTS) as agents:
        yield {a.name: a for a in agents}


@pytest.fixture(scope="module")
def experiment(plants, dashboard):
    # secure_aggregation is not named: it is on by default over plants that do not trust the dashboard
    body = {"name": "verified", "model_type": "cnn", "rounds": 2, "local_epochs": 1, "min_factories": 3,
            "personalization": "finetune", "personalization_epochs": 1}
    resp = dashboard.api("POST", "/experiments", json=body)
    assert resp.status_code == 201, resp.text
    eid = resp.json()["id"]
    assert dashboard.api("POST", f"/experiments/{eid}/start").status_code == 200
    return dashboard.wait_experiment(eid, timeout=400)


def test_plants_with_no_policy_flags_run_a_verified_secure_experiment_end_to_end(experiment, plants, dashboard):
    assert experiment["status"] == "completed", experiment.get("message")
    assert experiment["config"]["secure_aggregation"] is True
    for r in experiment["rounds"]:
        assert sorted(r["participants"]) == sorted(plants) and r["dropouts"] == [], r
    for agent in plants.values():
        log = agent.log()
        assert f"experiment {experiment['id']}: verified round 2" in log, log[-3000:]
        assert "REFUSED" not in log, [line for line in log.splitlines() if "REFUSED" in line][:3]
        # the plant's own copy of the final model is the dashboard's, to the bit
        store = ChainStore(agent.state_dir, experiment["id"])
        assert store.load().head == 2
    deadline = time.monotonic() + 120  # the personalization step follows the last round, on the derived model
    while len(personal := dashboard.experiment(experiment["id"]).get("personalization") or []) < 3:
        assert time.monotonic() < deadline, personal
        time.sleep(1)


def _orchestrator_call(agent, wire: dict) -> dict:
    """fl_step with a request of the attacker's choosing, over the orchestrator's login, as the dashboard calls it."""
    import json

    from shared.vetted import ASSET_NAMES, DATASET_NAME

    creds = json.loads((agent.state_dir / "credentials.json").read_text())
    client = agent.login(creds["orchestrator_email"], creds["orchestrator_password"])
    (dataset,) = [d for d in client.datasets.get_all() if d.name == DATASET_NAME]
    assets = {name: dataset.assets[name] for name in ASSET_NAMES}
    result = client.code.fl_step(**assets, request=wire)
    return result.get() if hasattr(result, "get") else result


def _genuine_parts(experiment, dashboard, agent):
    """The experiment's round-2 model part and proof, as the dashboard relays them (from its own database)."""
    from factory_agent.plant.chain_store import ChainStore
    from shared.protocol import ModelPart, ScalerMsg
    from shared.model_spec import ModelSpec

    store = ChainStore(agent.state_dir, experiment["id"])
    pinned = store.load().pinned
    part = ModelPart(features=tuple(pinned["features"]), scaler=ScalerMsg(np.asarray(pinned["scaler"]["mean"]),
                                                                           np.asarray(pinned["scaler"]["scale"])),
                     spec=ModelSpec.from_dict(pinned["spec"]), weights=store.weights(2))
    return part, pinned


def test_crafted_weights_and_a_forged_history_are_refused_at_a_real_plant(experiment, plants, dashboard):
    """The trap-weights attack needs the plant to compute on weights the attacker chose: every such request is
    refused before a row is read, whatever proof comes with it, and whether it asks for training or evaluation."""
    from shared.protocol import EvaluateRequest, ModelProof, RoundRef

    agent = plants["verifier_a"]
    part, pinned = _genuine_parts(experiment, dashboard, agent)
    proof = ModelProof(seed=pinned["seed"], strategy=pinned["strategy"])
    crafted = dataclasses.replace(part, weights={k: np.zeros_like(v) + np.float32(0.5) for k, v in part.weights.items()})
    ref = RoundRef(experiment["id"], 2, 3)
    for request in (EvaluateRequest(ref, crafted), EvaluateRequest(dataclasses.replace(ref, attempt=4), crafted, proof)):
        answer = _orchestrator_call(agent, request.to_wire())
        assert answer["ok"] is False and "verif" in answer["error"], answer
    # a fresh experiment id: round 0 must be the public seed's model, built at the plant
    fresh = EvaluateRequest(RoundRef(experiment["id"] + 1000, 0, 1), crafted, proof)
    answer = _orchestrator_call(agent, fresh.to_wire())
    assert answer["ok"] is False and "not the model of round 0" in answer["error"], answer
    # the genuine round-2 model with its proof is answered (the plant has derived it)
    answer = _orchestrator_call(agent, EvaluateRequest(dataclasses.replace(ref, attempt=5), part, proof).to_wire())
    assert answer["ok"] is True, answer
    assert "unverified model" in agent.log()  # each refusal is in the data owner's log, with its reason


def test_every_attack_on_a_model_of_the_callers_choosing_fails_at_a_plant_with_no_policy_flags(experiment, plants,
                                                                                               dashboard):
    """The issue's attacks, each as the orchestrator's login sends it: an unmasked training call (the row reader of
    trap weights), the 4,096-absent-feature evaluation (the cost attack), an exact evaluation of a model that flags
    one band of a feature (the evaluation oracle), a round in a cohort of invented members. None is answered with a
    number; the genuine model with its proof still is."""
    from shared.models import ModelSpec, build_model, get_weights
    from shared.protocol import (EvaluateRequest, ModelPart, ModelProof, RoundRef, ScalerMsg, SecAggRequest,
                                 TrainRequest, TrainSettings)
    from shared.secagg.keys import public_hex
    from shared.secagg.quantize import fraction_bits
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    agent = plants["verifier_b"]
    part, pinned = _genuine_parts(experiment, dashboard, agent)
    proof = ModelProof(seed=pinned["seed"], strategy=pinned["strategy"])
    eid = experiment["id"] + 2000
    absent = 4096 - len(part.features)
    wide = ModelSpec("cnn", 4096, channels=256, hidden_size=16)
    costly = ModelPart(part.features + tuple(f"absent_{i}" for i in range(absent)),
                       ScalerMsg(np.concatenate([part.scaler.mean, np.zeros(absent)]),
                                 np.concatenate([part.scaler.scale, np.ones(absent)])),
                       wide, get_weights(build_model(wide, seed=0)))
    band = dataclasses.replace(part, weights={k: np.where(np.arange(v.size).reshape(v.shape) % 7 == 0, 3.0, -1.0)
                                              .astype(v.dtype) for k, v in part.weights.items()})
    invented = {name: public_hex(X25519PrivateKey.generate()) for name in ("invented_1", "invented_2")}
    invented["verifier_b"] = public_hex(X25519PrivateKey.generate())
    attacks = {
        "unmasked training": TrainRequest(RoundRef(eid, 1), band, TrainSettings()),
        "cost": EvaluateRequest(RoundRef(eid + 1, 0), costly, proof),
        "evaluation oracle": EvaluateRequest(RoundRef(eid + 2, 0), band, proof),
        "invented cohort": TrainRequest(RoundRef(eid + 3, 1), band, TrainSettings(),
                                        SecAggRequest(invented, 2, fraction_bits(3, 100.0), "samples", 100.0),
                                        proof=proof),
    }
    for name, request in attacks.items():
        answer = _orchestrator_call(agent, request.to_wire())
        assert answer["ok"] is False, (name, answer)
        assert not set(answer) & {"metrics", "weights", "masked", "loss", "histogram"}, (name, answer)
    assert agent.log().count("REFUSED") >= len(attacks)
    genuine = EvaluateRequest(RoundRef(experiment["id"], 2, 5), part, proof)  # the last attempt the policy allows
    answer = _orchestrator_call(agent, genuine.to_wire())
    assert answer["ok"] is True, answer

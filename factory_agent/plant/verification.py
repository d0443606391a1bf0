"""Verified models at the plant (README, "Verified rounds"): with `verify_models` in its policy, a plant trains,
evaluates and personalizes only a global model it derived itself, and computes on its own copy.

The request's proof (shared.protocol.transcript.ModelProof) names the experiment's public seed and strategy and
the transcripts of rounds the plant has not derived yet. The plant pins the model part (features, scaler, spec),
the seed and the strategy at round 0, builds round 0 itself (shared.verification.genesis), and extends its chain
one round per transcript: every member of that round is checked against the pinned federation key (the same
check as masking, factory_agent.plant.membership), and every signature against the identity key of the member's
certificate, before the masks are removed and the strategy's step replayed (shared.verification.replay).

So the dashboard chooses neither the weights nor the scaler a plant computes with: a crafted model, a model of an
invented cohort or a model from a changed strategy is refused before any row is read.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np

from factory_agent.plant.chain_store import Chain, ChainStore
from factory_agent.plant.membership import check_membership
from shared.bundle import ModelBundle
from shared.errors import ModelError, PolicyRefusal, ProtocolError, VerificationError
from shared.membership import MembershipCertificate
from shared.protocol import ModelPart
from shared.protocol.transcript import ModelProof
from shared.verification import genesis, replay, same_model, strategy_of

log = logging.getLogger(__name__)
UNVERIFIED = ("this plant computes only on models it verified itself (policy verify_models): the request carries "
              "no proof of its model")


def _pinned(model: ModelPart, proof: ModelProof) -> dict:
    """What a whole experiment keeps: its model part but the weights, its seed, its strategy (JSON)."""
    return json.loads(json.dumps({"features": list(model.features), "scaler": model.scaler.to_wire(),
                                  "spec": model.spec.to_dict(), "seed": proof.seed, "strategy": proof.strategy}))


def _identity_keys(plant, secagg) -> dict[str, str]:
    """Each member's identity key, from certificates the membership check has just accepted."""
    return {name: MembershipCertificate.from_wire(wire).identity_public_key
            for name, wire in secagg.certificates.items()}


def _extend(plant, experiment: int, store: ChainStore, chain: Chain, proof: ModelProof) -> Chain:
    for transcript in proof.transcripts:
        if transcript.round <= chain.head:
            continue  # derived before: this plant's own copy stands
        if transcript.round != chain.head + 1:
            raise VerificationError(f"the proof skips from round {chain.head} to round {transcript.round}")
        check_membership(plant.policy, plant.state, plant.name, transcript.secagg)
        if len(transcript.contributions) < plant.policy.min_cohort:
            raise VerificationError(f"round {transcript.round} summed {len(transcript.contributions)} updates, fewer "
                                    f"than this plant's min_cohort {plant.policy.min_cohort}")
        weights, state = replay(chain.pinned["strategy"], store.weights(chain.head), store.server_state(), experiment,
                                transcript, _identity_keys(plant, transcript.secagg))
        chain = store.extend(chain, weights, state)
        log.info("experiment %d: verified round %d (%d members' signed updates)", experiment, chain.head,
                 len(transcript.contributions))
    return chain


def verified_model(plant, experiment: int, model: ModelPart, proof: ModelProof | None,
                   round_number: int | None) -> ModelPart:
    """The model part to compute with: the request's, unless the policy verifies models; then this plant's own
    copy of round `round_number` (None: any round it derived), or PolicyRefusal naming what does not check."""
    if not plant.policy.verifies_models:
        return model
    if proof is None:
        raise PolicyRefusal(UNVERIFIED)
    store = ChainStore(plant.state.directory, experiment)
    chain = store.load()
    try:
        pinned = _pinned(model, proof)
        if chain is None:
            strategy_of(proof.strategy)  # an unverifiable strategy is refused before any model is built
        elif chain.pinned != pinned:
            changed = sorted(k for k in pinned if pinned[k] != chain.pinned.get(k))
            raise VerificationError(f"the request changes the experiment's {', '.join(changed)} (pinned at round 0)")
        derived = _derived(plant, experiment, store, chain or store.start(pinned, genesis(model.spec, proof.seed)),
                           proof, model, round_number)
        if chain is None:  # kept for good once a request on it checked (a refused one pins nothing)
            plant.state.pin_chain(experiment, json.dumps(pinned, sort_keys=True))
        return dataclasses.replace(model, weights=derived)
    except (VerificationError, ProtocolError, PolicyRefusal) as exc:
        if chain is None:
            store.discard()
        raise PolicyRefusal(f"unverified model: {exc}") from None


def _derived(plant, experiment: int, store: ChainStore, chain: Chain, proof: ModelProof, model: ModelPart,
             round_number: int | None) -> dict[str, np.ndarray]:
    """This plant's own copy of the round the request's weights are, after extending the chain by the proof."""
    chain = _extend(plant, experiment, store, chain, proof)
    rounds = range(chain.head, -1, -1) if round_number is None else [round_number]
    for number in rounds:
        derived = store.weights(number) if 0 <= number <= chain.head else None
        if derived is not None and same_model(model.weights, derived):
            return derived
    which = "any round" if round_number is None else f"round {round_number}"
    raise VerificationError(f"the weights are not the model of {which} this plant derived (verified up to "
                            f"round {chain.head})")


def derived_digest_matches(weights: dict[str, np.ndarray], state_directory, experiment: int) -> int | None:
    """The round whose derived model these weights are (a released bundle's, at the floor), or None."""
    store = ChainStore(state_directory, experiment)
    chain = store.load()
    if chain is None:
        return None
    for number in range(chain.head, -1, -1):
        derived = store.weights(number)
        if derived is not None and same_model(weights, derived):
            return number
    return None


def _wire(value) -> object:
    return json.loads(json.dumps(value))


def verified_release(bundle: ModelBundle, state_directory) -> ModelBundle:
    """A released bundle as this plant scores it when its policy verifies models: the experiment it names must be
    one this plant derived models of, with the same features, scaler and spec as pinned at round 0, and its weights
    one of the rounds derived; the bundle then carries this plant's own copy of those weights. ModelError (the
    floor keeps its last good model) otherwise: the dashboard does not choose what the floor scores with."""
    experiment = (bundle.source or {}).get("experiment_id")
    if isinstance(experiment, bool) or not isinstance(experiment, int) or experiment < 0:
        raise ModelError("the released bundle names no experiment (source.experiment_id), so this plant cannot "
                         "check it against the models it verified (policy verify_models)")
    store = ChainStore(state_directory, experiment)
    chain = store.load()
    if chain is None:
        raise ModelError(f"this plant verified no model of experiment {experiment}: it scores only a released "
                         "model it derived itself (policy verify_models)")
    pinned = chain.pinned
    mine = {"features": list(bundle.schema.feature_names), "scaler": bundle.scaler.to_dict(),
            "spec": bundle.spec.to_dict()}
    changed = sorted(k for k, v in mine.items() if _wire(v) != pinned.get(k))
    if changed:
        raise ModelError(f"the released bundle's {', '.join(changed)} differ from experiment {experiment}'s as "
                         "this plant pinned them at round 0")
    number = derived_digest_matches(bundle.weights, state_directory, experiment)
    if number == 0:
        raise ModelError(f"the released bundle is experiment {experiment}'s round 0, the public seed's untrained "
                         "model: this plant scores only a model its members trained in a secure round")
    if number is None:
        raise ModelError(f"the released bundle's weights are no model of experiment {experiment} this plant "
                         f"derived (verified up to round {chain.head})")
    log.info("released model of experiment %d is round %d as this plant derived it", experiment, number)
    return dataclasses.replace(bundle, weights=store.weights(number))

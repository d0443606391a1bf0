"""What a plant does when the dashboard calls its vetted `fl_step` (shared.vetted): parse the request into its
typed form, check it against the plant's own policy and ledgers, then do the work and release only what the
protocol allows (DESIGN §9). Every refusal is logged at the plant with its reason and answered as
{"ok": False, "error": reason}, because PySyft hides exception messages from the caller.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass

import numpy as np

from factory_agent.plant import policy as rules
from factory_agent.plant.policy import PlantPolicy
from factory_agent.plant.state import BUSY_FILE_ENV, BYZANTINE_ENV, LOG_FILE_ENV, PlantState
from shared.data.scaler import Scaler, scaler_mismatch
from shared.errors import FederatedLearningError, PolicyRefusal
from shared.models import ModelSpec, build_model
from shared.protocol import (DPReport, EvaluateReply, EvaluateRequest, ModelPart, RevealReply, RevealRequest,
                             OPS, RoundRef, StatsReply, StatsRequest, TrainReply, TrainRequest, parse_request,
                             refusal)
from shared.secagg.protocol import RoundSetup, mask_and_share, reveal
from shared.training import PlantArrays, PrivateTraining, TrainOutcome, compute_stats, dp_steps, evaluate_local, \
    train_local

log = logging.getLogger(__name__)
STATS_CALLS_PER_EXPERIMENT = 10  # round 0 may be retried while plants come online


@dataclass(frozen=True)
class Plant:
    """Everything a handler may use: the private arrays, who this plant is, its policy and its state."""

    features: np.ndarray
    labels: np.ndarray
    index: np.ndarray
    name: str
    own_features: list[str]
    policy: PlantPolicy
    state: PlantState

    def arrays(self, experiment_features) -> PlantArrays:
        """The plant's rows in the experiment's feature order, unscaled; a feature the plant lacks is 0."""
        return PlantArrays(np.asarray(self.features), np.asarray(self.labels), np.asarray(self.index),
                           self.own_features, list(experiment_features), None)


def _log_to_the_agents_file() -> None:
    """PySyft runs approved code in a server process it spawns, with no logging set up: send this package's
    records to the agent's log file, so the data owner reads every refusal where the agent's own lines are."""
    path = os.environ.get(LOG_FILE_ENV)
    package = logging.getLogger("factory_agent.plant")
    if not path or any(getattr(h, "factoryfl_plant", False) for h in package.handlers):
        return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.factoryfl_plant = True
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False


def handle(features, labels, index, wire, state: PlantState | None = None) -> dict:
    """The body of the vetted fl_step: the wire answer to one request."""
    _log_to_the_agents_file()
    started = time.perf_counter()
    op = wire.get("op") if isinstance(wire, dict) else None
    try:
        state = state or PlantState.from_environment()
        name, own_features = state.profile()
        plant = Plant(features, labels, index, name, own_features, state.policy(), state)
        request = parse_request(wire)
        with busy_marker(getattr(request, "experiment", None) or request.ref.experiment):
            reply = HANDLERS[type(request)](plant, request)
    except PolicyRefusal as exc:
        log.warning("REFUSED %s request: %s", _printable(op), exc)
        return refusal(f"refused by the plant's policy: {exc}")
    except FederatedLearningError as exc:
        log.warning("rejected %s request: %s", _printable(op), exc)
        return refusal(f"{type(exc).__name__}: {exc}")
    except (ValueError, RuntimeError, MemoryError) as exc:  # torch / numpy failures inside the work
        log.exception("%s step failed", _printable(op))
        return refusal(f"{type(exc).__name__}: {exc}")
    except Exception:  # a bug or a lock timeout: the caller gets no detail, the data owner the traceback
        log.exception("%s step failed unexpectedly", _printable(op))
        return refusal("internal error at the plant; its data owner has the details in the plant's log")
    wire_reply = reply.to_wire()
    wire_reply["seconds"] = time.perf_counter() - started
    return wire_reply


# --- model inputs ----------------------------------------------------------------------------------------

def _printable(op) -> str:
    """An operation name for the log: a known one as is, anything else quoted (no forged log lines)."""
    return op if op in OPS else ascii(op)[:40]


def _parameters(spec: ModelSpec) -> int:
    """The model's size without allocating it (torch's meta device): a hostile spec costs nothing to refuse."""
    import torch

    with torch.device("meta"):
        return sum(p.numel() for p in build_model(spec).parameters())


def prepared_arrays(plant: Plant, ref: RoundRef, model: ModelPart) -> PlantArrays:
    """The plant's arrays scaled by the experiment's scaler, after three checks: the model fits the policy's
    size, the scaler agrees with the plant's own statistics (a crafted scaler can turn a clipped sum into a
    counting query over a threshold), and the features, scaler and model family are the ones this plant
    first saw for the experiment."""
    rules.check_model_size(plant.policy, _parameters(model.spec))
    arrays = plant.arrays(model.features)
    n, total, total_sq = compute_stats(arrays)
    rules.check_rows(plant.policy, n, "the training split")
    mismatch = scaler_mismatch(model.scaler.mean, model.scaler.scale, total, total_sq, n, plant.policy.scaler_tolerance)
    if mismatch:
        raise PolicyRefusal(f"the scaler does not fit this plant's own statistics: {mismatch}")
    digest = hashlib.sha256(json.dumps({"features": list(model.features), "scaler": model.scaler.to_wire(),
                                        "model": [model.spec.model_type, model.spec.sequence_length]},
                                       sort_keys=True).encode()).hexdigest()
    plant.state.pin_inputs(ref.experiment, digest)
    arrays.scale(Scaler(mean=model.scaler.mean, scale=model.scaler.scale))
    return arrays


# --- the four operations ---------------------------------------------------------------------------------

def handle_stats(plant: Plant, request: StatsRequest) -> StatsReply:
    plant.state.record_call(plant.policy, "stats", request.experiment, per_key_limit=STATS_CALLS_PER_EXPERIMENT)
    arrays = plant.arrays(request.features)
    n, total, total_sq = compute_stats(arrays)
    rules.check_rows(plant.policy, n, "the training split")
    return StatsReply(count=n, sum=total, sum_sq=total_sq,
                      num_samples={"train": n, "validation": int(len(arrays.rows(1))), "test": int(len(arrays.rows(2)))},
                      positives_train=int(arrays.y[arrays.rows(0)].sum()))


def handle_evaluate(plant: Plant, request: EvaluateRequest) -> EvaluateReply:
    ref = request.ref
    if ref.attempt > plant.policy.max_attempts:
        raise PolicyRefusal(f"attempt {ref.attempt}: this plant allows {plant.policy.max_attempts} per round")
    plant.state.record_call(plant.policy, "evaluate", ref.experiment, ref.round, ref.attempt, per_key_limit=1)
    arrays = prepared_arrays(plant, ref, request.model)
    sigma = plant.policy.effective_evaluation_noise
    noise = None
    if sigma > 0:  # one Gaussian release per call (shared.training.evaluate_local), charged before it is made
        from shared.privacy.noise import SystemRandomNoise

        plant.state.reserve_dp(plant.policy, ref.experiment, (sigma, 1.0, 1), plant.policy.dp_delta,
                               plant.policy.max_epsilon)
        noise = SystemRandomNoise()
    val, test = evaluate_local(arrays, request.model.spec, request.model.weights, plant.policy.min_release_rows,
                               sigma, noise)
    return EvaluateReply(val=val, test=test)


def handle_train(plant: Plant, request: TrainRequest) -> TrainReply:
    ref, policy = request.ref, plant.policy
    plant.state.record_call(policy, "train", ref.experiment, ref.round, ref.attempt, per_key_limit=1)
    rules.check_train(policy, request, _parameters(request.model.spec))
    if request.secagg is not None:
        rules.check_secagg(policy, request.secagg, plant.name, plant.state.secagg_public_key(),
                           plant.state.trusted_peers())
    plant.state.claim_training(ref.experiment, ref.round, _digest(request.model.weights))
    if request.secagg is not None:  # claimed before any work: a second call for this attempt never masks
        plant.state.claim_mask(ref.context, request.secagg.to_wire())
    arrays = prepared_arrays(plant, ref, request.model)
    spec, train = request.model.spec, request.train
    private, dp_report = None, None
    if train.dp_sgd:
        private, dp_report = _reserve_privacy(plant, request, len(arrays.examples(0, spec)))
        if train.pos_weight is None:  # the plant's own label ratio would make the loss depend on its rows
            train = dataclasses.replace(train, pos_weight=1.0)
    attack = os.environ.get(BYZANTINE_ENV) or None
    if attack == "label_flip":
        arrays.y = 1.0 - arrays.y
    term = plant.state.feddyn_term(ref.experiment) if train.feddyn_alpha > 0 else None
    outcome = train_local(arrays, spec, request.model.weights, train, term, private)
    if train.feddyn_alpha > 0:
        plant.state.save_feddyn_term(ref.experiment, outcome.feddyn_term)
    if attack:
        outcome.weights = corrupt_update(attack, request.model.weights, outcome.weights)
    # under DP-SGD or secure aggregation the exact training loss would be an unprotected function of the rows
    protected = train.dp_sgd or request.secagg is not None
    reply = dict(num_samples=outcome.num_samples, steps=outcome.steps,
                 train_loss=None if protected else outcome.train_loss,
                 train_seconds=outcome.train_seconds, dp=dp_report)
    if request.secagg is None:
        return TrainReply(weights=outcome.weights, **reply)
    return TrainReply(**reply, **_masked(plant, request, outcome))


def _reserve_privacy(plant: Plant, request: TrainRequest, examples: int) -> tuple[PrivateTraining, DPReport]:
    """The round's noise multiplier (the operator's, or derived from the target epsilon over the planned
    rounds, never below the policy's minimum), checked against the experiment's target (never above the
    policy's max_epsilon) and the plant's lifetime budget, and recorded before training."""
    from shared.privacy.dp_sgd import noise_for_epsilon

    train, policy = request.train, plant.policy
    if examples == 0:
        raise PolicyRefusal("no training example for DP-SGD")
    target = min(train.dp_target_epsilon if train.dp_target_epsilon is not None else policy.max_epsilon,
                 policy.max_epsilon)
    rate, steps = dp_steps(examples, train.batch_size, train.epochs)
    sigma = train.dp_noise_multiplier
    if sigma <= 0:
        sigma = noise_for_epsilon(target, train.dp_delta, rate, steps * train.dp_rounds)
    sigma = max(sigma, policy.min_noise_multiplier)
    history, epsilon, lifetime = plant.state.reserve_dp(policy, request.ref.experiment, (sigma, rate, steps),
                                                        train.dp_delta, target)
    private = PrivateTraining(noise_multiplier=sigma, max_grad_norm=train.dp_max_grad_norm,
                              noise_seed=secrets.randbits(63), sampling_seed=secrets.randbits(63))
    report = DPReport(epsilon=epsilon, delta=train.dp_delta, noise_multiplier=sigma,
                      history=[list(h) for h in history], lifetime_epsilon=lifetime)
    return private, report


def _digest(weights: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name])
        h.update(name.encode() + str(array.dtype).encode() + str(array.shape).encode() + array.tobytes())
    return h.hexdigest()


def _masked(plant: Plant, request: TrainRequest, outcome: TrainOutcome) -> dict:
    """The trained update as it leaves the plant under secure aggregation: weighted, clipped, masked, with
    its seeds Shamir-shared and sealed for each participant (shared.secagg.protocol, stage 1)."""
    from shared.secagg.plant import aggregation_weight, contribution

    secagg = request.secagg
    setup = RoundSetup(context=request.ref.context, me=plant.name, participants=secagg.participants,
                       threshold=secagg.threshold, fraction_bits=secagg.fraction_bits)
    weight = aggregation_weight(secagg.weighting, outcome.num_samples, outcome.steps)
    update = mask_and_share(setup, plant.state.secagg_private_key(),
                            contribution(request.model.weights, outcome.weights, secagg.clip, weight))
    return {"masked": update.masked, "sealed": update.sealed, "weight": weight}


def handle_reveal(plant: Plant, request: RevealRequest) -> RevealReply:
    """Stage 2: only for an attempt this plant masked in, under exactly the setup it masked under."""
    ref = request.ref
    masked_under = plant.state.masked_setup(ref.context)
    if masked_under is None:
        raise PolicyRefusal(f"this plant did not mask an update for {ref.context}: nothing to reveal")
    if json.dumps(request.secagg.to_wire(), sort_keys=True) != json.dumps(masked_under, sort_keys=True):
        raise PolicyRefusal(f"the reveal for {ref.context} names other participants, keys or threshold than the "
                            "masking did")
    plant.state.record_call(plant.policy, "secagg_reveal", ref.experiment, ref.round, ref.attempt, per_key_limit=1)
    rules.check_secagg(plant.policy, request.secagg, plant.name, plant.state.secagg_public_key(),
                       plant.state.trusted_peers())
    setup = RoundSetup(context=ref.context, me=plant.name, participants=request.secagg.participants,
                       threshold=request.secagg.threshold, fraction_bits=request.secagg.fraction_bits)
    shares = reveal(setup, plant.state.secagg_private_key(), list(request.survivors), request.sealed,
                    plant.state.record_reveal)
    return RevealReply(revealed=shares.to_dict())


HANDLERS = {StatsRequest: handle_stats, TrainRequest: handle_train, EvaluateRequest: handle_evaluate,
            RevealRequest: handle_reveal}


# --- test and demo helpers at the plant ----------------------------------------------------------------

def corrupt_update(mode: str, global_weights: dict, weights: dict) -> dict:
    """--byzantine (tests and demos only): sign_flip: w_g - (w - w_g); scale:F: w_g + F (w - w_g);
    noise:S: w + N(0, S^2); label_flip is applied to the labels before training instead."""
    rng = np.random.default_rng(secrets.randbits(64))
    out = {}
    for k, w in weights.items():
        g = np.asarray(global_weights[k])
        if not np.issubdtype(np.asarray(w).dtype, np.floating):
            out[k] = w
        elif mode == "sign_flip":
            out[k] = (g - (w - g)).astype(w.dtype)
        elif mode.startswith("scale:"):
            out[k] = (g + float(mode.split(":", 1)[1]) * (w - g)).astype(w.dtype)
        elif mode.startswith("noise:"):
            out[k] = (w + rng.normal(0, float(mode.split(":", 1)[1]), np.shape(w))).astype(w.dtype)
        else:
            out[k] = w
    return out


class busy_marker:
    """While a step runs, a file named by FACTORYFL_BUSY_FILE (set by the agent, inherited by its
    datasite) holds the experiment id, so the agent's heartbeat reports the plant as busy."""

    def __init__(self, experiment: int):
        self.path = os.environ.get(BUSY_FILE_ENV)
        self.experiment = experiment

    def __enter__(self):
        if self.path:
            with open(self.path, "w") as fh:
                json.dump({"experiment": self.experiment}, fh)
        return self

    def __exit__(self, *exc):
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        return False

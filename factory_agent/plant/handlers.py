"""What a plant does when the dashboard calls its vetted `fl_step` (shared.vetted): parse the request into its
typed form, check it against the plant's own policy and ledgers, then do the work and release only what the
protocol allows (DESIGN §9). Every refusal is logged at the plant with its reason and answered as
{"ok": False, "error": reason}, because PySyft hides exception messages from the caller.

Beside this module: `inputs` (the plant and a request's model inputs, checked and scaled), `scoring` (one set of
rules for every evaluation, whether asked by an evaluate call or inside a training call) and `byzantine` (the
attacks of --byzantine, for tests and demos).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import time

from factory_agent.plant import policy as rules
from factory_agent.plant.byzantine import corrupt_update
from factory_agent.plant.inputs import Plant, parameters, prepared_arrays
from factory_agent.plant.membership import check_membership
from factory_agent.plant.personal import handle_personalize
from factory_agent.plant.scaffold import control_finish, control_start
from factory_agent.plant.evaluation import admit_evaluation, release_evaluation
from factory_agent.plant.state import BUSY_FILE_ENV, BYZANTINE_ENV, LOG_FILE_ENV, PlantState
from factory_agent.plant.twin_run import TWIN_RUN_ANSWER, is_twin_run
from factory_agent.plant.verification import verified_model
from shared.errors import FederatedLearningError, PolicyRefusal
from shared.protocol import (DPReport, EvaluateReply, EvaluateRequest, OPS, PersonalizeRequest, RevealReply,
                             RevealRequest, StatsReply, StatsRequest, TrainReply, TrainRequest, parse_request, refusal)
from shared.secagg.context import BASE, MASK_CONTEXT, request_mask_context as _common, weights_digest
from shared.secagg.protocol import RoundSetup, mask_and_share, reveal
from shared.secagg.statements import contribution_message, reveal_message, sign
from shared.training import (PlantArrays, PrivateTraining, TrainOutcome, compute_stats, count_positives, dp_steps,
                             train_local)

log = logging.getLogger(__name__)
STATS_CALLS_PER_EXPERIMENT = 10  # round 0 may be retried while plants come online


def _log_to_the_agents_file() -> None:
    """Where approved code runs in a process without the agent's logging (a datasite PySyft started on its own):
    send this package's records to the agent's log file, so the data owner reads every refusal where the agent's
    own lines are. The agent's datasite runs in the agent's process (factory_agent.https_datasite), whose root
    logger already writes that file: nothing to add there."""
    path = os.environ.get(LOG_FILE_ENV)
    package = logging.getLogger("factory_agent.plant")
    if not path or any(getattr(h, "factoryfl_plant", False) for h in package.handlers):
        return
    if any(getattr(h, "baseFilename", None) == os.path.abspath(path) for h in logging.getLogger().handlers):
        return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.factoryfl_plant = True
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False


def handle(features, labels, index, wire, state: PlantState | None = None, byzantine: str | None = None) -> dict:
    """The body of the vetted fl_step: the wire answer to one request. `state` and `byzantine` are for plants run
    in process (tests, benches); inside a datasite both come from the agent's environment. PySyft's second run
    of each call, on the assets' empty mocks (factory_agent.plant.twin_run), is answered without work, without a
    ledger entry and without a log line above DEBUG: the call it shadows was the request, checked and logged."""
    if is_twin_run(features, labels, index):
        log.debug("%s: %s", _printable(wire.get("op") if isinstance(wire, dict) else None), TWIN_RUN_ANSWER)
        return refusal(TWIN_RUN_ANSWER)
    _log_to_the_agents_file()
    started = time.perf_counter()
    op = wire.get("op") if isinstance(wire, dict) else None
    try:
        state = state or PlantState.from_environment()
        name, own_features = state.profile()
        plant = Plant(features, labels, index, name, own_features, state.policy(), state,
                      byzantine or os.environ.get(BYZANTINE_ENV) or None)
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


def _printable(op) -> str:
    """An operation name for the log: a known one as is, anything else quoted (no forged log lines)."""
    return op if op in OPS else ascii(op)[:40]


# --- the operations (personalize: factory_agent.plant.personal) ---------------------------------------------------------------------------------

def handle_stats(plant: Plant, request: StatsRequest) -> StatsReply:
    plant.state.record_call(plant.policy, "stats", request.experiment, per_key_limit=STATS_CALLS_PER_EXPERIMENT)
    arrays = plant.arrays(request.features)
    n, total, total_sq = compute_stats(arrays)
    rules.check_rows(plant.policy, n, "the training split")
    # the failures among them, for the federation's one class weight (withheld when too few, policy.py)
    positives = rules.releasable_count(plant.policy, count_positives(arrays), n)
    return StatsReply(count=n, sum=total, sum_sq=total_sq, positives=positives, num_samples={
        "train": n, "validation": int(len(arrays.rows(1))), "test": int(len(arrays.rows(2)))})


def handle_evaluate(plant: Plant, request: EvaluateRequest) -> EvaluateReply:
    admit_evaluation(plant, request.ref)
    model = verified_model(plant, request.ref.experiment, request.model, request.proof, request.ref.round)
    arrays = prepared_arrays(plant, request.ref, model, rules.Work(scored=plant.scored_rows()))
    return release_evaluation(plant, request.ref.experiment, arrays, model)


def handle_train(plant: Plant, request: TrainRequest) -> TrainReply:
    request = _admit_training(plant, request)
    arrays = prepared_arrays(plant, request.ref, request.model, training_work(plant, request))
    # the model this plant trains from is scored first, on the same prepared rows, by evaluate's own rules
    evaluation = release_evaluation(plant, request.ref.experiment, arrays, request.model) if request.evaluate \
        else None
    outcome, dp_report, control = _train(plant, request, arrays)
    # under DP-SGD or secure aggregation the exact training loss would be an unprotected function of the rows
    protected = request.train.dp_sgd or request.secagg is not None
    reply = dict(num_samples=outcome.num_samples, steps=outcome.steps,
                 train_loss=None if protected else outcome.train_loss,
                 train_seconds=outcome.train_seconds, dp=dp_report, evaluation=evaluation)
    if request.secagg is None:
        return TrainReply(weights=outcome.weights, control_delta=control, **reply)
    return TrainReply(**reply, **_masked(plant, request, outcome))


# the sum of the unweighted Delta c_k and the sum of the weighted updates are two linear functions of the updates:
# with two survivors the dashboard would solve for each one (review H1)
NO_SCAFFOLD_SECAGG = ("SCAFFOLD's control variate delta is a second linear function of the update: a training "
                      "request with both control and secagg is refused (the two unmasked sums would give the "
                      "server each plant's update)")


def training_work(plant: Plant, request: TrainRequest) -> rules.Work:
    """A training call's work: its epochs over the training split, in batches of batch_size, and the scoring of
    the model it trains from when it asks for it."""
    train_rows = plant.split_rows()[0]
    return rules.Work(scored=plant.scored_rows() if request.evaluate else 0, trained=request.train.epochs * train_rows,
                      batch=min(request.train.batch_size, train_rows))


def _admit_training(plant: Plant, request: TrainRequest) -> TrainRequest:
    """Every check and claim before any work. An evaluation asked for in the call is admitted first, as the
    evaluate call it replaces (same key, same caps): a training call never yields an evaluation that this
    plant would have refused to an evaluate call, and an evaluation over its caps spends nothing of the
    training attempt (one its privacy ledger refuses, later, does: as any refusal after the claims)."""
    ref, policy = request.ref, plant.policy
    if request.control is not None and request.secagg is not None:
        raise PolicyRefusal(NO_SCAFFOLD_SECAGG)
    if request.evaluate:
        admit_evaluation(plant, ref.scored_in_training)
    plant.state.record_call(policy, "train", ref.experiment, ref.round, ref.attempt, per_key_limit=1)
    rules.check_train(policy, request, parameters(request.model.spec))
    if request.secagg is not None:
        rules.check_secagg(policy, request.secagg, plant.name, plant.state.secagg_public_key(),
                           plant.state.trusted_peers())
        check_membership(policy, plant.state, plant.name, request.secagg)
    common = _common(request) if request.secagg is not None else None  # before the plant's own copy replaces it
    # the plant's own copy of round r-1's model when its policy verifies models (factory_agent.plant.verification)
    request = dataclasses.replace(request, model=verified_model(plant, ref.experiment, request.model, request.proof,
                                                                ref.round - 1))
    plant.state.claim_training(ref.experiment, ref.round, weights_digest(request.model.weights))
    if request.secagg is not None:  # claimed before any work: a second call for this attempt never masks
        plant.state.claim_mask(ref.context, {**request.secagg.to_wire(), MASK_CONTEXT: common,
                                             BASE: weights_digest(request.model.weights)})
    return request


def _train(plant: Plant, request: TrainRequest, arrays: PlantArrays
           ) -> tuple[TrainOutcome, DPReport | None, dict | None]:
    """Local training from the request's global weights (DP-SGD's budget reserved first); with SCAFFOLD's c in
    the request, also the plant's control variate delta (factory_agent.plant.scaffold)."""
    ref, spec, train = request.ref, request.model.spec, request.train
    private, dp_report = None, None
    if train.dp_sgd:
        private, dp_report = _reserve_privacy(plant, request, len(arrays.examples(0, spec)))
        if train.pos_weight is None:  # the plant's own label ratio would make the loss depend on its rows
            train = dataclasses.replace(train, pos_weight=1.0)
    if plant.attack == "label_flip":
        arrays.y = 1.0 - arrays.y
    term = plant.state.feddyn_term(ref.experiment) if train.feddyn_alpha > 0 else None
    begun = control_start(plant.state, request) if request.control is not None else None
    outcome = train_local(arrays, spec, request.model.weights, train, term, private,
                          begun.correction if begun else None)
    if train.feddyn_alpha > 0:
        plant.state.save_feddyn_term(ref.experiment, outcome.feddyn_term)
    control = control_finish(plant.state, request, begun, outcome.weights, outcome.steps) if begun else None
    if plant.attack:
        outcome.weights = corrupt_update(plant.attack, request.model.weights, outcome.weights)
    return outcome, dp_report, control


def _reserve_privacy(plant: Plant, request: TrainRequest, examples: int) -> tuple[PrivateTraining, DPReport]:
    """The round's noise multiplier (the operator's, or derived from the target epsilon over the planned
    rounds, never below the policy's minimum), checked against the experiment's target (never above the
    policy's max_epsilon) and the plant's lifetime budget, and recorded before training."""
    from shared.privacy.accounting import noise_for_epsilon

    train, policy = request.train, plant.policy
    if examples == 0:
        raise PolicyRefusal("no training example for DP-SGD")
    target = min(train.dp_target_epsilon if train.dp_target_epsilon is not None else policy.max_epsilon,
                 policy.max_epsilon)
    rules.check_dp_batch(policy, min(train.batch_size, examples), parameters(request.model.spec))
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


def _masked(plant: Plant, request: TrainRequest, outcome: TrainOutcome) -> dict:
    """The trained update as it leaves the plant under secure aggregation: weighted, clipped, masked, with
    its seeds Shamir-shared and sealed for each participant (shared.secagg.protocol, stage 1). Never with
    SCAFFOLD's control variate delta (refused in _admit_training)."""
    from shared.secagg.plant import aggregation_weight, contribution

    secagg = request.secagg
    context = plant.state.masked_setup(request.ref.context)[MASK_CONTEXT]
    setup = RoundSetup(context=context, me=plant.name, participants=secagg.participants,
                       threshold=secagg.threshold, fraction_bits=secagg.fraction_bits)
    weight = aggregation_weight(secagg.weighting, outcome.num_samples, outcome.steps)
    vector = contribution(request.model.weights, outcome.weights, secagg.clip, weight)
    update = mask_and_share(setup, plant.state.secagg_private_key(), vector)
    # signed, so that every member can check the round's transcript before it computes on its result
    signature = sign(plant.state.identity_private_key(), contribution_message(
        request.ref.context, plant.name, update.masked, weight, outcome.num_samples, outcome.steps))
    return {"masked": update.masked, "sealed": update.sealed, "weight": weight, "signature": signature}


def handle_reveal(plant: Plant, request: RevealRequest) -> RevealReply:
    """Stage 2: only for an attempt this plant masked in, under exactly the setup it masked under."""
    ref = request.ref
    masked_under = plant.state.masked_setup(ref.context)
    if masked_under is None:
        raise PolicyRefusal(f"this plant did not mask an update for {ref.context}: nothing to reveal")
    context, base = masked_under.pop(MASK_CONTEXT, None) or ref.context, masked_under.pop(BASE, None)
    if json.dumps(request.secagg.to_wire(), sort_keys=True) != json.dumps(masked_under, sort_keys=True):
        raise PolicyRefusal(f"the reveal for {ref.context} names other participants, keys or threshold than the "
                            "masking did")
    plant.state.record_call(plant.policy, "secagg_reveal", ref.experiment, ref.round, ref.attempt, per_key_limit=1)
    rules.check_secagg(plant.policy, request.secagg, plant.name, plant.state.secagg_public_key(),
                       plant.state.trusted_peers())
    check_membership(plant.policy, plant.state, plant.name, request.secagg)  # revoked since the masking: no reveal
    setup = RoundSetup(context=context, me=plant.name, participants=request.secagg.participants,
                       threshold=request.secagg.threshold, fraction_bits=request.secagg.fraction_bits)
    shares = reveal(setup, plant.state.secagg_private_key(), list(request.survivors), request.sealed,
                    lambda c, s: plant.state.record_reveal(c, s, base if plant.policy.verifies_models else None))
    revealed = shares.to_dict()
    return RevealReply(revealed=revealed, signature=sign(plant.state.identity_private_key(),
                                                          reveal_message(ref.context, plant.name, revealed)))


HANDLERS = {StatsRequest: handle_stats, TrainRequest: handle_train, EvaluateRequest: handle_evaluate,
            RevealRequest: handle_reveal, PersonalizeRequest: handle_personalize}


# --- test and demo helpers at the plant ----------------------------------------------------------------

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

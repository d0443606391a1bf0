"""Evaluating a global model at the plant for the federated round (production scoring is
factory_agent.floor.scoring): one set of rules whether the dashboard asks with an `evaluate` call or inside a
training call (`TrainRequest.evaluate`, the model the plant trains from).

Both paths count the evaluation in the same ledger under the same key, ("evaluate", experiment, round of the
scored model, attempt), at most once per key, so a training call never yields an evaluation that an evaluate
call with that key could not have; and both release through `release_evaluation`: minimum release rows,
coarsened histograms and, when the policy asks for it, one Gaussian release charged to the DP ledger first.
"""

from __future__ import annotations

import time

from factory_agent.plant.inputs import Plant
from shared.errors import PolicyRefusal
from shared.protocol import EvaluateReply, ModelPart, RoundRef
from shared.training import PlantArrays, evaluate_local


def admit_evaluation(plant: Plant, scored: RoundRef) -> None:
    """Before any work: the attempt cap, the hourly call cap and one evaluation per (experiment, round,
    attempt), counted as a call of its own. PolicyRefusal names the rule."""
    if scored.attempt > plant.policy.max_attempts:
        raise PolicyRefusal(f"attempt {scored.attempt}: this plant allows {plant.policy.max_attempts} per round")
    plant.state.record_call(plant.policy, "evaluate", scored.experiment, scored.round, scored.attempt,
                            per_key_limit=1)


def release_evaluation(plant: Plant, experiment: int, arrays: PlantArrays, model: ModelPart) -> EvaluateReply:
    """The model's scores on the validation and test splits of `arrays` (prepared by `prepared_arrays`), as
    this plant's policy lets them leave: exact but coarsened, or noisy and charged before they are made."""
    started = time.perf_counter()
    policy = plant.policy
    sigma = policy.effective_evaluation_noise
    noise = None
    if sigma > 0:  # one Gaussian release per evaluation (shared.training.evaluate_local), charged before it is made
        from shared.privacy.noise import SystemRandomNoise

        plant.state.reserve_dp(policy, experiment, (sigma, 1.0, 1), policy.dp_delta, policy.max_epsilon)
        noise = SystemRandomNoise()
    val, test = evaluate_local(arrays, model.spec, model.weights, policy.min_release_rows, sigma, noise)
    return EvaluateReply(val=val, test=test, seconds=time.perf_counter() - started)

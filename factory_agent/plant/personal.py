"""The personalization step at the plant (issue #15 item 4): `handle_personalize`. The models it makes are kept
in `PersonalModels` (factory_agent.plant.personal_models, without torch: the plant floor reads them at rest).

After an experiment's last round the dashboard asks once, with the final (best) global model. The plant checks the
request as any other (its policy: the hourly cap, one personalization per experiment, the epochs it allows, the
model's size, the features/scaler/model family pinned for the experiment, and only an experiment it trained
in), fine-tunes the global model on its training split (every layer, or FedPer's head only), trains a local-only
model of the same architecture on its training split alone, scores all three by evaluate's release rules
(coarsened histograms, or noisy and charged to its DP ledger) and answers only the scores. The two new models
stay here; the plant floor may score with the personalized one (factory_agent.floor.personal).
"""

from __future__ import annotations

import dataclasses
import logging

from factory_agent.plant import policy as rules
from factory_agent.plant.verification import verified_model
from factory_agent.plant.inputs import Plant, parameters, prepared_arrays
from factory_agent.plant.evaluation import release_evaluation, scoring_batch
from factory_agent.plant.personal_models import PersonalModels
from shared.errors import PolicyRefusal
from shared.models import build_model, get_weights
from shared.evaluation import evaluate_local
from shared.metrics import bin_of_threshold
from shared.personalization import f1_at, own_threshold_scores, train_selected
from shared.protocol import ModelPart, ModelScores, PersonalizeReply, PersonalizeRequest, RoundRef
from shared.training import PlantArrays

log = logging.getLogger(__name__)


def admit_personalization(plant: Plant, request: PersonalizeRequest) -> None:
    """Every check and claim before any work; PolicyRefusal names the rule. The experiment must be one this plant
    trained in (the ledger of trained rounds), and a plant personalizes an experiment once: repeated requests
    (other modes, other models) would each release three more sets of scores over the same validation rows."""
    policy, experiment = plant.policy, request.experiment
    if policy.require_dp:  # the fine-tune and the local-only model train on the rows without DP (review H2)
        raise PolicyRefusal("this plant requires record-level DP (require_dp): a personalization trains on its "
                            "rows without it")
    if not plant.state.trained_in(experiment):
        raise PolicyRefusal(f"this plant took no part in experiment {experiment}: nothing to personalize")
    if request.train.epochs > policy.max_local_epochs:
        raise PolicyRefusal(f"{request.train.epochs} fine-tuning epochs; this plant allows at most "
                            f"{policy.max_local_epochs}")
    if request.train.epochs + request.local_epochs > policy.max_personal_epochs:
        raise PolicyRefusal(f"{request.train.epochs} + {request.local_epochs} epochs of personalization; this plant "
                            f"allows at most {policy.max_personal_epochs} (max_personal_epochs)")
    if request.train.batch_size < policy.min_personal_batch:  # bounds the steps, not only the epochs (review L1)
        raise PolicyRefusal(f"a personalization batch of {request.train.batch_size}; this plant allows at least "
                            f"{policy.min_personal_batch} (min_personal_batch)")
    rules.check_model_size(policy, parameters(request.model.spec))


# the scorings of one personalization besides its epochs': the fine-tune's start, then three models released and
# scored exactly (_scores)
PERSONAL_EXTRA_SCORINGS = 7


def personalization_work(plant: Plant, request: PersonalizeRequest) -> rules.Work:
    """The fine-tune's and the local-only model's epochs over the training split, each epoch scored for early
    stopping (shared.personalization.train_selected), and the final scorings."""
    train_rows = plant.split_rows()[0]
    epochs = request.train.epochs + request.local_epochs
    return rules.Work(scored=(epochs + PERSONAL_EXTRA_SCORINGS) * plant.scored_rows(), trained=epochs * train_rows,
                      batch=min(request.train.batch_size, train_rows))


def handle_personalize(plant: Plant, request: PersonalizeRequest) -> PersonalizeReply:
    admit_personalization(plant, request)
    experiment = request.experiment
    model = verified_model(plant, experiment, request.model, request.proof, None)  # any round it derived
    arrays = prepared_arrays(plant, RoundRef(experiment, 0), model, personalization_work(plant, request))
    rules.check_rows(plant.policy, len(arrays.rows(1)), "the validation split")
    # the checks above release nothing (refusals only: the pinned inputs, the split's size): a request they refuse
    # spends nothing (review L4); from here on the one personalization per experiment is spent, whatever happens
    plant.state.record_call(plant.policy, "personalize", experiment, per_key_limit=1)
    personal, epoch = train_selected(arrays, model.spec, model.weights, request.train,
                                     head_only=request.mode == "fedper", min_rows=plant.policy.min_release_rows,
                                     eval_batch=scoring_batch(plant, model))
    start = get_weights(build_model(model.spec, seed=request.train.seed))
    local, local_epoch = train_selected(arrays, model.spec, start,
                                        dataclasses.replace(request.train, epochs=request.local_epochs),
                                        include_start=False, min_rows=plant.policy.min_release_rows,
                                        eval_batch=scoring_batch(plant, model))
    scores = {kind: _scores(plant, experiment, arrays, model, weights)
              for kind, weights in (("global", model.weights), ("personalized", personal), ("local", local))}
    store = PersonalModels(plant.state.directory)
    summary = {kind: s.to_wire() for kind, s in scores.items()}
    for kind, weights, kept in (("personalized", personal, epoch), ("local", local, local_epoch)):
        store.save(experiment, kind, weights, {"experiment": experiment, "mode": request.mode, "kind": kind,
                                               "epoch": kept, "scores": summary, "spec": model.spec.to_dict()})
    log.info("experiment %d personalized (%s, epoch %d of %d): validation F1 global %s, personalized %s, "
             "local-only %s (epoch %d)", experiment, request.mode, epoch, request.train.epochs,
             *(scores[k].val_f1 for k in ("global", "personalized", "local")), local_epoch)
    return PersonalizeReply(mode=request.mode, scores=scores)


def _scores(plant: Plant, experiment: int, arrays: PlantArrays, model: ModelPart, weights: dict) -> ModelScores:
    """One model's scores by evaluate's release rules (shared.personalization.own_threshold_scores): the threshold
    from its coarsened (or noisy) validation histograms. Exact evaluation: the test F1 at that threshold from
    the test histograms merged into two groups at it, each of at least min_release_rows rows (the coarsening
    rule with its edge at the threshold; on histograms coarsened elsewhere, rows above the threshold would sit
    in a group's first bin below it and read as predicted non-failures)."""
    released = release_evaluation(plant, experiment, arrays, dataclasses.replace(model, weights=weights))
    scores = own_threshold_scores(released.val, released.test)
    if plant.policy.effective_evaluation_noise > 0 or scores.threshold is None:
        return scores
    _, exact = evaluate_local(arrays, model.spec, weights, min_rows=1, batch=scoring_batch(plant, model))
    b = bin_of_threshold(scores.threshold, len(exact.hist_pos))
    return dataclasses.replace(scores, test_f1=f1_at(exact.hist_pos, exact.hist_neg, b,
                                                     plant.policy.min_release_rows))

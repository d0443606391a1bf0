"""Personalization's learning pieces (shared.personalization) and its protocol and settings: FedPer's freeze (only
head weights move), the fine-tune (every layer moves), the F1 at a model's own validation threshold, the plant's
choice rule, and hostile replies and settings."""

import numpy as np
import pytest

from shared.data.csv_loader import load_frame
from shared.data.scaler import Scaler, feature_stats
from shared.data.simulator import FAILURE_MODE_COLUMNS, simulate
from shared.errors import ModelError, ProtocolError
from shared.experiment import parse_experiment, ExperimentConfig, ValidationError
from shared.experiment.training import personal_training
from shared.models import ModelSpec, build_model, get_weights
from shared.fedper import is_head
from shared.personalization import own_threshold_scores, preferred, train_selected
from shared.protocol import (ModelPart, ModelScores, PersonalizeReply, PersonalizeRequest, ScalerMsg,
                             SplitEvaluation, TrainSettings, parse_reply)
from shared.training import PlantArrays, train_local


@pytest.fixture(scope="module")
def arrays():
    d = load_frame(simulate("default", 600, seed=5), "machine_failure", FAILURE_MODE_COLUMNS, "machine_id", "cycle")
    a = PlantArrays(d.features, d.labels, np.stack([d.split, d.groups], 1), d.schema.feature_names,
                    d.schema.feature_names, None)
    a.scale(Scaler.from_stats(feature_stats(a.x[a.rows(0)])))
    return a


def changed(before: dict, after: dict) -> set[str]:
    return {n for n in before if not np.array_equal(before[n], after[n])}


def test_fedper_training_moves_only_head_weights_and_a_fine_tune_moves_the_body_too(arrays):
    spec = ModelSpec("cnn", arrays.x.shape[1])
    start = get_weights(build_model(spec, seed=0))
    settings = TrainSettings(epochs=1, seed=3)
    head_only = changed(start, train_local(arrays, spec, start, settings, head_only=True).weights)
    assert head_only and all(is_head(n) for n in head_only)
    everything = changed(start, train_local(arrays, spec, start, settings).weights)
    assert any(not is_head(n) for n in everything)


def test_the_selected_fine_tune_is_never_worse_than_its_start_on_validation(arrays):
    from shared.personalization import validation_f1

    spec = ModelSpec("cnn", arrays.x.shape[1])
    start = get_weights(build_model(spec, seed=0))
    kept, epoch = train_selected(arrays, spec, start, TrainSettings(epochs=2, seed=1), min_rows=10)
    assert 0 <= epoch <= 2
    assert validation_f1(arrays, spec, kept, 10) >= validation_f1(arrays, spec, start, 10)
    if epoch == 0:
        assert not changed(start, kept)


def split(pos, neg, n=None):
    pos, neg = np.asarray(pos, np.int64), np.asarray(neg, np.int64)
    return SplitEvaluation(n=int(pos.sum() + neg.sum()) if n is None else n, loss=0.1, auc=0.9, hist_pos=pos,
                           hist_neg=neg)


def test_f1_at_the_models_own_validation_threshold_is_applied_to_test_at_that_threshold():
    val = split([0, 0, 5, 5], [10, 5, 0, 0])  # every failure at or above bin 2: F1 1 at threshold 0.5
    test = split([0, 2, 4, 4], [10, 5, 0, 0])
    scores = own_threshold_scores(val, test)
    assert scores.val_f1 == 1.0 and scores.threshold == 0.5
    assert scores.test_f1 == pytest.approx(2 * 8 / (2 * 8 + 0 + 2), abs=1e-4)
    none = own_threshold_scores(split([0] * 4, [1, 2, 3, 4]), test)
    assert none.val_f1 is None and none.threshold is None


@pytest.mark.parametrize("choice, global_f1, personal_f1, kind", [
    ("best", 0.5, 0.6, "personalized"), ("best", 0.6, 0.6, "global"), ("best", 0.7, 0.6, "global"),
    ("personalized", 0.9, 0.1, "personalized"), ("global", 0.1, 0.9, "global"), ("best", 0.5, None, "global"),
    ("personalized", 0.5, None, "global")])
def test_the_plants_choice(choice, global_f1, personal_f1, kind):
    assert preferred(choice, global_f1, personal_f1) == kind


def request(mode="finetune") -> PersonalizeRequest:
    spec = ModelSpec("cnn", 2)
    model = ModelPart(("a", "b"), ScalerMsg(np.zeros(2), np.ones(2)), spec, get_weights(build_model(spec, seed=0)))
    return PersonalizeRequest(experiment=3, model=model, mode=mode, train=TrainSettings(), local_epochs=5)


def good_reply() -> dict:
    s = ModelScores(0.5, 0.8, 0.4, 0.7, 0.3).to_wire()
    return {"ok": True, "op": "personalize", "mode": "finetune", "seconds": 1.0,
            "scores": {"global": s, "personalized": s, "local": s}}


def test_a_well_formed_reply_parses():
    reply = parse_reply(request(), good_reply())
    assert isinstance(reply, PersonalizeReply) and reply.scores["local"].threshold == 0.3


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["scores"]["global"].update(val_f1=float("nan")), "val_f1"),
    (lambda d: d["scores"]["global"].update(val_auc=1.5), "val_auc"),
    (lambda d: d["scores"]["personalized"].update(weights=[1.0]), "scores are an object"),
    (lambda d: d["scores"].update(other=d["scores"]["global"]), "exactly"),
    (lambda d: d.update(mode="fedper"), "mode"),
    (lambda d: d["scores"].update(local="0.9"), "object"),
])
def test_hostile_personalization_replies_are_refused(mutate, words):
    wire = good_reply()
    mutate(wire)
    with pytest.raises(ProtocolError, match=words):
        parse_reply(request(), wire)


def test_the_settings_parse_and_bound_personalization():
    config = parse_experiment({"name": "p", "personalization": "fedper", "personalization_epochs": 3,
                               "rounds": 4, "local_epochs": 2, "class_weight": "pooled"})  # named (issue 25)
    train, local_epochs = personal_training(config, 5.0)
    assert (train.epochs, train.pos_weight, local_epochs) == (3, 5.0, 4 * 2 + 3)
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    assert personal_training(parse_experiment({"name": "p", "rounds": 200, "local_epochs": 5}))[1] == 100
    # review L1: the plants refuse a personalization batch below 16 (their default min_personal_batch)
    assert personal_training(parse_experiment({"name": "p", "batch_size": 2}))[0].batch_size == 16
    assert personal_training(parse_experiment({"name": "p", "batch_size": 128}))[0].batch_size == 128
    with pytest.raises(ValidationError, match="personalization"):
        parse_experiment({"name": "p", "personalization": "all_of_it"})
    with pytest.raises(ValidationError, match="personalization_epochs"):
        parse_experiment({"name": "p", "personalization_epochs": 10 ** 6})


@pytest.mark.parametrize("privacy", [{"mode": "dp_sgd", "epsilon": 8.0}, {"mode": "central"}])
def test_a_dp_experiment_does_not_personalize_and_refuses_an_explicit_one_naming_both(privacy):
    """Review H2: personalization trains on the plants' rows without DP; the experiment's epsilon would not
    cover it. Not named: none; named: a ValidationError naming personalization and privacy.mode."""
    body = {"name": "p", "privacy": privacy}
    config = parse_experiment(body)
    assert config.personalization == "none"
    assert parse_experiment({**body, "personalization": "none"}).personalization == "none"
    stored = {k: v for k, v in config.to_dict().items() if k != "personalization"}  # stored before the field
    assert ExperimentConfig.from_dict(stored).personalization == "none"
    for mode in ("finetune", "fedper"):
        with pytest.raises(ValidationError) as caught:
            parse_experiment({**body, "personalization": mode})
        assert caught.value.field == "personalization"
        assert caught.value.message.startswith(f"{mode} cannot be combined with privacy.mode {privacy['mode']}: ")
    assert parse_experiment({"name": "p"}).personalization == "finetune"  # the default stays otherwise


def test_f1_at_a_threshold_is_exact_and_withheld_when_a_side_holds_too_few_rows():
    from shared.personalization import f1_at

    pos, neg = np.array([0, 1, 4, 5]), np.array([20, 5, 3, 0])  # at bin 2: tp 9, fp 3, fn 1
    assert f1_at(pos, neg, 2, 10) == pytest.approx(2 * 9 / (2 * 9 + 3 + 1), abs=1e-4)
    assert f1_at(pos, neg, 3, 10) is None  # 5 rows above bin 3: fewer than 10
    assert f1_at(np.zeros(4), neg, 2, 1) is None

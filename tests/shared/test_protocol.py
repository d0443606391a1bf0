import numpy as np
import pytest

from shared.metrics import BINS
from shared.errors import ProtocolError
from shared.models import ModelSpec, build_model, get_weights
from shared.protocol import (EvaluateRequest, ModelPart, RoundRef, ScalerMsg, StatsRequest, TrainRequest,
                             TrainSettings, parse_reply, parse_request)


def model(n=3):
    spec = ModelSpec("cnn", n)
    return ModelPart(tuple(f"f{i}" for i in range(n)), ScalerMsg(np.zeros(n), np.ones(n)), spec,
                     get_weights(build_model(spec, seed=0)))


def test_requests_survive_the_wire_typed():
    request = TrainRequest(RoundRef(3, 2, 1), model(), TrainSettings(epochs=2, seed=9))
    parsed = parse_request(request.to_wire())
    assert parsed.ref == request.ref and parsed.train == request.train and parsed.model.features == ("f0", "f1", "f2")
    assert parse_request(StatsRequest(1, ("a",)).to_wire()) == StatsRequest(1, ("a",))


@pytest.mark.parametrize("change,words", [
    ({"experiment": "1/../../x"}, "experiment must be an integer"),
    ({"experiment": True}, "experiment must be an integer"),
    ({"experiment": 2 ** 40}, "outside"),
    ({"round": 0}, "numbered from 1"),
    ({"attempt": 0}, "attempt"),
    ({"features": ["a", "a", "b"]}, "twice"),
    ({"features": []}, "1 to"),
    ({"scaler": {"mean": [0, 0, 0], "scale": [1, 0, 1]}}, "positive"),
    ({"scaler": {"mean": [0, float("nan"), 0], "scale": [1, 1, 1]}}, "not finite"),
    ({"spec": {"model_type": "cnn", "num_features": 3, "hidden_size": 10 ** 6}}, "hidden_size"),
    ({"spec": {"model_type": "cnn", "num_features": 4}}, "num_features"),
    ({"spec": {"model_type": "mlp", "num_features": 3, "hidden_size": 10 ** 6}}, "hidden_size"),
    ({"spec": {"model_type": "mlp", "num_features": 3, "num_layers": 10 ** 6}}, "num_layers"),
    ({"spec": {"model_type": "mlp", "num_features": 3, "cross_layers": 9}}, "cross_layers"),
    ({"spec": {"model_type": "mlp", "num_features": 3, "cross_layers": -1}}, "cross_layers"),
    ({"spec": {"model_type": "mlp", "num_features": 3, "cross_layers": True}}, "cross_layers"),
    ({"spec": {"model_type": "mlp", "num_features": 3, "cross_layers": 2.5}}, "cross_layers"),
    ({"spec": {"model_type": "mlp", "num_features": 3, "cross_layers": "2"}}, "model spec"),
    ({"spec": {"model_type": "mlp", "num_features": 3, "cross_layers": float("nan")}}, "cross_layers"),
    ({"weights": {"w": np.array(["a"])}}, "not numeric"),
    ({"weights": {"w": np.array([np.inf])}}, "not finite"),
    ({"train": {"epochs": 10 ** 6}}, "epochs"),
    ({"train": {"learning_rate": float("nan")}}, "learning_rate"),
    ({"secagg": {"participants": {"a": "zz"}, "threshold": 1}}, "2 to"),
    ({"mock": True}, "unknown field"),
])
def test_hostile_fields_are_refused_with_their_name(change, words):
    wire = {**TrainRequest(RoundRef(3, 2), model(), TrainSettings()).to_wire(), **change}
    with pytest.raises(ProtocolError, match=words):
        parse_request(wire)


def test_a_malformed_answer_from_a_plant_is_a_protocol_error():
    request = EvaluateRequest(RoundRef(1, 0), model())
    with pytest.raises(ProtocolError):
        parse_reply(request, {"ok": True, "val": {"n": 5}, "test": None})
    with pytest.raises(ProtocolError):
        parse_reply(StatsRequest(1, ("a", "b")), {"ok": True, "count": 5, "sum": [1.0], "sum_sq": [1.0, 2.0],
                                                  "num_samples": {"train": 5, "validation": 0, "test": 0}})
    with pytest.raises(ProtocolError, match="either weights or a masked update"):
        parse_reply(TrainRequest(RoundRef(1, 1), model(), TrainSettings()),
                    {"ok": True, "num_samples": 1, "steps": 1, "train_loss": 0.1})


def test_a_training_request_asks_for_the_incoming_models_scores_only_by_a_true_boolean():
    request = TrainRequest(RoundRef(3, 2, 4), model(), TrainSettings(), evaluate=True)
    parsed = parse_request(request.to_wire())
    assert parsed.evaluate is True and parsed.ref.scored_in_training == RoundRef(3, 1, 4)
    wire = request.to_wire()
    del wire["evaluate"]
    assert parse_request(wire).evaluate is False  # absent: no evaluation


@pytest.mark.parametrize("value", [1, 0, "true", "false", None, [True], {"val": True}, 1.0])
def test_a_hostile_evaluate_flag_is_refused(value):
    wire = {**TrainRequest(RoundRef(3, 2), model(), TrainSettings()).to_wire(), "evaluate": value}
    with pytest.raises(ProtocolError, match="evaluate must be true or false"):
        parse_request(wire)


def test_only_a_training_request_may_ask_for_an_evaluation():
    wire = {**EvaluateRequest(RoundRef(3, 1), model()).to_wire(), "evaluate": True}
    with pytest.raises(ProtocolError, match="unknown field"):
        parse_request(wire)
    stats = {**StatsRequest(1, ("a",)).to_wire(), "evaluate": True}
    with pytest.raises(ProtocolError, match="unknown field"):
        parse_request(stats)


def scores(n=40):
    from shared.metrics import BINS
    from shared.protocol import EvaluateReply, SplitEvaluation

    pos, neg = np.zeros(BINS, np.int64), np.zeros(BINS, np.int64)
    pos[90], neg[0] = n // 4, n - n // 4
    part = SplitEvaluation(n=n, loss=0.5, auc=0.75, hist_pos=pos, hist_neg=neg)
    return EvaluateReply(val=part, test=part, seconds=0.1)


def training_answer(**extra):
    return {"ok": True, "op": "train", "num_samples": 10, "steps": 2, "train_loss": 0.3, "train_seconds": 1.0,
            "weights": {"w": np.zeros(3, np.float32)}, **extra}


def test_a_masked_vector_out_of_range_is_a_protocol_error_not_an_overflow():
    request = TrainRequest(RoundRef(1, 2), model(), TrainSettings())
    answer = {k: v for k, v in training_answer().items() if k != "weights"}
    for masked, words in (([2 ** 64] * 3, "in range"), ([-1] * 3, "in range"), ([1.5] * 3, "vector of integers")):
        with pytest.raises(ProtocolError, match=words):
            parse_reply(request, {**answer, "masked": masked, "sealed": {}, "weight": 1.0})


def test_a_training_reply_carries_the_evaluation_it_was_asked_for_typed():
    from shared.protocol import TrainReply

    reply = TrainReply(num_samples=10, steps=2, train_loss=0.3, train_seconds=1.0,
                       weights={"w": np.zeros(3, np.float32)}, evaluation=scores())
    request = TrainRequest(RoundRef(1, 2), model(), TrainSettings(), evaluate=True)
    parsed = parse_reply(request, reply.to_wire())
    assert parsed.evaluation.val.auc == 0.75 and parsed.evaluation.test.n == 40
    assert "ok" not in reply.to_wire()["evaluation"]  # the scores travel without an envelope of their own


@pytest.mark.parametrize("asked,evaluation,words", [
    (True, None, "lacks the evaluation"),
    (False, "scores", "nobody asked for"),
    (True, "not an object", "evaluation must be an object"),
    (True, {"val": {"n": 5}, "test": None}, "hist_pos"),
    (True, {"val": {**scores().scores()["val"], "auc": 2.0}, "test": scores().scores()["test"]}, "auc"),
    (True, {"val": {**scores().scores()["val"], "n": -1}, "test": scores().scores()["test"]}, "n = -1"),
    (True, {"val": {**scores().scores()["val"], "loss": float("nan")}, "test": scores().scores()["test"]}, "loss"),
    (True, {"val": {**scores().scores()["val"], "hist_pos": [1, 2]}, "test": scores().scores()["test"]}, "hist_pos"),
    # a negative count would cancel other plants' rows in the pooled threshold; more rows than n is a lie
    (True, {"val": {**scores().scores()["val"], "hist_neg": [-1000] + [0] * (BINS - 1)},
            "test": scores().scores()["test"]},
     "counts of rows"),
    (True, {"val": {**scores().scores()["val"], "hist_neg": [10 ** 6] + [0] * (BINS - 1)},
            "test": scores().scores()["test"]},
     "counts of rows"),
    # fewer rows than n: every plant's histograms sum to its n exactly (an inflated n outweighs the pool)
    (True, {"val": {**scores().scores()["val"], "n": 41}, "test": scores().scores()["test"]}, "counts of rows"),
    # counts that wrap int64 to 0 in a numpy sum (4 x 2^62), sent with n = 0: the pooled threshold would follow them
    (True, {"val": {**scores().scores()["val"], "n": 0, "hist_pos": [2 ** 62] * 4 + [0] * (BINS - 4),
                    "hist_neg": [0] * BINS}, "test": scores().scores()["test"]}, "counts of rows"),
    (True, {"val": {**scores().scores()["val"], "n": 10 ** 9}, "test": scores().scores()["test"]}, "counts of rows"),
    # only integers: numpy would truncate 0.5, read True as 1 and parse "3"; 1e30 overflows int64
    (True, {"val": {**scores().scores()["val"], "hist_pos": [0.5] * BINS}, "test": scores().scores()["test"]},
     "vector of integers"),
    (True, {"val": {**scores().scores()["val"], "hist_pos": [True] * BINS}, "test": scores().scores()["test"]},
     "vector of integers"),
    (True, {"val": {**scores().scores()["val"], "hist_pos": ["3"] * BINS}, "test": scores().scores()["test"]},
     "vector of integers"),
    (True, {"val": {**scores().scores()["val"], "hist_pos": np.ones(BINS, bool)}, "test": scores().scores()["test"]},
     "vector of integers"),
    (True, {"val": {**scores().scores()["val"], "hist_pos": [10 ** 30] + [0] * (BINS - 1)},
            "test": scores().scores()["test"]},
     "in range"),
    (True, {"val": {**scores().scores()["val"], "hist_pos": 7}, "test": scores().scores()["test"]},
     "vector of integers"),
])
def test_a_hostile_evaluation_in_a_training_reply_is_a_protocol_error(asked, evaluation, words):
    request = TrainRequest(RoundRef(1, 2), model(), TrainSettings(), evaluate=asked)
    extra = {} if evaluation is None else {"evaluation": scores().scores() if evaluation == "scores" else evaluation}
    with pytest.raises(ProtocolError, match=words):
        parse_reply(request, training_answer(**extra))


def test_a_stats_reply_counts_failures_within_its_rows_or_withholds_them():
    request = StatsRequest(1, ("a",))
    answer = {"ok": True, "op": "stats", "count": 100, "sum": [1.0], "sum_sq": [2.0],
              "num_samples": {"train": 100, "validation": 20, "test": 20}}
    assert parse_reply(request, answer).positives is None  # withheld, or a plant from before the count
    assert parse_reply(request, {**answer, "positives": 12}).positives == 12
    for bad in (101, -1, 1.5, "12"):
        with pytest.raises(ProtocolError, match="positives"):
            parse_reply(request, {**answer, "positives": bad})

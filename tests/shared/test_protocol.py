import numpy as np
import pytest

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
                                                  "num_samples": {"train": 5, "validation": 0, "test": 0},
                                                  "positives_train": 0})
    with pytest.raises(ProtocolError, match="either weights or a masked update"):
        parse_reply(TrainRequest(RoundRef(1, 1), model(), TrainSettings()),
                    {"ok": True, "num_samples": 1, "steps": 1, "train_loss": 0.1})

"""The requests the dashboard sends a plant's `fl_step`, and `parse_request`, which the plant runs on the
wire form before any work (habit 17: the dashboard chooses every value, the plant owns the guarantee)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shared.errors import ProtocolError
from shared.model_spec import ModelSpec, weight_shapes
from shared.protocol.fields import MAX_PLANTS, byte_strings, flag, integer, names, obj, plant_name, weights_of
from shared.protocol.parts import ModelPart, RoundRef, SecAggRequest, TrainSettings
from shared.protocol.personalize import FIELDS as PERSONALIZE_FIELDS
from shared.protocol.personalize import PersonalizeRequest
from shared.protocol.transcript import ModelProof, proof_of

OPS = ("stats", "train", "evaluate", "secagg_reveal", "personalize")
MAX_CONTROL = 1e4  # |c| per value of SCAFFOLD's server control variate (a gradient-sized quantity)
_MODEL = {"features", "scaler", "spec", "weights"}
_REF = {"experiment", "round", "attempt"}
FIELDS = {"stats": {"op", "experiment", "features"},
          "train": {"op", *_REF, *_MODEL, "train", "secagg", "evaluate", "control", "proof"},
          "evaluate": {"op", *_REF, *_MODEL, "proof"},
          "secagg_reveal": {"op", *_REF, "secagg", "survivors", "sealed"},
          "personalize": PERSONALIZE_FIELDS}


@dataclass(frozen=True)
class StatsRequest:
    experiment: int
    features: tuple[str, ...]
    op: str = field(default="stats", init=False)

    def to_wire(self) -> dict:
        return {"op": self.op, "experiment": self.experiment, "features": list(self.features)}


@dataclass(frozen=True)
class TrainRequest:
    """Train from `model` (round r-1's aggregate). With `evaluate`, first score that same model on the plant's
    validation and test splits, exactly as an EvaluateRequest for `ref.scored_in_training` would: same policy
    checks, same caps (the plant counts it under that request's key), same release rules and noise."""

    ref: RoundRef
    model: ModelPart
    train: TrainSettings
    secagg: SecAggRequest | None = None
    evaluate: bool = False
    control: dict[str, np.ndarray] | None = None  # SCAFFOLD's server control variate c (shared.aggregation.scaffold)
    proof: ModelProof | None = None  # how the plant derives `model` itself (shared.verification)
    op: str = field(default="train", init=False)

    def to_wire(self) -> dict:
        wire = {"op": self.op, **self.ref.to_wire(), **self.model.to_wire(), "train": self.train.to_wire(),
                "evaluate": self.evaluate}
        if self.secagg is not None:
            wire["secagg"] = self.secagg.to_wire()
        if self.control is not None:
            wire["control"] = self.control
        if self.proof is not None:
            wire["proof"] = self.proof.to_wire()
        return wire


@dataclass(frozen=True)
class EvaluateRequest:
    ref: RoundRef  # the round whose model is scored (0: the initial model); attempt as for training
    model: ModelPart
    proof: ModelProof | None = None
    op: str = field(default="evaluate", init=False)

    def to_wire(self) -> dict:
        wire = {"op": self.op, **self.ref.to_wire(), **self.model.to_wire()}
        if self.proof is not None:
            wire["proof"] = self.proof.to_wire()
        return wire


@dataclass(frozen=True)
class RevealRequest:
    ref: RoundRef
    secagg: SecAggRequest
    survivors: tuple[str, ...]
    sealed: dict[str, bytes]  # survivor -> the shares it dealt to this plant, sealed for it
    op: str = field(default="secagg_reveal", init=False)

    def to_wire(self) -> dict:
        return {"op": self.op, **self.ref.to_wire(), "secagg": self.secagg.to_wire(),
                "survivors": list(self.survivors), "sealed": dict(self.sealed)}


Request = StatsRequest | TrainRequest | EvaluateRequest | RevealRequest | PersonalizeRequest


def parse_request(d) -> Request:
    """The typed request, or ProtocolError naming the first bad field. Unknown top-level fields are refused
    too: a closed protocol has no field the plant would silently ignore."""
    if not isinstance(d, dict):
        raise ProtocolError(f"a request must be an object, got {type(d).__name__}")
    op = d.get("op")
    if op not in OPS:
        raise ProtocolError(f"unknown operation {str(op)[:40]!r}; one of {OPS}")
    unknown = set(d) - FIELDS[op]
    if unknown:
        raise ProtocolError(f"{op} request has unknown field(s) {sorted(map(str, unknown))[:5]}")
    if op == "stats":
        return StatsRequest(experiment=integer(d, "experiment", 1), features=names(d, "features"))
    if op == "personalize":
        return PersonalizeRequest.from_wire(d)
    ref = RoundRef.from_wire(d)
    if op == "train":
        return _train(d, ref)
    if op == "evaluate":
        return EvaluateRequest(ref=ref, model=ModelPart.from_wire(d), proof=proof_of(d))
    return _reveal(d, ref)


def _train(d: dict, ref: RoundRef) -> TrainRequest:
    if ref.round < 1:
        raise ProtocolError("training rounds are numbered from 1")
    secagg = SecAggRequest.from_wire(d["secagg"]) if d.get("secagg") is not None else None
    model = ModelPart.from_wire(d)
    control = control_variate(d["control"], model.spec, ref.round) if d.get("control") is not None else None
    return TrainRequest(ref=ref, model=model, train=TrainSettings.from_wire(d.get("train", {})),
                        secagg=secagg, evaluate=flag(d, "evaluate"), control=control, proof=proof_of(d))


def control_variate(value, spec: ModelSpec, round_number: int) -> dict[str, np.ndarray]:
    """SCAFFOLD's c from the other side: exactly the model's parameters (names and shapes of the spec's
    network), finite floats of at most MAX_CONTROL in size; all zero in round 1, before any plant reported."""
    control = weights_of(value, "control")
    expected = weight_shapes(spec)
    if set(control) != set(expected):
        raise ProtocolError("control must hold exactly the model's parameters "
                            f"({len(expected)}), got {len(control)} array(s)")
    out = {}
    for name, array in control.items():
        if array.shape != tuple(expected[name]):
            raise ProtocolError(f"control[{name!r}] has shape {array.shape}, the model's is {tuple(expected[name])}")
        if float(np.max(np.abs(array.astype(np.float64)), initial=0.0)) > MAX_CONTROL:
            raise ProtocolError(f"control[{name!r}] holds a value beyond +-{MAX_CONTROL:g}")
        array = array.astype(np.float32)
        if round_number == 1 and np.any(array != 0):
            raise ProtocolError("control must be zero in round 1: no plant has reported a control variate yet")
        out[name] = array
    return out


def _reveal(d: dict, ref: RoundRef) -> RevealRequest:
    secagg = SecAggRequest.from_wire(d.get("secagg"))
    survivors = d.get("survivors")
    if not isinstance(survivors, (list, tuple)) or len(survivors) > MAX_PLANTS:
        raise ProtocolError("survivors must be a list of plant names")
    sealed = byte_strings(obj(d, "sealed"), "sealed shares", 1 << 20)
    return RevealRequest(ref=ref, secagg=secagg, survivors=tuple(plant_name(s, "survivor") for s in survivors),
                         sealed={plant_name(k, "sealed"): bytes(v) for k, v in sealed.items()})

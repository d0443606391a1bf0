"""The closed protocol between the dashboard and a plant's vetted `fl_step` (DESIGN §6, §9).

Typed requests and replies, one module for both sides. A dict exists only on the wire (PySyft carries
plain dicts of numbers, strings and numpy arrays); `parse_request` turns the wire form into a typed request
and validates every field as hostile before the plant does any work (habit 17: the dashboard chooses these
values, the plant owns the guarantee). `parse_reply` does the same for the dashboard with a plant's answer.

Four operations:
- `stats`: aggregate feature statistics (count, sum, sum of squares) of the plant's training split;
- `train`: local training from the global weights; the update leaves masked under secure aggregation;
- `evaluate`: loss, ROC-AUC and coarse score histograms on the validation and test splits;
- `secagg_reveal`: the shares this plant holds for the round's survivors.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields

import numpy as np

from shared.errors import ProtocolError
from shared.models import ModelSpec

MAX_FEATURES = 4096
MAX_NAME = 200
MAX_PLANTS = 1000
MAX_ID = 2 ** 31 - 1
MAX_WEIGHT_ARRAYS = 256
OPS = ("stats", "train", "evaluate", "secagg_reveal")
WEIGHTINGS = ("samples", "samples_per_step", "equal")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,120}$")  # plant names as the agent accepts them


# --- field validators: each names the field and the bad value -------------------------------------------

def _int(d: dict, key: str, low: int = 0, high: int = MAX_ID, default=None) -> int:
    value = d.get(key, default)
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
        raise ProtocolError(f"{key} must be an integer, got {type(value).__name__}")
    if not low <= int(value) <= high:
        raise ProtocolError(f"{key} = {value} is outside [{low}, {high}]")
    return int(value)


def _float(d: dict, key: str, low: float, high: float, default=None) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ProtocolError(f"{key} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise ProtocolError(f"{key} = {value} is outside [{low}, {high}]")
    return value


def _names(d: dict, key: str) -> tuple[str, ...]:
    value = d.get(key)
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_FEATURES:
        raise ProtocolError(f"{key} must be a list of 1 to {MAX_FEATURES} names")
    if not all(isinstance(v, str) and 0 < len(v) <= MAX_NAME for v in value):
        raise ProtocolError(f"{key} must hold non-empty strings of at most {MAX_NAME} characters")
    if len(set(value)) != len(value):
        raise ProtocolError(f"{key} names a feature twice")
    return tuple(value)


def _plant_name(value, key: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ProtocolError(f"{key} {str(value)[:40]!r} is not a plant name")
    return value


def _dict(d: dict, key: str, label: str | None = None) -> dict:
    value = d.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"{label or key} must be an object")
    return value


def _vector(value, key: str, length: int | None = None, dtype=np.float64) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{key} is not a numeric vector") from exc
    if array.ndim != 1 or (length is not None and len(array) != length):
        raise ProtocolError(f"{key} must be a vector of {length} values")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ProtocolError(f"{key} holds a value that is not finite")
    return array


def weights_of(value, key: str = "weights") -> dict[str, np.ndarray]:
    """A dict of finite numeric arrays (shapes are checked against the model where it is built)."""
    if not isinstance(value, dict) or not 0 < len(value) <= MAX_WEIGHT_ARRAYS:
        raise ProtocolError(f"{key} must be an object of 1 to {MAX_WEIGHT_ARRAYS} arrays")
    out = {}
    for name, array in value.items():
        if not isinstance(name, str) or len(name) > MAX_NAME:
            raise ProtocolError(f"{key} has a parameter name that is not a short string")
        try:
            array = np.asarray(array)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"{key}[{name!r}] is not an array") from exc
        if array.dtype.kind not in "fiu":
            raise ProtocolError(f"{key}[{name!r}] is not numeric ({array.dtype})")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ProtocolError(f"{key}[{name!r}] holds a value that is not finite")
        out[name] = array
    return out


# --- the parts of a request ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RoundRef:
    """Which attempt of which round of which experiment a call belongs to: integers, never paths."""

    experiment: int
    round: int
    attempt: int = 1

    @property
    def context(self) -> str:
        """Binds secure-aggregation keys and shares to this one attempt."""
        return f"{self.experiment}:{self.round}:{self.attempt}"

    def to_wire(self) -> dict:
        return {"experiment": self.experiment, "round": self.round, "attempt": self.attempt}

    @classmethod
    def from_wire(cls, d: dict) -> "RoundRef":
        return cls(experiment=_int(d, "experiment", 1), round=_int(d, "round", 0, 1_000_000),
                   attempt=_int(d, "attempt", 1, 1000, default=1))


@dataclass(frozen=True)
class ScalerMsg:
    mean: np.ndarray
    scale: np.ndarray

    def to_wire(self) -> dict:
        return {"mean": np.asarray(self.mean).tolist(), "scale": np.asarray(self.scale).tolist()}

    @classmethod
    def from_wire(cls, d, length: int) -> "ScalerMsg":
        if not isinstance(d, dict):
            raise ProtocolError("scaler must be an object with mean and scale")
        scale = _vector(d.get("scale"), "scaler.scale", length)
        if np.any(scale <= 0):
            raise ProtocolError("scaler.scale must be positive")
        return cls(mean=_vector(d.get("mean"), "scaler.mean", length), scale=scale)


@dataclass(frozen=True)
class TrainSettings:
    """Local training as the experiment asks for it; the plant's policy bounds every field."""

    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 1e-3
    max_grad_norm: float = 5.0
    proximal_mu: float = 0.0
    feddyn_alpha: float = 0.0
    clip_update_norm: float | None = None
    clip_update_ord: int = 2
    dp_noise_multiplier: float = 0.0  # DP-SGD; 0 with dp_target_epsilon set: the plant derives it
    dp_max_grad_norm: float = 1.0
    dp_delta: float = 1e-5
    dp_target_epsilon: float | None = None
    dp_rounds: int = 1  # rounds the experiment plans: what a noise multiplier derived from epsilon must cover
    pos_weight: float | None = None  # the failure class's loss weight; None: the plant's own ratio (not under DP)
    seed: int = 0  # batch order only; never any privacy-relevant randomness

    @property
    def dp_sgd(self) -> bool:
        return self.dp_noise_multiplier > 0 or self.dp_target_epsilon is not None

    def to_wire(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_wire(cls, d) -> "TrainSettings":
        if not isinstance(d, dict):
            raise ProtocolError("train must be an object")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ProtocolError(f"train has unknown setting(s) {sorted(unknown)[:5]}")
        clip = d.get("clip_update_norm")
        target = d.get("dp_target_epsilon")
        pos_weight = d.get("pos_weight")
        return cls(
            epochs=_int(d, "epochs", 1, 1000, 1), batch_size=_int(d, "batch_size", 1, 65536, 64),
            learning_rate=_float(d, "learning_rate", 1e-9, 10.0, 1e-3),
            max_grad_norm=_float(d, "max_grad_norm", 1e-6, 1e6, 5.0),
            proximal_mu=_float(d, "proximal_mu", 0.0, 1e3, 0.0), feddyn_alpha=_float(d, "feddyn_alpha", 0.0, 1e3, 0.0),
            clip_update_norm=None if clip is None else _float(d, "clip_update_norm", 1e-9, 1e6),
            clip_update_ord=_int(d, "clip_update_ord", 1, 2, 2),
            dp_noise_multiplier=_float(d, "dp_noise_multiplier", 0.0, 1e3, 0.0),
            dp_max_grad_norm=_float(d, "dp_max_grad_norm", 1e-6, 1e6, 1.0),
            dp_delta=_float(d, "dp_delta", 1e-12, 0.1, 1e-5),
            dp_target_epsilon=None if target is None else _float(d, "dp_target_epsilon", 1e-3, 1e3),
            dp_rounds=_int(d, "dp_rounds", 1, 100_000, 1),
            pos_weight=None if pos_weight is None else _float(d, "pos_weight", 1e-3, 1e3),
            seed=_int(d, "seed", 0, 2 ** 62, 0))


@dataclass(frozen=True)
class SecAggRequest:
    """The secure-aggregation part of a training or reveal request (shared.secagg)."""

    participants: dict[str, str]  # every plant asked this attempt -> its X25519 public key, hex
    threshold: int
    fraction_bits: int
    weighting: str
    clip: float

    def to_wire(self) -> dict:
        return {"participants": dict(self.participants), "threshold": self.threshold,
                "fraction_bits": self.fraction_bits, "weighting": self.weighting, "clip": self.clip}

    @classmethod
    def from_wire(cls, d) -> "SecAggRequest":
        if not isinstance(d, dict):
            raise ProtocolError("secagg must be an object")
        participants = _dict(d, "participants", "secagg.participants")
        if not 2 <= len(participants) <= MAX_PLANTS:
            raise ProtocolError(f"secagg.participants must name 2 to {MAX_PLANTS} plants")
        for name, key in participants.items():
            _plant_name(name, "secagg participant")
            if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{64}", key):
                raise ProtocolError(f"secagg participant {name!r} has no valid X25519 public key (64 hex digits)")
        if len(set(participants.values())) != len(participants):
            raise ProtocolError("two secagg participants share one public key")
        weighting = d.get("weighting")
        if weighting not in WEIGHTINGS:
            raise ProtocolError(f"secagg.weighting {str(weighting)[:20]!r} is not one of {WEIGHTINGS}")
        return cls(participants=dict(participants), threshold=_int(d, "threshold", 1, MAX_PLANTS),
                   fraction_bits=_int(d, "fraction_bits", 8, 32), weighting=weighting,
                   clip=_float(d, "clip", 1e-6, 1e6))


@dataclass(frozen=True)
class ModelPart:
    """Which model and which weights: the global model a plant trains from or scores."""

    features: tuple[str, ...]  # the experiment's feature order; the plant maps its own columns onto it
    scaler: ScalerMsg
    spec: ModelSpec
    weights: dict[str, np.ndarray]

    def to_wire(self) -> dict:
        return {"features": list(self.features), "scaler": self.scaler.to_wire(), "spec": self.spec.to_dict(),
                "weights": self.weights}

    @classmethod
    def from_wire(cls, d: dict) -> "ModelPart":
        features = _names(d, "features")
        spec_dict = _dict(d, "spec")
        try:
            spec = ModelSpec.from_dict(spec_dict)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"spec is not a model spec: {exc}") from exc
        if spec.num_features != len(features):
            raise ProtocolError(f"spec.num_features {spec.num_features} != {len(features)} features")
        for key, high in (("num_features", MAX_FEATURES), ("sequence_length", 10_000), ("hidden_size", 4096),
                          ("channels", 1024), ("num_layers", 8)):
            value = getattr(spec, key)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ProtocolError(f"spec.{key} = {value!r} is outside [1, {high}]")
        if isinstance(spec.dropout, bool) or not isinstance(spec.dropout, (int, float)) or not 0 <= spec.dropout < 1:
            raise ProtocolError(f"spec.dropout = {spec.dropout!r} is outside [0, 1)")
        return cls(features=features, scaler=ScalerMsg.from_wire(d.get("scaler"), len(features)), spec=spec,
                   weights=weights_of(d.get("weights")))


# --- requests --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StatsRequest:
    experiment: int
    features: tuple[str, ...]
    op: str = field(default="stats", init=False)

    def to_wire(self) -> dict:
        return {"op": self.op, "experiment": self.experiment, "features": list(self.features)}


@dataclass(frozen=True)
class TrainRequest:
    ref: RoundRef
    model: ModelPart
    train: TrainSettings
    secagg: SecAggRequest | None = None
    op: str = field(default="train", init=False)

    def to_wire(self) -> dict:
        wire = {"op": self.op, **self.ref.to_wire(), **self.model.to_wire(), "train": self.train.to_wire()}
        if self.secagg is not None:
            wire["secagg"] = self.secagg.to_wire()
        return wire


@dataclass(frozen=True)
class EvaluateRequest:
    ref: RoundRef  # the round whose model is scored (0: the initial model); attempt as for training
    model: ModelPart
    op: str = field(default="evaluate", init=False)

    def to_wire(self) -> dict:
        return {"op": self.op, **self.ref.to_wire(), **self.model.to_wire()}


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


Request = StatsRequest | TrainRequest | EvaluateRequest | RevealRequest


def parse_request(d) -> Request:
    """The typed request, or ProtocolError naming the first bad field. Unknown top-level fields are refused
    too: a closed protocol has no field the plant would silently ignore."""
    if not isinstance(d, dict):
        raise ProtocolError(f"a request must be an object, got {type(d).__name__}")
    op = d.get("op")
    if op not in OPS:
        raise ProtocolError(f"unknown operation {str(op)[:40]!r}; one of {OPS}")
    allowed = {"stats": {"op", "experiment", "features"},
               "train": {"op", "experiment", "round", "attempt", "features", "scaler", "spec", "weights", "train",
                         "secagg"},
               "evaluate": {"op", "experiment", "round", "attempt", "features", "scaler", "spec", "weights"},
               "secagg_reveal": {"op", "experiment", "round", "attempt", "secagg", "survivors", "sealed"}}[op]
    unknown = set(d) - allowed
    if unknown:
        raise ProtocolError(f"{op} request has unknown field(s) {sorted(map(str, unknown))[:5]}")
    if op == "stats":
        return StatsRequest(experiment=_int(d, "experiment", 1), features=_names(d, "features"))
    ref = RoundRef.from_wire(d)
    if op == "train":
        if ref.round < 1:
            raise ProtocolError("training rounds are numbered from 1")
        secagg = SecAggRequest.from_wire(d["secagg"]) if d.get("secagg") is not None else None
        return TrainRequest(ref=ref, model=ModelPart.from_wire(d), train=TrainSettings.from_wire(d.get("train", {})),
                            secagg=secagg)
    if op == "evaluate":
        return EvaluateRequest(ref=ref, model=ModelPart.from_wire(d))
    secagg = SecAggRequest.from_wire(d.get("secagg"))
    survivors = d.get("survivors")
    if not isinstance(survivors, (list, tuple)) or len(survivors) > MAX_PLANTS:
        raise ProtocolError("survivors must be a list of plant names")
    sealed = _dict(d, "sealed")
    if not all(isinstance(v, (bytes, bytearray)) and len(v) < 1 << 20 for v in sealed.values()):
        raise ProtocolError("sealed shares must be byte strings")
    return RevealRequest(ref=ref, secagg=secagg, survivors=tuple(_plant_name(s, "survivor") for s in survivors),
                         sealed={_plant_name(k, "sealed"): bytes(v) for k, v in sealed.items()})


# --- replies ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StatsReply:
    count: int
    sum: np.ndarray
    sum_sq: np.ndarray
    num_samples: dict[str, int]  # train / validation / test
    positives_train: int
    seconds: float = 0.0

    def to_wire(self) -> dict:
        return {"ok": True, "op": "stats", "count": self.count, "sum": self.sum.tolist(),
                "sum_sq": self.sum_sq.tolist(), "num_samples": dict(self.num_samples),
                "positives_train": self.positives_train, "seconds": self.seconds}

    @classmethod
    def from_wire(cls, d: dict, features: int) -> "StatsReply":
        samples = _dict(d, "num_samples")
        return cls(count=_int(d, "count", 0, 2 ** 40), sum=_vector(d.get("sum"), "sum", features),
                   sum_sq=_vector(d.get("sum_sq"), "sum_sq", features),
                   num_samples={k: _int(samples, k, 0, 2 ** 40) for k in ("train", "validation", "test")},
                   positives_train=_int(d, "positives_train", 0, 2 ** 40), seconds=_float(d, "seconds", 0, 1e7, 0.0))


@dataclass(frozen=True)
class DPReport:
    epsilon: float  # this experiment at this plant
    delta: float
    noise_multiplier: float
    history: list  # this experiment's accountant steps (noise multiplier, sample rate, steps)
    lifetime_epsilon: float  # every DP-SGD release this plant ever made, composed

    def to_wire(self) -> dict:
        return {"epsilon": self.epsilon, "delta": self.delta, "noise_multiplier": self.noise_multiplier,
                "history": [list(h) for h in self.history], "lifetime_epsilon": self.lifetime_epsilon}

    @classmethod
    def from_wire(cls, d) -> "DPReport":
        if not isinstance(d, dict) or not isinstance(d.get("history"), list) or len(d["history"]) > 100_000:
            raise ProtocolError("dp must be an object with a history list")
        history = []
        for h in d["history"]:
            if not isinstance(h, (list, tuple)) or len(h) != 3:
                raise ProtocolError("a dp history step is (noise multiplier, sample rate, steps)")
            step = dict(zip(("s", "q", "n"), h))
            history.append([_float(step, "s", 0, 1e3), _float(step, "q", 0, 1), _int(step, "n", 0, 10 ** 9)])
        return cls(epsilon=_float(d, "epsilon", 0, 1e9), delta=_float(d, "delta", 0, 1),
                   noise_multiplier=_float(d, "noise_multiplier", 0, 1e3, 0.0), history=history,
                   lifetime_epsilon=_float(d, "lifetime_epsilon", 0, 1e9, 0.0))


@dataclass(frozen=True)
class TrainReply:
    num_samples: int
    steps: int
    train_loss: float | None  # withheld under DP-SGD and secure aggregation: an unprotected function of the rows
    train_seconds: float
    weights: dict[str, np.ndarray] | None = None  # plain rounds only
    masked: np.ndarray | None = None  # secure aggregation: y_u
    sealed: dict[str, bytes] | None = None
    weight: float | None = None  # the aggregation weight the plant applied before masking
    dp: DPReport | None = None
    seconds: float = 0.0

    def to_wire(self) -> dict:
        wire = {"ok": True, "op": "train", "num_samples": self.num_samples, "steps": self.steps,
                "train_loss": self.train_loss, "train_seconds": self.train_seconds, "seconds": self.seconds}
        if self.weights is not None:
            wire["weights"] = self.weights
        if self.masked is not None:
            wire.update(masked=self.masked, sealed=dict(self.sealed or {}), weight=self.weight)
        if self.dp is not None:
            wire["dp"] = self.dp.to_wire()
        return wire

    @classmethod
    def from_wire(cls, d: dict) -> "TrainReply":
        weights = weights_of(d["weights"]) if d.get("weights") is not None else None
        masked = _vector(d["masked"], "masked", dtype=np.uint64) if d.get("masked") is not None else None
        if (weights is None) == (masked is None):
            raise ProtocolError("a training reply holds either weights or a masked update")
        sealed = None
        if masked is not None:
            sealed = _dict(d, "sealed")
            if not all(isinstance(v, (bytes, bytearray)) for v in sealed.values()):
                raise ProtocolError("sealed shares must be byte strings")
        return cls(num_samples=_int(d, "num_samples", 0, 2 ** 40), steps=_int(d, "steps", 0, 2 ** 40),
                   train_loss=None if d.get("train_loss") is None else _float(d, "train_loss", -1e12, 1e12),
                   train_seconds=_float(d, "train_seconds", 0, 1e7, 0.0), weights=weights, masked=masked,
                   sealed=sealed, weight=_float(d, "weight", 0, 2.0 ** 24) if masked is not None else None,
                   dp=DPReport.from_wire(d["dp"]) if d.get("dp") is not None else None,
                   seconds=_float(d, "seconds", 0, 1e7, 0.0))


@dataclass(frozen=True)
class SplitEvaluation:
    """One split's aggregate scores; n = 0 when the split is too small for the plant to release anything."""

    n: int
    loss: float | None
    auc: float | None
    hist_pos: np.ndarray
    hist_neg: np.ndarray

    def to_wire(self) -> dict:
        return {"n": self.n, "loss": self.loss, "auc": self.auc, "hist_pos": self.hist_pos.astype(np.int64),
                "hist_neg": self.hist_neg.astype(np.int64)}

    @classmethod
    def from_wire(cls, d, bins: int) -> "SplitEvaluation":
        if not isinstance(d, dict):
            raise ProtocolError("a split evaluation must be an object")
        loss, auc = d.get("loss"), d.get("auc")
        return cls(n=_int(d, "n", 0, 2 ** 40), loss=None if loss is None else _float(d, "loss", 0, 1e9),
                   auc=None if auc is None else _float(d, "auc", 0, 1),
                   hist_pos=_vector(d.get("hist_pos"), "hist_pos", bins, np.int64),
                   hist_neg=_vector(d.get("hist_neg"), "hist_neg", bins, np.int64))


@dataclass(frozen=True)
class EvaluateReply:
    val: SplitEvaluation
    test: SplitEvaluation
    seconds: float = 0.0

    def to_wire(self) -> dict:
        return {"ok": True, "op": "evaluate", "val": self.val.to_wire(), "test": self.test.to_wire(),
                "seconds": self.seconds}

    @classmethod
    def from_wire(cls, d: dict) -> "EvaluateReply":
        from shared.metrics import BINS

        return cls(val=SplitEvaluation.from_wire(d.get("val"), BINS),
                   test=SplitEvaluation.from_wire(d.get("test"), BINS), seconds=_float(d, "seconds", 0, 1e7, 0.0))


@dataclass(frozen=True)
class RevealReply:
    revealed: dict  # shared.secagg.protocol.RevealedShares in its wire form
    seconds: float = 0.0

    def to_wire(self) -> dict:
        return {"ok": True, "op": "secagg_reveal", "revealed": self.revealed, "seconds": self.seconds}

    @classmethod
    def from_wire(cls, d: dict) -> "RevealReply":
        return cls(revealed=_dict(d, "revealed"), seconds=_float(d, "seconds", 0, 1e7, 0.0))


Reply = StatsReply | TrainReply | EvaluateReply | RevealReply


def refusal(reason: str) -> dict:
    """The wire form of a refused or failed call (PySyft hides exception messages from the caller)."""
    return {"ok": False, "error": reason}


def parse_reply(request: Request, d) -> Reply:
    """A plant's answer to `request`, typed; ProtocolError when it is malformed (a plant is not trusted to
    answer well-formed data either)."""
    if not isinstance(d, dict):
        raise ProtocolError(f"the answer is {type(d).__name__}, not an object")
    try:
        if isinstance(request, StatsRequest):
            return StatsReply.from_wire(d, len(request.features))
        if isinstance(request, TrainRequest):
            return TrainReply.from_wire(d)
        if isinstance(request, EvaluateRequest):
            return EvaluateReply.from_wire(d)
        return RevealReply.from_wire(d)
    except KeyError as exc:
        raise ProtocolError(f"the answer lacks {exc}") from exc

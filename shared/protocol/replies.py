"""A plant's replies, and `parse_reply`, which the dashboard runs on every answer: a plant is not trusted to answer
well-formed data either. `refusal` is the wire form of a refused or failed call."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.errors import ProtocolError
from shared.protocol.fields import byte_strings, integer, number, obj, vector, weights_of
from shared.protocol.personalize import PersonalizeReply, PersonalizeRequest
from shared.protocol.requests import EvaluateRequest, Request, StatsRequest, TrainRequest
from shared.protocol.transcript import optional_signature


@dataclass(frozen=True)
class StatsReply:
    count: int
    sum: np.ndarray
    sum_sq: np.ndarray
    num_samples: dict[str, int]  # train / validation / test
    seconds: float = 0.0
    # failures among the `count` training rows; None: withheld (fewer than the plant's min_release_rows failures
    # or non-failures), or a plant from before this field
    positives: int | None = None

    def to_wire(self) -> dict:
        return {"ok": True, "op": "stats", "count": self.count, "sum": self.sum.tolist(),
                "sum_sq": self.sum_sq.tolist(), "num_samples": dict(self.num_samples),
                "seconds": self.seconds, "positives": self.positives}

    @classmethod
    def from_wire(cls, d: dict, features: int) -> "StatsReply":
        samples = obj(d, "num_samples")
        count = integer(d, "count", 0, 2 ** 40)
        positives = None if d.get("positives") is None else integer(d, "positives", 0, count)
        return cls(count=count, sum=vector(d.get("sum"), "sum", features),
                   sum_sq=vector(d.get("sum_sq"), "sum_sq", features),
                   num_samples={k: integer(samples, k, 0, 2 ** 40) for k in ("train", "validation", "test")},
                   seconds=number(d, "seconds", 0, 1e7, 0.0), positives=positives)


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
            history.append([number(step, "s", 0, 1e3), number(step, "q", 0, 1), integer(step, "n", 0, 10 ** 9)])
        return cls(epsilon=number(d, "epsilon", 0, 1e9), delta=number(d, "delta", 0, 1),
                   noise_multiplier=number(d, "noise_multiplier", 0, 1e3, 0.0), history=history,
                   lifetime_epsilon=number(d, "lifetime_epsilon", 0, 1e9, 0.0))


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
        n = integer(d, "n", 0, 2 ** 40)
        hist_pos = vector(d.get("hist_pos"), "hist_pos", bins, np.int64)
        hist_neg = vector(d.get("hist_neg"), "hist_neg", bins, np.int64)
        # counts of rows: never negative (a negative count would cancel other plants' rows in the pooled
        # threshold), and exactly the split's n rows (a plant's histograms, exact or noisy, always sum to its n:
        # shared.evaluation)
        # (each count at most n before the sum: four counts of 2^62 would wrap int64 to 0 and pass as n = 0)
        counts = np.concatenate([hist_pos, hist_neg])
        if counts.min(initial=0) < 0 or counts.max(initial=0) > n or sum(int(c) for c in counts) != n:
            raise ProtocolError("score histograms must be counts of rows: none negative, n in all")
        return cls(n=n, loss=None if loss is None else number(d, "loss", 0, 1e9),
                   auc=None if auc is None else number(d, "auc", 0, 1), hist_pos=hist_pos, hist_neg=hist_neg)


@dataclass(frozen=True)
class EvaluateReply:
    val: SplitEvaluation
    test: SplitEvaluation
    seconds: float = 0.0

    def to_wire(self) -> dict:
        return {"ok": True, "op": "evaluate", **self.scores()}

    def scores(self) -> dict:
        """The wire form without the envelope: what a training reply carries as its `evaluation`."""
        return {"val": self.val.to_wire(), "test": self.test.to_wire(), "seconds": self.seconds}

    @classmethod
    def from_wire(cls, d: dict) -> "EvaluateReply":
        from shared.metrics import BINS

        return cls(val=SplitEvaluation.from_wire(d.get("val"), BINS),
                   test=SplitEvaluation.from_wire(d.get("test"), BINS), seconds=number(d, "seconds", 0, 1e7, 0.0))


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
    signature: str | None = None  # the plant's over its masked update and metadata (shared.secagg.statements)
    dp: DPReport | None = None
    evaluation: EvaluateReply | None = None  # the incoming model's scores, when the request asked for them
    seconds: float = 0.0
    control_delta: dict[str, np.ndarray] | None = None  # SCAFFOLD: Delta c_i (never masked: refused)

    def to_wire(self) -> dict:
        wire = {"ok": True, "op": "train", "num_samples": self.num_samples, "steps": self.steps,
                "train_loss": self.train_loss, "train_seconds": self.train_seconds, "seconds": self.seconds}
        if self.weights is not None:
            wire["weights"] = self.weights
        if self.control_delta is not None:
            wire["control_delta"] = self.control_delta
        if self.masked is not None:
            wire.update(masked=self.masked, sealed=dict(self.sealed or {}), weight=self.weight)
            if self.signature is not None:
                wire["signature"] = self.signature
        if self.dp is not None:
            wire["dp"] = self.dp.to_wire()
        if self.evaluation is not None:
            wire["evaluation"] = self.evaluation.scores()
        return wire

    @classmethod
    def from_wire(cls, d: dict, evaluation_asked: bool = False, control_asked: bool = False) -> "TrainReply":
        """`control_asked`: a SCAFFOLD round, where an unmasked reply must carry its control variate delta (its
        names and shapes are checked against the model where the updates are aggregated)."""
        weights = weights_of(d["weights"]) if d.get("weights") is not None else None
        wants_control = control_asked and weights is not None
        if wants_control != (d.get("control_delta") is not None):
            raise ProtocolError("the training reply lacks its control variate delta" if wants_control
                                else "the training reply holds a control variate delta nobody asked for")
        masked = vector(d["masked"], "masked", dtype=np.uint64) if d.get("masked") is not None else None
        if (weights is None) == (masked is None):
            raise ProtocolError("a training reply holds either weights or a masked update")
        sealed = byte_strings(obj(d, "sealed"), "sealed shares") if masked is not None else None
        if evaluation_asked != (d.get("evaluation") is not None):
            raise ProtocolError("the training reply lacks the evaluation the request asked for" if evaluation_asked
                                else "the training reply holds an evaluation nobody asked for")
        evaluation = EvaluateReply.from_wire(obj(d, "evaluation")) if evaluation_asked else None
        return cls(num_samples=integer(d, "num_samples", 0, 2 ** 40), steps=integer(d, "steps", 0, 2 ** 40),
                   train_loss=None if d.get("train_loss") is None else number(d, "train_loss", -1e12, 1e12),
                   train_seconds=number(d, "train_seconds", 0, 1e7, 0.0), weights=weights, masked=masked,
                   sealed=sealed, weight=number(d, "weight", 0, 2.0 ** 24) if masked is not None else None,
                   signature=optional_signature(d) if masked is not None else None,
                   dp=DPReport.from_wire(d["dp"]) if d.get("dp") is not None else None, evaluation=evaluation,
                   seconds=number(d, "seconds", 0, 1e7, 0.0),
                   control_delta=weights_of(d["control_delta"], "control_delta") if wants_control else None)


@dataclass(frozen=True)
class RevealReply:
    revealed: dict  # shared.secagg.protocol.RevealedShares in its wire form
    seconds: float = 0.0
    signature: str | None = None  # the holder's over what it revealed (shared.secagg.statements)

    def to_wire(self) -> dict:
        wire = {"ok": True, "op": "secagg_reveal", "revealed": self.revealed, "seconds": self.seconds}
        if self.signature is not None:
            wire["signature"] = self.signature
        return wire

    @classmethod
    def from_wire(cls, d: dict) -> "RevealReply":
        return cls(revealed=obj(d, "revealed"), seconds=number(d, "seconds", 0, 1e7, 0.0),
                   signature=optional_signature(d))


Reply = StatsReply | TrainReply | EvaluateReply | RevealReply | PersonalizeReply


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
            return TrainReply.from_wire(d, request.evaluate, request.control is not None)
        if isinstance(request, EvaluateRequest):
            return EvaluateReply.from_wire(d)
        if isinstance(request, PersonalizeRequest):
            return PersonalizeReply.from_wire(d, request)
        return RevealReply.from_wire(d)
    except KeyError as exc:
        raise ProtocolError(f"the answer lacks {exc}") from exc

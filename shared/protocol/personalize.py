"""The personalization step (issue #15 item 4): the request the dashboard sends each plant once, after the last
round, on the final (best) global model, and the plant's reply.

The plant fine-tunes the global model on its own training split (all layers, or FedPer's head only), trains a
local-only model of the same architecture from scratch, and scores the three on its own validation split (and
its test split, for reporting) by evaluate's release rules. The reply holds only aggregate scores: F1 at the
threshold each model's own validation histogram gives, ROC-AUC and that threshold, never weights: both new
models stay at the plant (factory_agent.plant.personal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from shared.errors import ProtocolError
from shared.protocol.fields import integer, number, obj
from shared.protocol.parts import ModelPart, TrainSettings
from shared.protocol.transcript import ModelProof, proof_of

MODES = ("finetune", "fedper")
MODELS = ("global", "personalized", "local")
MAX_LOCAL_EPOCHS = 1000  # the wire's bound; the plant's policy bounds it further (max_personal_epochs)
FIELDS = {"op", "experiment", "features", "scaler", "spec", "weights", "mode", "train", "local_epochs", "proof"}


@dataclass(frozen=True)
class PersonalizeRequest:
    experiment: int
    model: ModelPart  # the experiment's final (or best) global model
    mode: str  # finetune | fedper
    train: TrainSettings  # the fine-tune's epochs, learning rate, batch size, class weight
    local_epochs: int  # the local-only model's epochs
    proof: ModelProof | None = None  # how the plant derives `model` itself (shared.verification)
    op: str = field(default="personalize", init=False)

    def to_wire(self) -> dict:
        wire = {"op": self.op, "experiment": self.experiment, **self.model.to_wire(), "mode": self.mode,
                "train": self.train.to_wire(), "local_epochs": self.local_epochs}
        if self.proof is not None:
            wire["proof"] = self.proof.to_wire()
        return wire

    @classmethod
    def from_wire(cls, d: dict) -> "PersonalizeRequest":
        mode = d.get("mode")
        if mode not in MODES:
            raise ProtocolError(f"personalize mode {str(mode)[:20]!r} is not one of {MODES}")
        train = TrainSettings.from_wire(d.get("train", {}))
        if train.dp_sgd or train.proximal_mu or train.feddyn_alpha or train.clip_update_norm is not None:
            raise ProtocolError("a personalization trains plainly: no DP-SGD, proximal, FedDyn or update clip "
                                "settings (its model never leaves the plant)")
        return cls(experiment=integer(d, "experiment", 1), model=ModelPart.from_wire(d), mode=mode, train=train,
                   local_epochs=integer(d, "local_epochs", 1, MAX_LOCAL_EPOCHS), proof=proof_of(d))


def _score(d: dict, key: str) -> float | None:
    value = d.get(key)
    return None if value is None else number(d, key, 0.0, 1.0)


@dataclass(frozen=True)
class ModelScores:
    """One model's scores at the plant; None where the plant releases none (a split under min_release_rows,
    one class only)."""

    val_f1: float | None
    val_auc: float | None
    test_f1: float | None
    test_auc: float | None
    threshold: float | None  # the probability at which its own validation histogram gives the best F1

    def to_wire(self) -> dict:
        return {"val_f1": self.val_f1, "val_auc": self.val_auc, "test_f1": self.test_f1, "test_auc": self.test_auc,
                "threshold": self.threshold}

    @classmethod
    def from_wire(cls, d) -> "ModelScores":
        if not isinstance(d, dict) or set(d) - {"val_f1", "val_auc", "test_f1", "test_auc", "threshold"}:
            raise ProtocolError("a model's scores are an object of val_f1, val_auc, test_f1, test_auc, threshold")
        return cls(**{k: _score(d, k) for k in ("val_f1", "val_auc", "test_f1", "test_auc", "threshold")})


@dataclass(frozen=True)
class PersonalizeReply:
    mode: str
    scores: dict[str, ModelScores]  # global / personalized / local -> its scores
    seconds: float = 0.0

    def to_wire(self) -> dict:
        return {"ok": True, "op": "personalize", "mode": self.mode, "seconds": self.seconds,
                "scores": {k: v.to_wire() for k, v in self.scores.items()}}

    @classmethod
    def from_wire(cls, d: dict, request: PersonalizeRequest) -> "PersonalizeReply":
        if d.get("mode") != request.mode:
            raise ProtocolError(f"the plant answered mode {str(d.get('mode'))[:20]!r} to a {request.mode} request")
        scores = obj(d, "scores")
        if set(scores) != set(MODELS):
            raise ProtocolError(f"personalization scores must be exactly {MODELS}")
        seconds = number(d, "seconds", 0, 1e7, 0.0)
        return cls(mode=request.mode, scores={k: ModelScores.from_wire(scores[k]) for k in MODELS},
                   seconds=seconds if math.isfinite(seconds) else 0.0)

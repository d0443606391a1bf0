"""The parts a request is built of: which round, which scaler and model, which training settings, which
secure-aggregation cohort. Each converts to its wire form and back, validating the wire form as hostile."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

import numpy as np

from shared.errors import ModelError, ProtocolError
from shared.models import ModelSpec
from shared.protocol.fields import (MAX_FEATURES, MAX_PLANTS, integer, names, number, obj, plant_name, vector,
                                    weights_of)

WEIGHTINGS = ("samples", "samples_per_step", "equal")


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

    @property
    def scored_in_training(self) -> "RoundRef":
        """What a training call of this attempt scores when asked to: the model it trains from, round r-1's
        (round 0: the initial model), under this attempt's number; its evaluate caps are counted under this key."""
        return RoundRef(self.experiment, self.round - 1, self.attempt)

    def to_wire(self) -> dict:
        return {"experiment": self.experiment, "round": self.round, "attempt": self.attempt}

    @classmethod
    def from_wire(cls, d: dict) -> "RoundRef":
        return cls(experiment=integer(d, "experiment", 1), round=integer(d, "round", 0, 1_000_000),
                   attempt=integer(d, "attempt", 1, 1000, default=1))


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
        scale = vector(d.get("scale"), "scaler.scale", length)
        if np.any(scale <= 0):
            raise ProtocolError("scaler.scale must be positive")
        return cls(mean=vector(d.get("mean"), "scaler.mean", length), scale=scale)


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
            epochs=integer(d, "epochs", 1, 1000, 1), batch_size=integer(d, "batch_size", 1, 65536, 64),
            learning_rate=number(d, "learning_rate", 1e-9, 10.0, 1e-3),
            max_grad_norm=number(d, "max_grad_norm", 1e-6, 1e6, 5.0),
            proximal_mu=number(d, "proximal_mu", 0.0, 1e3, 0.0), feddyn_alpha=number(d, "feddyn_alpha", 0.0, 1e3, 0.0),
            clip_update_norm=None if clip is None else number(d, "clip_update_norm", 1e-9, 1e6),
            clip_update_ord=integer(d, "clip_update_ord", 1, 2, 2),
            dp_noise_multiplier=number(d, "dp_noise_multiplier", 0.0, 1e3, 0.0),
            dp_max_grad_norm=number(d, "dp_max_grad_norm", 1e-6, 1e6, 1.0),
            dp_delta=number(d, "dp_delta", 1e-12, 0.1, 1e-5),
            dp_target_epsilon=None if target is None else number(d, "dp_target_epsilon", 1e-3, 1e3),
            dp_rounds=integer(d, "dp_rounds", 1, 100_000, 1),
            pos_weight=None if pos_weight is None else number(d, "pos_weight", 1e-3, 1e3),
            seed=integer(d, "seed", 0, 2 ** 62, 0))


@dataclass(frozen=True)
class SecAggRequest:
    """The secure-aggregation part of a training or reveal request (shared.secagg)."""

    participants: dict[str, str]  # every plant asked this attempt -> its X25519 public key, hex
    threshold: int
    fraction_bits: int
    weighting: str
    clip: float
    # every participant's membership certificate and the newest revocation list the dashboard holds
    # (shared.membership), relayed as the administrator signed them: the plant checks them against its pinned key
    certificates: dict = field(default_factory=dict)  # name -> shared.membership.MembershipCertificate's wire form
    revocations: dict | None = None  # shared.membership.RevocationList's wire form

    def to_wire(self) -> dict:
        wire = {"participants": dict(self.participants), "threshold": self.threshold,
                "fraction_bits": self.fraction_bits, "weighting": self.weighting, "clip": self.clip}
        if self.certificates:
            wire["certificates"] = {name: dict(cert) for name, cert in sorted(self.certificates.items())}
        if self.revocations is not None:
            wire["revocations"] = dict(self.revocations)
        return wire

    @classmethod
    def from_wire(cls, d) -> "SecAggRequest":
        if not isinstance(d, dict):
            raise ProtocolError("secagg must be an object")
        participants = obj(d, "participants", "secagg.participants")
        if not 2 <= len(participants) <= MAX_PLANTS:
            raise ProtocolError(f"secagg.participants must name 2 to {MAX_PLANTS} plants")
        for name, key in participants.items():
            plant_name(name, "secagg participant")
            if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{64}", key):
                raise ProtocolError(f"secagg participant {name!r} has no valid X25519 public key (64 hex digits)")
        if len(set(participants.values())) != len(participants):
            raise ProtocolError("two secagg participants share one public key")
        weighting = d.get("weighting")
        if weighting not in WEIGHTINGS:
            raise ProtocolError(f"secagg.weighting {str(weighting)[:20]!r} is not one of {WEIGHTINGS}")
        certificates, revocations = _membership(d, participants)
        return cls(participants=dict(participants), threshold=integer(d, "threshold", 1, MAX_PLANTS),
                   fraction_bits=integer(d, "fraction_bits", 8, 32), weighting=weighting,
                   clip=number(d, "clip", 1e-6, 1e6), certificates=certificates, revocations=revocations)


def _membership(d: dict, participants: dict) -> tuple[dict, dict | None]:
    """The relayed certificates (at most one per participant, for no one else) and revocation list, as objects;
    their fields and whether they are genuine are the plant's check (factory_agent.plant.membership, which parses
    them with shared.membership: that package builds on this one)."""
    raw = d.get("certificates", {})
    if not isinstance(raw, dict) or not set(raw) <= set(participants) or \
            not all(isinstance(cert, dict) for cert in raw.values()):
        raise ProtocolError("secagg.certificates must be an object keyed by participants")
    revocations = d.get("revocations")
    if revocations is not None and not isinstance(revocations, dict):
        raise ProtocolError("secagg.revocations must be an object")
    return dict(raw), revocations


SPEC_LIMITS = (("num_features", 1, MAX_FEATURES), ("sequence_length", 1, 10_000), ("hidden_size", 1, 4096),
               ("channels", 1, 1024), ("num_layers", 1, 8), ("cross_layers", 0, 8))


def check_spec(spec: ModelSpec) -> None:
    """A model spec from the other side, bounded (a plant builds what it describes): whole numbers within
    SPEC_LIMITS and a dropout in [0, 1). The model's size is the plant policy's to bound (max_model_parameters)."""
    for key, low, high in SPEC_LIMITS:
        value = getattr(spec, key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ProtocolError(f"spec.{key} = {str(value)[:40]} is outside [{low}, {high}]")
    if isinstance(spec.dropout, bool) or not isinstance(spec.dropout, (int, float)) or not 0 <= spec.dropout < 1:
        raise ProtocolError(f"spec.dropout = {str(spec.dropout)[:40]} is outside [0, 1)")


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
        features = names(d, "features")
        spec_dict = obj(d, "spec")
        try:
            spec = ModelSpec.from_dict(spec_dict)
        except (TypeError, ValueError, ModelError) as exc:  # ModelError: a value ModelSpec itself refuses
            raise ProtocolError(f"spec is not a model spec: {exc}") from exc
        if spec.num_features != len(features):
            raise ProtocolError(f"spec.num_features {spec.num_features} != {len(features)} features")
        check_spec(spec)
        return cls(features=features, scaler=ScalerMsg.from_wire(d.get("scaler"), len(features)), spec=spec,
                   weights=weights_of(d.get("weights")))

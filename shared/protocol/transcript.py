"""The proof a request carries for the model it names (shared.verification): the experiment's public seed and
strategy, and the transcripts of the secure sums that made each later round's model. Parsed here like every
other part of a request (bounded, typed); whether it proves anything is the plant's check.

A round's transcript holds, for every survivor, its masked update with the metadata the aggregate divides by
and the survivor's signature over both (shared.secagg.statements), and for every holder that revealed, its
revealed shares with its signature: exactly what the dashboard itself used to remove the masks.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

from shared.errors import ProtocolError
from shared.protocol.fields import MAX_ID, MAX_PLANTS, integer, number, obj, plant_name, vector
from shared.protocol.parts import SecAggRequest

MAX_TRANSCRIPTS = 200  # rounds one request may prove (the experiment's rounds are fewer)
MAX_PARAMETERS = 50_000_000  # values of one masked vector (the policy's parameter limit is far lower)
STRATEGY_KEYS = {"algorithm", "mu", "feddyn_alpha", "server_optimizer", "server_lr", "server_momentum", "clip"}
_SIGNATURE = 128  # hex digits of an Ed25519 signature


def _signature(d: dict, key: str, what: str) -> str:
    value = d.get(key)
    if not isinstance(value, str) or len(value) != _SIGNATURE or any(c not in "0123456789abcdef" for c in value):
        raise ProtocolError(f"{what}.{key} must be an Ed25519 signature (128 lowercase hex digits)")
    return value


def optional_signature(d: dict) -> str | None:
    """A reply's `signature`, when it carries one (a plant that verifies models signs what it sends a secure sum)."""
    return _signature(d, "signature", "reply") if d.get("signature") is not None else None


@dataclass(frozen=True)
class Contribution:
    masked: np.ndarray  # uint64: the survivor's y_u
    weight: float
    num_samples: int
    steps: int
    signature: str

    def to_wire(self) -> dict:
        return {"masked": self.masked, "weight": self.weight, "num_samples": self.num_samples, "steps": self.steps,
                "signature": self.signature}

    @classmethod
    def from_wire(cls, d, what: str) -> "Contribution":
        if not isinstance(d, dict) or set(d) != {"masked", "weight", "num_samples", "steps", "signature"}:
            raise ProtocolError(f"{what} must hold masked, weight, num_samples, steps and signature")
        masked = vector(d["masked"], f"{what}.masked", dtype=np.uint64)
        if not 0 < len(masked) <= MAX_PARAMETERS:
            raise ProtocolError(f"{what}.masked must hold 1 to {MAX_PARAMETERS} values")
        return cls(masked=masked, weight=number(d, "weight", 0.0, 2.0 ** 24), num_samples=integer(d, "num_samples"),
                   steps=integer(d, "steps"), signature=_signature(d, "signature", what))


@dataclass(frozen=True)
class Reveal:
    revealed: dict  # shared.secagg.protocol.RevealedShares in its wire form
    signature: str

    def to_wire(self) -> dict:
        return {"revealed": self.revealed, "signature": self.signature}

    @classmethod
    def from_wire(cls, d, what: str) -> "Reveal":
        if not isinstance(d, dict) or set(d) != {"revealed", "signature"}:
            raise ProtocolError(f"{what} must hold revealed and signature")
        return cls(revealed=obj(d, "revealed", f"{what}.revealed"), signature=_signature(d, "signature", what))


@dataclass(frozen=True)
class RoundTranscript:
    round: int
    attempt: int
    secagg: SecAggRequest
    contributions: dict[str, Contribution]  # survivor -> its signed masked update
    reveals: dict[str, Reveal]  # holder -> its signed revealed shares
    federation_size: int = 0  # the eligible plants that round (FedDyn's m; at least the survivors)

    def to_wire(self) -> dict:
        return {"round": self.round, "attempt": self.attempt, "federation_size": self.federation_size,
                "secagg": self.secagg.to_wire(),
                "contributions": {n: c.to_wire() for n, c in sorted(self.contributions.items())},
                "reveals": {n: r.to_wire() for n, r in sorted(self.reveals.items())}}

    @classmethod
    def from_wire(cls, d) -> "RoundTranscript":
        if not isinstance(d, dict) or set(d) != {"round", "attempt", "federation_size", "secagg", "contributions",
                                                 "reveals"}:
            raise ProtocolError("a transcript holds round, attempt, federation_size, secagg, contributions and reveals")
        secagg = SecAggRequest.from_wire(d["secagg"])
        parts = {}
        for key, kind in (("contributions", Contribution), ("reveals", Reveal)):
            raw = obj(d, key, f"transcript.{key}")
            if not 0 < len(raw) <= MAX_PLANTS or not set(raw) <= set(secagg.participants):
                raise ProtocolError(f"transcript.{key} must name 1 to {MAX_PLANTS} of the round's participants")
            parts[key] = {plant_name(n, f"transcript.{key}"): kind.from_wire(v, f"transcript.{key}[{n}]")
                          for n, v in raw.items()}
        lengths = {len(c.masked) for c in parts["contributions"].values()}
        if len(lengths) != 1:
            raise ProtocolError("the transcript's masked updates differ in length")
        size = integer(d, "federation_size", 0, MAX_PLANTS)
        if size and size < len(parts["contributions"]):
            raise ProtocolError("transcript.federation_size is smaller than the round's survivors")
        return cls(round=integer(d, "round", 1), attempt=integer(d, "attempt", 1), secagg=secagg,
                   federation_size=size, **parts)

    def to_bytes(self) -> bytes:
        """For the dashboard's database: the wire form as JSON beside the masked vectors (npz, no pickle)."""
        wire = self.to_wire()
        arrays = {f"masked/{n}": np.asarray(c["masked"], dtype="<u8") for n, c in wire["contributions"].items()}
        for c in wire["contributions"].values():
            c["masked"] = None
        buffer = io.BytesIO()
        np.savez(buffer, wire=np.frombuffer(json.dumps(wire).encode(), dtype=np.uint8), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "RoundTranscript":
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            wire = json.loads(stored["wire"].tobytes())
            for name, c in wire["contributions"].items():
                c["masked"] = stored[f"masked/{name}"].astype(np.uint64)
        return cls.from_wire(wire)


@dataclass(frozen=True)
class ModelProof:
    """The experiment's public seed (its initial model is built from the spec and this seed, at the plant as at the
    dashboard), the strategy that turns a secure sum into the next model, and the transcripts of the rounds the
    plant may not have verified yet, in order."""

    seed: int
    strategy: dict  # shared.verification.strategy's description: the verifiable strategies' parameters only
    transcripts: tuple[RoundTranscript, ...] = ()

    def to_wire(self) -> dict:
        return {"seed": self.seed, "strategy": dict(self.strategy),
                "transcripts": [t.to_wire() for t in self.transcripts]}

    @classmethod
    def from_wire(cls, d) -> "ModelProof":
        if not isinstance(d, dict) or set(d) != {"seed", "strategy", "transcripts"}:
            raise ProtocolError("proof holds seed, strategy and transcripts")
        strategy = obj(d, "strategy", "proof.strategy")
        if set(strategy) != STRATEGY_KEYS:
            raise ProtocolError(f"proof.strategy must name exactly {sorted(STRATEGY_KEYS)}")
        raw = d["transcripts"]
        if not isinstance(raw, list) or len(raw) > MAX_TRANSCRIPTS:
            raise ProtocolError(f"proof.transcripts must be a list of at most {MAX_TRANSCRIPTS} rounds")
        transcripts = tuple(RoundTranscript.from_wire(t) for t in raw)
        rounds = [t.round for t in transcripts]
        if rounds != sorted(set(rounds)):
            raise ProtocolError("proof.transcripts must be in round order, one per round")
        return cls(seed=integer(d, "seed", 0, MAX_ID), strategy=dict(strategy), transcripts=transcripts)


def proof_of(d: dict) -> ModelProof | None:
    """A request's `proof`, when it carries one."""
    return ModelProof.from_wire(d["proof"]) if d.get("proof") is not None else None

"""The stages of one secure-aggregation round (Bonawitz et al. 2017, double masking), as pure functions over
typed messages. Our adaptation to a dashboard that reaches plants only through PySyft calls:

1. mask_and_share (at each plant, in the same call as training): pairwise seeds s_uv from the plants'
   long-term X25519 keys (HKDF-bound to the round), a fresh self-mask seed b_u; y_u = masked fixed-point
   update; b_u and every s_uv are Shamir-shared t-of-n to all participants, each holder's shares sealed
   with AES-GCM for that holder. The aggregator keeps y_u and the sealed shares, which it cannot open.
2. reveal (at each survivor): given who survived (sent y_u) and who dropped, a holder opens the shares
   addressed to it and reveals the b-shares of survivors and the s-shares between survivors and dropouts,
   never both kinds for one plant; a plant answers one survivor list per round attempt (its ledger).
3. unmask (at the aggregator): sum of y_u minus the reconstructed self masks of survivors and the pairwise
   masks survivors shared with dropouts = the sum of the survivors' quantized updates, exactly.

Because every share a survivor's holder needs was dealt by a survivor, a plant that drops before sending
y_u needs nothing from itself; a plant that drops after sending y_u is a survivor whose self mask the
others reconstruct. The aggregator is trusted to relay messages but not to see single updates
(honest-but-curious); substituted public keys would need a PKI, see README "Secure aggregation".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.errors import AggregationError, SecurityError
from shared.secagg import shamir
from shared.secagg.channel import open_sealed, seal
from shared.secagg.keys import CHANNEL, MASK, pairwise_key, public_hex
from shared.secagg.masking import expand, mask, pair_sign
from shared.secagg.quantize import dequantize, quantize

SEED_BYTES = 32


@dataclass(frozen=True)
class RoundSetup:
    """What the aggregator tells a plant when it asks for a masked update."""

    context: str  # "experiment:round:attempt": binds keys and shares to this one attempt
    me: str
    participants: dict[str, str]  # every plant asked this round (including me) -> X25519 public key, hex
    threshold: int
    fraction_bits: int

    def to_dict(self) -> dict:
        return {"context": self.context, "me": self.me, "participants": dict(self.participants),
                "threshold": self.threshold, "fraction_bits": self.fraction_bits}

    @classmethod
    def from_dict(cls, d: dict) -> "RoundSetup":
        setup = cls(context=str(d["context"]), me=str(d["me"]), participants=dict(d["participants"]),
                    threshold=int(d["threshold"]), fraction_bits=int(d["fraction_bits"]))
        if setup.me not in setup.participants:
            raise SecurityError(f"{setup.me!r} is not among the round's participants")
        if not 2 <= setup.threshold <= len(setup.participants):
            raise SecurityError(f"threshold {setup.threshold} is not between 2 and {len(setup.participants)}")
        return setup

    @property
    def names(self) -> list[str]:
        return sorted(self.participants)

    def x_of(self, name: str) -> int:
        return self.names.index(name) + 1


@dataclass(frozen=True)
class MaskedUpdate:
    masked: np.ndarray  # uint64, the plant's y_u
    sealed: dict[str, bytes]  # holder -> the shares dealt to that holder, sealed for it


@dataclass(frozen=True)
class RevealedShares:
    holder: str
    x: int
    self_shares: dict[str, int]  # survivor u -> share of b_u
    pair_shares: dict[str, dict[str, int]]  # survivor u -> dropout v -> share of s_uv

    def to_dict(self) -> dict:
        return {"holder": self.holder, "x": self.x, "self_shares": {k: hex(v) for k, v in self.self_shares.items()},
                "pair_shares": {u: {v: hex(s) for v, s in d.items()} for u, d in self.pair_shares.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "RevealedShares":
        return cls(holder=d["holder"], x=int(d["x"]), self_shares={k: int(v, 16) for k, v in d["self_shares"].items()},
                   pair_shares={u: {v: int(s, 16) for v, s in m.items()} for u, m in d["pair_shares"].items()})


def _seed_int(seed: bytes) -> int:
    return int.from_bytes(seed, "big")


def _seed_bytes(value: int) -> bytes:
    if value >= 1 << (8 * SEED_BYTES):
        raise AggregationError("a reconstructed seed is out of range: inconsistent shares")
    return value.to_bytes(SEED_BYTES, "big")


def mask_and_share(setup: RoundSetup, private_key: X25519PrivateKey, contribution: np.ndarray) -> MaskedUpdate:
    """Stage 1 at plant `setup.me`: the masked fixed-point contribution and the sealed shares of its seeds."""
    if public_hex(private_key) != setup.participants[setup.me]:
        raise SecurityError(f"the public key the aggregator holds for {setup.me!r} is not this plant's key")
    others = {v: pk for v, pk in setup.participants.items() if v != setup.me}
    pair_seeds = {v: pairwise_key(private_key, setup.me, v, pk, MASK, setup.context) for v, pk in others.items()}
    self_seed = os.urandom(SEED_BYTES)
    masked = mask(quantize(contribution, setup.fraction_bits), self_seed, pair_seeds, setup.me)
    holders = setup.names
    self_split = shamir.split(_seed_int(self_seed), len(holders), setup.threshold)
    pair_split = {v: shamir.split(_seed_int(seed), len(holders), setup.threshold) for v, seed in pair_seeds.items()}
    sealed = {}
    for i, holder in enumerate(holders):
        payload = {"x": i + 1, "b": hex(self_split[i][1]), "s": {v: hex(s[i][1]) for v, s in pair_split.items()}}
        key = pairwise_key(private_key, setup.me, holder, setup.participants[holder], CHANNEL, setup.context)
        sealed[holder] = seal(key, payload, setup.context, setup.me, holder)
    return MaskedUpdate(masked=masked, sealed=sealed)


def reveal(setup: RoundSetup, private_key: X25519PrivateKey, survivors: list[str], sealed: dict[str, bytes],
           record_reveal: Callable[[str, list[str]], None]) -> RevealedShares:
    """Stage 2 at holder `setup.me`: open the shares survivors dealt to it; reveal b-shares of survivors and
    s-shares of (survivor, dropout) pairs. `record_reveal(context, survivors)` is the holder's memory: it
    raises when the holder already answered another survivor list for this context (a plant answers one
    list per round attempt, so it never reveals the self-mask share and the pairwise shares of one plant)."""
    survivor_set = set(survivors)
    if not survivor_set <= set(setup.participants) or len(survivor_set) != len(survivors):
        raise SecurityError("the survivor list names plants that were not asked this round, or one twice")
    if len(survivor_set) < setup.threshold:
        raise SecurityError(f"only {len(survivor_set)} survivors for threshold {setup.threshold}")
    dropouts = sorted(set(setup.participants) - survivor_set)
    record_reveal(setup.context, sorted(survivors))
    me, x = setup.me, setup.x_of(setup.me)
    self_shares, pair_shares = {}, {}
    for dealer in sorted(survivor_set):
        if dealer not in sealed:
            raise SecurityError(f"no share from survivor {dealer!r} was forwarded to {me!r}")
        key = pairwise_key(private_key, me, dealer, setup.participants[dealer], CHANNEL, setup.context)
        payload = open_sealed(key, sealed[dealer], setup.context, dealer, me)
        if payload["x"] != x:
            raise SecurityError(f"the share from {dealer!r} was dealt for another holder")
        self_shares[dealer] = int(payload["b"], 16)
        pair_shares[dealer] = {v: int(payload["s"][v], 16) for v in dropouts}
    return RevealedShares(holder=me, x=x, self_shares=self_shares, pair_shares=pair_shares)


def unmask(participants: list[str], masked: dict[str, np.ndarray], revealed: list[RevealedShares], threshold: int,
           fraction_bits: int) -> np.ndarray:
    """Stage 3 at the aggregator: the sum of the survivors' contributions (float64), or AggregationError when
    fewer than `threshold` holders revealed their shares."""
    survivors = sorted(masked)
    dropouts = sorted(set(participants) - set(survivors))
    holders = {r.x: r for r in revealed}
    if len(holders) < threshold:
        raise AggregationError(f"secure aggregation: only {len(holders)} plant(s) revealed their shares, "
                               f"{threshold} are needed to remove the masks; the round cannot be unmasked")
    length = len(next(iter(masked.values())))
    total = np.zeros(length, dtype=np.uint64)
    for u in survivors:
        if len(masked[u]) != length:
            raise AggregationError(f"the masked update of {u!r} has {len(masked[u])} values, expected {length}")
        total += np.asarray(masked[u], dtype=np.uint64)
    for u in survivors:
        seed = shamir.reconstruct([(r.x, r.self_shares[u]) for r in holders.values()], threshold)
        total -= expand(_seed_bytes(seed), length)
        for v in dropouts:
            seed = shamir.reconstruct([(r.x, r.pair_shares[u][v]) for r in holders.values()], threshold)
            if pair_sign(u, v) > 0:
                total -= expand(_seed_bytes(seed), length)
            else:
                total += expand(_seed_bytes(seed), length)
    return dequantize(total, fraction_bits)

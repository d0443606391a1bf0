"""Mask expansion and application (Bonawitz et al. 2017, §4: double masking).

A 32-byte seed expands into a vector of uint64 with ChaCha20 (from `cryptography`) as the PRG: the
keystream of a zero nonce (each seed is used for one vector only: seeds are fresh per round and pair).
Plant u sends y_u = x_u + PRG(b_u) + sum_{v > u} PRG(s_uv) - sum_{v < u} PRG(s_uv)  (mod 2^64), so the
pairwise masks cancel in the sum over plants and the self mask b_u is removed once the survivors reveal it.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

NONCE = bytes(16)


def expand(seed: bytes, length: int) -> np.ndarray:
    encryptor = Cipher(algorithms.ChaCha20(seed, NONCE), mode=None).encryptor()
    return np.frombuffer(encryptor.update(bytes(8 * length)), dtype=np.uint64).copy()


def pair_sign(me: str, peer: str) -> int:
    """+1 when `me` sorts before `peer`, else -1: the two plants of a pair add opposite masks."""
    return 1 if me < peer else -1


def mask(values: np.ndarray, self_seed: bytes, pair_seeds: dict[str, bytes], me: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.uint64) + expand(self_seed, len(values))
    for peer, seed in pair_seeds.items():
        if pair_sign(me, peer) > 0:
            out += expand(seed, len(values))
        else:
            out -= expand(seed, len(values))
    return out

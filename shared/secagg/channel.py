"""Shares travel through the aggregator encrypted for their holder: AES-256-GCM (from `cryptography`) under a
pairwise channel key, with (context, dealer, holder) as associated data so that a share replayed from
another round, attempt or pair fails authentication."""

from __future__ import annotations

import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.errors import SecurityError


def associated_data(context: str, dealer: str, holder: str) -> bytes:
    return json.dumps(["factoryfl/secagg/share", context, dealer, holder]).encode()


def seal(key: bytes, payload: dict, context: str, dealer: str, holder: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, json.dumps(payload).encode(), associated_data(context, dealer, holder))


def open_sealed(key: bytes, blob: bytes, context: str, dealer: str, holder: str) -> dict:
    try:
        plain = AESGCM(key).decrypt(bytes(blob[:12]), bytes(blob[12:]), associated_data(context, dealer, holder))
    except (InvalidTag, ValueError) as exc:
        raise SecurityError(f"the share from {dealer!r} does not authenticate for {context!r} "
                            "(replayed from another round, or tampered with)") from exc
    return json.loads(plain)

"""What a plant signs when it takes part in a secure sum, so that any other member can check a round's transcript
(shared.verification): its masked update with the public metadata the aggregate divides by, and the shares it
revealed. Each statement is Ed25519 (RFC 8032) by the plant's identity key, the key its membership certificate
holds, over a domain prefix and canonical JSON; the masked vector enters as its SHA-256 (little-endian uint64).

The prefixes keep a statement from being valid as a registration or as another kind of statement.
"""

from __future__ import annotations

import hashlib

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.identity import canonical_json, load_public_key

CONTRIBUTION_DOMAIN = b"FactoryFL secure-sum contribution v1\n"
REVEAL_DOMAIN = b"FactoryFL secure-sum reveal v1\n"


def masked_digest(masked: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(masked, dtype="<u8").tobytes()).hexdigest()


def contribution_message(context: str, plant: str, masked: np.ndarray, weight: float, num_samples: int,
                         steps: int) -> bytes:
    body = {"context": context, "plant": plant, "masked": masked_digest(masked), "weight": repr(float(weight)),
            "num_samples": int(num_samples), "steps": int(steps)}
    return CONTRIBUTION_DOMAIN + canonical_json(body)


def reveal_message(context: str, holder: str, revealed: dict) -> bytes:
    return REVEAL_DOMAIN + canonical_json({"context": context, "holder": holder, "revealed": revealed})


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return key.sign(message).hex()


def verify(public_hex: str, signature_hex: str, message: bytes) -> bool:
    """Whether the Ed25519 key `public_hex` signed `message`; False for anything malformed."""
    try:
        load_public_key(public_hex).verify(bytes.fromhex(signature_hex), message)
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False

"""Pairwise keys: X25519 agreement between two plants' long-term keys, then HKDF-SHA256 bound to a purpose
and a context (experiment, round, attempt) and the pair, so that every round and every use gets fresh,
independent keys (RFC 7748, RFC 5869; primitives from `cryptography`)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.errors import SecurityError

MASK = b"factoryfl/secagg/mask"
CHANNEL = b"factoryfl/secagg/channel"


def load_private_key(pem: bytes) -> X25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, X25519PrivateKey):
        raise SecurityError("the plant's secure-aggregation key is not an X25519 key")
    return key


def public_hex(key: X25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_public_key(hex_key: str) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(bytes.fromhex(hex_key))
    except ValueError as exc:
        raise SecurityError(f"malformed X25519 public key {hex_key[:16]!r}...: {exc}") from exc


def pair_info(purpose: bytes, context: str, a: str, b: str) -> bytes:
    first, second = sorted((a, b))
    return b"|".join([purpose, context.encode(), first.encode(), second.encode()])


def pairwise_key(private: X25519PrivateKey, me: str, peer: str, peer_public_hex: str, purpose: bytes,
                 context: str) -> bytes:
    """32 bytes both plants of a pair derive alike; nobody else can."""
    shared = private.exchange(load_public_key(peer_public_hex))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=pair_info(purpose, context, me, peer)).derive(shared)

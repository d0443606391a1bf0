"""A plant's identity key and the signature on its registration (DESIGN §4): one definition for both sides.

The plant holds a long-term Ed25519 key (RFC 8032) in its state folder. Every registration carries its public
key (`identity_public_key`, 32 bytes in hex) and a signature, by that key, over

    b"FactoryFL registration v1\\n" + timestamp + b"\\n" + canonical JSON of the body

where `timestamp` is the `X-FactoryFL-Timestamp` header (Unix seconds, decimal, a fraction allowed) and the
canonical JSON has sorted keys, no spaces, ASCII escapes and no NaN or Infinity (what `json.dumps` writes with
those options; the dashboard re-serialises the body it parsed the same way, so key order and spacing on the
wire do not matter). The signature goes in `X-FactoryFL-Signature` (64 bytes in hex). The prefix keeps a
registration signature from being valid for anything else the key might ever sign.
"""

from __future__ import annotations

import hashlib
import json
import math

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_HEADER = "X-FactoryFL-Signature"
TIMESTAMP_HEADER = "X-FactoryFL-Timestamp"
MAX_CLOCK_SKEW_S = 300.0  # a signed registration is accepted up to 5 minutes either side of the dashboard's clock
_DOMAIN = b"FactoryFL registration v1\n"
PUBLIC_KEY_HEX_LEN = 64
SIGNATURE_HEX_LEN = 128


def canonical_json(body: dict) -> bytes:
    """The bytes that are signed. ValueError for NaN or Infinity (not JSON)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def registration_message(timestamp: str, body: dict) -> bytes:
    return _DOMAIN + timestamp.encode("ascii") + b"\n" + canonical_json(body)


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_public_key(value: str) -> Ed25519PublicKey:
    """ValueError unless `value` is 64 hex digits encoding an Ed25519 public key."""
    if not isinstance(value, str) or len(value) != PUBLIC_KEY_HEX_LEN:
        raise ValueError(f"must be {PUBLIC_KEY_HEX_LEN} hex digits (an Ed25519 public key)")
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))
    except ValueError as exc:
        raise ValueError(f"is not an Ed25519 public key in hex: {exc}") from None


def fingerprint(public_hex: str | None) -> str | None:
    """Short and stable, for people to compare (the agent logs it, the dashboard shows it): the first 16 hex
    digits of SHA-256 over the raw public key."""
    if not public_hex:
        return None
    try:
        raw = bytes.fromhex(public_hex)
    except ValueError:
        raw = public_hex.encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_registration(key: Ed25519PrivateKey, timestamp: str, body: dict) -> str:
    return key.sign(registration_message(timestamp, body)).hex()


def parse_timestamp(value: str) -> float:
    """ValueError unless `value` is a finite decimal number of seconds."""
    if len(value) > 32:
        raise ValueError("is too long")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError("is not a finite number")
    return seconds


def verify_registration(public_hex: str, signature_hex: str, timestamp: str, body: dict) -> bool:
    """Whether `signature_hex` is the key's signature over this timestamp and body. ValueError for a key or
    signature that is not well formed, or a body that has no canonical JSON form."""
    key = load_public_key(public_hex)
    if len(signature_hex) != SIGNATURE_HEX_LEN:
        raise ValueError(f"the signature must be {SIGNATURE_HEX_LEN} hex digits (Ed25519)")
    signature = bytes.fromhex(signature_hex)
    try:
        key.verify(signature, registration_message(timestamp, body))
    except InvalidSignature:
        return False
    return True

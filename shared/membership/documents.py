"""The signed documents of federation membership and their one canonical encoding.

Each document is signed with the federation's Ed25519 key (RFC 8032) over

    DOMAIN + canonical JSON of the document without its signature

(shared.identity.canonical_json: sorted keys, no spaces, ASCII escapes). Each kind has its own domain prefix, so a
certificate's signature is never valid as a revocation list's, nor as anything a plant's own key signs
(registrations use "FactoryFL registration v1"). Every document names its federation (`federation`: the
fingerprint of the federation's public key), so a plant that holds another key says so instead of "bad signature".

Wire forms are read as hostile (habit 17): exact key sets, plant names by the protocol's one rule
(shared.protocol.fields.plant_name), keys as 64 lowercase hex digits, bounded integers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.errors import MembershipError, ProtocolError
from shared.identity import canonical_json, fingerprint, public_key_hex
from shared.protocol.fields import plant_name

CERTIFICATE_DOMAIN = b"FactoryFL membership certificate v1\n"
REVOCATION_DOMAIN = b"FactoryFL revocation list v1\n"
VERSION = 1
MAX_SERIAL = 2 ** 53  # exact in every JSON reader
MAX_TIME = 2 ** 40  # Unix seconds (year 36812): a bound, not a policy
MAX_REVOKED = 100_000
_HEX32 = re.compile(r"[0-9a-f]{64}")
_HEX64 = re.compile(r"[0-9a-f]{128}")
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


def federation_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The federation's name in every document: the fingerprint of its public key (shared.identity.fingerprint)."""
    return fingerprint(public_key_hex(key))


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_pem(data: bytes, source: str) -> Ed25519PublicKey:
    """The federation's public key from its PEM file; MembershipError naming `source` for anything else."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise MembershipError(f"{source}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise MembershipError(f"{source}: not an Ed25519 public key (the federation key is Ed25519)")
    return key


def _exact_keys(d, expected: set[str], what: str) -> dict:
    if not isinstance(d, dict):
        raise ProtocolError(f"{what} must be an object")
    if set(d) != expected:
        missing, extra = sorted(expected - set(d)), sorted(set(d) - expected)[:5]
        raise ProtocolError(f"{what}: missing {missing}, unknown {extra}")
    return d


def _int(d: dict, key: str, what: str, high: int) -> int:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ProtocolError(f"{what}.{key} must be a whole number in [0, {high}], got {str(value)[:30]!r}")
    return value


def _hex(d: dict, key: str, what: str, pattern: re.Pattern) -> str:
    value = d[key]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ProtocolError(f"{what}.{key} is not {pattern.pattern} (lowercase hex)")
    return value


def _verify(key: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex), message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class MembershipRequest:
    """What a plant writes into its state folder at start-up for the administrator (out of band): its name and
    its two public keys. Unsigned: the administrator compares the identity key's fingerprint with the one the
    plant's data owner reads from the plant's log."""

    plant: str
    identity_public_key: str  # Ed25519, raw, hex
    secagg_public_key: str  # X25519, raw, hex

    def to_wire(self) -> dict:
        return asdict(self)

    @classmethod
    def from_wire(cls, d) -> "MembershipRequest":
        what = "membership request"
        d = _exact_keys(d, {"plant", "identity_public_key", "secagg_public_key"}, what)
        return cls(plant=plant_name(d["plant"], f"{what}.plant"),
                   identity_public_key=_hex(d, "identity_public_key", what, _HEX32),
                   secagg_public_key=_hex(d, "secagg_public_key", what, _HEX32))

    @property
    def fingerprint(self) -> str:
        """The identity key's fingerprint, as the plant logs it."""
        return fingerprint(self.identity_public_key)


@dataclass(frozen=True)
class MembershipCertificate:
    """The federation's word that `plant` is a member, holding these two keys, from `issued_at` until
    `expires_at` (Unix seconds), unless its `serial` is revoked."""

    federation: str  # federation_id of the signing key
    plant: str
    identity_public_key: str
    secagg_public_key: str
    serial: int
    issued_at: int
    expires_at: int
    signature: str = ""  # Ed25519 over CERTIFICATE_DOMAIN + canonical JSON of the other fields, hex
    version: int = VERSION

    def body(self) -> dict:
        d = asdict(self)
        d.pop("signature")
        return d

    def message(self) -> bytes:
        return CERTIFICATE_DOMAIN + canonical_json(self.body())

    def to_wire(self) -> dict:
        return asdict(self)

    @classmethod
    def from_wire(cls, d) -> "MembershipCertificate":
        what = "membership certificate"
        d = _exact_keys(d, {f for f in cls.__dataclass_fields__}, what)
        if d["version"] != VERSION:
            raise ProtocolError(f"{what}.version {str(d['version'])[:10]!r} is not {VERSION}")
        cert = cls(federation=_hex(d, "federation", what, _FINGERPRINT), plant=plant_name(d["plant"], f"{what}.plant"),
                   identity_public_key=_hex(d, "identity_public_key", what, _HEX32),
                   secagg_public_key=_hex(d, "secagg_public_key", what, _HEX32),
                   serial=_int(d, "serial", what, MAX_SERIAL), issued_at=_int(d, "issued_at", what, MAX_TIME),
                   expires_at=_int(d, "expires_at", what, MAX_TIME), signature=_hex(d, "signature", what, _HEX64))
        if cert.expires_at <= cert.issued_at:
            raise ProtocolError(f"{what} for {cert.plant!r} expires before it is issued")
        return cert

    @classmethod
    def issue(cls, key: Ed25519PrivateKey, request: MembershipRequest, serial: int, issued_at: int,
              expires_at: int) -> "MembershipCertificate":
        unsigned = cls(federation=federation_id(key), plant=request.plant,
                       identity_public_key=request.identity_public_key, secagg_public_key=request.secagg_public_key,
                       serial=serial, issued_at=issued_at, expires_at=expires_at)
        return cls.from_wire({**unsigned.to_wire(), "signature": key.sign(unsigned.message()).hex()})

    def signed_by(self, key: Ed25519PublicKey) -> bool:
        """Whether `key` (the pinned federation key) signed exactly this certificate."""
        return self.federation == federation_id(key) and _verify(key, self.signature, self.message())


@dataclass(frozen=True)
class RevocationList:
    """The certificates the federation has withdrawn, by serial. `serial` only grows: a plant keeps the newest
    list it has seen, so nobody can hand it an older one to bring a revoked plant back."""

    federation: str
    serial: int
    issued_at: int
    revoked: tuple[int, ...] = field(default_factory=tuple)  # certificate serials, sorted
    signature: str = ""
    version: int = VERSION

    def body(self) -> dict:
        d = self.to_wire()
        d.pop("signature")
        return d

    def message(self) -> bytes:
        return REVOCATION_DOMAIN + canonical_json(self.body())

    def to_wire(self) -> dict:
        return {**asdict(self), "revoked": list(self.revoked)}

    @classmethod
    def from_wire(cls, d) -> "RevocationList":
        what = "revocation list"
        d = _exact_keys(d, {f for f in cls.__dataclass_fields__}, what)
        if d["version"] != VERSION:
            raise ProtocolError(f"{what}.version {str(d['version'])[:10]!r} is not {VERSION}")
        revoked = d["revoked"]
        if not isinstance(revoked, list) or len(revoked) > MAX_REVOKED:
            raise ProtocolError(f"{what}.revoked must be a list of at most {MAX_REVOKED} serials")
        serials = tuple(_int({"serial": s}, "serial", f"{what}.revoked", MAX_SERIAL) for s in revoked)
        if list(serials) != sorted(set(serials)):
            raise ProtocolError(f"{what}.revoked must be sorted, each serial once")
        return cls(federation=_hex(d, "federation", what, _FINGERPRINT), serial=_int(d, "serial", what, MAX_SERIAL),
                   issued_at=_int(d, "issued_at", what, MAX_TIME), revoked=serials,
                   signature=_hex(d, "signature", what, _HEX64))

    @classmethod
    def issue(cls, key: Ed25519PrivateKey, serial: int, issued_at: int, revoked) -> "RevocationList":
        unsigned = cls(federation=federation_id(key), serial=serial, issued_at=issued_at,
                       revoked=tuple(sorted(set(revoked))))
        return cls.from_wire({**unsigned.to_wire(), "signature": key.sign(unsigned.message()).hex()})

    def signed_by(self, key: Ed25519PublicKey) -> bool:
        return self.federation == federation_id(key) and _verify(key, self.signature, self.message())


def document_from_wire(d) -> MembershipCertificate | RevocationList | MembershipRequest:
    """Whichever of the three `d` is (for `show` and the dashboard's upload)."""
    if isinstance(d, dict) and "revoked" in d:
        return RevocationList.from_wire(d)
    if isinstance(d, dict) and "signature" in d:
        return MembershipCertificate.from_wire(d)
    return MembershipRequest.from_wire(d)

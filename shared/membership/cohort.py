"""The plant's check of a secure-aggregation cohort against its pinned federation key: pure, no I/O.

A plant's masks open to whoever holds the keys of `threshold` participants (Bonawitz et al. 2017, §4), so every
participant must be a member the federation's administrator admitted with exactly that key: a certificate signed
by the pinned key, for that name and that X25519 key, valid now and not on the newest revocation list the plant
has seen. The plant's own certificate must also hold its own identity key. One failing member refuses the whole
cohort, before any work.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.errors import MembershipError
from shared.membership.documents import MembershipCertificate, RevocationList, federation_id

CLOCK_SKEW_S = 300  # a certificate issued up to 5 minutes "in the future" of the plant's clock is accepted


def check_cohort(pinned: Ed25519PublicKey, participants: dict[str, str],
                 certificates: dict[str, MembershipCertificate], revocations: RevocationList | None, now: float,
                 me: str, my_identity_key: str) -> None:
    """MembershipError naming the first member (by name) that fails, and why; nothing when every one holds."""
    federation = federation_id(pinned)
    if revocations is not None and not revocations.signed_by(pinned):
        raise MembershipError(f"the revocation list is not signed by this plant's federation key {federation}")
    revoked = set(revocations.revoked) if revocations is not None else set()
    for name in sorted(participants):
        cert = certificates.get(name)
        if cert is None:
            raise MembershipError(f"participant {name!r} has no membership certificate")
        if cert.federation != federation:
            raise MembershipError(f"the certificate of {name!r} is from federation {cert.federation}, not this "
                                  f"plant's {federation}")
        if not cert.signed_by(pinned):
            raise MembershipError(f"the certificate of {name!r} is not signed by this plant's federation key "
                                  f"{federation}")
        if cert.plant != name:
            raise MembershipError(f"the certificate given for {name!r} admits {cert.plant!r}")
        if cert.secagg_public_key != participants[name]:
            raise MembershipError(f"{name!r} is named with another secure-aggregation key than its certificate's")
        if name == me and cert.identity_public_key != my_identity_key:
            raise MembershipError(f"the certificate given for this plant ({me}) holds another identity key")
        if not cert.issued_at - CLOCK_SKEW_S <= now < cert.expires_at:
            raise MembershipError(f"the certificate of {name!r} (serial {cert.serial}) is not valid now (valid "
                                  f"{cert.issued_at} to {cert.expires_at}, Unix seconds)")
        if cert.serial in revoked:
            raise MembershipError(f"the certificate of {name!r} (serial {cert.serial}) is revoked (revocation list "
                                  f"{revocations.serial})")

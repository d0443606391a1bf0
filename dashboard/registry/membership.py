"""The dashboard's part in membership (shared.membership): it relays, it never decides.

The federation's administrator uploads each plant's certificate and each new revocation list (operator API,
admin role); the dashboard checks only that they are well formed and that a certificate names a registered plant
with the keys the plant registered (a mismatch would only make the plants refuse the round), keeps them, and puts
them into every secure round's request. Whether they are genuine is each plant's check against the federation key
it pinned: the dashboard holds no key that could make one, so its database or CA folder admits no one.
"""

from __future__ import annotations

import logging

from dashboard.extensions import db
from dashboard.models import Factory, RevocationRecord, record_audit
from shared.errors import ProtocolError, ValidationError
from shared.membership import MembershipCertificate, RevocationList

log = logging.getLogger(__name__)


def store_certificate(wire) -> MembershipCertificate:
    """Keep `wire` as its plant's certificate; ValidationError when it is malformed or names another plant's keys."""
    try:
        cert = MembershipCertificate.from_wire(wire)
    except ProtocolError as exc:
        raise ValidationError("certificate", str(exc)) from None
    factory = db.session.scalar(db.select(Factory).where(Factory.name == cert.plant))
    if factory is None:
        raise ValidationError("certificate", f"no plant {cert.plant!r} is registered")
    if (cert.secagg_public_key, cert.identity_public_key) != (factory.secagg_public_key, factory.identity_public_key):
        raise ValidationError("certificate", f"it holds other keys than {cert.plant!r} registered")
    factory.membership_certificate = cert.to_wire()
    record_audit("operator", "factory.membership_certificate", cert.plant, serial=cert.serial,
                 federation=cert.federation)
    db.session.commit()
    log.info("membership certificate %s of federation %s stored for %s", cert.serial, cert.federation, cert.plant)
    return cert


def store_revocations(wire) -> RevocationList:
    """Keep `wire` when it is newer than the kept list (ValidationError for an older or malformed one)."""
    try:
        listing = RevocationList.from_wire(wire)
    except ProtocolError as exc:
        raise ValidationError("revocations", str(exc)) from None
    kept = db.session.get(RevocationRecord, 1)
    if kept is not None and listing.serial <= kept.serial:
        raise ValidationError("revocations", f"serial {listing.serial} is not newer than the kept {kept.serial}")
    if kept is None:
        db.session.add(RevocationRecord(id=1, serial=listing.serial, document=listing.to_wire()))
    else:
        kept.serial, kept.document = listing.serial, listing.to_wire()
    record_audit("operator", "membership.revocations", None, serial=listing.serial, revoked=len(listing.revoked))
    db.session.commit()
    return listing


def revocations() -> RevocationList | None:
    kept = db.session.get(RevocationRecord, 1)
    return RevocationList.from_wire(kept.document) if kept is not None else None


def certificate(factory: Factory) -> MembershipCertificate | None:
    """The plant's relayed certificate, when it still holds the keys the plant registers now."""
    if not factory.membership_certificate:
        return None
    cert = MembershipCertificate.from_wire(factory.membership_certificate)
    same = (cert.secagg_public_key, cert.identity_public_key) == (factory.secagg_public_key,
                                                                  factory.identity_public_key)
    return cert if same else None

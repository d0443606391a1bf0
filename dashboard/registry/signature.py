"""A signed registration (DESIGN §4, shared.identity): the plant's identity key signs the canonical JSON body
and a timestamp. The dashboard accepts the signature within MAX_CLOCK_SKEW_S of its own clock and never the same
signature twice (a replay): each one is remembered for as long as its timestamp could still be accepted.
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

from flask import request
from sqlalchemy.exc import IntegrityError

from dashboard.extensions import db
from dashboard.models import SeenSignature
from dashboard.models.base import utcnow
from dashboard.errors import Unauthorized
from shared.identity import MAX_CLOCK_SKEW_S, SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_timestamp, verify_registration


def verified_signature(identity_public_key: str, body: dict) -> bool:
    """True for a fresh, valid signature by the claimed key (remembered against replays); False when the
    request carries none; Unauthorized for a bad, stale or replayed one."""
    signature, stamp = request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER)
    if not signature and not stamp:
        return False
    if not signature or not stamp:
        raise Unauthorized(f"a signed registration carries both {SIGNATURE_HEADER} and {TIMESTAMP_HEADER}")
    try:
        skew = parse_timestamp(stamp) - time.time()
    except ValueError:
        raise Unauthorized(f"{TIMESTAMP_HEADER} must be Unix time in seconds, got {stamp[:40]!r}") from None
    if abs(skew) > MAX_CLOCK_SKEW_S:
        raise Unauthorized(f"the registration is signed {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the "
                           f"dashboard's clock (at most {MAX_CLOCK_SKEW_S:.0f} s): an old request sent again, or a "
                           "plant clock that is off (set up NTP)")
    try:
        valid = verify_registration(identity_public_key, signature.strip().lower(), stamp, body)
    except ValueError as exc:
        raise Unauthorized(f"the registration's signature is malformed: {exc}") from None
    if not valid:
        raise Unauthorized("the registration's signature does not verify with its identity_public_key (over "
                           f"the canonical JSON body and {TIMESTAMP_HEADER})")
    _remember(hashlib.sha256(bytes.fromhex(signature.strip())).hexdigest())
    return True


def _remember(signature_hash: str) -> None:
    now = utcnow()
    # a signature is usable for 2 x the skew window at most (timestamp ± skew): older records protect nothing
    db.session.execute(db.delete(SeenSignature).where(
        SeenSignature.seen_at < now - timedelta(seconds=2 * MAX_CLOCK_SKEW_S)))
    replay = Unauthorized("this signed registration was already received (a replay): each registration is "
                          "signed afresh with the current time")
    if db.session.get(SeenSignature, signature_hash) is not None:
        raise replay
    db.session.add(SeenSignature(signature_hash=signature_hash, seen_at=now))
    try:
        db.session.flush()  # two copies at once: the second waits on the first's row, then fails here
    except IntegrityError:
        db.session.rollback()
        raise replay from None

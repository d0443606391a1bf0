"""Whether this plant masks in a secure-aggregation cohort: only when every member is certified by the federation
key its data owner pinned (shared.membership), unless its policy trusts the dashboard (`trust_dashboard`).

The revocation list relayed with the request is kept when it is genuine and newer than the one the plant holds;
the check always uses the newest the plant has seen, so a relay cannot bring a revoked member back.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from factory_agent.plant.policy import PlantPolicy
from factory_agent.plant.state import PlantState
from shared.errors import MembershipError, PolicyRefusal, ProtocolError
from shared.membership import MembershipCertificate, RevocationList, check_cohort, federation_id
from shared.protocol import SecAggRequest

log = logging.getLogger(__name__)
NO_FEDERATION_KEY = ("this plant has no pinned federation key, so it masks in no secure-aggregation cohort: start it "
                     "with --federation-key (the federation administrator's public key, handed over by its data "
                     "owner), or with --trust-dashboard if its owner runs the dashboard")
TRUSTS_THE_DASHBOARD = ("--trust-dashboard: this plant masks in whatever cohort the dashboard names, so whoever holds "
                        "the dashboard's database can invent members and open this plant's single update")


COMPUTES_ON_ANY_MODEL = ("this plant computes on whatever model the dashboard sends (--trust-dashboard or "
                         "--verify-models no): a model chosen by whoever holds the dashboard's database can read rows "
                         "through a training or evaluation call")
VERIFIES = ("verified models: this plant trains, evaluates, personalizes and scores only models it derived itself from "
            "the public seed and its members' signed secure sums (README, Verified rounds)")


def models_mode(policy: PlantPolicy) -> str:
    """One sentence for the start-up log: which models this plant computes on."""
    return VERIFIES if policy.verifies_models else COMPUTES_ON_ANY_MODEL


def mode(policy: PlantPolicy, state: PlantState) -> str:
    """One sentence for the start-up log: how this plant decides whom it masks with."""
    if policy.trust_dashboard:
        return TRUSTS_THE_DASHBOARD
    key = state.federation_key()
    if key is None:
        return NO_FEDERATION_KEY
    return (f"membership: this plant masks only among plants certified by federation key {federation_id(key)} "
            f"({state.federation_key_path})")


def check_membership(policy: PlantPolicy, state: PlantState, me: str, secagg: SecAggRequest,
                     now: float | None = None) -> None:
    """PolicyRefusal, before any work, unless every participant holds a valid certificate of the pinned key."""
    if policy.trust_dashboard:
        return
    key = state.federation_key()
    if key is None:
        raise PolicyRefusal(NO_FEDERATION_KEY)
    try:
        offered = RevocationList.from_wire(secagg.revocations) if secagg.revocations is not None else None
        certificates = {name: MembershipCertificate.from_wire(w) for name, w in secagg.certificates.items()}
    except ProtocolError as exc:
        raise PolicyRefusal(f"membership: a relayed document is malformed ({exc})") from None
    if offered is not None and not offered.signed_by(key):
        raise PolicyRefusal(f"membership: the relayed revocation list is not signed by this plant's federation key "
                            f"{federation_id(key)}")
    kept = state.newest_revocations(offered.to_wire() if offered is not None else None,
                                    offered.serial if offered is not None else None)
    revocations = RevocationList.from_wire(kept) if kept is not None else None
    try:
        check_cohort(key, secagg.participants, certificates, revocations,
                     time.time() if now is None else now, me, state.identity_public_key())
    except MembershipError as exc:
        raise PolicyRefusal(f"membership: {exc}; this plant masks only among members of its federation") from None


def enrol(state: PlantState, name: str, federation_key: Path | None, reset: bool, policy: PlantPolicy) -> None:
    """At the agent's start: pin the federation key (--federation-key), write the membership request for the
    administrator, and say in one line whom this plant masks with."""
    from shared.identity import fingerprint

    if federation_key is not None:
        state.pin_federation_key(federation_key, reset=reset)
    path = state.write_membership_request(name)
    log.info("membership request %s: identity key fingerprint %s; the federation's administrator admits this plant "
             "from it (python -m shared.membership admit) after comparing that fingerprint", path,
             fingerprint(state.identity_public_key()))
    (log.warning if policy.trust_dashboard or state.federation_key() is None else log.info)(mode(policy, state))
    (log.info if policy.verifies_models else log.warning)(models_mode(policy))

"""A federation administrator for tests and benches (shared.membership.admin): one key per folder, made on first
use; `enrol` pins it into a plant's state folder and admits the plant, as the data owner and the administrator
would by hand."""

from __future__ import annotations

from pathlib import Path

from factory_agent.plant.state import PlantState
from shared.membership import MembershipCertificate, MembershipRequest
from shared.membership.admin import PUBLIC_KEY_FILE, Administrator


def administrator(directory: Path) -> Administrator:
    admin = Administrator(Path(directory))
    if not admin.private_key_path.exists():
        admin.keygen()
    return admin


def enrol(admin: Administrator, state: PlantState, name: str) -> MembershipCertificate:
    """Pin `admin`'s key at the plant and admit it: the plant's certificate."""
    state.pin_federation_key(admin.directory / PUBLIC_KEY_FILE)
    request = MembershipRequest(plant=name, identity_public_key=state.identity_public_key(),
                                secagg_public_key=state.secagg_public_key())
    return admin.admit(request)[0]


def certify(admin: Administrator, name: str, secagg_public_key: str, identity_public_key: str | None = None
            ) -> MembershipCertificate:
    """A certificate for a peer whose keys the test holds (a genuine member, as the administrator admits one)."""
    return admin.admit(MembershipRequest(plant=name, identity_public_key=identity_public_key or "ab" * 32,
                                         secagg_public_key=secagg_public_key))[0]

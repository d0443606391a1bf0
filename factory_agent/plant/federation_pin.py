"""The plant's side of membership in its state folder (shared.membership): the federation key pinned at
enrolment and the request this plant writes for the administrator. A part of PlantState."""

from __future__ import annotations

import json
from pathlib import Path

from shared.errors import ConfigurationError
from shared.membership import MembershipRequest, federation_id, load_public_pem, public_pem
from shared.membership.admin import REQUEST_FILE, write_file

FEDERATION_KEY_FILE = "federation_key.pem"  # the federation administrator's public key, pinned at enrolment
MEMBERSHIP_REQUEST_FILE = REQUEST_FILE  # for the administrator: this plant's name and public keys


class FederationPin:
    directory: Path

    @property
    def federation_key_path(self) -> Path:
        return self.directory / FEDERATION_KEY_FILE

    def pin_federation_key(self, source: Path, reset: bool = False):
        """Pin the federation's public key from `source` (a PEM file handed over out of band) at the first start;
        later the same key is a no-op and another one is refused (a dashboard, or whoever edits the plant's
        start-up, cannot move it into another federation) unless `reset`. Returns the pinned key."""
        try:
            offered = load_public_pem(Path(source).read_bytes(), str(source))
        except OSError as exc:
            raise ConfigurationError(f"--federation-key {source}: cannot read it ({exc.strerror})") from None
        pinned = self.federation_key()
        if pinned is not None and federation_id(pinned) != federation_id(offered) and not reset:
            raise ConfigurationError(
                f"--federation-key {source} is federation key {federation_id(offered)}, but this plant pinned "
                f"{federation_id(pinned)} at enrolment ({self.federation_key_path}); it does not change keys "
                "silently: start it with --reset to enrol it in another federation")
        if pinned is None or federation_id(pinned) != federation_id(offered):
            write_file(self.federation_key_path, public_pem(offered), 0o600)
        return offered

    def federation_key(self):
        """The pinned federation key (Ed25519PublicKey), or None before any was pinned."""
        if not self.federation_key_path.exists():
            return None
        return load_public_pem(self.federation_key_path.read_bytes(), str(self.federation_key_path))

    def write_membership_request(self, name: str) -> Path:
        """This plant's membership request (shared.membership.MembershipRequest) for the administrator."""
        request = MembershipRequest(plant=name, identity_public_key=self.identity_public_key(),
                                    secagg_public_key=self.secagg_public_key())
        path = self.directory / MEMBERSHIP_REQUEST_FILE
        # public keys only: the administrator (another account, maybe) reads it
        write_file(path, json.dumps(request.to_wire(), indent=1).encode(), 0o644)
        return path

